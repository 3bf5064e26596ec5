//! `fog-bench`: every performance figure of `BENCHMARKS.md` next to a
//! baseline measured in the same run, on the same machine, by the same load
//! generator. It builds nothing itself: run it with `cargo run --release -p
//! fog-bench -- …`, which builds it and, with `--workspace`-wide release
//! builds, the `fog-coordinator` it starts.
//!
//! - `ingest`: heartbeat ingest. N simulated nodes, each with its own session
//!   stream, multiplexed over C HTTP/2 connections, push heartbeats as fast as
//!   flow control lets them; the baseline is a trivial tonic client-streaming
//!   service with the same stream and connection layout and ~100-byte messages.
//! - `raw-server`: the baseline server (the other subcommands start it).

mod ingest;
mod procs;
mod raw;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(name = "fog-bench", about = "Fogplane benchmarks with same-run baselines")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Heartbeat ingest: the coordinator against raw tonic client streaming.
    Ingest(ingest::Args),
    /// Serve the raw tonic baseline (started by the other subcommands).
    RawServer {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Ingest(args) => ingest::run(args).await,
            Cmd::RawServer { listen } => raw::serve(listen).await,
        }
    })
}
