//! The group-commit writer: one task owns the store's write side. Submitters
//! queue batches with the effects to run once they are durable; the writer
//! drains everything queued into one `commit` (one fsync for many
//! submitters), then runs the effects of those batches in submission order.
//!
//! This is what makes "commit before effects" cheap: the engine never waits
//! for an fsync, and under load one fsync covers many decisions.

use super::{Mutation, Store, StoreError};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Runs once its batch is durable (Ok) or failed (Err). Effects run on the
/// writer task, one after another: keep them short (send on a channel, reply).
pub type Effect = Box<dyn FnOnce(Result<(), Arc<StoreError>>) + Send>;

/// Largest number of mutations grouped into one commit. A single batch larger
/// than this is still committed whole: batches are never split.
pub const MAX_GROUP: usize = 4096;

/// The writer has stopped (its task ended or panicked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("store writer has stopped")]
pub struct WriterClosed;

/// A batch `try_submit` could not queue, handed back to the caller.
pub struct Pending {
    /// The mutations.
    pub batch: Vec<Mutation>,
    /// Their effects.
    pub after: Vec<Effect>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("mutations", &self.batch.len()).field("effects", &self.after.len()).finish()
    }
}

/// Why `try_submit` did not queue the batch.
#[derive(Debug, thiserror::Error)]
pub enum TrySubmitError {
    /// The queue is full; retry later (the batch is handed back).
    #[error("store writer queue is full")]
    Full(Pending),
    /// The writer has stopped.
    #[error("store writer has stopped")]
    Closed(Pending),
}

impl TrySubmitError {
    /// The batch that was not queued.
    pub fn into_pending(self) -> Pending {
        match self {
            TrySubmitError::Full(p) | TrySubmitError::Closed(p) => p,
        }
    }
}

/// Counters of the writer, for the system status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches submitted and processed.
    pub batches: u64,
    /// `commit` calls (fsyncs).
    pub commits: u64,
    /// Mutations committed (or attempted).
    pub mutations: u64,
    /// Commits that failed.
    pub failed_commits: u64,
    /// Most mutations in one commit.
    pub largest_commit: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    commits: AtomicU64,
    mutations: AtomicU64,
    failed_commits: AtomicU64,
    largest_commit: AtomicU64,
}

struct Job {
    batch: Vec<Mutation>,
    after: Vec<Effect>,
    /// Set by `flush`: signalled once everything before it is durable.
    done: Option<oneshot::Sender<()>>,
}

/// A cheap, cloneable handle to the writer. The writer stops when every
/// handle is dropped, after committing what was queued.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    backend: &'static str,
    stopped: tokio_util::sync::CancellationToken,
}

impl fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterHandle").field("backend", &self.backend).field("stats", &self.stats()).finish()
    }
}

impl WriterHandle {
    /// Queues a batch; `after` runs once the batch is durable (Ok) or failed
    /// (Err), in submission order across all callers. Waits for queue space
    /// (backpressure), not for the commit.
    pub async fn submit(&self, batch: Vec<Mutation>, after: Vec<Effect>) -> Result<(), WriterClosed> {
        self.tx.send(Job { batch, after, done: None }).await.map_err(|_| WriterClosed)
    }

    /// Same as [`WriterHandle::submit`] but never waits: for an actor loop
    /// that must not block on the store. On a full queue the batch is handed
    /// back in [`TrySubmitError::Full`]; the caller decides whether to retry,
    /// shed load or wait.
    pub fn try_submit(&self, batch: Vec<Mutation>, after: Vec<Effect>) -> Result<(), TrySubmitError> {
        self.tx.try_send(Job { batch, after, done: None }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) => TrySubmitError::Full(Pending { batch: j.batch, after: j.after }),
            mpsc::error::TrySendError::Closed(j) => TrySubmitError::Closed(Pending { batch: j.batch, after: j.after }),
        })
    }

    /// Waits until everything submitted so far is durable (or failed) and its
    /// effects have run: for shutdown and tests.
    pub async fn flush(&self) -> Result<(), WriterClosed> {
        let (done, rx) = oneshot::channel();
        self.tx.send(Job { batch: Vec::new(), after: Vec::new(), done: Some(done) }).await.map_err(|_| WriterClosed)?;
        rx.await.map_err(|_| WriterClosed)
    }

    /// Cancelled once the store said it accepts no more writes
    /// ([`StoreError::Stopped`]): the coordinator must stop.
    pub fn stopped(&self) -> tokio_util::sync::CancellationToken {
        self.stopped.clone()
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            batches: c.batches.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            mutations: c.mutations.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
            largest_commit: c.largest_commit.load(Ordering::Relaxed),
        }
    }

    /// The store's backend name.
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

/// Starts the writer task over `store` with room for `queue` batches.
pub fn spawn_writer(store: Arc<dyn Store>, queue: usize) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    spawn_writer_timed(store, queue, None)
}

/// [`spawn_writer`], observing each commit's duration (seconds) in `commit_time`.
pub fn spawn_writer_timed(
    store: Arc<dyn Store>,
    queue: usize,
    commit_time: Option<prometheus_client::metrics::histogram::Histogram>,
) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(queue.max(1));
    let counters = Arc::new(Counters::default());
    let backend = store.backend();
    let stopped = tokio_util::sync::CancellationToken::new();
    let span = tracing::info_span!("store_writer", backend);
    let task = tokio::spawn(run(store, rx, counters.clone(), commit_time, stopped.clone()).instrument(span));
    (WriterHandle { tx, counters, backend, stopped }, task)
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
    commit_time: Option<prometheus_client::metrics::histogram::Histogram>,
    stopped: tokio_util::sync::CancellationToken,
) {
    while let Some(first) = rx.recv().await {
        let mut size = first.batch.len();
        let mut jobs = vec![first];
        while size < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let batch: Vec<Mutation> = jobs.iter_mut().flat_map(|j| j.batch.drain(..)).collect();
        let result = if batch.is_empty() {
            Ok(())
        } else {
            let n = batch.len() as u64;
            let started = std::time::Instant::now();
            let r = store.commit(batch).await.map_err(Arc::new);
            if let Some(h) = &commit_time {
                h.observe(started.elapsed().as_secs_f64());
            }
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters.mutations.fetch_add(n, Ordering::Relaxed);
            counters.largest_commit.fetch_max(n, Ordering::Relaxed);
            match &r {
                Ok(()) => tracing::trace!(mutations = n, batches = jobs.len(), "committed"),
                Err(e) => {
                    counters.failed_commits.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, mutations = n, batches = jobs.len(), "commit failed");
                    if matches!(**e, StoreError::Stopped(_)) {
                        stopped.cancel();
                    }
                }
            }
            r
        };
        for job in jobs {
            if job.done.is_none() {
                counters.batches.fetch_add(1, Ordering::Relaxed);
            }
            for effect in job.after {
                // A panicking effect is a bug, but it must not take the
                // writer (and every later commit) down with it.
                let r = result.clone();
                if std::panic::catch_unwind(AssertUnwindSafe(move || effect(r))).is_err() {
                    tracing::error!("store effect panicked");
                }
            }
            if let Some(done) = job.done {
                let _ = done.send(());
            }
        }
    }
    tracing::debug!("store writer stopped: every handle dropped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RedbStore, Snapshot};
    use fog_proto::v1::Task;
    use std::sync::Mutex;
    use tokio::sync::Semaphore;

    fn put(id: &str) -> Mutation {
        Mutation::PutTask(Task { id: id.into(), ..Default::default() })
    }

    /// Records commits; each commit first waits for a permit when gated.
    #[derive(Default)]
    struct Recording {
        committed: Mutex<Vec<String>>,
        commits: AtomicU64,
        gate: Option<Semaphore>,
        started: tokio::sync::Notify,
    }

    impl Recording {
        fn gated() -> Recording {
            Recording { gate: Some(Semaphore::new(0)), ..Default::default() }
        }

        fn keys(&self) -> Vec<String> {
            self.committed.lock().unwrap().clone()
        }
    }

    #[async_trait::async_trait]
    impl Store for Recording {
        async fn commit(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
            self.started.notify_one();
            if let Some(g) = &self.gate {
                g.acquire().await.unwrap().forget();
            }
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.committed.lock().unwrap().extend(batch.iter().map(|m| m.key().to_string()));
            Ok(())
        }
        async fn load_recent(&self, _: usize) -> Result<Snapshot, StoreError> {
            Ok(Snapshot::default())
        }
        async fn get_task(&self, _: &str) -> Result<Option<fog_proto::v1::Task>, StoreError> {
            Ok(None)
        }
        async fn task_for_request(&self, _: &str) -> Result<Option<fog_proto::v1::Task>, StoreError> {
            Ok(None)
        }
        fn backend(&self) -> &'static str {
            "recording"
        }
    }

    /// A store whose commits always fail (with `Stopped` if `.0`).
    struct Failing(bool);

    #[async_trait::async_trait]
    impl Store for Failing {
        async fn commit(&self, _: Vec<Mutation>) -> Result<(), StoreError> {
            if self.0 {
                Err(StoreError::Stopped("log sync failed".into()))
            } else {
                Err(StoreError::Backend("disk on fire".into()))
            }
        }
        async fn load_recent(&self, _: usize) -> Result<Snapshot, StoreError> {
            Err(StoreError::Closed)
        }
        async fn get_task(&self, _: &str) -> Result<Option<fog_proto::v1::Task>, StoreError> {
            Err(StoreError::Closed)
        }
        async fn task_for_request(&self, _: &str) -> Result<Option<fog_proto::v1::Task>, StoreError> {
            Err(StoreError::Closed)
        }
        fn backend(&self) -> &'static str {
            "failing"
        }
    }

    #[tokio::test]
    async fn effects_run_after_durability_in_submission_order() {
        let store = Arc::new(Recording::default());
        let (w, task) = spawn_writer(store.clone(), 64);
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..50 {
            let (s, st, key) = (seen.clone(), store.clone(), format!("t{i}"));
            let effect: Effect = Box::new(move |r| {
                assert!(r.is_ok());
                assert!(st.keys().contains(&key), "{key} ran before it was committed");
                s.lock().unwrap().push(i);
            });
            w.submit(vec![put(&format!("t{i}"))], vec![effect]).await.unwrap();
        }
        w.flush().await.unwrap();
        assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
        assert_eq!(w.stats().mutations, 50);
        assert_eq!(w.stats().batches, 50);
        drop(w);
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submitters_share_commits() {
        let store = Arc::new(Recording::gated());
        let (w, task) = spawn_writer(store.clone(), 1_024);
        // The first commit blocks until every submitter has queued its batches.
        let submitters: Vec<_> = (0..8)
            .map(|s| {
                let w = w.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        w.submit(vec![put(&format!("s{s}-{i}")), put(&format!("s{s}-{i}b"))], vec![]).await.unwrap();
                    }
                })
            })
            .collect();
        for s in submitters {
            s.await.unwrap();
        }
        store.gate.as_ref().unwrap().add_permits(1_000);
        w.flush().await.unwrap();
        let stats = w.stats();
        assert_eq!((stats.batches, stats.mutations), (200, 400));
        assert!(
            stats.commits <= 2,
            "200 batches queued during one commit take at most 2 commits, got {}",
            stats.commits
        );
        assert_eq!(store.commits.load(Ordering::SeqCst), stats.commits);
        assert!(stats.largest_commit >= 200, "one commit carried at least half: {stats:?}");
        drop(w);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_failing_store_passes_the_error_to_effects_and_keeps_going() {
        let (w, _task) = spawn_writer(Arc::new(Failing(false)), 8);
        let errors = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..3 {
            let e = errors.clone();
            let effect: Effect = Box::new(move |r| e.lock().unwrap().push(r.unwrap_err().to_string()));
            w.submit(vec![put("t")], vec![effect]).await.unwrap();
        }
        w.flush().await.unwrap();
        let errors = errors.lock().unwrap();
        assert_eq!(errors.len(), 3);
        assert!(errors[0].contains("disk on fire"), "{}", errors[0]);
        assert!(w.stats().failed_commits >= 1);
        assert!(!w.stopped().is_cancelled(), "a failed commit alone does not stop the coordinator");
    }

    #[tokio::test]
    async fn a_store_that_stopped_accepting_writes_says_the_coordinator_must_stop() {
        let (w, _task) = spawn_writer(Arc::new(Failing(true)), 8);
        let stopped = w.stopped();
        w.submit(vec![put("t")], Vec::new()).await.unwrap();
        w.flush().await.unwrap();
        assert!(stopped.is_cancelled());
    }

    #[tokio::test]
    async fn a_panicking_effect_does_not_stop_the_writer() {
        let store = Arc::new(Recording::default());
        let (w, _task) = spawn_writer(store.clone(), 8);
        let ran = Arc::new(AtomicU64::new(0));
        let r = ran.clone();
        w.submit(vec![put("a")], vec![Box::new(|_| panic!("effect bug"))]).await.unwrap();
        w.submit(
            vec![put("b")],
            vec![Box::new(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            })],
        )
        .await
        .unwrap();
        w.flush().await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(store.keys(), ["a", "b"]);
    }

    #[tokio::test]
    async fn try_submit_hands_the_batch_back_when_full() {
        let store = Arc::new(Recording::gated());
        let (w, _task) = spawn_writer(store.clone(), 1);
        let started = store.started.notified();
        w.submit(vec![put("a")], vec![]).await.unwrap();
        // The writer took `a` and is blocked in its commit; `b` fills the queue.
        started.await;
        w.try_submit(vec![put("b")], vec![]).unwrap();
        let err = w.try_submit(vec![put("c"), put("d")], vec![]).unwrap_err();
        assert!(matches!(err, TrySubmitError::Full(_)), "{err}");
        assert_eq!(err.into_pending().batch.len(), 2);
        store.gate.as_ref().unwrap().add_permits(10);
        w.flush().await.unwrap();
        assert_eq!(store.keys(), ["a", "b"]);
    }

    #[tokio::test]
    async fn the_writer_commits_what_was_queued_when_the_last_handle_drops() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        let (w, task) = spawn_writer(store.clone(), 64);
        for i in 0..20 {
            w.submit(vec![put(&format!("t{i:02}"))], vec![]).await.unwrap();
        }
        // No flush: dropping the last handle must not lose what was queued.
        drop(w);
        task.await.unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.tasks.len(), 20);
    }

    #[tokio::test]
    async fn a_stopped_writer_says_so() {
        let (w, task) = spawn_writer(Arc::new(Recording::default()), 4);
        task.abort();
        let _ = task.await;
        assert_eq!(w.submit(vec![put("a")], vec![]).await, Err(WriterClosed));
        assert_eq!(w.flush().await, Err(WriterClosed));
        assert!(matches!(w.try_submit(vec![], vec![]), Err(TrySubmitError::Closed(_))));
    }
}
