//! One bulk stream as its owner holds it: quinn's send and receive halves behind tokio's
//! `AsyncRead`/`AsyncWrite`, the verified peer and the header, and the idle timeout.
//!
//! The idle timeout is enforced where the stream is used: a read or write that waits while
//! neither direction has moved for [`BulkConfig::idle`](super::bulk::BulkConfig) fails with
//! `TimedOut`, and the stream is reset and stopped with [`reset::IDLE`] and counted. An
//! incoming stream holds its place in the bounds until it is dropped. A stream dropped before
//! [`BulkStream::finish`] is reset with [`reset::CANCELLED`] (quinn alone would finish it, and
//! a cut transfer would look complete to the reader).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chat_overlay::Peer;
use quinn::VarInt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::bulk::{BulkHeader, Slot, reset};
use super::{Drops, Reason};

/// A bulk stream (module docs).
#[derive(Debug)]
pub struct BulkStream {
    peer: Peer,
    header: BulkHeader,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    idle: Duration,
    last: Instant,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    timed_out: bool,
    finished: bool,
    drops: Arc<Drops>,
    _slot: Option<Slot>,
}

impl BulkStream {
    pub(super) fn new(
        peer: Peer,
        header: BulkHeader,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        idle: Duration,
        drops: Arc<Drops>,
        slot: Option<Slot>,
    ) -> BulkStream {
        let last = Instant::now();
        BulkStream {
            peer,
            header,
            send,
            recv,
            idle,
            last,
            read_timer: Box::pin(tokio::time::sleep_until(last + idle)),
            write_timer: Box::pin(tokio::time::sleep_until(last + idle)),
            timed_out: false,
            finished: false,
            drops,
            _slot: slot,
        }
    }

    /// The peer on the other end; its NodeId is the one its certificate proves.
    pub fn peer(&self) -> Peer {
        self.peer
    }

    /// The header the stream was opened with.
    pub fn header(&self) -> BulkHeader {
        self.header
    }

    /// Ends the sending direction cleanly (everything written is delivered).
    pub fn finish(&mut self) -> io::Result<()> {
        self.finished = true;
        self.send
            .finish()
            .map_err(|e| io::Error::new(io::ErrorKind::NotConnected, e))
    }

    /// Abandons the stream both ways with `code` (a [`reset`] code, or the owner's own from
    /// `0x100`).
    pub fn refuse(mut self, code: u32) {
        self.abort(code);
    }

    /// Waits until the peer has received everything sent and acknowledged the end (after
    /// [`BulkStream::finish`]), or stopped the stream (`Some(code)`).
    pub async fn stopped(&mut self) -> io::Result<Option<u32>> {
        match self.send.stopped().await {
            Ok(None) => Ok(None),
            Ok(Some(code)) => Ok(Some(u32::try_from(code.into_inner()).unwrap_or(u32::MAX))),
            Err(e) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, e)),
        }
    }

    fn abort(&mut self, code: u32) {
        let _ = self.send.reset(VarInt::from_u32(code));
        let _ = self.recv.stop(VarInt::from_u32(code));
    }

    fn timed_out_error() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "bulk stream idle")
    }

    /// Polls `timer` against the idle deadline; `Ready` once the stream has been idle too long
    /// (it is then reset and counted).
    fn poll_idle(&mut self, cx: &mut Context<'_>, write: bool) -> Poll<io::Error> {
        if self.timed_out {
            return Poll::Ready(Self::timed_out_error());
        }
        loop {
            let deadline = self.last + self.idle;
            let timer = if write {
                &mut self.write_timer
            } else {
                &mut self.read_timer
            };
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= self.last + self.idle {
                self.timed_out = true;
                self.drops.count(Reason::BulkIdle);
                tracing::debug!(peer = %self.peer.id.short(), kind = self.header.kind, "bulk stream cut: idle");
                self.abort(reset::IDLE);
                return Poll::Ready(Self::timed_out_error());
            }
        }
    }
}

impl AsyncRead for BulkStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Err(Self::timed_out_error()));
        }
        let before = buf.filled().len();
        match AsyncRead::poll_read(Pin::new(&mut this.recv), cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_idle(cx, false) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for BulkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Err(Self::timed_out_error()));
        }
        match AsyncWrite::poll_write(Pin::new(&mut this.send), cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.last = Instant::now();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match this.poll_idle(cx, true) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().send), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.finished = true;
        AsyncWrite::poll_shutdown(Pin::new(&mut this.send), cx)
    }
}

impl Drop for BulkStream {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.send.reset(VarInt::from_u32(reset::CANCELLED));
        }
    }
}
