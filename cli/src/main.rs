//! `fogctl`: parse the command line, run it, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use fogctl::args::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match fogctl::cmd::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", e.report());
            e.into()
        }
    }
}
