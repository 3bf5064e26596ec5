//! Heartbeat ingest, pushed as fast as flow control allows: the coordinator
//! (each node a real `NodeService/Session` stream: hello, welcome, then
//! heartbeats) against the raw tonic client-streaming baseline, with the same
//! number of streams over the same number of HTTP/2 connections.
//!
//! Messages are counted as the load generator hands them to tonic; after the
//! warm-up, bounded HTTP/2 windows keep that within a few windows of what the
//! server consumed. Server CPU comes from /proc for the server process alone.

use crate::coord::connect;
use crate::procs::{Proc, free_port, sibling, wait_listening};
use crate::raw::pb;
use fog_proto::v1 as fog;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `fog-bench ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated nodes (one stream each).
    #[arg(long, default_value_t = 100_000)]
    pub nodes: usize,
    /// HTTP/2 connections the streams share (keep ≤ 1,000 streams per connection; see BENCHMARKS.md).
    #[arg(long, default_value_t = 128)]
    pub connections: usize,
    /// Send one message per stream every this long (e.g. 5s) instead of as fast as flow control allows.
    #[arg(long, value_parser = humantime_secs)]
    pub interval: Option<Duration>,
    /// Measured window.
    #[arg(long, default_value = "10s", value_parser = humantime_secs)]
    pub window: Duration,
    /// Small and short (200 nodes, 2 connections, 1 s): the test suite runs it so the code cannot rot.
    #[arg(long)]
    pub quick: bool,
}

pub fn humantime_secs(s: &str) -> Result<Duration, String> {
    let n: f64 = s.trim_end_matches('s').parse().map_err(|e| format!("{s:?}: {e}"))?;
    Ok(Duration::from_secs_f64(n))
}

/// One measured run.
struct Measure {
    label: &'static str,
    messages: u64,
    secs: f64,
    server_cpu: f64,
    server_rss_kib: u64,
    open_secs: f64,
}

impl Measure {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }

    fn cpu_us_per_msg(&self) -> f64 {
        if self.messages == 0 { 0.0 } else { self.server_cpu * 1e6 / self.messages as f64 }
    }
}

/// Runs `open` for every node, then measures the messages counted in `sent`
/// over the window, with the server's CPU over the same window.
async fn measure<F, Fut>(
    label: &'static str,
    server: &Proc,
    nodes: usize,
    ready: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    timing: Timing,
    open: F,
) -> anyhow::Result<Measure>
where
    F: Fn(usize, Gates) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> =
        (0..nodes).map(|i| tokio::spawn(open(i, Gates { go: go.clone(), stop: stop.clone() }))).collect();
    let opening = Instant::now();
    let deadline = opening + Duration::from_secs(120);
    while (ready.load(Ordering::Relaxed) as usize) < nodes {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{label}: only {} of {nodes} streams open after 120 s",
            ready.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_secs = opening.elapsed().as_secs_f64();
    eprintln!("{label}: {nodes} streams open in {open_secs:.1} s");
    // Every stream is open: now they all push at once.
    let _ = go_tx.send(true);
    // Warm-up: windows fill, allocators settle and, paced, every node has sent
    // the heartbeats that make it healthy (the coordinator's recovery run is 3):
    // the window measures the steady state (a measurement interval, not a wait
    // for a condition).
    let Timing { window, warmup } = timing;
    tokio::time::sleep(warmup.max(window / 4)).await;
    let (m0, c0, t0) = (sent.load(Ordering::Relaxed), server.cpu_seconds(), Instant::now());
    tokio::time::sleep(window).await;
    let (m1, c1, secs) = (sent.load(Ordering::Relaxed), server.cpu_seconds(), t0.elapsed().as_secs_f64());
    let rss = server.rss_kib();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    Ok(Measure { label, messages: m1 - m0, secs, server_cpu: c1 - c0, server_rss_kib: rss, open_secs })
}

/// Messages from `make`: as fast as they are taken, or one per `interval`,
/// stream `i` of `n` offset by `i/n` of the interval so that they spread evenly.
/// The clock starts at the first poll (after every stream is open), not when
/// the stream is built, so that the offsets are not lost to missed ticks.
fn paced<T: Send + 'static>(
    i: usize,
    n: usize,
    interval: Option<Duration>,
    mut make: impl FnMut() -> T + Send + 'static,
) -> futures::stream::BoxStream<'static, T> {
    match interval {
        None => futures::stream::repeat_with(make).boxed(),
        Some(every) => {
            let offset = every.mul_f64(i as f64 / n.max(1) as f64);
            futures::stream::once(async move {
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tokio_stream::wrappers::IntervalStream::new(ticks)
            })
            .flatten()
            .map(move |_| make())
            .boxed()
        }
    }
}

/// When a stream may start pushing (all are open) and when it must stop.
#[derive(Clone)]
struct Gates {
    go: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Gates {
    /// `s`, held back until every stream is open, and ended at the stop.
    fn gate<S>(self, s: S) -> impl futures::Stream<Item = S::Item> + Send + 'static
    where
        S: futures::Stream + Send + 'static,
        S::Item: Send,
    {
        let Gates { mut go, mut stop } = self;
        futures::stream::once(async move {
            let _ = go.wait_for(|v| *v).await;
            s
        })
        .flatten()
        .take_until(async move {
            let _ = stop.wait_for(|v| *v).await;
        })
    }
}

async fn raw(args: &Args, nodes: usize, connections: usize) -> anyhow::Result<Measure> {
    let interval = args.interval;
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let args_raw = ["raw-server".to_string(), "--listen".into(), addr.to_string()];
    let mut server = Proc::start(std::env::current_exe()?, &args_raw, &std::env::temp_dir().join("fog-bench-raw.log"))?;
    wait_listening(&mut server, addr).await?;
    let channels = connect(addr, connections).await?;
    let (ready, sent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // The same bytes per message as the coordinator's heartbeat: the same traffic shape.
    let payload = vec![7u8; payload_len()];
    measure(
        "raw tonic client-streaming ingest",
        &server,
        nodes,
        ready.clone(),
        sent.clone(),
        Timing { window: args.window, warmup: warmup(interval) },
        |i, gates| {
            let channel = channels[i % channels.len()].clone();
            let (ready, sent, payload) = (ready.clone(), sent.clone(), payload.clone());
            async move {
                ready.fetch_add(1, Ordering::Relaxed);
                let mut seq = 0;
                let blobs = paced(i, nodes, interval, move || {
                    seq += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                    pb::Blob { seq, payload: payload.clone() }
                });
                let mut client = pb::raw_service_client::RawServiceClient::new(channel);
                let _ = client.ingest(gates.gate(blobs)).await;
            }
        },
    )
    .await
}

/// The measured window and the warm-up before it.
#[derive(Clone, Copy)]
struct Timing {
    window: Duration,
    warmup: Duration,
}

/// Warm-up before a paced window: four heartbeat intervals.
fn warmup(interval: Option<Duration>) -> Duration {
    interval.map_or(Duration::ZERO, |i| i * 4)
}

/// The raw server's RSS (KiB) holding `n` idle client streams over
/// `n / 1000` connections, and its RSS before them: (with, before).
pub async fn idle_raw_rss(n: usize) -> anyhow::Result<(u64, u64)> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let argv = ["raw-server".to_string(), "--listen".into(), addr.to_string()];
    let mut server =
        Proc::start(std::env::current_exe()?, &argv, &std::env::temp_dir().join("fog-bench-raw-idle.log"))?;
    wait_listening(&mut server, addr).await?;
    let base = server.rss_kib();
    let channels = connect(addr, n.div_ceil(1000)).await?;
    let opened = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut client = pb::raw_service_client::RawServiceClient::new(channels[i % channels.len()].clone());
            let (opened, mut stop) = (opened.clone(), stop.clone());
            // One message opens the stream on the server; then it idles until the stop.
            let up = futures::stream::once(async { pb::Blob { seq: 1, payload: vec![7; 64] } }).chain(
                futures::stream::once(async move {
                    let _ = stop.wait_for(|v| *v).await;
                })
                .filter_map(|_| async { None }),
            );
            tokio::spawn(async move {
                opened.fetch_add(1, Ordering::Relaxed);
                let _ = client.ingest(up).await;
            })
        })
        .collect();
    crate::coord::until("raw idle streams open", Duration::from_secs(120), || {
        let n_open = opened.load(Ordering::Relaxed) as usize;
        async move { n_open >= n }
    })
    .await?;
    // Two heartbeat intervals of the coordinator run: the same settling time.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss = server.rss_kib();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok((rss, base))
}

/// Filler for raw messages so that they encode to the size of a heartbeat.
fn payload_len() -> usize {
    use prost::Message;
    let target = heartbeat(1_000_000).encoded_len();
    let overhead = pb::Blob { seq: 1_000_000, payload: Vec::new() }.encoded_len() + 2;
    target.saturating_sub(overhead).max(1)
}

fn hello(i: usize) -> fog::SessionRequest {
    fog::SessionRequest {
        msg: Some(fog::session_request::Msg::Hello(fog::Hello {
            node_id: format!("bench-{i:06}"),
            node_type: fog::NodeType::EdgeDevice as i32,
            capacity: Some(fog::Resources { cpu_millis: 2000, memory_mb: 2048, storage_mb: 8192, gpus: 0 }),
            agent_version: "fog-bench".into(),
            ..Default::default()
        })),
    }
}

fn heartbeat(seq: u64) -> fog::SessionRequest {
    fog::SessionRequest {
        msg: Some(fog::session_request::Msg::Heartbeat(fog::Heartbeat {
            sequence: seq,
            cpu_usage: 0.25 + (seq % 7) as f64 * 0.01,
            memory_usage: 0.4,
            load_average: 0.7,
            battery_percent: 80,
            charging: true,
            temperature_celsius: 41.5,
            // What an agent measures: its round trip to a few regions.
            region_rtt_ms: [("eu-west".to_string(), 12.5), ("us-east".to_string(), 81.0)].into_iter().collect(),
            ..Default::default()
        })),
    }
}

async fn coordinator(args: &Args, nodes: usize, connections: usize) -> anyhow::Result<Measure> {
    let interval = args.interval;
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let data = tempfile::tempdir()?;
    let flags: Vec<String> = [
        "--insecure-dev",
        "--listen",
        &addr.to_string(),
        "--data-dir",
        &data.path().display().to_string(),
        // Liveness is not what this measures: nodes pushing flat out are never silent.
        "--heartbeat-interval",
        "5s",
        // The limits a production coordinator puts on one address and one
        // session would cut a load generator that is one address pushing flat out.
        "--limit-node-rps",
        "10000000",
        "--session-msg-rate",
        "10000000",
        "--session-msg-burst",
        "10000000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let log = data.path().with_extension("log");
    eprintln!("coordinator log: {}", log.display());
    let mut server = Proc::start(sibling("fog-coordinator")?, &flags, &log)?;
    wait_listening(&mut server, addr).await?;
    let channels = connect(addr, connections).await?;
    let (ready, sent) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let timing = Timing { window: args.window, warmup: warmup(interval) };
    measure("coordinator heartbeat ingest", &server, nodes, ready.clone(), sent.clone(), timing, |i, gates| {
        let channel = channels[i % channels.len()].clone();
        let (ready, sent) = (ready.clone(), sent.clone());
        async move {
            let mut seq = 0;
            let beats = paced(i, nodes, interval, move || {
                seq += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                heartbeat(seq)
            });
            let up = futures::stream::once(async move { hello(i) }).chain(gates.gate(beats));
            let mut client = fog::node_service_client::NodeServiceClient::new(channel);
            let mut down = match client.session(up).await {
                Ok(resp) => resp.into_inner(),
                Err(s) => return eprintln!("session {i} refused: {s:?}"),
            };
            // The welcome says the session is open; then keep reading (pings, acks).
            match down.message().await {
                Ok(Some(_)) => drop(ready.fetch_add(1, Ordering::Relaxed)),
                other => return eprintln!("session {i}: no welcome: {other:?}"),
            }
            while let Ok(Some(_)) = down.message().await {}
        }
    })
    .await
}

/// What `ingest` measured: the table and the two rates.
pub struct Ingest {
    /// Markdown table.
    pub table: String,
    /// Coordinator heartbeats per second.
    pub coord_rate: f64,
    /// Coordinator CPU per heartbeat ÷ raw CPU per message.
    pub cpu_ratio: f64,
}

/// Runs both; returns the table for BENCHMARKS.md.
pub async fn run(mut args: Args) -> anyhow::Result<Ingest> {
    if args.quick {
        (args.nodes, args.connections, args.window) = (200, 2, Duration::from_secs(1));
    }
    anyhow::ensure!(args.nodes > 0 && args.connections > 0, "--nodes and --connections must be positive");
    let (n, c) = (args.nodes, args.connections.min(args.nodes));
    let pace = args.interval.map_or("flat out".to_string(), |i| format!("one message per stream every {i:?}"));
    let size = {
        use prost::Message;
        heartbeat(1_000_000).encoded_len()
    };
    eprintln!("ingest: {n} streams over {c} connections, {pace}, {:?} window, {size} bytes per message", args.window);
    let base = raw(&args, n, c).await?;
    let coord = coordinator(&args, n, c).await?;
    let mut t = format!(
        "| scenario ({n} streams, {c} connections, {pace}) | msgs/s | server CPU µs/msg | server RSS MiB | streams open in |\n|---|---:|---:|---:|---:|\n"
    );
    for m in [&base, &coord] {
        t += &format!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.1} s |\n",
            m.label,
            m.rate(),
            m.cpu_us_per_msg(),
            m.server_rss_kib as f64 / 1024.0,
            m.open_secs
        );
    }
    let cpu_ratio = coord.cpu_us_per_msg() / base.cpu_us_per_msg().max(f64::MIN_POSITIVE);
    t += &format!(
        "| **coordinator / raw** | **{:.0} %** | **{cpu_ratio:.2}×** | | |\n",
        100.0 * coord.rate() / base.rate()
    );
    anyhow::ensure!(base.messages > 0 && coord.messages > 0, "a scenario moved no messages");
    Ok(Ingest { table: t, coord_rate: coord.rate(), cpu_ratio })
}
