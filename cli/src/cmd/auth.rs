//! Signing in and out, who am I, users and API tokens. A sign-in's tokens are
//! saved per coordinator URL in `credentials.json` (mode 0600) in fogctl's
//! config directory (`$FOGCTL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/fogctl`,
//! else `~/.config/fogctl`); the access token is refreshed when it is about to
//! expire, which also rotates the refresh token.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::ExitCode;

use fog_proto::v1 as pb;
use fog_proto::v1::auth_service_client::AuthServiceClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use super::Ctx;
use crate::args::{ApiTokenCommand, LoginArgs, OutputFormat, UsersCommand};
use crate::error::CliError;
use crate::output::{self, Shape};

/// Tokens of one sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    access_token: String,
    access_expires_at: i64,
    refresh_token: String,
    username: String,
}

fn load() -> BTreeMap<String, Saved> {
    crate::config::dir()
        .and_then(|d| std::fs::read(d.join("credentials.json")).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn store(all: &BTreeMap<String, Saved>) -> Result<(), CliError> {
    let body = serde_json::to_vec_pretty(all).map_err(anyhow::Error::from)?;
    crate::config::write_private("credentials.json", &body)
}

fn save(url: &str, tokens: &pb::TokenPair, username: &str) -> Result<(), CliError> {
    let mut all = load();
    all.insert(
        url.to_string(),
        Saved {
            access_token: tokens.access_token.clone(),
            access_expires_at: tokens.access_expires_at.as_ref().map_or(0, |t| t.seconds),
            refresh_token: tokens.refresh_token.clone(),
            username: username.to_string(),
        },
    );
    store(&all)
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The saved access token for this coordinator, refreshed if it expires within a minute.
pub(super) async fn saved_access_token(ctx: &Ctx, channel: &Channel) -> Result<Option<String>, CliError> {
    let Some(saved) = load().remove(&ctx.url) else { return Ok(None) };
    if saved.access_expires_at > now_s() + 60 {
        return Ok(Some(saved.access_token));
    }
    let r = AuthServiceClient::new(channel.clone())
        .refresh(pb::RefreshRequest { refresh_token: saved.refresh_token.clone() })
        .await
        .map_err(|s| ctx.status(s))?
        .into_inner();
    let tokens = r.tokens.ok_or_else(|| anyhow::anyhow!("refresh answered without tokens"))?;
    save(&ctx.url, &tokens, &saved.username)?;
    Ok(Some(tokens.access_token))
}

fn read_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| anyhow::anyhow!("reading stdin: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `fogctl login`
pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<ExitCode, CliError> {
    let password = match std::env::var("FOG_PASSWORD") {
        Ok(p) if !a.password_stdin => p,
        _ => {
            if !a.password_stdin {
                eprint!("password for {}: ", a.username);
            }
            read_line()?
        }
    };
    let r = AuthServiceClient::new(ctx.connect_plain().await?)
        .sign_in(pb::SignInRequest { username: a.username.clone(), password })
        .await
        .map_err(|s| ctx.status(s))?
        .into_inner();
    let tokens = r.tokens.ok_or_else(|| anyhow::anyhow!("sign-in answered without tokens"))?;
    save(&ctx.url, &tokens, &a.username)?;
    let role = pb::Role::try_from(r.role).map_or("unknown", |r| r.as_str_name());
    eprintln!("signed in to {} as {} ({role})", ctx.url, a.username);
    Ok(ExitCode::SUCCESS)
}

/// `fogctl logout`
pub async fn logout(ctx: &Ctx) -> Result<ExitCode, CliError> {
    let mut all = load();
    let Some(saved) = all.remove(&ctx.url) else {
        eprintln!("not signed in to {}", ctx.url);
        return Ok(ExitCode::SUCCESS);
    };
    let ended = AuthServiceClient::new(ctx.connect_plain().await?)
        .sign_out(pb::SignOutRequest { refresh_token: saved.refresh_token })
        .await;
    store(&all)?;
    match ended {
        Ok(_) => eprintln!("signed out of {}", ctx.url),
        Err(s) => eprintln!("forgot the saved tokens; the coordinator said: {}", s.message()),
    }
    Ok(ExitCode::SUCCESS)
}

fn ts(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, |t| t.seconds)
}

fn role_name(v: i32) -> &'static str {
    match pb::Role::try_from(v) {
        Ok(pb::Role::Viewer) => "viewer",
        Ok(pb::Role::Operator) => "operator",
        Ok(pb::Role::Admin) => "admin",
        _ => "unknown",
    }
}

/// `fogctl whoami`
pub async fn whoami(ctx: &Ctx) -> Result<ExitCode, CliError> {
    let r = AuthServiceClient::new(ctx.connect().await?)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(|s| ctx.status(s))?
        .into_inner();
    match ctx.format {
        OutputFormat::Json | OutputFormat::Yaml => output::machine(
            ctx.format,
            &serde_json::json!({"subject": r.subject, "role": role_name(r.role), "expires_at": ts(&r.expires_at)}),
            Shape::Document,
        ),
        OutputFormat::Table => println!("{} ({})", r.subject, role_name(r.role)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `fogctl users …`
pub async fn users(ctx: &Ctx, cmd: UsersCommand) -> Result<ExitCode, CliError> {
    let mut client = AuthServiceClient::new(ctx.connect().await?);
    match cmd {
        UsersCommand::Create { username, role } => {
            let password = read_line()?;
            client
                .create_user(pb::CreateUserRequest { username: username.clone(), password, role: role.to_pb() as i32 })
                .await
                .map_err(|s| ctx.status(s))?;
            eprintln!("created user {username}");
        }
        UsersCommand::List => {
            let r = client.list_users(pb::ListUsersRequest {}).await.map_err(|s| ctx.status(s))?.into_inner();
            for u in r.users {
                match ctx.format {
                    OutputFormat::Json | OutputFormat::Yaml => output::machine(
                        ctx.format,
                        &serde_json::json!({"username": u.username, "role": role_name(u.role), "created_at": ts(&u.created_at)}),
                        Shape::Item,
                    ),
                    OutputFormat::Table => println!("{:<24} {}", u.username, role_name(u.role)),
                }
            }
        }
        UsersCommand::Delete { username } => {
            client
                .delete_user(pb::DeleteUserRequest { username: username.clone() })
                .await
                .map_err(|s| ctx.status(s))?;
            eprintln!("deleted user {username}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `fogctl token …`
pub async fn api_tokens(ctx: &Ctx, cmd: ApiTokenCommand) -> Result<ExitCode, CliError> {
    let mut client = AuthServiceClient::new(ctx.connect().await?);
    match cmd {
        ApiTokenCommand::Create { name, role, ttl } => {
            let ttl =
                ttl.map(|d| prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 });
            let r = client
                .create_api_token(pb::CreateApiTokenRequest { name, role: role.to_pb() as i32, ttl })
                .await
                .map_err(|s| ctx.status(s))?
                .into_inner();
            let t = r.token.unwrap_or_default();
            match ctx.format {
                OutputFormat::Json | OutputFormat::Yaml => output::machine(
                    ctx.format,
                    &serde_json::json!({"id": t.id, "secret": r.secret, "role": role_name(t.role), "expires_at": ts(&t.expires_at)}),
                    Shape::Document,
                ),
                OutputFormat::Table => {
                    println!("{}", r.secret);
                    eprintln!("API token {} ({}); the secret is shown once", t.id, role_name(t.role));
                }
            }
        }
        ApiTokenCommand::List => {
            let r = client.list_api_tokens(pb::ListApiTokensRequest {}).await.map_err(|s| ctx.status(s))?.into_inner();
            for t in r.tokens {
                match ctx.format {
                    OutputFormat::Json | OutputFormat::Yaml => output::machine(
                        ctx.format,
                        &serde_json::json!({"id": t.id, "name": t.name, "role": role_name(t.role), "expires_at": ts(&t.expires_at), "created_by": t.created_by}),
                        Shape::Item,
                    ),
                    OutputFormat::Table => {
                        println!("{:<18} {:<24} {:<9} {}", t.id, t.name, role_name(t.role), t.created_by)
                    }
                }
            }
        }
        ApiTokenCommand::Revoke { id } => {
            client.revoke_api_token(pb::RevokeApiTokenRequest { id: id.clone() }).await.map_err(|s| ctx.status(s))?;
            eprintln!("revoked API token {id}");
        }
        ApiTokenCommand::RotateSigningKey => {
            let r = client
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await
                .map_err(|s| ctx.status(s))?
                .into_inner();
            output::emit(ctx.format, || serde_json::json!({"kid": r.kid}), || format!("new signing key {}\n", r.kid));
        }
    }
    Ok(ExitCode::SUCCESS)
}
