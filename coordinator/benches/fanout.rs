//! Topology fan-out: the engine publishes one `Arc<topology::Event>` on a
//! `tokio::sync::broadcast` channel and every watcher task receives it from
//! its own receiver. Measured: publish one event to 1, 100 and 1000 watchers
//! and wait until every watcher task has it.
//!
//! Baseline in the same group: the same fan-out over one bounded
//! `tokio::sync::mpsc` channel per watcher (one `try_send` each), i.e. a
//! hand-rolled per-watcher queue.
//!
//! Publisher and watchers are tasks on a 2-worker multi-thread runtime, as in
//! the coordinator. Run: `cargo bench -p fog-coordinator --bench fanout`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fog_core::domain::NodeType;
use fog_core::registry::NodeStatus;
use fog_core::topology::{Change, Event, TopoNode};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;

const WATCHERS: [usize; 3] = [1, 100, 1000];
/// Queue depth per watcher: the coordinator's default `watch_buffer` order of magnitude.
const BUFFER: usize = 1024;

/// Counts down the watchers still to receive the current event.
struct Pending {
    left: AtomicUsize,
    all_received: Notify,
}

impl Pending {
    fn received(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `notify_one` stores a permit if the publisher is not waiting yet.
            self.all_received.notify_one();
        }
    }
}

/// A node-metrics event, the most frequent kind.
fn change() -> Change {
    Change::NodeMetrics(TopoNode {
        id: "node-012345".into(),
        region: "eu-west".into(),
        zone: "a".into(),
        node_type: NodeType::Gateway,
        status: NodeStatus::Active,
        flapping: false,
        load: 0.42,
        session_rtt_ms: 12.0,
        active_tasks: 3,
        coordinates: Some((51.5, -0.1)),
        cordoned: false,
        draining: false,
    })
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// Publishes `iters` events one after another, each followed by the wait
/// until every watcher has it; returns the total time. Runs as a task.
fn publish(
    rt: &Runtime,
    iters: u64,
    n: usize,
    pending: &Arc<Pending>,
    send: impl Fn(Arc<Event>) + Send + 'static,
) -> Duration {
    let pending = pending.clone();
    rt.block_on(rt.spawn(async move {
        let change = change();
        let start = Instant::now();
        for revision in 0..iters {
            pending.left.store(n, Ordering::Release);
            send(Arc::new(Event { revision, change: change.clone() }));
            pending.all_received.notified().await;
        }
        start.elapsed()
    }))
    .expect("publisher task")
}

fn fanout(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("fanout");
    g.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));

    for n in WATCHERS {
        let pending = Arc::new(Pending { left: AtomicUsize::new(0), all_received: Notify::new() });

        // broadcast: one send, every receiver wakes.
        let (tx, _) = broadcast::channel::<Arc<Event>>(BUFFER);
        let watchers: Vec<JoinHandle<()>> = (0..n)
            .map(|_| {
                let mut rx = tx.subscribe();
                let pending = pending.clone();
                rt.spawn(async move {
                    loop {
                        match rx.recv().await {
                            Ok(ev) => {
                                black_box(&ev);
                                pending.received();
                            }
                            Err(broadcast::error::RecvError::Closed) => break,
                            Err(broadcast::error::RecvError::Lagged(k)) => panic!("watcher lagged by {k}"),
                        }
                    }
                })
            })
            .collect();
        g.bench_function(BenchmarkId::new("broadcast", n), |b| {
            b.iter_custom(|iters| {
                let tx = tx.clone();
                publish(&rt, iters, n, &pending, move |ev| {
                    // No receivers is fine for the engine; here there are always n.
                    let _ = tx.send(ev);
                })
            })
        });
        drop(tx);
        rt.block_on(async {
            for w in watchers {
                w.await.expect("watcher");
            }
        });

        // mpsc baseline: one queue per watcher, one try_send each.
        let (txs, watchers): (Vec<_>, Vec<JoinHandle<()>>) = (0..n)
            .map(|_| {
                let (tx, mut rx) = mpsc::channel::<Arc<Event>>(BUFFER);
                let pending = pending.clone();
                let w = rt.spawn(async move {
                    while let Some(ev) = rx.recv().await {
                        black_box(&ev);
                        pending.received();
                    }
                });
                (tx, w)
            })
            .unzip();
        let txs = Arc::new(txs);
        g.bench_function(BenchmarkId::new("mpsc-per-watcher", n), |b| {
            b.iter_custom(|iters| {
                let txs = txs.clone();
                publish(&rt, iters, n, &pending, move |ev| {
                    for tx in txs.iter() {
                        tx.try_send(ev.clone()).expect("watcher keeps up");
                    }
                })
            })
        });
        drop(txs);
        rt.block_on(async {
            for w in watchers {
                w.await.expect("watcher");
            }
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
