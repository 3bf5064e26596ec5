//! `fog-coordinator`: parse and validate the configuration, start, serve
//! until SIGINT/SIGTERM, shut down gracefully.

use clap::Parser;
use fog_coordinator::config::{Config, EXIT_CONFIG, Flags};
use tracing_subscriber::EnvFilter;

fn main() {
    let flags = match Flags::try_parse() {
        Ok(f) => f,
        // --help and --version are not errors.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            std::process::exit(EXIT_CONFIG);
        }
    };
    let cfg = match Config::from_flags(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fog-coordinator: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let filter = EnvFilter::try_from_env("FOG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if cfg.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async move {
        let running = match fog_coordinator::server::start(cfg).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "could not start");
                return 1;
            }
        };
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        0
    });
    std::process::exit(code);
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
