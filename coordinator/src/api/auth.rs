//! `fog.v1.AuthService`: sign-in, refresh, sign-out, users, API tokens, keys.
//! Who may call what is decided by the auth layer; this adapter validates,
//! runs argon2 on the blocking pool (never on the engine), and asks the engine.

use super::{ApiError, ask};
use crate::auth::records::{check_password, check_username};
use crate::auth::secrets::RefreshSecret;
use crate::auth::{Credential, Limits, Principal, Role, password};
use crate::engine::auth::AuthCommand;
use crate::engine::{Command, EngineHandle};
use fog_proto::v1 as pb;
use fog_proto::v1::auth_service_server::AuthService;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// Default and bounds of an API token's lifetime.
const API_TOKEN_TTL_DEFAULT: Duration = Duration::from_secs(90 * 24 * 3600);
const API_TOKEN_TTL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(366 * 24 * 3600);

/// The auth service.
pub struct AuthApi {
    engine: EngineHandle,
    limits: Arc<Limits>,
}

impl AuthApi {
    /// A service over the engine, sharing the server's limiters.
    pub fn new(engine: EngineHandle, limits: Arc<Limits>) -> AuthApi {
        AuthApi { engine, limits }
    }

    fn auth(&self, make: AuthCommand) -> impl Future<Output = Result<(), ApiError>> {
        let engine = self.engine.clone();
        async move { engine.send(Command::Auth(make)).await }
    }

    /// Hashes or verifies a password off the async threads, within the shared cap.
    async fn argon2<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let slot = self.limits.hashing_slot().ok_or_else(|| ApiError::Exhausted {
            what: "password checks in progress".into(),
            retry_after: Duration::from_millis(500),
        })?;
        let out = tokio::task::spawn_blocking(move || {
            let r = f();
            drop(slot);
            r
        })
        .await
        .map_err(|e| ApiError::Internal(format!("password check: {e}")))?;
        Ok(out)
    }
}

fn principal<T>(req: &Request<T>) -> Result<Principal, ApiError> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthenticated("no authenticated principal".into()))
}

fn role(field: &str, v: i32) -> Result<Role, ApiError> {
    Role::from_pb(v).ok_or_else(|| ApiError::field(field, "must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN"))
}

fn refresh_token(v: &str) -> Result<RefreshSecret, ApiError> {
    RefreshSecret::parse(v.trim()).ok_or_else(|| ApiError::field("refresh_token", "not a refresh token"))
}

async fn reply<T>(rx: tokio::sync::oneshot::Receiver<Result<T, ApiError>>) -> Result<T, ApiError> {
    rx.await.map_err(super::error::engine_gone)?
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn sign_in(&self, req: Request<pb::SignInRequest>) -> Result<Response<pb::SignInResponse>, Status> {
        let ip = req.remote_addr().map(|a| a.ip());
        let r = req.into_inner();
        let mut bad = Vec::new();
        if let Err(e) = check_username(&r.username) {
            bad.push(("username".to_string(), e));
        }
        if r.password.is_empty() || r.password.len() > 1024 {
            bad.push(("password".to_string(), "must be 1-1024 bytes".to_string()));
        }
        if !bad.is_empty() {
            return Err(ApiError::Invalid(bad).into());
        }
        self.limits.check_sign_in(ip, &r.username).map_err(crate::auth::layer::exhausted)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.auth(AuthCommand::PasswordHash { username: r.username.clone(), reply: tx }).await?;
        let stored = rx.await.map_err(super::error::engine_gone)?;
        let password = r.password;
        let ok = self
            .argon2(move || match stored {
                Some((hash, _)) => password::verify(&password, &hash),
                None => {
                    // Same cost as a wrong password: no user enumeration by timing.
                    password::verify(&password, password::decoy());
                    false
                }
            })
            .await?;
        if !ok {
            tracing::info!(user = %r.username, "sign-in refused");
            return Err(ApiError::Unauthenticated("wrong username or password".into()).into());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.auth(AuthCommand::StartSession { username: r.username, reply: tx }).await?;
        let (tokens, role) = reply(rx).await?;
        Ok(Response::new(pb::SignInResponse { tokens: Some(tokens), role: role.to_pb() as i32 }))
    }

    async fn refresh(&self, req: Request<pb::RefreshRequest>) -> Result<Response<pb::RefreshResponse>, Status> {
        let token = refresh_token(&req.into_inner().refresh_token)?;
        let tokens = ask(&self.engine, |reply| Command::Auth(AuthCommand::Refresh { token, reply })).await?;
        Ok(Response::new(pb::RefreshResponse { tokens: Some(tokens) }))
    }

    async fn sign_out(&self, req: Request<pb::SignOutRequest>) -> Result<Response<pb::SignOutResponse>, Status> {
        let token = refresh_token(&req.into_inner().refresh_token)?;
        ask(&self.engine, |reply| Command::Auth(AuthCommand::SignOut { token, reply })).await?;
        Ok(Response::new(pb::SignOutResponse {}))
    }

    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let p = principal(&req)?;
        let kind = match p.credential {
            Credential::Access { .. } => pb::CredentialKind::AccessToken,
            Credential::ApiToken { .. } => pb::CredentialKind::ApiToken,
        };
        Ok(Response::new(pb::WhoAmIResponse {
            subject: p.subject,
            role: p.role.to_pb() as i32,
            kind: kind as i32,
            expires_at: Some(prost_types::Timestamp {
                seconds: (p.expires_at_ms / 1000) as i64,
                nanos: ((p.expires_at_ms % 1000) * 1_000_000) as i32,
            }),
        }))
    }

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let r = req.into_inner();
        let mut bad = Vec::new();
        if let Err(e) = check_username(&r.username) {
            bad.push(("username".to_string(), e));
        }
        if let Err(e) = check_password(&r.password) {
            bad.push(("password".to_string(), e));
        }
        let role = role("role", r.role);
        if let Err(ApiError::Invalid(v)) = &role {
            bad.extend(v.iter().cloned());
        }
        if !bad.is_empty() {
            return Err(ApiError::Invalid(bad).into());
        }
        let password = r.password;
        let password_hash =
            self.argon2(move || password::hash(&password)).await?.map_err(|e| ApiError::Internal(e.to_string()))?;
        let user = ask(&self.engine, |reply| {
            Command::Auth(AuthCommand::CreateUser {
                username: r.username,
                password_hash,
                role: role.expect("checked"),
                reply,
            })
        })
        .await?;
        Ok(Response::new(pb::CreateUserResponse { user: Some(user) }))
    }

    async fn list_users(&self, _req: Request<pb::ListUsersRequest>) -> Result<Response<pb::ListUsersResponse>, Status> {
        let users = ask(&self.engine, |reply| Command::Auth(AuthCommand::ListUsers { reply })).await?;
        Ok(Response::new(pb::ListUsersResponse { users }))
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let username = req.into_inner().username;
        check_username(&username).map_err(|e| ApiError::field("username", e))?;
        ask(&self.engine, |reply| Command::Auth(AuthCommand::DeleteUser { username, reply })).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn create_api_token(
        &self,
        req: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        let created_by = principal(&req)?.subject;
        let r = req.into_inner();
        let mut bad = Vec::new();
        let name_ok = (1..=64).contains(&r.name.chars().count()) && !r.name.chars().any(char::is_control);
        if !name_ok {
            bad.push(("name".to_string(), "must be 1-64 printable characters".to_string()));
        }
        let role = role("role", r.role);
        if let Err(ApiError::Invalid(v)) = &role {
            bad.extend(v.iter().cloned());
        }
        let ttl = match r.ttl {
            None => Ok(API_TOKEN_TTL_DEFAULT),
            Some(d) if d.seconds >= 0 && (0..1_000_000_000).contains(&d.nanos) => {
                let ttl = Duration::new(d.seconds as u64, d.nanos as u32);
                if API_TOKEN_TTL_RANGE.contains(&ttl) { Ok(ttl) } else { Err(()) }
            }
            Some(_) => Err(()),
        };
        if ttl.is_err() {
            bad.push(("ttl".to_string(), "must be between 1 minute and 366 days".to_string()));
        }
        if !bad.is_empty() {
            return Err(ApiError::Invalid(bad).into());
        }
        let (role, ttl) = (role.expect("checked"), ttl.expect("checked"));
        let out = ask(&self.engine, |reply| {
            Command::Auth(AuthCommand::CreateApiToken { name: r.name, role, ttl, created_by, reply })
        })
        .await?;
        Ok(Response::new(out))
    }

    async fn list_api_tokens(
        &self,
        _req: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let tokens = ask(&self.engine, |reply| Command::Auth(AuthCommand::ListApiTokens { reply })).await?;
        Ok(Response::new(pb::ListApiTokensResponse { tokens }))
    }

    async fn revoke_api_token(
        &self,
        req: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        let id = req.into_inner().id;
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::field("id", "must be the 16 hex characters of an API token id").into());
        }
        ask(&self.engine, |reply| Command::Auth(AuthCommand::RevokeApiToken { id, reply })).await?;
        Ok(Response::new(pb::RevokeApiTokenResponse {}))
    }

    async fn rotate_signing_key(
        &self,
        _req: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let kid = ask(&self.engine, |reply| Command::Auth(AuthCommand::RotateKey { reply })).await?;
        Ok(Response::new(pb::RotateSigningKeyResponse { kid }))
    }
}
