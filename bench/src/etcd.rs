//! The peer baseline: etcd (Debian's `etcd-server`, 3.4) on loopback, started
//! by the bench with a fresh data directory, measured with the official Rust
//! client over the same kind of connection layout the coordinator gets.
//!
//! - lease keepalives: etcd's own liveness mechanism (one keepalive stream per
//!   lease, one request in flight on each, as a client library renews);
//! - durable puts: what a Kubernetes node heartbeat costs (the kubelet renews
//!   a Lease object through the API server, which lands in etcd as a write);
//! - watch fan-out: one writer, many watchers of the same key.

use crate::procs::{Proc, free_port, wait_listening};
use etcd_client::{Client, WatchOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running etcd with its own data directory (removed when dropped).
pub struct Etcd {
    /// The process.
    pub proc: Proc,
    /// Client URL.
    pub endpoint: String,
    _data: tempfile::TempDir,
}

/// The etcd binary: `FOG_BENCH_ETCD`, or `etcd` on the PATH (`scripts/deps.sh etcd` installs it).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("FOG_BENCH_ETCD") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("etcd is not installed: run `bash scripts/deps.sh etcd` (Debian etcd-server)"))
}

impl Etcd {
    /// Starts a single-member etcd on loopback and waits until it listens.
    pub async fn start(log: &Path) -> anyhow::Result<Etcd> {
        let data = tempfile::tempdir()?;
        let (client, peer) = (free_port()?, free_port()?);
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let args: Vec<String> = [
            "--name",
            "bench",
            "--data-dir",
            &data.path().display().to_string(),
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
            "--initial-cluster",
            &format!("bench={peer_url}"),
            "--logger",
            "zap",
            "--log-level",
            "warn",
            // 100,000 leases and their keepalives: the default 8 GiB quota is not the limit.
            "--quota-backend-bytes",
            "8589934592",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut proc = Proc::start(binary()?, &args, log)?;
        let addr: SocketAddr = ([127, 0, 0, 1], client).into();
        wait_listening(&mut proc, addr).await?;
        // Listening is not serving: wait for a leader (a read succeeds).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = match Client::connect([client_url.as_str()], None).await {
                Ok(mut c) => c.get("bench/ready", None).await.is_ok(),
                Err(_) => false,
            };
            if ok {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "etcd on {client_url} does not serve after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Etcd { proc, endpoint: client_url, _data: data })
    }

    /// `n` clients, each with its own HTTP/2 connection.
    pub async fn clients(&self, n: usize) -> anyhow::Result<Vec<Client>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(Client::connect([self.endpoint.as_str()], None).await?);
        }
        Ok(out)
    }
}

/// What one etcd scenario measured.
pub struct EtcdRate {
    /// Operations per second over the window.
    pub rate: f64,
    /// etcd's CPU (user + system) per operation, µs.
    pub cpu_us_per_op: f64,
    /// The load generator's own CPU per operation, µs.
    pub load_cpu_us_per_op: f64,
}

/// Counts `done` over `window` after a warm-up, with etcd's CPU.
async fn window_rate(etcd: &Etcd, done: &AtomicU64, window: Duration) -> EtcdRate {
    tokio::time::sleep(window / 4).await;
    let own = crate::procs::own_cpu_seconds;
    let (n0, c0, l0, t0) = (done.load(Ordering::Relaxed), etcd.proc.cpu_seconds(), own(), Instant::now());
    tokio::time::sleep(window).await;
    let (n1, c1, l1, secs) = (done.load(Ordering::Relaxed), etcd.proc.cpu_seconds(), own(), t0.elapsed().as_secs_f64());
    let ops = (n1 - n0).max(1) as f64;
    EtcdRate { rate: ops / secs, cpu_us_per_op: (c1 - c0) * 1e6 / ops, load_cpu_us_per_op: (l1 - l0) * 1e6 / ops }
}

/// Lease keepalives: `leases` leases (TTL 60 s) over `connections` connections,
/// one keepalive stream per lease with one request in flight, as fast as etcd answers.
/// Also returns etcd's RSS with the leases granted and idle.
pub async fn lease_keepalives(
    etcd: &Etcd,
    leases: usize,
    connections: usize,
    window: Duration,
) -> anyhow::Result<(EtcdRate, u64)> {
    let clients = etcd.clients(connections).await?;
    let ids = grant(&clients, leases).await?;
    // Let the grants settle before reading the idle RSS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = etcd.proc.rss_kib();
    let done = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(leases);
    for (i, id) in ids.into_iter().enumerate() {
        let mut c = clients[i % clients.len()].clone();
        let (done, mut stop) = (done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let Ok((mut keeper, mut stream)) = c.lease_keep_alive(id).await else { return };
            while !*stop.borrow_and_update() {
                if keeper.keep_alive().await.is_err() {
                    return;
                }
                match stream.message().await {
                    Ok(Some(_)) => drop(done.fetch_add(1, Ordering::Relaxed)),
                    _ => return,
                }
            }
        }));
    }
    let r = window_rate(etcd, &done, window).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok((r, idle_rss))
}

/// Grants `n` leases (TTL 60 s) over `clients`, 256 at a time.
async fn grant(clients: &[Client], n: usize) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(256) {
        let grants = chunk.iter().map(|i| {
            let mut c = clients[i % clients.len()].clone();
            async move { c.lease_grant(60, None).await.map(|r| r.id()) }
        });
        for id in futures::future::join_all(grants).await {
            ids.push(id?);
        }
    }
    Ok(ids)
}

/// etcd's RSS (KiB) with `n` leases granted and idle.
pub async fn lease_rss(etcd: &Etcd, n: usize) -> anyhow::Result<u64> {
    let clients = etcd.clients(8).await?;
    grant(&clients, n).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(etcd.proc.rss_kib())
}

/// Durable puts of ~100-byte values to distinct keys (a node's lease object
/// each), `inflight` at a time over `connections` connections.
pub async fn durable_puts(
    etcd: &Etcd,
    inflight: usize,
    connections: usize,
    window: Duration,
) -> anyhow::Result<EtcdRate> {
    let clients = etcd.clients(connections.min(inflight)).await?;
    let done = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let value = vec![b'x'; 100];
    let tasks: Vec<_> = (0..inflight)
        .map(|i| {
            let mut c = clients[i % clients.len()].clone();
            let (done, stop, value) = (done.clone(), stop.clone(), value.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !*stop.borrow() {
                    let key = format!("/registry/leases/kube-node-lease/node-{i:05}-{}", n % 100);
                    if c.put(key, value.clone(), None).await.is_err() {
                        return;
                    }
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let r = window_rate(etcd, &done, window).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    Ok(r)
}

/// Watch fan-out: `watchers` watchers of one key, a writer putting `rate`
/// values a second, each value carrying its send time; returns delivery delays.
pub async fn watch_delays(
    etcd: &Etcd,
    watchers: usize,
    connections: usize,
    rate: u32,
    window: Duration,
) -> anyhow::Result<crate::watch::WatchResult> {
    let clients = etcd.clients(connections).await?;
    let origin = Instant::now();
    let delays = crate::watch::Delays::default();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(watchers);
    let mut tasks = Vec::with_capacity(watchers);
    for i in 0..watchers {
        let mut c = clients[i % clients.len()].clone();
        let (delays, ready) = (delays.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = c.watch("bench/watched", Some(WatchOptions::new())).await else { return };
            let _ = ready.send(()).await;
            while let Ok(Some(resp)) = stream.message().await {
                let now = origin.elapsed().as_nanos() as u64;
                for ev in resp.events() {
                    if let Some(sent) = ev.kv().and_then(|kv| kv.value_str().ok()?.parse::<u64>().ok()) {
                        delays.record(now.saturating_sub(sent));
                    }
                }
            }
        }));
    }
    for _ in 0..watchers {
        ready_rx.recv().await;
    }
    let mut writer = clients[0].clone();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    let end = Instant::now() + window;
    let mut updates = 0;
    while Instant::now() < end {
        ticks.tick().await;
        let sent = origin.elapsed().as_nanos() as u64;
        writer.put("bench/watched", sent.to_string(), None).await?;
        updates += 1;
    }
    // Let the last values arrive (bounded), then stop the watchers.
    delays.settle(Duration::from_secs(3)).await;
    for t in tasks {
        t.abort();
    }
    Ok(crate::watch::WatchResult::of("etcd watch (peer), one key", &delays, updates))
}
