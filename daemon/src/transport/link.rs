//! The sending side: one task per peer that dials when needed and writes its frames in order,
//! each on a new unidirectional stream.
//!
//! A peer's queue is bounded ([`super::Config::send_queue`]); a full queue drops the new frame
//! and counts it. A failed dial or a connection lost while writing reports the peer as
//! unreachable once and drops what was queued for it (the overlay retries what matters). A link
//! that has been idle for [`LINK_IDLE`] ends; the next frame starts a new one.

use std::collections::VecDeque;
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
/// Streams remembered per link so that a flush can wait for their acknowledgement.
const RECENT_STREAMS: usize = 16;
/// Most links (peers with a send queue) at once, beyond the connection bound.
const EXTRA_LINKS: usize = 64;

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
        tokio::spawn(self.clone().run_link(to, generation, rx).in_current_span());
    }

    async fn run_link(
        self: Arc<Self>,
        peer: Peer,
        generation: u64,
        mut rx: mpsc::Receiver<LinkCmd>,
    ) {
        let mut recent: VecDeque<quinn::SendStream> = VecDeque::new();
        loop {
            let cmd = match tokio::time::timeout(LINK_IDLE, rx.recv()).await {
                Ok(Some(cmd)) => cmd,
                Ok(None) => return,
                Err(_) => {
                    // Idle: leave, unless a frame slipped in (enqueue holds the same lock).
                    let mut links = lock(&self.links);
                    if rx.is_empty() {
                        if links.get(&peer.id).is_some_and(|(g, _)| *g == generation) {
                            links.remove(&peer.id);
                        }
                        return;
                    }
                    continue;
                }
            };
            match cmd {
                LinkCmd::Flush(done) => {
                    for s in recent.drain(..) {
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, s.stopped()).await;
                    }
                    let _ = done.send(());
                }
                LinkCmd::Frame(bytes) => match self.write(peer, &bytes).await {
                    Ok(stream) => {
                        recent.push_back(stream);
                        if recent.len() > RECENT_STREAMS {
                            recent.pop_front();
                        }
                    }
                    Err(e) => {
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
                },
            }
        }
    }

    /// Writes one frame to `peer` on a new stream, dialling first if needed. A connection
    /// that was just replaced by another is retried once on the new one.
    async fn write(
        self: &Arc<Self>,
        peer: Peer,
        bytes: &[u8],
    ) -> Result<quinn::SendStream, TransportError> {
        let mut last = None;
        for _ in 0..2 {
            let conn = self.connection(peer).await?;
            let attempt = async {
                let mut s = conn.open_uni().await.map_err(|e| e.to_string())?;
                s.write_all(bytes).await.map_err(|e| e.to_string())?;
                s.finish().map_err(|e| e.to_string())?;
                Ok::<_, String>(s)
            };
            match tokio::time::timeout(WRITE_TIMEOUT, attempt).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(reason)) => last = Some(reason),
                Err(_) => last = Some("write timed out".to_owned()),
            }
            lock(&self.pool).remove(&peer.id, conn.stable_id());
        }
        Err(TransportError::Dial {
            addr: peer.addr,
            reason: last.unwrap_or_default(),
        })
    }

    /// The connection to `peer`: the pooled one, or a new dial that must prove `peer.id`.
    async fn connection(self: &Arc<Self>, peer: Peer) -> Result<quinn::Connection, TransportError> {
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
                pool.evict_lru()
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
