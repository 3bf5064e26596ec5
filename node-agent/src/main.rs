//! `fog-agent`: parse and validate the configuration (exit 64 on bad config),
//! run until SIGINT/SIGTERM on a current-thread runtime (an agent does little
//! at a time; one thread keeps its footprint small).

use std::path::PathBuf;

use std::time::Duration;

use clap::{Parser, Subcommand};
use fog_agent::config::{AgentConfig, EXIT_CONFIG, Layer};
use fog_agent::join::JoinArgs;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// The Fogplane node agent. Every setting can also come from a TOML file
/// (--config, keys as the long flags with underscores) or a `FOG_AGENT_*`
/// environment variable; flags win over the environment, which wins over the file.
#[derive(Parser, Debug)]
#[command(name = "fog-agent", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join the fleet, hold the session, run tasks.
    Run {
        /// TOML config file. [env: FOG_AGENT_CONFIG]
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        layer: Box<Layer>,
    },
    /// Exchange a one-time join token for a certificate: the key pair is
    /// generated here and never leaves the state dir; the coordinator is
    /// trusted only if it presents the CA whose fingerprint the token carries.
    Join {
        /// The join token (FOG1…). [env: FOG_AGENT_TOKEN]
        #[arg(long, env = "FOG_AGENT_TOKEN", hide_env_values = true)]
        token: String,
        /// Coordinator address, https://host:port. [env: FOG_AGENT_COORDINATOR]
        #[arg(long, env = "FOG_AGENT_COORDINATOR")]
        coordinator: String,
        /// The node name to join under (default: the token's, or one the coordinator picks). [env: FOG_AGENT_NAME]
        #[arg(long, env = "FOG_AGENT_NAME")]
        name: Option<String>,
        /// State directory (created 0700). [env: FOG_AGENT_STATE_DIR]
        #[arg(long, env = "FOG_AGENT_STATE_DIR", default_value = "/var/lib/fog-agent")]
        state_dir: PathBuf,
    },
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            std::process::exit(EXIT_CONFIG);
        }
    };
    let (config, layer) = match cli.command {
        Command::Run { config, layer } => (config, layer),
        Command::Join { token, coordinator, name, state_dir } => {
            let args = JoinArgs { token, coordinator, name, state_dir, timeout: Duration::from_secs(10) };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            match rt.block_on(fog_agent::join::join(&args)) {
                Ok(node_id) => {
                    println!("{node_id}");
                    eprintln!("fog-agent: joined as node {node_id}; credentials in {}", args.state_dir.display());
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("fog-agent: join failed: {e}");
                    std::process::exit(1);
                }
            }
        }
    };
    let config = config.or_else(|| std::env::var_os("FOG_AGENT_CONFIG").map(PathBuf::from));
    let cfg = match AgentConfig::load(*layer, config.as_deref(), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fog-agent: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(&cfg.log));
    if cfg.log_json {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async move {
        let traces = match fog_telemetry::trace::init("fog-agent", cfg.otlp_endpoint.as_deref()) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("fog-agent: otlp_endpoint: {e}");
                return EXIT_CONFIG;
            }
        };
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            signals.cancel();
        });
        let code = match fog_agent::run(cfg, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "could not start");
                1
            }
        };
        traces.shutdown().await;
        code
    });
    std::process::exit(code);
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
