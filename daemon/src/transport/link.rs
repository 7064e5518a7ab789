//! The sending side: one task per peer that dials when needed and writes its frames in order
//! on one unidirectional stream, kept open while the link lives (a new stream per frame would
//! cost a stream opening, a reader task and flow-control updates for every message).
//!
//! A peer's queue is bounded ([`super::Config::send_queue`]); a full queue drops the new frame
//! and counts it. A failed dial or a connection lost while writing reports the peer as
//! unreachable once and drops what was queued for it (the overlay retries what matters). A link
//! that has been idle for [`LINK_IDLE`] ends; the next frame starts a new one.

use std::net::SocketAddr;
use std::sync::Arc;

use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::Instrument;

use chat_overlay::Peer;
use tokio::sync::{mpsc, oneshot};

use super::pool::canonical;
use super::tls::SERVER_NAME;
use super::{Expect, Inbound, Inner, Reason, TransportError, Wire, connection_peer_id, lock};

/// A link with nothing to send for this long ends.
pub const LINK_IDLE: Duration = Duration::from_secs(30);
/// Longest wait to open a stream and write one frame.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most links (peers with a send queue) at once, beyond the connection bound.
const EXTRA_LINKS: usize = 64;

/// A link's open stream and the connection it belongs to.
struct LinkStream {
    conn: usize,
    send: quinn::SendStream,
}

/// Ends a link's stream and waits (bounded) until the peer has read all of it.
async fn finish(stream: Option<LinkStream>) {
    if let Some(mut s) = stream
        && s.send.finish().is_ok()
    {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, s.send.stopped()).await;
    }
}

/// Ends a link's stream without waiting.
fn finish_now(stream: Option<LinkStream>) {
    if let Some(mut s) = stream {
        let _ = s.send.finish();
    }
}

/// Work for a link.
#[derive(Debug)]
pub enum LinkCmd {
    /// Write this frame (header included).
    Frame(Vec<u8>),
    /// Answer once everything before has been written and acknowledged.
    Flush(oneshot::Sender<()>),
}

impl<M: Wire> Inner<M> {
    pub(super) fn enqueue(self: &Arc<Self>, to: Peer, cmd: LinkCmd) {
        if to.id == self.me || self.closing.load(Ordering::Relaxed) {
            return;
        }
        let mut links = lock(&self.links);
        if let Some((_, tx)) = links.get(&to.id) {
            match tx.try_send(cmd) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.drops.count(Reason::SendQueueFull);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(c)) => {
                    links.remove(&to.id);
                    return self.start_link(&mut links, to, c);
                }
            }
        }
        self.start_link(&mut links, to, cmd);
    }

    fn start_link(
        self: &Arc<Self>,
        links: &mut std::collections::HashMap<chat_overlay::NodeId, (u64, mpsc::Sender<LinkCmd>)>,
        to: Peer,
        cmd: LinkCmd,
    ) {
        if links.len() >= self.cfg.max_connections + EXTRA_LINKS {
            self.drops.count(Reason::SendQueueFull);
            return;
        }
        let (tx, rx) = mpsc::channel(self.cfg.send_queue.max(1));
        let _ = tx.try_send(cmd);
        let generation = self.link_gen.fetch_add(1, Ordering::Relaxed);
        links.insert(to.id, (generation, tx));
        self.runtime
            .spawn(self.clone().run_link(to, generation, rx).in_current_span());
    }

    async fn run_link(
        self: Arc<Self>,
        peer: Peer,
        generation: u64,
        mut rx: mpsc::Receiver<LinkCmd>,
    ) {
        let mut stream: Option<LinkStream> = None;
        loop {
            let cmd = match tokio::time::timeout(LINK_IDLE, rx.recv()).await {
                Ok(Some(cmd)) => cmd,
                Ok(None) => return finish(stream).await,
                Err(_) => {
                    // Idle: leave, unless a frame slipped in (enqueue holds the same lock).
                    let idle = {
                        let mut links = lock(&self.links);
                        let idle = rx.is_empty();
                        if idle && links.get(&peer.id).is_some_and(|(g, _)| *g == generation) {
                            links.remove(&peer.id);
                        }
                        idle
                    };
                    if idle {
                        return finish(stream).await;
                    }
                    continue;
                }
            };
            match cmd {
                LinkCmd::Flush(done) => {
                    finish(stream.take()).await;
                    let _ = done.send(());
                }
                LinkCmd::Frame(bytes) => {
                    if let Err(e) = self.write(peer, &mut stream, &bytes).await {
                        let mut dropped = 1;
                        while let Ok(cmd) = rx.try_recv() {
                            match cmd {
                                LinkCmd::Frame(_) => dropped += 1,
                                LinkCmd::Flush(done) => {
                                    let _ = done.send(());
                                }
                            }
                        }
                        self.drops.add(Reason::Unreachable, dropped);
                        tracing::debug!(peer = %peer.id.short(), addr = %peer.addr, error = %e, dropped, "peer unreachable");
                        if !self.closing.load(Ordering::Relaxed) {
                            let _ = self.inbound.send(Inbound::Unreachable(peer.id)).await;
                        }
                    }
                }
            }
        }
    }

    /// Writes one frame to `peer` on the link's stream, opening one (and dialling) if needed.
    /// A stream on a connection that is no longer the pooled one is finished and replaced; a
    /// failed write is retried once on a new connection.
    async fn write(
        self: &Arc<Self>,
        peer: Peer,
        stream: &mut Option<LinkStream>,
        bytes: &[u8],
    ) -> Result<(), TransportError> {
        let mut last = None;
        for _ in 0..2 {
            let conn = self.connection(peer).await?;
            if stream.as_ref().is_some_and(|s| s.conn != conn.stable_id()) {
                finish_now(stream.take());
            }
            let attempt = async {
                let s = match stream {
                    Some(s) => s,
                    None => stream.insert(LinkStream {
                        conn: conn.stable_id(),
                        send: conn.open_uni().await.map_err(|e| e.to_string())?,
                    }),
                };
                s.send.write_all(bytes).await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(WRITE_TIMEOUT, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(reason)) => last = Some(reason),
                Err(_) => last = Some("write timed out".to_owned()),
            }
            *stream = None;
            lock(&self.pool).remove(&peer.id, conn.stable_id());
        }
        Err(TransportError::Dial {
            addr: peer.addr,
            reason: last.unwrap_or_default(),
        })
    }

    /// The connection to `peer`: the pooled one, or a new dial that must prove `peer.id`.
    pub(super) async fn connection(
        self: &Arc<Self>,
        peer: Peer,
    ) -> Result<quinn::Connection, TransportError> {
        if let Some(c) = lock(&self.pool).get(&peer.id) {
            return Ok(c);
        }
        let conn = self.dial(peer.addr, Expect::Id(peer.id)).await?;
        self.register(peer.id, conn, true)
            .ok_or(TransportError::SelfDial { addr: peer.addr })
    }

    pub(super) async fn first_contact(
        self: &Arc<Self>,
        addr: SocketAddr,
    ) -> Result<Peer, TransportError> {
        let conn = self.dial(addr, Expect::Any).await?;
        let id = connection_peer_id(&conn).ok_or_else(|| TransportError::Dial {
            addr,
            reason: "no peer identity".into(),
        })?;
        let conn = self
            .register(id, conn, true)
            .ok_or(TransportError::SelfDial { addr })?;
        Ok(Peer {
            id,
            addr: canonical(conn.remote_address()),
        })
    }

    /// A new connection to `addr`, whose certificate must satisfy `expect`.
    pub(super) async fn dial(
        &self,
        addr: SocketAddr,
        expect: Expect,
    ) -> Result<quinn::Connection, TransportError> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(TransportError::Closed);
        }
        let evicted = {
            let mut pool = lock(&self.pool);
            if pool.is_full() {
                pool.evict_for_dial()
            } else {
                None
            }
        };
        if let Some(c) = evicted {
            c.close(quinn::VarInt::from_u32(super::close::EVICTED), b"evicted");
        }
        let dial_err = |reason: String| TransportError::Dial { addr, reason };
        let config = self.tls.client_config(expect)?;
        let connecting = self
            .endpoint
            .connect_with(config, addr, SERVER_NAME)
            .map_err(|e| dial_err(e.to_string()))?;
        match tokio::time::timeout(self.cfg.dial_timeout, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(dial_err(e.to_string())),
            Err(_) => Err(dial_err("handshake timed out".into())),
        }
    }
}
