//! The work a simulated node does for an assignment: the agent's built-in
//! tasks (one implementation, `fog_agent::exec::builtin`), run in-process.
//! Exec tasks are always refused: a simulator never starts programs.

use fog_agent::exec::builtin;
use fog_proto::v1::{AttemptOutcome, task_spec::Workload};

pub use fog_agent::exec::Execution;
pub use fog_agent::exec::builtin::hash_chain;

/// Runs the workload of an assignment. `speed` scales sleeps (2.0 = twice as
/// fast). Dropping the future abandons the work (a long hash chain stops soon after).
pub async fn execute(task_id: &str, workload: Option<&Workload>, speed: f64) -> Execution {
    match workload {
        Some(Workload::Builtin(b)) => builtin::run(task_id, b.kind.as_ref(), speed).await,
        Some(Workload::Exec(_)) => {
            Execution::ended(AttemptOutcome::Refused, "exec tasks are not allowed on simulated nodes")
        }
        None => Execution::ended(AttemptOutcome::Refused, "the task has no workload"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::{BuiltinTask, ExecTask, builtin_task::Kind};

    #[tokio::test]
    async fn builtins_run_and_exec_is_refused() {
        let echo = Workload::Builtin(BuiltinTask { kind: Some(Kind::Echo("hi".into())) });
        assert_eq!(execute("t", Some(&echo), 1.0).await, Execution::ok(b"hi".to_vec()));
        let exec = Workload::Exec(ExecTask { command: "/bin/true".into(), ..Default::default() });
        let e = execute("t", Some(&exec), 1.0).await;
        assert_eq!(e.outcome, AttemptOutcome::Refused);
        assert_eq!(e.error, "exec tasks are not allowed on simulated nodes");
        assert_eq!(execute("t", None, 1.0).await.outcome, AttemptOutcome::Refused);
    }
}
