//! Local state that must survive the agent: which attempts it was running and
//! which results the coordinator has not acknowledged yet.
//!
//! One small file per record in `<state-dir>/attempts/`, each written to a
//! temporary file, fsynced, renamed into place, and the directory fsynced
//! (mode 0600, directory 0700):
//! - `<hex task id>-<attempt>.assigned` — the `Assignment` as received; once
//!   an `exec` attempt has started its process, rewritten (same crash-safe
//!   way) with a [`ProcessRecord`] appended: the child's pid and start time.
//!   Protobuf messages concatenate, and the record's tags (≥ 1000) are not
//!   `Assignment`'s, so the file still decodes as the `Assignment`, and as
//!   the `ProcessRecord` (pid 0 when there is none);
//! - `<hex task id>-<attempt>.result` — the `TaskResult` exactly as it is sent.
//!
//! Why files rather than redb: the state is a handful of records, each written
//! once and deleted once; a file per record makes every change one atomic
//! rename (no compaction, no multi-MB file, no extra code in a binary that
//! should stay small), and `ls` shows an operator what the agent holds.
//!
//! Recovery rules ([`LocalState::open`]): a result file means "finished, not
//! acknowledged" — resend it; an `.assigned` file without a result means the
//! attempt was running when the agent died — it is forgotten: not reported as
//! running, not re-run (the coordinator re-queues it as a new attempt). If it
//! recorded a process that is still alive (same pid *and* same start time, so
//! a reused pid is never hit), its process group is SIGKILLed first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fog_proto::v1::{Assignment, TaskResult};
use prost::Message;

use crate::exec::process::{create_private_dir, kill_orphaned_group, process_start_time};

/// An attempt: task id and attempt number (the fencing token).
pub type AttemptKey = (String, u64);

/// The process an `exec` attempt started, appended to its `.assigned` record.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct ProcessRecord {
    /// The child's pid, which is also its process group id; 0 if none.
    #[prost(uint32, tag = "1000")]
    pub pid: u32,
    /// Field 22 (`starttime`) of `/proc/<pid>/stat`, to tell a reused pid apart.
    #[prost(uint64, tag = "1001")]
    pub start_time: u64,
}

/// What a restarted agent finds.
#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    /// Finished attempts whose result was never acknowledged, to resend.
    pub unacked: Vec<TaskResult>,
    /// Attempts that were running when the agent stopped; already forgotten.
    pub interrupted: Vec<AttemptKey>,
}

/// The agent's persistent attempts and results.
#[derive(Clone, Debug)]
pub struct LocalState {
    dir: PathBuf,
}

const ASSIGNED: &str = "assigned";
const RESULT: &str = "result";

impl LocalState {
    /// Opens (creating) the state under `state_dir`, recovering what a previous
    /// run left: see the module docs.
    pub fn open(state_dir: &Path) -> io::Result<(LocalState, Recovered)> {
        create_private_dir(state_dir)?;
        let dir = state_dir.join("attempts");
        create_private_dir(&dir)?;
        let state = LocalState { dir };
        let mut recovered = Recovered::default();
        let mut assigned = Vec::new();
        for entry in fs::read_dir(&state.dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.starts_with(".tmp-") {
                // A write that never got renamed: it never happened.
                fs::remove_file(&path)?;
                continue;
            }
            let Some((key, ext)) = parse_name(&name) else { continue };
            match ext {
                RESULT => match TaskResult::decode(&fs::read(&path)?[..]) {
                    Ok(r) => recovered.unacked.push(r),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "unreadable result dropped");
                        fs::remove_file(&path)?;
                    }
                },
                _ => assigned.push(key),
            }
        }
        for key in assigned {
            if !state.path(&key, RESULT).exists() {
                state.kill_orphan(&key);
                fs::remove_file(state.path(&key, ASSIGNED))?;
                recovered.interrupted.push(key);
            } else {
                fs::remove_file(state.path(&key, ASSIGNED))?;
            }
        }
        sync_dir(&state.dir)?;
        recovered.unacked.sort_by_key(key_of);
        recovered.interrupted.sort();
        Ok((state, recovered))
    }

    /// Kills the process group an interrupted attempt left running, if any.
    fn kill_orphan(&self, key: &AttemptKey) {
        let path = self.path(key, ASSIGNED);
        let record = match fs::read(&path).map(|b| ProcessRecord::decode(&b[..])) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return tracing::warn!(file = %path.display(), error = %e, "unreadable attempt record"),
            Err(e) => return tracing::warn!(file = %path.display(), error = %e, "unreadable attempt record"),
        };
        if record.pid == 0 {
            return;
        }
        match kill_orphaned_group(Path::new("/proc"), record.pid, record.start_time) {
            Ok(true) => tracing::warn!(
                task.id = %key.0,
                attempt = key.1,
                pid = record.pid,
                "killed the process group the interrupted attempt left running"
            ),
            Ok(false) => {
                tracing::debug!(task.id = %key.0, attempt = key.1, pid = record.pid, "interrupted attempt's process is gone")
            }
            Err(e) => tracing::warn!(
                task.id = %key.0,
                attempt = key.1,
                pid = record.pid,
                error = %e,
                "could not kill the interrupted attempt's process group"
            ),
        }
    }

    fn path(&self, key: &AttemptKey, ext: &str) -> PathBuf {
        self.dir.join(format!("{}-{}.{ext}", hex::encode(&key.0), key.1))
    }

    fn write(&self, key: &AttemptKey, ext: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key, ext);
        let tmp = self.dir.join(format!(".tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or_default()));
        Self::write_synced(&tmp, bytes)?;
        fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        sync_dir(&self.dir)
    }

    /// Writes and syncs a new file; on failure (a full disk, say) removes
    /// what was written, so a failed write leaves nothing behind.
    fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        write().inspect_err(|_| {
            let _ = fs::remove_file(path);
        })
    }

    /// Whether the state directory takes a synced write now: writes, syncs
    /// and removes a small file (named like a temporary, so a crash midway
    /// leaves nothing that counts).
    pub fn probe(&self) -> io::Result<()> {
        let path = self.dir.join(".tmp-probe");
        Self::write_synced(&path, &[0; 4096])?;
        fs::remove_file(&path)
    }

    /// Bytes free for unprivileged writers on the state directory's file system.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let v = nix::sys::statvfs::statvfs(&self.dir).map_err(io::Error::from)?;
        Ok(v.blocks_available().saturating_mul(v.fragment_size()))
    }

    fn remove(&self, key: &AttemptKey, ext: &str) -> io::Result<bool> {
        match fs::remove_file(self.path(key, ext)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records an attempt as started (before it runs).
    pub fn record_assigned(&self, key: &AttemptKey, a: &Assignment) -> io::Result<()> {
        self.write(key, ASSIGNED, &a.encode_to_vec())
    }

    /// Records the process an attempt started (pid and start time), so that a
    /// restart after a crash can kill it. A no-op if the attempt has no
    /// `.assigned` record (any more).
    pub fn record_process(&self, key: &AttemptKey, pid: u32) -> io::Result<()> {
        let start_time = process_start_time(Path::new("/proc"), pid)?;
        let mut bytes = match fs::read(self.path(key, ASSIGNED)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        ProcessRecord { pid, start_time }.encode(&mut bytes).map_err(io::Error::other)?;
        self.write(key, ASSIGNED, &bytes)
    }

    /// Records an attempt's result (before it is sent); the attempt is no
    /// longer running.
    pub fn record_result(&self, result: &TaskResult) -> io::Result<()> {
        let key = key_of(result);
        self.write(&key, RESULT, &result.encode_to_vec())?;
        if self.remove(&key, ASSIGNED)? {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Forgets an attempt (its result was acknowledged, or the coordinator no
    /// longer wants it).
    pub fn forget(&self, key: &AttemptKey) -> io::Result<()> {
        let a = self.remove(key, RESULT)?;
        let b = self.remove(key, ASSIGNED)?;
        if a || b {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Results on disk now (for tests and operators: what is waiting for an ack).
    pub fn pending_results(state_dir: &Path) -> io::Result<Vec<AttemptKey>> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(state_dir.join("attempts"))? {
            let name = entry?.file_name();
            if let Some((key, RESULT)) = name.to_str().and_then(parse_name) {
                keys.push(key);
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// The attempt a result is for.
pub fn key_of(r: &TaskResult) -> AttemptKey {
    r.attempt.as_ref().map(|a| (a.task_id.clone(), a.attempt)).unwrap_or_default()
}

fn parse_name(name: &str) -> Option<(AttemptKey, &'static str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let ext = match ext {
        ASSIGNED => ASSIGNED,
        RESULT => RESULT,
        _ => return None,
    };
    let (task, attempt) = stem.rsplit_once('-')?;
    let task = String::from_utf8(hex::decode(task).ok()?).ok()?;
    Some(((task, attempt.parse().ok()?), ext))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::{AttemptOutcome, AttemptRef, TaskOutput};
    use std::os::unix::fs::PermissionsExt;

    fn result(task: &str, attempt: u64) -> TaskResult {
        TaskResult {
            attempt: Some(AttemptRef { task_id: task.into(), attempt }),
            outcome: AttemptOutcome::Succeeded as i32,
            exit_code: 0,
            output: Some(TaskOutput { stdout: b"out".to_vec(), stderr: Vec::new(), truncated: false }),
            error: String::new(),
            traceparent: String::new(),
        }
    }

    fn assignment(task: &str, attempt: u64) -> Assignment {
        Assignment { attempt: Some(AttemptRef { task_id: task.into(), attempt }), ..Default::default() }
    }

    #[test]
    fn results_survive_a_reopen_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        {
            let (s, rec) = LocalState::open(&root).unwrap();
            assert_eq!(rec, Recovered::default());
            let k1 = ("t-1".to_string(), 1);
            s.record_assigned(&k1, &assignment("t-1", 1)).unwrap();
            s.record_result(&result("t-1", 1)).unwrap();
            s.record_assigned(&("t-2".into(), 3), &assignment("t-2", 3)).unwrap();
            s.record_result(&result("t-2", 3)).unwrap();
            // Acknowledged: gone for good.
            s.forget(&("t-2".into(), 3)).unwrap();
        }
        let (_s, rec) = LocalState::open(&root).unwrap();
        assert_eq!(rec.unacked, vec![result("t-1", 1)]);
        assert!(rec.interrupted.is_empty());
        assert_eq!(LocalState::pending_results(&root).unwrap(), vec![("t-1".to_string(), 1)]);
    }

    #[test]
    fn running_attempts_are_interrupted_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = LocalState::open(dir.path()).unwrap();
            s.record_assigned(&("t/odd id".into(), 2), &assignment("t/odd id", 2)).unwrap();
        }
        let (_s, rec) = LocalState::open(dir.path()).unwrap();
        assert_eq!(rec.interrupted, vec![("t/odd id".to_string(), 2)]);
        assert!(rec.unacked.is_empty());
        // Forgotten: a second restart does not report it again.
        let (_s, rec) = LocalState::open(dir.path()).unwrap();
        assert_eq!(rec, Recovered::default());
    }

    #[test]
    fn an_interrupted_attempts_process_group_is_killed_on_recovery() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let dir = tempfile::tempdir().unwrap();
        let key = ("t-p".to_string(), 1);
        let mut child = std::process::Command::new("/bin/sleep").arg("300").process_group(0).spawn().unwrap();
        {
            let (s, _) = LocalState::open(dir.path()).unwrap();
            s.record_assigned(&key, &assignment("t-p", 1)).unwrap();
            s.record_process(&key, child.id()).unwrap();
            let bytes = std::fs::read(s.path(&key, ASSIGNED)).unwrap();
            // Still the assignment, plus the process.
            assert_eq!(Assignment::decode(&bytes[..]).unwrap(), assignment("t-p", 1));
            let rec = ProcessRecord::decode(&bytes[..]).unwrap();
            assert_eq!(rec.pid, child.id());
            assert_eq!(rec.start_time, process_start_time(Path::new("/proc"), child.id()).unwrap());
            // An attempt without a record (finished and forgotten) gets none.
            s.record_process(&("gone".into(), 1), child.id()).unwrap();
            assert!(!s.path(&("gone".into(), 1), ASSIGNED).exists());
        }
        let (_s, rec) = LocalState::open(dir.path()).unwrap();
        assert_eq!(rec.interrupted, vec![key]);
        assert_eq!(child.wait().unwrap().signal(), Some(9));
    }

    #[test]
    fn leftover_temp_files_are_ignored_and_modes_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let (s, _) = LocalState::open(&root).unwrap();
        s.record_result(&result("t-1", 1)).unwrap();
        std::fs::write(root.join("attempts/.tmp-junk"), b"half").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("attempts")), 0o700);
        let file = std::fs::read_dir(root.join("attempts")).unwrap().find_map(|e| {
            let p = e.unwrap().path();
            p.extension().is_some_and(|x| x == "result").then_some(p)
        });
        assert_eq!(mode(&file.unwrap()), 0o600);
        let (_s, rec) = LocalState::open(&root).unwrap();
        assert_eq!(rec.unacked.len(), 1);
        assert!(!root.join("attempts/.tmp-junk").exists());
    }
}
