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
//! - `watch`: topology watch fan-out delay against raw server streaming.
//! - `submit`: durable submission against etcd puts, and end-to-end placement.
//! - `all`: everything above plus etcd's lease keepalives, failure detection,
//!   restart, idle memory and the agent footprint, written into `BENCHMARKS.md`.
//! - `raw-server`: the baseline server (the other subcommands start it).

mod all;
mod coord;
mod etcd;
mod faults;
mod ingest;
mod procs;
mod raw;
mod submit;
mod watch;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;

/// The coordinator's allocator, so the raw baselines run on the same one.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Every benchmark, written into BENCHMARKS.md (about 15 minutes; `--quick` for a smoke run).
    All(all::Args),
    /// Topology watch delay: the coordinator against raw server-streaming fan-out.
    Watch(watch::Args),
    /// Durable submission against etcd puts, and end-to-end placement.
    Submit(submit::Args),
    /// Restart with a large store: graceful and after a crash.
    Restart {
        /// Nodes (connected and in the store).
        #[arg(long, default_value_t = 100_000)]
        nodes: usize,
        /// Finished tasks in the store.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: usize,
    },
    /// Idle memory per connected node against raw streams and etcd leases.
    Memory {
        /// Fleet sizes.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000])]
        nodes: Vec<usize>,
    },
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
            Cmd::Ingest(args) => {
                println!("{}", ingest::run(args).await?.table);
                Ok(())
            }
            Cmd::All(args) => all::run(args).await,
            Cmd::Watch(args) => {
                let dir = tempfile::tempdir()?;
                println!("{}", watch::run(args, dir.path()).await?);
                Ok(())
            }
            Cmd::Restart { nodes, tasks } => {
                let dir = tempfile::tempdir()?;
                println!("{}", faults::restart(dir.path(), nodes, tasks).await?);
                Ok(())
            }
            Cmd::Memory { nodes } => {
                let dir = tempfile::tempdir()?;
                println!("{}", faults::memory(dir.path(), &nodes).await?);
                Ok(())
            }
            Cmd::Submit(args) => {
                let dir = tempfile::tempdir()?;
                println!("{}", submit::run(args, dir.path()).await?);
                Ok(())
            }
            Cmd::RawServer { listen } => raw::serve(listen).await,
        }
    })
}
