//! `fog-agent`: parse and validate the configuration (exit 64 on bad config),
//! run until SIGINT/SIGTERM on a current-thread runtime (an agent does little
//! at a time; one thread keeps its footprint small).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use fog_agent::config::{AgentConfig, EXIT_CONFIG, Layer};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// EX_UNAVAILABLE: the feature exists in the CLI but not in this build.
const EXIT_UNAVAILABLE: i32 = 69;

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
    /// Exchange a join token for a certificate (not available in this build yet).
    Join {
        /// The join token.
        #[arg(long)]
        token: String,
        /// Coordinator address.
        #[arg(long)]
        coordinator: String,
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
        Command::Join { .. } => {
            eprintln!(
                "fog-agent: join is not available in this build yet (mTLS and join tokens are being wired); \
                 run `fog-agent run --insecure` against a coordinator started with --insecure-dev"
            );
            std::process::exit(EXIT_UNAVAILABLE);
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
    tracing_subscriber::fmt().with_env_filter(EnvFilter::new(&cfg.log)).init();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            signals.cancel();
        });
        match fog_agent::run(cfg, shutdown).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "could not start");
                1
            }
        }
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
