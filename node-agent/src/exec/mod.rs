//! Running an assignment's workload: built-ins in-process, `exec` tasks as
//! child processes under the agent's own policy. The executor knows nothing of
//! sessions or state files: it turns a spec into an [`Execution`].

pub mod builtin;
pub mod output;
pub mod policy;
pub mod process;

use std::path::PathBuf;
use std::time::Duration;

use fog_proto::v1::{AttemptOutcome, TaskOutput, TaskSpec, task_spec::Workload};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use policy::ExecPolicy;

/// How an execution ended, before it is wrapped into a `TaskResult`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Execution {
    /// The outcome.
    pub outcome: AttemptOutcome,
    /// Exit code (exec tasks; 128 + signal when killed by a signal), else 0.
    pub exit_code: i32,
    /// Standard output (the echo text, the hash hex, the process's last bytes).
    pub stdout: Vec<u8>,
    /// Standard error (exec tasks).
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr was cut to its last bytes.
    pub truncated: bool,
    /// Error message for failed, timed out, cancelled or refused work.
    pub error: String,
}

impl Execution {
    /// A success with this output.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Execution {
        Execution { outcome: AttemptOutcome::Succeeded, stdout: stdout.into(), ..Default::default() }
    }

    /// An execution that ended with `outcome` and `error` and no output.
    pub fn ended(outcome: AttemptOutcome, error: impl Into<String>) -> Execution {
        Execution { outcome, error: error.into(), ..Default::default() }
    }

    /// The output as the proto carries it.
    pub fn output(&self) -> TaskOutput {
        TaskOutput { stdout: self.stdout.clone(), stderr: self.stderr.clone(), truncated: self.truncated }
    }
}

/// Runs workloads. Cheap to share (`Arc`) between attempt tasks.
#[derive(Clone, Debug)]
pub struct Executor {
    /// Which commands `exec` tasks may run.
    pub policy: ExecPolicy,
    /// Parent of the per-attempt working directories of `exec` tasks.
    pub work_root: PathBuf,
    /// Between SIGTERM and SIGKILL when a process is cancelled or times out.
    pub kill_grace: Duration,
}

impl Executor {
    /// Runs `spec` for attempt `(task_id, attempt)` until it ends, `deadline`
    /// passes (`TIMED_OUT`) or `cancel` fires (`CANCELLED`). Progress (0 to 1)
    /// goes to `progress` when the workload knows it. `started` gets the pid
    /// of an `exec` task's process (its process group) once it runs.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        &self,
        task_id: &str,
        attempt: u64,
        spec: &TaskSpec,
        deadline: Instant,
        cancel: CancellationToken,
        progress: mpsc::Sender<f64>,
        started: impl FnOnce(u32),
    ) -> Execution {
        match spec.workload.as_ref() {
            None => Execution::ended(AttemptOutcome::Refused, "the task has no workload"),
            Some(Workload::Builtin(b)) => {
                let work = with_progress(builtin::run(task_id, b.kind.as_ref(), 1.0), b.kind.as_ref(), progress);
                tokio::select! {
                    e = work => e,
                    _ = tokio::time::sleep_until(deadline) => {
                        Execution::ended(AttemptOutcome::TimedOut, "deadline exceeded")
                    }
                    _ = cancel.cancelled() => Execution::ended(AttemptOutcome::Cancelled, "cancelled"),
                }
            }
            Some(Workload::Exec(x)) => {
                if let Err(why) = self.policy.check(&x.command) {
                    return Execution::ended(AttemptOutcome::Refused, why);
                }
                let memory_kib = spec.resources.as_ref().map(|r| r.memory_mb.saturating_mul(1024)).unwrap_or(0);
                let dir = self.work_root.join(format!("{}-{attempt}", hex::encode(task_id)));
                let run = process::ProcessRun {
                    exec: x,
                    memory_kib,
                    default_dir: &dir,
                    kill_grace: self.kill_grace,
                    attempt: (task_id, attempt),
                };
                run.run(deadline, cancel, started).await
            }
        }
    }
}

/// Reports quarter-way progress of a long `sleep_ms` built-in (the only one
/// whose progress is known); other kinds run as they are.
async fn with_progress(
    work: impl Future<Output = Execution>,
    kind: Option<&fog_proto::v1::builtin_task::Kind>,
    progress: mpsc::Sender<f64>,
) -> Execution {
    use fog_proto::v1::builtin_task::Kind;
    let Some(Kind::SleepMs(ms)) = kind else { return work.await };
    if *ms < 2_000 {
        return work.await;
    }
    let step = Duration::from_millis(*ms / 4);
    let reporter = async move {
        for quarter in 1..4u32 {
            tokio::time::sleep(step).await;
            let _ = progress.try_send(f64::from(quarter) / 4.0);
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        e = work => e,
        _ = reporter => unreachable!("the reporter never ends"),
    }
}
