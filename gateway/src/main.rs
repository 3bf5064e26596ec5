//! `fog-gateway`: see the crate docs and `fog-gateway --help`.

use clap::Parser;
use fog_gateway::{Config, LogFormat};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cfg = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cfg.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Human => logs.init(),
    }
    if let Err(e) = cfg.validate() {
        eprintln!("fog-gateway: {e}");
        return ExitCode::from(64);
    }
    let running = match fog_gateway::start(cfg.clone()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fog-gateway: {e:#}");
            return ExitCode::from(1);
        }
    };
    let scheme = if cfg.tls_cert.is_some() { "https" } else { "http" };
    // Scripts and tests read this line to learn the port when --listen ends in :0.
    println!("listening on {scheme}://{}", running.addr);
    tracing::info!(addr = %running.addr, coordinator = %cfg.coordinator, panel = ?cfg.panel_dir, "fog-gateway serving");
    if let Some(at) = running.metrics_addr {
        tracing::info!("serving Prometheus metrics on http://{at}/metrics");
    }
    let stopper = running.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: open calls get 5 s");
        let _ = stopper.send(true);
    });
    running.wait().await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
