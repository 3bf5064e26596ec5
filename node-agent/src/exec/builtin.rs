//! The built-in tasks (sleep, echo, hash, fail), run inside the agent without
//! starting a process. This is the one implementation: `fogctl sim` runs its
//! simulated nodes' work through it too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fog_proto::v1::{AttemptOutcome, builtin_task::Kind};
use sha2::{Digest, Sha256};

use super::Execution;

/// Above this many rounds the hash chain runs on the blocking pool, so a big
/// task does not stall the runtime (the agent's, or the simulator's shared one).
const BLOCKING_HASH_ROUNDS: u32 = 20_000;
/// How often (in rounds) a long hash chain checks whether it was cancelled.
const HASH_CANCEL_CHECK: u32 = 10_000;

/// The hash chain of the `hash_rounds` built-in: start from the task id's UTF-8
/// bytes and apply SHA-256 `rounds` times, each round hashing the previous
/// 32-byte digest; the output is the last digest in lower-case hex. With 0 rounds
/// the output is the hex of the task id's bytes.
pub fn hash_chain(task_id: &str, rounds: u32) -> String {
    hash_chain_cancellable(task_id, rounds, &AtomicBool::new(false)).unwrap_or_default()
}

/// [`hash_chain`] that gives up (returns `None`) soon after `cancelled` is set.
fn hash_chain_cancellable(task_id: &str, rounds: u32, cancelled: &AtomicBool) -> Option<String> {
    if rounds == 0 {
        return Some(hex::encode(task_id.as_bytes()));
    }
    let mut digest = Sha256::digest(task_id.as_bytes());
    for round in 1..rounds {
        if round % HASH_CANCEL_CHECK == 0 && cancelled.load(Ordering::Relaxed) {
            return None;
        }
        digest = Sha256::digest(digest);
    }
    Some(hex::encode(digest))
}

/// Sets the flag when dropped: tells a blocking hash chain its attempt is gone
/// (cancelled or timed out), so the blocking thread stops early.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs a built-in. `speed` scales sleeps (2.0 = twice as fast; the agent uses
/// 1.0). Dropping the future abandons the work (a long hash chain stops soon after).
pub async fn run(task_id: &str, kind: Option<&Kind>, speed: f64) -> Execution {
    match kind {
        None => Execution::ended(AttemptOutcome::Refused, "the built-in task has no kind"),
        Some(Kind::SleepMs(ms)) => {
            let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
            tokio::time::sleep(Duration::from_secs_f64(*ms as f64 / 1000.0 / speed)).await;
            Execution::ok(Vec::new())
        }
        Some(Kind::Echo(text)) => Execution::ok(text.as_bytes()),
        Some(Kind::Fail(msg)) => Execution::ended(AttemptOutcome::Failed, msg.clone()),
        Some(Kind::HashRounds(rounds)) if *rounds <= BLOCKING_HASH_ROUNDS => {
            Execution::ok(hash_chain(task_id, *rounds))
        }
        Some(Kind::HashRounds(rounds)) => {
            let cancelled = Arc::new(AtomicBool::new(false));
            let _guard = CancelOnDrop(cancelled.clone());
            let (id, rounds) = (task_id.to_string(), *rounds);
            let job = tokio::task::spawn_blocking(move || hash_chain_cancellable(&id, rounds, &cancelled));
            match job.await {
                Ok(Some(hex)) => Execution::ok(hex),
                Ok(None) => Execution::ended(AttemptOutcome::Cancelled, "hash chain abandoned"),
                Err(e) => Execution::ended(AttemptOutcome::Failed, format!("hash task panicked: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_chain_is_the_documented_chain() {
        let one = hex::encode(Sha256::digest(b"task-1"));
        assert_eq!(hash_chain("task-1", 1), one);
        let two = hex::encode(Sha256::digest(Sha256::digest(b"task-1")));
        assert_eq!(hash_chain("task-1", 2), two);
        assert_eq!(hash_chain("ab", 0), "6162");
        assert_eq!(hash_chain("task-1", 1000), hash_chain("task-1", 1000));
        assert_ne!(hash_chain("task-1", 1000), hash_chain("task-2", 1000));
    }

    #[tokio::test]
    async fn echo_returns_the_text() {
        let e = run("t", Some(&Kind::Echo("hi there".into())), 1.0).await;
        assert_eq!(e, Execution::ok(b"hi there".to_vec()));
    }

    #[tokio::test]
    async fn hash_on_the_blocking_pool_matches_inline() {
        let rounds = BLOCKING_HASH_ROUNDS + 1;
        let e = run("t-9", Some(&Kind::HashRounds(rounds)), 1.0).await;
        assert_eq!(e.outcome, AttemptOutcome::Succeeded);
        assert_eq!(String::from_utf8(e.stdout).unwrap(), hash_chain("t-9", rounds));
    }

    #[tokio::test]
    async fn fail_and_empty_are_not_successes() {
        let e = run("t", Some(&Kind::Fail("boom".into())), 1.0).await;
        assert_eq!((e.outcome, e.error.as_str()), (AttemptOutcome::Failed, "boom"));
        assert_eq!(run("t", None, 1.0).await.outcome, AttemptOutcome::Refused);
    }

    #[tokio::test]
    async fn sleep_honours_the_speed_factor() {
        let start = tokio::time::Instant::now();
        let e = run("t", Some(&Kind::SleepMs(2_000)), 10.0).await;
        assert_eq!(e.outcome, AttemptOutcome::Succeeded);
        // 200 ms scaled; far below the unscaled 2 s even on a loaded machine.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(1500), "{took:?}");
    }

    #[test]
    fn cancelled_hash_chain_stops() {
        let flag = AtomicBool::new(true);
        assert_eq!(hash_chain_cancellable("t", u32::MAX, &flag), None);
    }
}
