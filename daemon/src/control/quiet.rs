//! A Unix control connection that is watched for writability only while a write is blocked.
//!
//! Linux wakes every epoll watcher of a Unix socket for `EPOLLOUT` each time the peer reads
//! from it (`unix_write_space` runs whenever a sent buffer is freed). tokio's `UnixStream`
//! always watches both directions, so each message chatd streams to a subscriber
//! (`chatctl tail -f`, a web view, a client's `Subscribe`) woke the daemon a second time, once
//! the subscriber had read it: a third of a relaying daemon's wake-ups under steady traffic.
//! Here the socket is registered for reading only; a write goes straight to the socket, and
//! only when the socket's buffer is full is a second descriptor of it registered for
//! writability, until that write gets through.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// A non-blocking Unix stream, read through tokio's reactor and written directly.
pub struct QuietUnix {
    read: AsyncFd<UnixStream>,
    /// A duplicate of the socket watched for writability, present while a write waits.
    write: Option<AsyncFd<UnixStream>>,
}

impl QuietUnix {
    /// Takes over an accepted tokio stream.
    pub fn new(stream: tokio::net::UnixStream) -> io::Result<QuietUnix> {
        let std = stream.into_std()?;
        std.set_nonblocking(true)?;
        Ok(QuietUnix {
            read: watch(std, Interest::READABLE)?,
            write: None,
        })
    }
}

/// Registers `stream` with the reactor for `interest`.
fn watch(stream: UnixStream, interest: Interest) -> io::Result<AsyncFd<UnixStream>> {
    // SAFETY: a std `UnixStream` owns its descriptor: it stays open, refers to the same
    // socket and is what `as_raw_fd` returns until the stream (owned by the `AsyncFd`) drops.
    Ok(unsafe { AsyncFd::register_with_interest(stream, interest) }?)
}

impl AsyncRead for QuietUnix {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.read.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|s| s.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for QuietUnix {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write.is_none() {
            match this.read.get_ref().write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let dup = this.read.get_ref().try_clone()?;
                    this.write = Some(watch(dup, Interest::WRITABLE)?);
                }
                done => return Poll::Ready(done),
            }
        }
        let Some(waiter) = this.write.as_ref() else {
            return Poll::Ready(Err(io::Error::other("write waiter missing")));
        };
        loop {
            let mut guard = ready!(waiter.poll_write_ready(cx))?;
            match guard.try_io(|s| s.get_ref().write(buf)) {
                Ok(done) => {
                    // Written (or failed): stop watching until the buffer fills again.
                    this.write = None;
                    return Poll::Ready(done);
                }
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = self.read.get_ref().shutdown(std::net::Shutdown::Write);
        Poll::Ready(match r {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn carries_bytes_both_ways_and_waits_out_a_full_buffer() {
        let (a, b) = tokio::net::UnixStream::pair().expect("pair");
        let mut quiet = QuietUnix::new(a).expect("quiet");
        let mut other = b;
        // More than any socket buffer holds: the writer must block and be woken by reads.
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        let writer = tokio::spawn(async move {
            quiet.write_all(&big).await.expect("write");
            quiet.shutdown().await.expect("shutdown");
            let mut back = Vec::new();
            quiet.read_to_end(&mut back).await.expect("read back");
            back
        });
        let mut got = Vec::new();
        other.read_to_end(&mut got).await.expect("read");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes arrive in order, unchanged");
        other.write_all(b"pong").await.expect("answer");
        drop(other);
        assert_eq!(writer.await.expect("join"), b"pong");
    }
}
