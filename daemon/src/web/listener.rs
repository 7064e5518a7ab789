//! The web view's TCP listener, bounded: at most N connections are open at once; a connection
//! accepted beyond that is closed at once (and counted), so a flood of connections costs the
//! daemon a file descriptor for a moment and nothing else.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::debug;

/// A listener that holds one permit per open connection.
pub struct Limited {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
}

impl Limited {
    /// At most `max` connections of `inner` at once; those refused are counted in `refused`.
    pub fn new(inner: TcpListener, max: usize, refused: Arc<AtomicU64>) -> Limited {
        Limited {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            refused,
        }
    }
}

impl Listener for Limited {
    type Io = Slot;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Slot, SocketAddr) {
        loop {
            let (stream, addr) = Listener::accept(&mut self.inner).await;
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        Slot {
                            stream,
                            _permit: permit,
                        },
                        addr,
                    );
                }
                Err(_) => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    debug!(%addr, "web: too many connections; closing a new one");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The client's address, as handlers see it.
#[derive(Clone, Copy, Debug)]
pub struct Client(pub SocketAddr);

impl Connected<IncomingStream<'_, Limited>> for Client {
    fn connect_info(stream: IncomingStream<'_, Limited>) -> Client {
        Client(*stream.remote_addr())
    }
}

/// An open connection and its permit.
pub struct Slot {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Slot {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slot {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
