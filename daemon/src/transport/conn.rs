//! Accepting connections, registering them in the pool, and reading frames from them.
//!
//! A peer at fault (oversized, truncated or undecodable frame) gets its connection closed with
//! [`close::PROTOCOL`](super::close::PROTOCOL) and the drop is counted; nothing else is
//! affected. A frame whose length has arrived but whose payload does not arrive within
//! [`FRAME_DEADLINE`] only stops its stream.

use std::sync::Arc;

use std::time::Duration;
use tracing::Instrument;

use chat_overlay::{NodeId, Peer};
use quinn::{ConnectionError, VarInt};

use super::frame::{self, FrameError};
use super::pool::{Inserted, canonical};
use super::{Inbound, Inner, Reason, Wire, close, connection_peer_id, lock};

/// A frame must arrive completely within this time once its stream is open.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(10);
/// A connection that lost the one-per-peer decision is closed after this grace period.
const LOSER_GRACE: Duration = Duration::from_secs(1);

impl<M: Wire> Inner<M> {
    pub(super) async fn accept_loop(self: Arc<Self>) {
        while let Some(incoming) = self.endpoint.accept().await {
            // A full pool still takes a newcomer if it can make room (`pool.rs`); the choice is
            // made again once the handshake proved who it is.
            let full = !lock(&self.pool).can_admit();
            let permit = self.handshakes.clone().try_acquire_owned();
            let Ok(permit) = permit
                .map_err(|_| ())
                .and_then(|p| if full { Err(()) } else { Ok(p) })
            else {
                self.drops.count(Reason::ConnectionLimit);
                tracing::debug!(from = %incoming.remote_address(), "connection refused: at the connection limit");
                incoming.refuse();
                continue;
            };
            let me = self.clone();
            let handshake = async move {
                let _permit = permit;
                match tokio::time::timeout(me.cfg.dial_timeout, incoming).await {
                    Ok(Ok(conn)) => match connection_peer_id(&conn) {
                        Some(id) => {
                            me.register(id, conn, false);
                        }
                        None => conn.close(VarInt::from_u32(close::PROTOCOL), b"no identity"),
                    },
                    Ok(Err(e)) => tracing::debug!(error = %e, "incoming handshake failed"),
                    Err(_) => tracing::debug!("incoming handshake timed out"),
                }
            };
            tokio::spawn(handshake.in_current_span());
        }
    }

    /// Puts a fresh connection to `id` in the pool and starts reading it. Returns the
    /// connection to send on (this one, or the one that won the one-per-peer decision);
    /// `None` if `id` is this node, or an inbound connection found the pool full of
    /// connections it may not evict.
    pub(super) fn register(
        self: &Arc<Self>,
        id: NodeId,
        conn: quinn::Connection,
        outbound: bool,
    ) -> Option<quinn::Connection> {
        if id == self.me {
            conn.close(VarInt::from_u32(close::SELF), b"self");
            return None;
        }
        let peer = Peer {
            id,
            addr: canonical(conn.remote_address()),
        };
        let inserted = {
            let mut pool = lock(&self.pool);
            // An inbound connection to a full pool takes an evictable one's place or is
            // refused (`pool.rs`); a dial of ours made room before it started.
            if !outbound {
                match pool.make_room(&id) {
                    Ok(None) => {}
                    Ok(Some(victim)) => {
                        self.drops.count(Reason::Evicted);
                        tracing::debug!(peer = %id.short(), "evicted an idle connection to admit a new peer");
                        victim.close(VarInt::from_u32(close::EVICTED), b"evicted");
                    }
                    Err(()) => {
                        drop(pool);
                        self.drops.count(Reason::ConnectionLimit);
                        conn.close(VarInt::from_u32(close::EVICTED), b"full");
                        return None;
                    }
                }
            }
            pool.insert(id, conn.clone(), outbound)
        };
        tracing::debug!(peer = %id.short(), addr = %peer.addr, outbound, "connected");
        tokio::spawn(
            self.clone()
                .accept_bulk(peer, conn.clone())
                .in_current_span(),
        );
        tokio::spawn(
            self.clone()
                .read_connection(peer, conn.clone())
                .in_current_span(),
        );
        match inserted {
            Inserted::Kept(old) => {
                if let Some(old) = old {
                    close_later(old, close::DUPLICATE);
                }
                Some(conn)
            }
            Inserted::Lost(winner) => {
                close_later(conn, close::DUPLICATE);
                Some(winner)
            }
        }
    }

    async fn read_connection(self: Arc<Self>, peer: Peer, conn: quinn::Connection) {
        loop {
            match conn.accept_uni().await {
                Ok(stream) => {
                    tokio::spawn(
                        self.clone()
                            .read_stream(peer, conn.clone(), stream)
                            .in_current_span(),
                    );
                }
                Err(e) => {
                    self.on_closed(peer.id, &conn, e).await;
                    return;
                }
            }
        }
    }

    async fn on_closed(&self, id: NodeId, conn: &quinn::Connection, e: ConnectionError) {
        let current = lock(&self.pool).remove(&id, conn.stable_id());
        tracing::debug!(peer = %id.short(), error = %e, current, "connection closed");
        // A connection that died under us (no answer, reset) means the peer is unreachable;
        // a deliberate close by either side does not.
        let lost = matches!(
            e,
            ConnectionError::TimedOut | ConnectionError::Reset | ConnectionError::TransportError(_)
        );
        if current && lost && !self.closing.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = self.inbound.send(Inbound::Unreachable(id)).await;
        }
    }

    async fn read_stream(
        self: Arc<Self>,
        from: Peer,
        conn: quinn::Connection,
        mut stream: quinn::RecvStream,
    ) {
        loop {
            // Between frames the stream may stay quiet as long as the connection lives; once a
            // frame is announced, it must arrive within the deadline.
            let len = match frame::read_len(&mut stream, self.cfg.max_frame).await {
                Ok(Some(len)) => len,
                Ok(None) => return,
                Err(FrameError::Io(_)) => return, // the stream or connection went away
                Err(e) => return self.fault(&conn, from, &e),
            };
            let read =
                tokio::time::timeout(FRAME_DEADLINE, frame::read_payload(&mut stream, len)).await;
            let payload = match read {
                Ok(Ok(p)) => p,
                Ok(Err(FrameError::Io(_))) => return,
                Ok(Err(e)) => return self.fault(&conn, from, &e),
                Err(_) => {
                    self.drops.count(Reason::SlowFrame);
                    let _ = stream.stop(VarInt::from_u32(close::PROTOCOL));
                    return;
                }
            };
            match frame::decode::<M>(&payload) {
                Ok(msg) => {
                    if self
                        .inbound
                        .send(Inbound::Message {
                            from,
                            msg,
                            at: std::time::Instant::now(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => return self.fault(&conn, from, &e),
            }
        }
    }

    /// The peer broke the protocol: count it and close its connection (only that one).
    fn fault(&self, conn: &quinn::Connection, from: Peer, e: &FrameError) {
        let reason = match e {
            FrameError::Oversized { .. } => Reason::OversizedFrame,
            FrameError::Truncated => Reason::TruncatedFrame,
            _ => Reason::UndecodableFrame,
        };
        self.drops.count(reason);
        tracing::info!(peer = %from.id.short(), addr = %from.addr, error = %e, "closing connection: {}", reason.as_str());
        conn.close(
            VarInt::from_u32(close::PROTOCOL),
            reason.as_str().as_bytes(),
        );
    }
}

/// Closes `conn` with `code` after [`LOSER_GRACE`], so frames already in flight are read.
fn close_later(conn: quinn::Connection, code: u32) {
    tokio::spawn(async move {
        tokio::time::sleep(LOSER_GRACE).await;
        conn.close(VarInt::from_u32(code), b"replaced");
    });
}
