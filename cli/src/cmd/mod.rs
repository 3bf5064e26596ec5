//! The commands, one module per noun. Each takes its parsed arguments and a
//! [`Ctx`], talks to the coordinator, and prints.

use std::process::ExitCode;
use std::time::Duration;

use fog_proto::auth::{Authed, Bearer};
use tonic::transport::{Channel, Endpoint};

use crate::args::{Cli, Command, ConfigCommand, DEFAULT_COORDINATOR, OutputFormat};
use crate::config::Contexts;
use crate::error::CliError;

pub mod auth;
pub mod nodes;
pub mod sim;
pub mod status;
pub mod tasks;
pub mod tokens;
pub mod topology;

/// What every command needs: where the coordinator is and how to print.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Coordinator URL.
    pub url: String,
    /// Output format.
    pub format: OutputFormat,
    /// CA to verify an https:// coordinator with.
    pub ca_file: Option<std::path::PathBuf>,
    /// Bearer token given on the command line or in FOG_TOKEN.
    pub token: Option<String>,
    /// W3C trace context sent with every call (checked).
    pub traceparent: Option<String>,
}

impl Ctx {
    /// Connects to the coordinator with credentials: --token / FOG_TOKEN, or
    /// the session saved by `fogctl login` (refreshed when about to expire).
    pub async fn connect(&self) -> Result<Authed, CliError> {
        let channel = self.connect_plain().await?;
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None => auth::saved_access_token(self, &channel).await?,
        };
        let mut bearer = match token {
            Some(t) => Bearer::new(&t).map_err(|_| CliError::Usage("--token: not a valid token".into()))?,
            None => Bearer::none(),
        };
        if let Some(tp) = &self.traceparent {
            bearer = bearer.with_traceparent(tp).map_err(|_| bad_traceparent())?;
        }
        Ok(bearer.wrap(channel))
    }

    /// Connects without credentials (sign-in, and what simulated nodes use).
    pub async fn connect_plain(&self) -> Result<Channel, CliError> {
        self.endpoint()?
            .connect()
            .await
            .map_err(|e| CliError::Connect { url: self.url.clone(), detail: error_chain(&e) })
    }

    /// The coordinator endpoint, configured but not connected.
    pub fn endpoint(&self) -> Result<Endpoint, CliError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "invalid coordinator URL `{}`: expected http://HOST:PORT or https://HOST:PORT",
                self.url
            )));
        }
        let endpoint = Endpoint::from_shared(self.url.clone())
            .map_err(|e| CliError::Usage(format!("invalid coordinator URL `{}`: {e}", self.url)))?;
        let endpoint = if self.url.starts_with("https://") {
            let mut tls = tonic::transport::ClientTlsConfig::new();
            if let Some(path) = &self.ca_file {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| CliError::Usage(format!("cannot read --ca-file {}: {e}", path.display())))?;
                tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint.tls_config(tls).map_err(|e| CliError::Usage(format!("TLS settings: {e}")))?
        } else {
            endpoint
        };
        Ok(endpoint
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            // Long watches cross idle NATs and load balancers; pings keep them open
            // and reveal a dead peer.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true))
    }

    /// Wraps a status from the coordinator.
    pub fn status(&self, status: tonic::Status) -> CliError {
        CliError::status(status, &self.url)
    }
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        // Layers often repeat their inner error's text; say it once.
        if parts.last().is_none_or(|last| !last.ends_with(&part)) {
            parts.push(part);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    if cli.traceparent.as_deref().is_some_and(|tp| !fog_telemetry::trace::parse_traceparent(tp).is_valid()) {
        return Err(bad_traceparent());
    }
    let contexts = Contexts::load()?;
    match cli.command {
        Command::Config(c) => return config(&cli.coordinator, &cli.ca_file, &cli.token, cli.output, contexts, c),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "fogctl", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    // Flags and environment win over the context; the context over the defaults.
    let chosen = contexts.chosen(cli.context.as_deref())?.map(|(_, c)| c.clone()).unwrap_or_default();
    let ctx = Ctx {
        url: cli.coordinator.or(chosen.coordinator).unwrap_or_else(|| DEFAULT_COORDINATOR.to_string()),
        format: cli.output,
        ca_file: cli.ca_file.or(chosen.ca_file),
        token: cli.token.or(chosen.token),
        traceparent: cli.traceparent,
    };
    match cli.command {
        Command::Status => status::run(&ctx).await,
        Command::Nodes(c) => nodes::run(&ctx, c).await,
        Command::Tasks(c) => tasks::run(&ctx, c).await,
        Command::Topology(a) => topology::run(&ctx, a).await,
        Command::Tokens(c) => tokens::run(&ctx, c).await,
        Command::Sim(a) => sim::run(&ctx, a).await,
        Command::Login(a) => auth::login(&ctx, a).await,
        Command::Logout => auth::logout(&ctx).await,
        Command::Whoami => auth::whoami(&ctx).await,
        Command::Users(c) => auth::users(&ctx, c).await,
        Command::Token(c) => auth::api_tokens(&ctx, c).await,
        Command::Config(_) | Command::Completion { .. } => unreachable!("handled before connecting"),
    }
}

/// `fogctl config …`: reads and writes `config.yaml`; talks to nobody.
fn config(
    coordinator: &Option<String>,
    ca_file: &Option<std::path::PathBuf>,
    token: &Option<String>,
    format: OutputFormat,
    mut contexts: Contexts,
    cmd: ConfigCommand,
) -> Result<ExitCode, CliError> {
    match cmd {
        ConfigCommand::SetContext { name } => {
            if coordinator.is_none() && ca_file.is_none() && token.is_none() {
                return Err(CliError::Usage(
                    "set-context needs at least one of --coordinator, --ca-file, --token".into(),
                ));
            }
            let c = contexts.contexts.entry(name.clone()).or_default();
            if let Some(url) = coordinator {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(CliError::Usage(format!("--coordinator {url:?}: expected http:// or https://")));
                }
                c.coordinator = Some(url.clone());
            }
            if let Some(p) = ca_file {
                // Stored absolute: the context must work from any directory.
                let abs = std::path::absolute(p).map_err(|e| CliError::Usage(format!("--ca-file: {e}")))?;
                c.ca_file = Some(abs);
            }
            if let Some(t) = token {
                c.token = Some(t.clone());
            }
            if contexts.current_context.is_none() {
                contexts.current_context = Some(name.clone());
            }
            contexts.save()?;
            eprintln!("context {name} saved");
        }
        ConfigCommand::UseContext { name } => {
            if !contexts.contexts.contains_key(&name) {
                return Err(crate::config::unknown(&name));
            }
            contexts.current_context = Some(name.clone());
            contexts.save()?;
            eprintln!("now using context {name}");
        }
        ConfigCommand::DeleteContext { name } => {
            if contexts.contexts.remove(&name).is_none() {
                return Err(crate::config::unknown(&name));
            }
            if contexts.current_context.as_deref() == Some(name.as_str()) {
                contexts.current_context = None;
            }
            contexts.save()?;
            eprintln!("context {name} deleted");
        }
        ConfigCommand::CurrentContext => match &contexts.current_context {
            Some(name) => println!("{name}"),
            None => return Err(CliError::Usage("no current context; `fogctl config use-context NAME`".into())),
        },
        ConfigCommand::GetContexts => {
            let current = contexts.current_context.as_deref();
            crate::output::emit(
                format,
                || {
                    serde_json::json!({
                        "current_context": current,
                        "contexts": contexts.contexts.iter().map(|(name, c)| serde_json::json!({
                            "name": name,
                            "coordinator": c.coordinator,
                            "ca_file": c.ca_file,
                            "has_token": c.token.is_some(),
                        })).collect::<Vec<_>>(),
                    })
                },
                || {
                    let mut t = crate::output::Table::new(&["CURRENT", "NAME", "COORDINATOR", "CA FILE", "TOKEN"]);
                    for (name, c) in &contexts.contexts {
                        t.row(vec![
                            if current == Some(name.as_str()) { "*".into() } else { String::new() },
                            name.clone(),
                            c.coordinator.clone().unwrap_or_default(),
                            c.ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                            if c.token.is_some() { "yes".into() } else { String::new() },
                        ]);
                    }
                    t.render()
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bad_traceparent() -> CliError {
    CliError::Usage("--traceparent (TRACEPARENT): not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)".into())
}
