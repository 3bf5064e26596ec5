//! Keeping the last bytes of a process's output: the result carries at most
//! [`OUTPUT_LIMIT`] of stdout and of stderr, the tail being what explains how a
//! program ended.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of each stream a result carries (the contract's limit).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The last `limit` bytes written, and whether anything before them was dropped.
#[derive(Debug)]
pub struct Tail {
    buf: VecDeque<u8>,
    limit: usize,
    truncated: bool,
}

impl Tail {
    /// An empty tail keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Tail {
        Tail { buf: VecDeque::with_capacity(limit.min(4096)), limit, truncated: false }
    }

    /// Appends bytes, dropping the oldest beyond the limit.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if bytes.len() > self.limit {
            bytes = &bytes[bytes.len() - self.limit..];
            self.truncated = true;
        }
        let overflow = (self.buf.len() + bytes.len()).saturating_sub(self.limit);
        if overflow > 0 {
            self.buf.drain(..overflow);
            self.truncated = true;
        }
        self.buf.extend(bytes);
    }

    /// The kept bytes and whether earlier ones were dropped.
    pub fn finish(self) -> (Vec<u8>, bool) {
        (Vec::from(self.buf), self.truncated)
    }
}

/// Reads `r` to its end, keeping the tail. Read errors end the stream (the
/// process is what matters, not its pipe).
pub async fn read_tail(mut r: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, bool) {
    let mut tail = Tail::new(limit);
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => tail.push(&chunk[..n]),
        }
    }
    tail.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut t = Tail::new(8);
        t.push(b"abc");
        t.push(b"def");
        assert_eq!(t.finish(), (b"abcdef".to_vec(), false));
    }

    #[test]
    fn exactly_the_limit_is_not_truncated() {
        let mut t = Tail::new(4);
        t.push(b"ab");
        t.push(b"cd");
        assert_eq!(t.finish(), (b"abcd".to_vec(), false));
    }

    #[test]
    fn the_last_bytes_are_kept_and_truncation_flagged() {
        let mut t = Tail::new(4);
        t.push(b"abc");
        t.push(b"def");
        assert_eq!(t.finish(), (b"cdef".to_vec(), true));
        let mut t = Tail::new(4);
        t.push(b"0123456789");
        assert_eq!(t.finish(), (b"6789".to_vec(), true));
    }

    #[tokio::test]
    async fn read_tail_of_a_big_stream() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (kept, truncated) = read_tail(&data[..], OUTPUT_LIMIT).await;
        assert!(truncated);
        assert_eq!(kept.len(), OUTPUT_LIMIT);
        assert_eq!(kept[..], data[data.len() - OUTPUT_LIMIT..]);
    }
}
