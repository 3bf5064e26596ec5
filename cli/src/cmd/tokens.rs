//! `fogctl tokens create`: a single-use join token for a new node.

use std::process::ExitCode;

use fog_proto::v1 as pb;
use fog_proto::v1::fleet_service_client::FleetServiceClient;

use super::Ctx;
use crate::args::{OutputFormat, TokensCommand, TokensCreateArgs};
use crate::error::CliError;
use crate::output::{self, Shape};

/// Runs a `tokens` subcommand.
pub async fn run(ctx: &Ctx, cmd: TokensCommand) -> Result<ExitCode, CliError> {
    match cmd {
        TokensCommand::Create(a) => create(ctx, a).await,
    }
}

async fn create(ctx: &Ctx, a: TokensCreateArgs) -> Result<ExitCode, CliError> {
    let mut labels = Vec::new();
    for l in &a.labels {
        let (key, value) =
            l.split_once('=').ok_or_else(|| CliError::Usage(format!("--label {l:?}: expected KEY=VALUE")))?;
        labels.push(pb::Label { key: key.to_string(), value: value.to_string() });
    }
    let ttl_seconds = match a.ttl {
        Some(d) => u32::try_from(d.as_secs()).map_err(|_| CliError::Usage("--ttl is too long".into()))?,
        None => 0,
    };
    let mut client = FleetServiceClient::new(ctx.connect().await?);
    let r = client
        .create_join_token(pb::CreateJoinTokenRequest { ttl_seconds, node_name: a.name.unwrap_or_default(), labels })
        .await
        .map_err(|s| ctx.status(s))?
        .into_inner();
    match ctx.format {
        OutputFormat::Json | OutputFormat::Yaml => output::machine(
            ctx.format,
            &serde_json::json!({
                "token": r.token,
                "token_id": r.token_id,
                "expires_at": r.expires_at.map(|t| t.seconds),
            }),
            Shape::Document,
        ),
        OutputFormat::Table => {
            println!("{}", r.token);
            eprintln!("token id {} (single use; shown once)", r.token_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
