//! The control API's TCP listener (`control.tcp_listen`), bounded so that nobody who can reach
//! the port can exhaust the daemon's file descriptors:
//!
//! - at most [`MAX_CONNECTIONS`] open TCP connections in all and [`MAX_PER_ADDRESS`] from one
//!   IP address; a connection over either cap is closed as soon as it is accepted, before any
//!   byte is read (it holds a descriptor for no longer than that);
//! - a connection must send the HTTP/2 preface and the headers of its first request within
//!   [`FIRST_REQUEST_TIMEOUT`] of being accepted, or it is closed;
//! - after that, a connection from which nothing arrives for [`IDLE_TIMEOUT`] is closed. The
//!   server pings every connection every [`KEEPALIVE_INTERVAL`] (HTTP/2 PING), and a client's
//!   answer counts as traffic, so a live client with a quiet subscription stays.
//!
//! The Unix socket is not limited here: only admitted local users reach it.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Open control TCP connections, at most.
pub const MAX_CONNECTIONS: usize = 256;
/// Open control TCP connections from one IP address, at most.
pub const MAX_PER_ADDRESS: usize = 16;
/// Time a new connection has to send the HTTP/2 preface and its first request's headers.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time after which a connection that sent nothing (not even a PING answer) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// How often the server pings every control connection (HTTP/2 keepalive).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// How long the server waits for a PING's answer before closing the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The connection limits in force (the constants above, shorter in tests).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub total: usize,
    pub per_address: usize,
    pub first_request: Duration,
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            total: MAX_CONNECTIONS,
            per_address: MAX_PER_ADDRESS,
            first_request: FIRST_REQUEST_TIMEOUT,
            idle: IDLE_TIMEOUT,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Counts open TCP connections against [`Limits`].
#[derive(Clone, Debug)]
pub struct Admission {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
}

impl Admission {
    /// An admission with nothing open.
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            counts: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when a cap is reached.
    pub fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = c.by_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= self.limits.total || from_ip >= self.limits.per_address {
            return None;
        }
        c.total += 1;
        c.by_ip.insert(ip, from_ip + 1);
        Some(Slot {
            counts: self.counts.clone(),
            ip,
        })
    }

    /// Connections open now (in all).
    pub fn open(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Wraps an admitted stream with the timeouts.
    pub fn guard(&self, stream: TcpStream, slot: Slot) -> Guarded {
        Guarded {
            stream,
            _slot: slot,
            scan: Scan::default(),
            idle: self.limits.idle,
            deadline: Box::pin(tokio::time::sleep(self.limits.first_request)),
        }
    }
}

/// One admitted connection's place in the counts, given back on drop.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
    }
}

/// A control TCP connection under its deadlines: reading fails with `TimedOut` (and the
/// server closes the connection) once the first request is late or the client fell silent.
#[derive(Debug)]
pub struct Guarded {
    stream: TcpStream,
    _slot: Slot,
    scan: Scan,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if !got.is_empty() {
                    this.scan.feed(got);
                    if this.scan.started() {
                        let next = Instant::now() + this.idle;
                        this.deadline.as_mut().reset(next);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    if this.scan.started() {
                        "control TCP connection idle too long"
                    } else {
                        "control TCP connection sent no request in time"
                    },
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0…`).
const PREFACE_LEN: usize = 24;
/// HTTP/2 frame type of HEADERS.
const HEADERS: u8 = 0x1;

/// Follows the client's bytes just far enough to see its first HEADERS frame: the preface,
/// then frame headers (9 bytes: length, type, flags, stream) and skipped payloads.
#[derive(Debug, Default)]
struct Scan {
    state: ScanState,
}

#[derive(Debug)]
enum ScanState {
    Preface(usize),
    Header([u8; 9], usize),
    Payload(usize),
    Started,
}

impl Default for ScanState {
    fn default() -> ScanState {
        ScanState::Preface(0)
    }
}

impl Scan {
    fn started(&self) -> bool {
        matches!(self.state, ScanState::Started)
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            self.state = match self.state {
                ScanState::Started => return,
                ScanState::Preface(n) => {
                    let take = (PREFACE_LEN - n).min(bytes.len());
                    bytes = &bytes[take..];
                    match n + take {
                        PREFACE_LEN => ScanState::Header([0; 9], 0),
                        m => ScanState::Preface(m),
                    }
                }
                ScanState::Header(mut h, n) => {
                    let take = (9 - n).min(bytes.len());
                    h[n..n + take].copy_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if n + take < 9 {
                        ScanState::Header(h, n + take)
                    } else if h[3] == HEADERS {
                        ScanState::Started
                    } else {
                        let len =
                            usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                        if len == 0 {
                            ScanState::Header([0; 9], 0)
                        } else {
                            ScanState::Payload(len)
                        }
                    }
                }
                ScanState::Payload(left) => {
                    let take = left.min(bytes.len());
                    bytes = &bytes[take..];
                    match left - take {
                        0 => ScanState::Header([0; 9], 0),
                        more => ScanState::Payload(more),
                    }
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const PREFACE: &[u8; PREFACE_LEN] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut f = vec![
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
            kind,
            0,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn the_scan_sees_the_first_headers_frame_in_any_pieces() {
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(0x4, &[0; 12])); // SETTINGS
        wire.extend(frame(0x4, &[])); // SETTINGS ack
        wire.extend(frame(0x8, &[0, 1, 0, 0])); // WINDOW_UPDATE
        let headers_at = wire.len();
        wire.extend(frame(HEADERS, &[0x82]));
        for piece in [1, 2, 5, 9, 24, wire.len()] {
            let mut scan = Scan::default();
            for (i, chunk) in wire.chunks(piece).enumerate() {
                let end = (i + 1) * piece;
                scan.feed(chunk);
                if end < headers_at + 9 {
                    assert!(!scan.started(), "pieces of {piece}, {end} bytes");
                }
            }
            assert!(scan.started(), "pieces of {piece}");
        }
        let mut settings_only = Scan::default();
        settings_only.feed(PREFACE);
        settings_only.feed(&frame(0x4, &[0; 6]));
        assert!(!settings_only.started());
    }

    #[test]
    fn caps_total_and_per_address_and_give_back_on_drop() {
        let a = Admission::new(Limits {
            total: 3,
            per_address: 2,
            ..Limits::default()
        });
        let one: IpAddr = "127.0.0.1".parse().expect("ip");
        let two: IpAddr = "127.0.0.2".parse().expect("ip");
        let s1 = a.admit(one).expect("first");
        let s2 = a.admit(one).expect("second");
        assert!(a.admit(one).is_none(), "per address");
        let s3 = a.admit(two).expect("another address");
        assert!(a.admit("127.0.0.3".parse().expect("ip")).is_none(), "total");
        assert_eq!(a.open(), 3);
        drop(s1);
        assert_eq!(a.open(), 2);
        let s4 = a.admit(one).expect("room again");
        drop((s2, s3, s4));
        assert_eq!(a.open(), 0);
    }

    async fn pair(limits: Limits) -> (Guarded, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, peer) = listener.accept().await.expect("accept");
        let a = Admission::new(limits);
        let slot = a.admit(peer.ip()).expect("slot");
        (a.guard(server, slot), client)
    }

    fn short() -> Limits {
        Limits {
            first_request: Duration::from_millis(300),
            idle: Duration::from_millis(600),
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn a_connection_without_a_request_times_out() {
        let (mut server, mut client) = pair(short()).await;
        // Sends the preface and settings, never a request.
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(0x4, &[]));
        client.write_all(&hello).await.expect("write");
        let started = Instant::now();
        let mut buf = vec![0; 256];
        let err = loop {
            match server.read(&mut buf).await {
                Ok(0) => panic!("eof instead of a timeout"),
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn a_started_connection_lives_while_it_talks_and_times_out_when_silent() {
        let (mut server, mut client) = pair(short()).await;
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(HEADERS, &[0x82]));
        client.write_all(&hello).await.expect("write");
        let mut buf = vec![0; 256];
        let mut got = 0;
        while got < hello.len() {
            got += server.read(&mut buf).await.expect("read");
        }
        // Past the first-request deadline, still talking every 200 ms: alive.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.write_all(&frame(0x6, &[0; 8])).await.expect("ping");
            let n = server.read(&mut buf).await.expect("alive");
            assert!(n > 0);
        }
        let silent = Instant::now();
        let err = server.read(&mut buf).await.expect_err("idle");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(silent.elapsed() >= Duration::from_millis(500));
    }
}
