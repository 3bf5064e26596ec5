//! Write coalescing for accepted connections: a connection's pending HTTP/2
//! frames go out in one `writev` per burst instead of one per response.
//!
//! Hyper's HTTP/2 connection task writes (and flushes) whatever it has each
//! time it is polled, and it is polled right after every stream task that
//! queues a frame: tokio runs the task a running task just woke next (its
//! LIFO slot). When a group commit releases twenty replies, the connection
//! task ran twenty times, one `writev` and one loopback delivery each: about
//! one write syscall per submit at 256 in flight. [`Coalesced`] makes the
//! first write of a burst yield once: the task wakes itself and returns
//! `Pending`, which tokio schedules at the back of the run queue, not in the
//! LIFO slot. The stream tasks already queued run first and add their frames,
//! and the connection writes them all at once when polled again. This is what
//! grpc-go's writer does (it flushes only when its queue is empty). The cost
//! is one extra poll of the connection task per burst; nothing waits on a
//! timer, and a lone response is delayed by one trip through the run queue.
//!
//! Only plaintext connections are coalesced (`--insecure-dev`, or behind a
//! proxy that ends TLS). Under TLS the wrapper would sit below rustls (tonic
//! wraps the accepted stream), which reports plaintext written once it has
//! encrypted it: the burst's later records would pass straight through, so a
//! TLS connection would pay the extra poll and save no write. There the
//! wrapper is off ([`Coalesced::plain`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An accepted connection whose writes are coalesced (see the module docs).
#[derive(Debug)]
pub struct Coalesced<T> {
    io: T,
    /// Whether writes are coalesced at all (not under TLS).
    on: bool,
    /// The current burst has yielded once: write through until the next flush.
    yielded: bool,
}

impl<T> Coalesced<T> {
    /// Wraps `io`, coalescing its writes.
    pub fn new(io: T) -> Self {
        Coalesced { io, on: true, yielded: false }
    }

    /// Wraps `io` without coalescing: every call passes straight through.
    pub fn plain(io: T) -> Self {
        Coalesced { io, on: false, yielded: false }
    }

    /// `Ready` once this burst has let the run queue go first.
    fn yield_once(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded || !self.on {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.yield_once(cx));
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.yield_once(cx));
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The writer flushes at the end of each burst: the next one yields again.
        this.yielded = false;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Coalesced<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Bytes pass through unchanged in both directions, across bursts and a shutdown.
    #[tokio::test]
    async fn passes_bytes_through() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = Coalesced::new(a);
        a.write_all(b"hello ").await.unwrap();
        a.flush().await.unwrap();
        a.write_all(b"world").await.unwrap();
        a.shutdown().await.unwrap();
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello world");
        b.write_all(b"back").await.unwrap();
        drop(b);
        let mut back = String::new();
        a.read_to_string(&mut back).await.unwrap();
        assert_eq!(back, "back");
    }

    /// The first write of a burst yields (and wakes its task) once; the rest
    /// of the burst writes through; a flush starts a new burst.
    #[test]
    fn first_write_of_a_burst_yields_once() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl futures::task::ArcWake for Count {
            fn wake_by_ref(me: &std::sync::Arc<Self>) {
                me.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let wakes = std::sync::Arc::new(Count(0.into()));
        let woken = || wakes.0.load(std::sync::atomic::Ordering::Relaxed);
        let waker = futures::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let (a, _b) = tokio::io::duplex(64);
        let mut a = Coalesced::new(a);
        assert!(Pin::new(&mut a).poll_write(&mut cx, b"x").is_pending());
        // Pending with the task woken: it is polled again, never stranded.
        assert_eq!(woken(), 1);
        assert!(matches!(Pin::new(&mut a).poll_write(&mut cx, b"x"), Poll::Ready(Ok(1))));
        assert!(matches!(Pin::new(&mut a).poll_write(&mut cx, b"y"), Poll::Ready(Ok(1))));
        assert!(matches!(Pin::new(&mut a).poll_flush(&mut cx), Poll::Ready(Ok(()))));
        assert!(Pin::new(&mut a).poll_write(&mut cx, b"z").is_pending());
        assert_eq!(woken(), 2);
        // Off (TLS): no write ever yields.
        let (p, _q) = tokio::io::duplex(64);
        let mut p = Coalesced::plain(p);
        assert!(matches!(Pin::new(&mut p).poll_write(&mut cx, b"x"), Poll::Ready(Ok(1))));
        assert_eq!(woken(), 2);
    }
}
