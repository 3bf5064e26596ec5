//! The embedded store's write-ahead log, `fog.wal`: what makes a commit
//! durable without a durable redb commit.
//!
//! A redb commit that must survive a crash rewrites every B-tree page on the
//! path to each changed key and then fsyncs; on this kind of disk that costs
//! more than etcd's whole put. etcd (WAL + bbolt) and every serious database
//! append the change to a sequential log, sync that, and fold the changes
//! into the tree later. So does this store: each batch is applied to redb as
//! a *non-durable* commit (kept in memory by redb), appended here with one
//! `fdatasync`, and only then acknowledged; a checkpoint (a durable redb
//! commit) every second or so makes the log's content redundant and the log
//! starts over.
//!
//! Format: a 16-byte header (`FOGWAL01`, then the sequence number of the
//! first record, u64 LE), then records `[len u32][crc32 u32][seq u64][payload]`
//! (crc over seq and payload). Reading stops at the first record that is
//! torn, corrupt or out of sequence: with the file preallocated, old records
//! from before the last restart of the log lie beyond the tail, and their
//! sequence numbers give them away.

use super::{Mutation, StoreError};
use fog_proto::v1::{Node, Task};
use prost::Message;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the log file in the data directory.
pub const FILE_NAME: &str = "fog.wal";
const MAGIC: &[u8; 8] = b"FOGWAL01";
const HEADER: u64 = 16;
const RECORD_HEADER: usize = 16;
/// Space reserved ahead so that appends do not change the file's size (an
/// `fdatasync` that must also journal a new size costs a second write).
const PREALLOCATE: u64 = 64 << 20;
/// A record longer than this is corruption, not a batch.
const MAX_RECORD: usize = 1 << 30;

/// One mutation with its value already encoded (encoded once, for the log and for redb).
#[derive(Debug, Clone, PartialEq)]
pub enum Encoded {
    PutTask {
        key: String,
        value: Vec<u8>,
    },
    /// A task in a final state: moved to the finished tasks, and indexed by
    /// its request id (not logged: decoded from the value on replay).
    PutFinishedTask {
        key: String,
        value: Vec<u8>,
        request: String,
    },
    DeleteTask(String),
    PutNode {
        key: String,
        value: Vec<u8>,
    },
    DeleteNode(String),
    PutMeta {
        key: String,
        value: Vec<u8>,
    },
    DeleteMeta(String),
}

impl Encoded {
    pub fn from_mutation(m: Mutation) -> Encoded {
        match m {
            Mutation::PutTask(t) if super::is_finished(&t) => {
                Encoded::PutFinishedTask { value: t.encode_to_vec(), key: t.id, request: t.request_id }
            }
            Mutation::PutTask(t) => Encoded::PutTask { value: t.encode_to_vec(), key: t.id },
            Mutation::DeleteTask(k) => Encoded::DeleteTask(k),
            Mutation::PutNode(n) => Encoded::PutNode { value: n.encode_to_vec(), key: n.id },
            Mutation::DeleteNode(k) => Encoded::DeleteNode(k),
            Mutation::PutMeta { key, value } => Encoded::PutMeta { key, value },
            Mutation::DeleteMeta(k) => Encoded::DeleteMeta(k),
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Encoded::PutTask { .. } => 1,
            Encoded::DeleteTask(_) => 2,
            Encoded::PutNode { .. } => 3,
            Encoded::DeleteNode(_) => 4,
            Encoded::PutMeta { .. } => 5,
            Encoded::DeleteMeta(_) => 6,
            Encoded::PutFinishedTask { .. } => 7,
        }
    }

    fn parts(&self) -> (&str, &[u8]) {
        match self {
            Encoded::PutTask { key, value }
            | Encoded::PutFinishedTask { key, value, .. }
            | Encoded::PutNode { key, value }
            | Encoded::PutMeta { key, value } => (key, value),
            Encoded::DeleteTask(k) | Encoded::DeleteNode(k) | Encoded::DeleteMeta(k) => (k, &[]),
        }
    }
}

fn encode_batch(seq: u64, batch: &[Encoded], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0; 8]); // len + crc, filled in below
    out.extend_from_slice(&seq.to_le_bytes());
    for m in batch {
        let (key, value) = m.parts();
        out.push(m.kind());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    let len = (out.len() - RECORD_HEADER) as u32;
    let crc = crc32fast::hash(&out[8..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn decode_batch(mut p: &[u8]) -> Option<Vec<Encoded>> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (p.get(..n)?, p.get(n..)?);
        *p = tail;
        Some(head)
    }
    fn u32_at(p: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(p, 4)?.try_into().ok()?) as usize)
    }
    let mut batch = Vec::new();
    while !p.is_empty() {
        let kind = take(&mut p, 1)?[0];
        let klen = u32_at(&mut p)?;
        let key = String::from_utf8(take(&mut p, klen)?.to_vec()).ok()?;
        let vlen = u32_at(&mut p)?;
        let value = take(&mut p, vlen)?.to_vec();
        batch.push(match kind {
            1 => Encoded::PutTask { key, value },
            2 => Encoded::DeleteTask(key),
            3 => Encoded::PutNode { key, value },
            4 => Encoded::DeleteNode(key),
            5 => Encoded::PutMeta { key, value },
            6 => Encoded::DeleteMeta(key),
            7 => {
                // A value that does not decode is refused as corrupt by
                // `check_value` before replay; it is not a torn tail.
                let request = Task::decode(value.as_slice()).map(|t| t.request_id).unwrap_or_default();
                Encoded::PutFinishedTask { key, value, request }
            }
            _ => return None,
        });
    }
    Some(batch)
}

/// Refuses a batch the log could not hold (lengths are u32, a record at most
/// [`MAX_RECORD`]), before anything is applied.
pub fn check_size(batch: &[Encoded]) -> Result<(), StoreError> {
    let mut total = 0usize;
    for m in batch {
        let (key, value) = m.parts();
        if key.len() > u32::MAX as usize || value.len() > u32::MAX as usize {
            return Err(StoreError::Invalid(format!("record {key:?} is larger than 4 GiB")));
        }
        total += 9 + key.len() + value.len();
    }
    if total > MAX_RECORD {
        return Err(StoreError::Invalid(format!(
            "batch of {total} bytes is larger than the log's {MAX_RECORD}-byte records"
        )));
    }
    Ok(())
}

/// Checks that a logged value decodes, so replay never stores garbage.
pub fn check_value(m: &Encoded) -> Result<(), StoreError> {
    let bad = |what: &str, key: &str, e: prost::DecodeError| StoreError::Corrupt(format!("logged {what} {key:?}: {e}"));
    match m {
        Encoded::PutTask { key, value } | Encoded::PutFinishedTask { key, value, .. } => {
            Task::decode(value.as_slice()).map(drop).map_err(|e| bad("task", key, e))
        }
        Encoded::PutNode { key, value } => Node::decode(value.as_slice()).map(drop).map_err(|e| bad("node", key, e)),
        _ => Ok(()),
    }
}

/// The open log.
pub struct Wal {
    file: File,
    path: PathBuf,
    /// Offset of the next record.
    end: u64,
    /// Sequence number of the next record.
    next_seq: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("path", &self.path).field("end", &self.end).finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates, mode 0600) the log in `dir` and returns it with the
    /// batches it holds, in order. The log is not reset: call [`Wal::reset`]
    /// once those batches are durable elsewhere.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<Vec<Encoded>>), StoreError> {
        let path = dir.join(FILE_NAME);
        let io = |e: io::Error| super::embedded::io_error(&path, e);
        let existed = path.exists();
        let mut file = open_private(&path).map_err(io)?;
        if !existed {
            // The new file's directory entry must survive a crash too.
            sync_dir(dir).map_err(io)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (start_seq, batches, end) = if bytes.len() >= HEADER as usize && &bytes[..8] == MAGIC {
            let start = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default());
            if start > u64::MAX / 2 {
                return Err(StoreError::Corrupt(format!("{}: impossible start sequence {start}", path.display())));
            }
            let (batches, end) = read_records(&bytes, start);
            (start, batches, end)
        } else if bytes.iter().all(|b| *b == 0) {
            (0, Vec::new(), HEADER)
        } else {
            return Err(StoreError::Corrupt(format!("{} is not a Fogplane log", path.display())));
        };
        let next_seq = start_seq + batches.len() as u64;
        let fresh = bytes.len() < HEADER as usize || &bytes[..8] != MAGIC;
        let mut wal = Wal { file, path: path.clone(), end, next_seq, buf: Vec::new() };
        if fresh {
            wal.write_header(0).map_err(io)?;
        }
        wal.preallocate().map_err(io)?;
        Ok((wal, batches))
    }

    /// Appends one batch and syncs it: once this returns `Ok`, the batch survives a crash.
    pub fn append(&mut self, batch: &[Encoded]) -> io::Result<()> {
        encode_batch(self.next_seq, batch, &mut self.buf);
        let written = self
            .file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&self.buf))
            .and_then(|_| self.file.sync_data());
        if let Err(e) = written {
            // Best effort: blank the record's header so that, if the disk
            // works again, a restart does not replay a batch reported failed.
            let _ = self.file.seek(SeekFrom::Start(self.end));
            let _ = self.file.write_all(&[0; RECORD_HEADER]);
            let _ = self.file.sync_data();
            return Err(e);
        }
        self.end += self.buf.len() as u64;
        self.next_seq += 1;
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Bytes of records since the last reset.
    pub fn len(&self) -> u64 {
        self.end - HEADER
    }

    /// Whether the log holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts the log over (its records are durable in redb): the header now
    /// names the next sequence number, so the old records beyond the new tail
    /// are never read back.
    pub fn reset(&mut self) -> io::Result<()> {
        self.write_header(self.next_seq)?;
        self.end = HEADER;
        Ok(())
    }

    fn write_header(&mut self, start_seq: u64) -> io::Result<()> {
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&start_seq.to_le_bytes());
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&header)?;
        self.file.sync_data()
    }

    fn preallocate(&mut self) -> io::Result<()> {
        let want = PREALLOCATE.max(self.end);
        if self.file.metadata()?.len() >= want {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            use nix::fcntl::{FallocateFlags, fallocate};
            if fallocate(&self.file, FallocateFlags::empty(), 0, want as i64).is_ok() {
                return self.file.sync_all();
            }
        }
        // No fallocate (or a file system without it): a sparse reservation
        // still keeps the size stable.
        self.file.set_len(want)?;
        self.file.sync_all()
    }
}

fn read_records(bytes: &[u8], start_seq: u64) -> (Vec<Vec<Encoded>>, u64) {
    let mut batches = Vec::new();
    let mut at = HEADER as usize;
    let mut seq = start_seq;
    while let Some(head) = bytes.get(at..at + RECORD_HEADER) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let rec_seq = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        if len > MAX_RECORD || rec_seq != seq {
            break;
        }
        let Some(payload) = bytes.get(at + RECORD_HEADER..at + RECORD_HEADER + len) else { break };
        if crc32fast::hash(&bytes[at + 8..at + RECORD_HEADER + len]) != crc {
            break;
        }
        let Some(batch) = decode_batch(payload) else { break };
        batches.push(batch);
        at += RECORD_HEADER + len;
        seq += 1;
    }
    (batches, at as u64)
}

/// Makes a directory's entries (a file just created in it) durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
fn open_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: &str) -> Encoded {
        Encoded::from_mutation(Mutation::PutTask(Task { id: id.into(), retries_used: 2, ..Default::default() }))
    }

    #[test]
    fn batches_come_back_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, old) = Wal::open(dir.path()).unwrap();
        assert!(old.is_empty() && wal.is_empty());
        let meta = Encoded::PutMeta { key: "k".into(), value: vec![0, 1, 2] };
        wal.append(&[put("a"), Encoded::DeleteNode("n".into())]).unwrap();
        wal.append(std::slice::from_ref(&meta)).unwrap();
        drop(wal);
        let (wal, batches) = Wal::open(dir.path()).unwrap();
        assert_eq!(batches, vec![vec![put("a"), Encoded::DeleteNode("n".into())], vec![meta]]);
        assert!(!wal.is_empty());
        assert!(std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len() >= PREALLOCATE);
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_and_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[put("a")]).unwrap();
        wal.append(&[put("b")]).unwrap();
        let second = wal.end - (wal.buf.len() as u64);
        drop(wal);
        // Flip a byte in the second record's payload: only the first survives.
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second as usize + RECORD_HEADER + 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (mut wal, batches) = Wal::open(dir.path()).unwrap();
        assert_eq!(batches, vec![vec![put("a")]]);
        // The next append replaces the corrupt record.
        wal.append(&[put("c")]).unwrap();
        drop(wal);
        assert_eq!(Wal::open(dir.path()).unwrap().1, vec![vec![put("a")], vec![put("c")]]);
    }

    #[test]
    fn records_from_before_a_reset_are_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        for id in ["a", "b", "c"] {
            wal.append(&[put(id)]).unwrap();
        }
        wal.reset().unwrap();
        // One short record after the reset; "b" and "c" still lie beyond it.
        wal.append(&[Encoded::DeleteTask("x".into())]).unwrap();
        drop(wal);
        let (_, batches) = Wal::open(dir.path()).unwrap();
        assert_eq!(batches, vec![vec![Encoded::DeleteTask("x".into())]]);
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"not a log at all, definitely").unwrap();
        assert!(matches!(Wal::open(dir.path()), Err(StoreError::Corrupt(_))));
    }
}
