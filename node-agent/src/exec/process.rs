//! `exec` tasks: one child process per attempt, in its own process group.
//!
//! - **Memory limit**: the workspace forbids `unsafe`, so there is no
//!   `pre_exec(setrlimit)`. A task that reserves memory runs as
//!   `/bin/sh -c 'ulimit -v <KiB> && exec "$0" "$@"' <command> <args…>`: the
//!   shell sets `RLIMIT_AS` on itself and `exec`s the command, which inherits
//!   it. Arguments are passed as positional parameters, never spliced into the
//!   script, so they cannot inject shell syntax. (`RLIMIT_AS` limits address
//!   space, not resident memory: programs that reserve huge virtual ranges,
//!   like Go or JVM runtimes, need a generous reservation.)
//! - **Environment**: cleared, then `PATH` and the task's variables; the
//!   agent's own environment (and any secret in it) does not leak to tasks.
//! - **Stop** (timeout or cancel): SIGTERM to the process group, SIGKILL to
//!   the group after the grace period.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use fog_proto::v1::{AttemptOutcome, ExecTask};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Execution;
use super::output::{OUTPUT_LIMIT, read_tail};

/// `PATH` given to tasks.
const TASK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long to wait for the pipes to close once the process is gone (a
/// daemonised grandchild could hold them open forever).
const PIPE_DRAIN: Duration = Duration::from_secs(1);

/// One `exec` attempt, ready to start.
#[derive(Debug)]
pub struct ProcessRun<'a> {
    /// What to run.
    pub exec: &'a ExecTask,
    /// Address-space limit in KiB; 0 means none.
    pub memory_kib: u64,
    /// Working directory when the task names none (created, removed after).
    pub default_dir: &'a Path,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// The task and attempt, given to the process as `FOG_TASK_ID` and
    /// `FOG_ATTEMPT` (so work can name its outputs; the attempt number is the
    /// attempt's fencing token).
    pub attempt: (&'a str, u64),
}

enum Stopped {
    Exited,
    TimedOut,
    Cancelled,
}

impl ProcessRun<'_> {
    fn command(&self, dir: &Path) -> Command {
        let x = self.exec;
        let mut cmd = if self.memory_kib > 0 {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", self.memory_kib)).arg(&x.command);
            c
        } else {
            Command::new(&x.command)
        };
        cmd.args(&x.args)
            .env_clear()
            .env("PATH", TASK_PATH)
            .envs(&x.env)
            .env("FOG_TASK_ID", self.attempt.0)
            .env("FOG_ATTEMPT", self.attempt.1.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so a stop reaches the children it starts too.
            .process_group(0)
            // If the attempt's future is dropped (agent shutting down), do not leave it behind.
            .kill_on_drop(true);
        cmd
    }

    /// Runs the process until it exits, `deadline` passes or `cancel` fires;
    /// `started` gets its pid (also its process group id) as soon as it runs.
    pub async fn run(self, deadline: Instant, cancel: CancellationToken, started: impl FnOnce(u32)) -> Execution {
        let own_dir = self.exec.working_dir.is_empty();
        let dir = if own_dir { self.default_dir.to_path_buf() } else { self.exec.working_dir.clone().into() };
        if own_dir && let Err(e) = create_private_dir(&dir) {
            return Execution::ended(AttemptOutcome::Failed, format!("could not create {}: {e}", dir.display()));
        }
        let execution = self.run_in(&dir, deadline, cancel, started).await;
        if own_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
        execution
    }

    async fn run_in(
        &self,
        dir: &Path,
        deadline: Instant,
        cancel: CancellationToken,
        started: impl FnOnce(u32),
    ) -> Execution {
        let mut child = match self.command(dir).spawn() {
            Ok(c) => c,
            Err(e) => {
                return Execution::ended(
                    AttemptOutcome::Failed,
                    format!("could not start {:?}: {e}", self.exec.command),
                );
            }
        };
        let pid = child.id();
        debug!(pid, command = %self.exec.command, "process started");
        if let Some(pid) = pid {
            started(pid);
        }
        let stdout = child.stdout.take().map(|s| tokio::spawn(read_tail(s, OUTPUT_LIMIT)));
        let stderr = child.stderr.take().map(|s| tokio::spawn(read_tail(s, OUTPUT_LIMIT)));
        let (status, stopped) = tokio::select! {
            s = child.wait() => (s, Stopped::Exited),
            _ = sleep_until(deadline) => (stop(&mut child, pid, self.kill_grace).await, Stopped::TimedOut),
            _ = cancel.cancelled() => (stop(&mut child, pid, self.kill_grace).await, Stopped::Cancelled),
        };
        let (stdout, out_cut) = collect(stdout).await;
        let (stderr, err_cut) = collect(stderr).await;
        let exit_code = status.as_ref().map(exit_code).unwrap_or(-1);
        let (outcome, error) = match (&stopped, &status) {
            (Stopped::TimedOut, _) => (AttemptOutcome::TimedOut, "deadline exceeded; process stopped".to_string()),
            (Stopped::Cancelled, _) => (AttemptOutcome::Cancelled, "cancelled; process stopped".to_string()),
            (Stopped::Exited, Err(e)) => (AttemptOutcome::Failed, format!("could not wait for the process: {e}")),
            (Stopped::Exited, Ok(s)) if s.success() => (AttemptOutcome::Succeeded, String::new()),
            (Stopped::Exited, Ok(s)) => match s.signal() {
                Some(sig) => (AttemptOutcome::Failed, format!("killed by signal {sig}")),
                None => (AttemptOutcome::Failed, format!("exited with code {exit_code}")),
            },
        };
        Execution { outcome, exit_code, stdout, stderr, truncated: out_cut || err_cut, error }
    }
}

/// SIGTERM to the group, SIGKILL after `grace`; then SIGKILL to whatever of the
/// group is left (children that ignored SIGTERM while the leader exited).
async fn stop(child: &mut Child, pid: Option<u32>, grace: Duration) -> std::io::Result<ExitStatus> {
    let Some(group) = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw) else {
        return child.wait().await; // already reaped
    };
    let _ = killpg(group, Signal::SIGTERM);
    let status = match timeout(grace, child.wait()).await {
        Ok(s) => s,
        Err(_) => {
            let _ = killpg(group, Signal::SIGKILL);
            child.wait().await
        }
    };
    let _ = killpg(group, Signal::SIGKILL);
    status
}

/// The shell convention: the exit code, or 128 + the signal that killed it.
fn exit_code(s: &ExitStatus) -> i32 {
    s.code().or_else(|| s.signal().map(|sig| 128 + sig)).unwrap_or(-1)
}

async fn collect(reader: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else { return (Vec::new(), false) };
    match timeout(PIPE_DRAIN, &mut reader).await {
        Ok(Ok(tail)) => tail,
        _ => {
            reader.abort();
            (Vec::new(), false)
        }
    }
}

/// The start time (field 22 of `<proc_root>/<pid>/stat`, in clock ticks since
/// boot) of process `pid`: with the pid, it names a process uniquely.
pub fn process_start_time(proc_root: &Path, pid: u32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat"))?;
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so fields
    // are counted after the last `)`; the first one there is field 3.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(22 - 3))
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unparsable stat of pid {pid}")))
}

/// SIGKILLs process group `pid` if process `pid` still exists with the same
/// `start_time` (so a reused pid is left alone). Returns whether it signalled.
pub fn kill_orphaned_group(proc_root: &Path, pid: u32, start_time: u64) -> std::io::Result<bool> {
    let Ok(group) = i32::try_from(pid) else { return Ok(false) };
    if group <= 1 {
        return Ok(false);
    }
    match process_start_time(proc_root, pid) {
        Ok(t) if t == start_time => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    match killpg(Pid::from_raw(group), Signal::SIGKILL) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// Creates a directory readable only by the agent's user.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(cmd: &str, args: &[&str]) -> ExecTask {
        ExecTask { command: cmd.into(), args: args.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    async fn run(x: &ExecTask, memory_kib: u64, within: Duration, cancel: CancellationToken) -> Execution {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("w");
        let p = ProcessRun {
            exec: x,
            memory_kib,
            default_dir: &work,
            kill_grace: Duration::from_millis(500),
            attempt: ("t-1", 3),
        };
        let e = p.run(Instant::now() + within, cancel, |_| {}).await;
        assert!(!work.exists(), "the attempt's own directory is removed");
        e
    }

    #[tokio::test]
    async fn exit_code_output_env_and_args() {
        let script = "echo \"$1 $FOO $FOG_TASK_ID/$FOG_ATTEMPT\"; echo err >&2; exit 3";
        let mut x = task("/bin/sh", &["-c", script, "sh", "it's $HOME"]);
        x.env.insert("FOO".into(), "bar".into());
        // The attempt's identity wins over a task's own setting.
        x.env.insert("FOG_ATTEMPT".into(), "99".into());
        let e = run(&x, 0, Duration::from_secs(10), CancellationToken::new()).await;
        assert_eq!(e.outcome, AttemptOutcome::Failed);
        assert_eq!(e.exit_code, 3);
        assert_eq!(e.stdout, b"it's $HOME bar t-1/3\n");
        assert_eq!(e.stderr, b"err\n");
        assert!(e.error.contains("code 3"), "{}", e.error);
    }

    #[tokio::test]
    async fn memory_limit_wrapper_passes_arguments_verbatim() {
        let x = task("/bin/echo", &["a b", "$(id)", "'q'"]);
        let e = run(&x, 256 * 1024, Duration::from_secs(10), CancellationToken::new()).await;
        assert_eq!(e.outcome, AttemptOutcome::Succeeded, "{e:?}");
        assert_eq!(e.stdout, b"a b $(id) 'q'\n");
    }

    #[tokio::test]
    async fn memory_limit_is_enforced() {
        // 64 MiB of address space cannot hold a 200 MB allocation.
        let x = task("/bin/sh", &["-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"]);
        let e = run(&x, 64 * 1024, Duration::from_secs(30), CancellationToken::new()).await;
        assert_ne!(e.outcome, AttemptOutcome::Succeeded, "{:?}", String::from_utf8_lossy(&e.stdout));
    }

    #[tokio::test]
    async fn timeout_stops_the_whole_group() {
        let x = task("/bin/sh", &["-c", "sleep 30 & sleep 30; wait"]);
        let start = Instant::now();
        let e = run(&x, 0, Duration::from_millis(300), CancellationToken::new()).await;
        assert_eq!(e.outcome, AttemptOutcome::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn cancel_escalates_to_sigkill_after_the_grace() {
        // Ignores SIGTERM: only SIGKILL after the grace ends it.
        let x = task("/bin/sh", &["-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]);
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c2.cancel();
        });
        let e = run(&x, 0, Duration::from_secs(30), cancel).await;
        assert_eq!(e.outcome, AttemptOutcome::Cancelled);
        assert_eq!(e.exit_code, 128 + 9);
        assert_eq!(e.stdout, b"ready\n");
    }

    fn alive(pid: u32) -> bool {
        nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok()
    }

    #[test]
    fn orphan_kill_is_guarded_by_the_start_time() {
        use std::os::unix::process::CommandExt;
        let mut child =
            std::process::Command::new("/bin/sleep").arg("300").process_group(0).stdout(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        let proc_root = Path::new("/proc");
        let start = process_start_time(proc_root, pid).unwrap();
        // Not the same process (a reused pid): left alone.
        assert!(!kill_orphaned_group(proc_root, pid, start + 1).unwrap());
        // Proving that something did not happen needs a window: a signal sent
        // by the call above would have ended the child well within 50 ms.
        std::thread::sleep(Duration::from_millis(50));
        assert!(child.try_wait().unwrap().is_none(), "a process with another start time was killed");
        assert!(alive(pid));
        // The same process: its group is killed.
        assert!(kill_orphaned_group(proc_root, pid, start).unwrap());
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9));
        // Gone: nothing to do.
        assert!(!kill_orphaned_group(proc_root, pid, start).unwrap());
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("42")).unwrap();
        let mut stat = "42 (a) b (c d) S".to_string();
        for field in 4..=21 {
            stat.push_str(&format!(" {field}"));
        }
        stat.push_str(" 987654 22 23\n");
        std::fs::write(dir.path().join("42/stat"), stat).unwrap();
        assert_eq!(process_start_time(dir.path(), 42).unwrap(), 987654);
        assert!(!kill_orphaned_group(dir.path(), 42, 1).unwrap(), "another start time: not killed");
    }

    #[tokio::test]
    async fn missing_program_fails_clearly() {
        let e = run(&task("/nonexistent/prog", &[]), 0, Duration::from_secs(5), CancellationToken::new()).await;
        assert_eq!(e.outcome, AttemptOutcome::Failed);
        assert!(e.error.contains("could not start"), "{}", e.error);
    }
}
