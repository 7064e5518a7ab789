//! The QUIC transport: one endpoint per node, identity-bound mutual TLS, CBOR frames.
//!
//! One job per file:
//! - [`cert`]: the node's self-signed ed25519 certificate (rcgen), and reading a peer's;
//! - [`verify`]: rustls verifiers binding a peer's certificate key to its NodeId;
//! - [`tls`]: TLS 1.3 / ALPN `chatd/1` / QUIC limits (idle timeout, keepalive, streams);
//! - [`frame`]: 4-byte length + CBOR frames with a maximum size;
//! - [`pool`]: at most one connection per peer, at most `max_connections` in all (a full
//!   pool evicts an idle, unproven connection outside the ring's routing state to admit a new
//!   one);
//! - [`conn`]: accepting connections and reading frames from them;
//! - [`link`]: one sender task per peer: dialling, queueing and writing frames;
//! - [`bulk`] and [`bulk_stream`]: bulk streams, bidirectional byte streams for file transfers
//!   beside the frames (a typed header, owners by kind, bounds, idle timeout);
//! - [`drops`]: what was dropped, by reason.
//!
//! A [`Transport`] is generic over the message type `M` (the overlay's `wire::Message`): it
//! encodes and decodes whatever serde type it is given and never looks inside. Every message
//! travels as one frame on its own unidirectional stream, so a slow message never holds up
//! another; requests and responses are matched by the overlay's own request ids. Messages that
//! arrive are handed to the owner through a bounded channel as [`Inbound::Message`], with the
//! sender's NodeId taken from the verified certificate of the connection it came on; a peer
//! that cannot be reached is reported as [`Inbound::Unreachable`].
//!
//! Bidirectional streams carry bulk data only ([`bulk`]): [`Transport::open_bulk`] opens one
//! on the same pooled connection, and the accepting side hands it to the owner that registered
//! its kind with [`Transport::bulk_listen`].

pub mod bulk;
mod bulk_stream;
pub mod cert;
mod conn;
pub mod drops;
pub mod frame;
mod link;
pub mod pool;
pub mod tls;
pub mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chat_overlay::{NodeId, Peer};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

pub use bulk::{BulkConfig, BulkHeader, BulkStream};
pub use drops::{Drops, Reason};
pub use tls::{ALPN, TlsError};
pub use verify::Expect;

use link::LinkCmd;
use pool::Pool;
use tls::Tls;

/// Messages a transport can carry.
pub trait Wire: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Wire for T {}

/// QUIC application close codes.
pub mod close {
    /// Normal shutdown.
    pub const NORMAL: u32 = 0;
    /// The peer broke the framing or sent something undecodable.
    pub const PROTOCOL: u32 = 1;
    /// Another connection to the same peer was kept instead.
    pub const DUPLICATE: u32 = 2;
    /// The peer is this node itself.
    pub const SELF: u32 = 3;
    /// Closed to make room for another connection.
    pub const EVICTED: u32 = 4;
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP address to bind.
    pub listen: SocketAddr,
    /// Most connections held at once.
    pub max_connections: usize,
    /// Largest frame payload accepted or sent.
    pub max_frame: usize,
    /// A connection that hears nothing (not even keepalives) for this long is dead.
    pub idle_timeout: Duration,
    /// Keepalive period (well below `idle_timeout`).
    pub keepalive: Duration,
    /// Longest wait for a handshake.
    pub dial_timeout: Duration,
    /// Frames queued per peer before new ones are dropped.
    pub send_queue: usize,
    /// A new connection is not evicted to make room for another for this long
    /// ([`pool::EVICT_GRACE`]).
    pub evict_grace: Duration,
    /// Bounds and timeouts of incoming bulk streams.
    pub bulk: BulkConfig,
}

impl Config {
    /// Defaults for `listen`, with `max_connections` and the overlay's message bound.
    pub fn new(listen: SocketAddr, max_connections: usize) -> Config {
        Config {
            listen,
            max_connections,
            max_frame: chat_overlay::wire::MAX_MESSAGE_BYTES,
            idle_timeout: Duration::from_secs(6),
            keepalive: Duration::from_secs(2),
            dial_timeout: Duration::from_secs(3),
            send_queue: 256,
            evict_grace: pool::EVICT_GRACE,
            bulk: BulkConfig::default(),
        }
    }
}

/// What the transport hands to its owner.
#[derive(Debug)]
pub enum Inbound<M> {
    /// A message from an authenticated peer, decoded at `at`.
    Message {
        from: Peer,
        msg: M,
        at: std::time::Instant,
    },
    /// A peer could not be reached (dial failed, connection lost while sending).
    Unreachable(NodeId),
}

/// A connected peer, as `ListPeers` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's NodeId (from its certificate).
    pub id: NodeId,
    /// Its UDP address.
    pub addr: SocketAddr,
    /// Current round-trip time estimate.
    pub rtt: Duration,
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The UDP socket could not be bound.
    #[error("node.listen: cannot bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A dial failed.
    #[error("cannot connect to {addr}: {reason}")]
    Dial { addr: SocketAddr, reason: String },
    /// The address is this node itself.
    #[error("{addr} is this node itself")]
    SelfDial { addr: SocketAddr },
    /// The transport is shutting down.
    #[error("the transport is closed")]
    Closed,
    /// A bulk stream could not be opened on the connection to `peer`.
    #[error("cannot open a bulk stream to {}: {reason}", peer.short())]
    Bulk { peer: NodeId, reason: String },
    /// The overlay driver's thread or runtime could not start.
    #[error("cannot start the overlay driver's thread: {0}")]
    DriverThread(std::io::Error),
}

/// The transport handle; cheap to clone.
pub struct Transport<M> {
    inner: Arc<Inner<M>>,
}

impl<M> Clone for Transport<M> {
    fn clone(&self) -> Self {
        Transport {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<M> {
    me: NodeId,
    endpoint: quinn::Endpoint,
    tls: Tls,
    cfg: Config,
    drops: Arc<Drops>,
    pool: Mutex<Pool>,
    links: Mutex<HashMap<NodeId, (u64, mpsc::Sender<LinkCmd>)>>,
    link_gen: AtomicU64,
    inbound: mpsc::Sender<Inbound<M>>,
    bulk: bulk::Bulk,
    handshakes: Arc<Semaphore>,
    closing: AtomicBool,
    /// The accept loop, until its owner takes it ([`Transport::take_accept_task`]).
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The runtime the transport was bound on: link tasks start there, whichever thread sends
    /// (the overlay driver runs on a runtime of its own).
    runtime: tokio::runtime::Handle,
}

/// Handshakes in progress at once on the accepting side.
const MAX_HANDSHAKES: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<M: Wire> Transport<M> {
    /// Binds the endpoint and starts accepting. Must run inside a tokio runtime. Messages
    /// arrive on `inbound`.
    pub fn bind(
        key: &SigningKey,
        cfg: Config,
        inbound: mpsc::Sender<Inbound<M>>,
    ) -> Result<Transport<M>, TransportError> {
        let socket =
            std::net::UdpSocket::bind(cfg.listen).map_err(|source| TransportError::Bind {
                addr: cfg.listen,
                source,
            })?;
        Transport::bind_socket(key, cfg, socket, inbound)
    }

    /// Like [`Transport::bind`], on a socket the caller bound.
    pub fn bind_socket(
        key: &SigningKey,
        cfg: Config,
        socket: std::net::UdpSocket,
        inbound: mpsc::Sender<Inbound<M>>,
    ) -> Result<Transport<M>, TransportError> {
        let drops = Arc::new(Drops::default());
        let tls = Tls::new(key, &cfg, drops.clone())?;
        let bind_err = |source| TransportError::Bind {
            addr: cfg.listen,
            source,
        };
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(tls.server_config()?),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_err)?;
        let me = crate::identity::node_id(&key.verifying_key());
        let inner = Arc::new(Inner {
            me,
            endpoint,
            tls,
            pool: Mutex::new(Pool::with_grace(me, cfg.max_connections, cfg.evict_grace)),
            drops,
            links: Mutex::new(HashMap::new()),
            link_gen: AtomicU64::new(0),
            inbound,
            bulk: bulk::Bulk::new(cfg.bulk),
            cfg,
            handshakes: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            closing: AtomicBool::new(false),
            accept: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
        });
        let accept = tokio::spawn(inner.clone().accept_loop().in_current_span());
        *lock(&inner.accept) = Some(accept);
        Ok(Transport { inner })
    }

    /// The task accepting connections, for its owner to supervise (once; it ends when the
    /// endpoint closes).
    pub fn take_accept_task(&self) -> Option<tokio::task::JoinHandle<()>> {
        lock(&self.inner.accept).take()
    }

    /// The bound UDP address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.inner.me
    }

    /// Queues `msg` for `to`; never blocks. Failures are counted, and an unreachable peer is
    /// reported as [`Inbound::Unreachable`].
    pub fn send(&self, to: Peer, msg: &M) {
        match frame::encode(msg, self.inner.cfg.max_frame) {
            Ok(bytes) => self.inner.enqueue(to, LinkCmd::Frame(bytes)),
            Err(e) => {
                self.inner.drops.count(Reason::OversizedOutgoing);
                tracing::warn!(to = %to.id.short(), error = %e, "message not sent");
            }
        }
    }

    /// First contact with an address whose NodeId is unknown (a bootstrap peer): accepts any
    /// valid self-signed ed25519 certificate and returns the peer it proves. From then on the
    /// peer is bound to that NodeId like any other.
    pub async fn first_contact(&self, addr: SocketAddr) -> Result<Peer, TransportError> {
        self.inner.first_contact(addr).await
    }

    /// The peers with an open connection, ordered by NodeId.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = lock(&self.inner.pool)
            .entries()
            .map(|(id, e)| PeerInfo {
                id: *id,
                addr: e.addr,
                rtt: e.conn.rtt(),
            })
            .collect();
        v.sort_by_key(|p| p.id);
        v
    }

    /// Tells the transport which peers are in the ring's routing state (successors,
    /// predecessor, fingers): their connections are not evicted to admit new ones.
    pub fn set_routing(&self, ids: impl IntoIterator<Item = NodeId>) {
        lock(&self.inner.pool).set_routing(ids.into_iter().collect());
    }

    /// Opens a bulk stream of `header`'s kind to `to`, on the pooled connection or a new one
    /// that must prove `to.id` (`to.addr` is only used to dial), and writes the header. The
    /// peer refuses an unknown kind or a stream over its bounds by resetting it with a
    /// [`bulk::reset`] code, which the first read or write then reports.
    pub async fn open_bulk(
        &self,
        to: Peer,
        header: BulkHeader,
    ) -> Result<BulkStream, TransportError> {
        self.inner.open_bulk(to, header).await
    }

    /// Makes the caller the owner of bulk streams of `kind`: the ones peers open arrive on the
    /// returned receiver, at most `capacity` waiting (more are refused with
    /// [`bulk::reset::BUSY`]). A later call for the same kind replaces the owner; a dropped
    /// receiver makes the kind unknown again.
    pub fn bulk_listen(&self, kind: u16, capacity: usize) -> mpsc::Receiver<BulkStream> {
        self.inner.bulk.listen(kind, capacity)
    }

    /// quinn's statistics of the pooled connection to `id` (packets, losses, congestion).
    pub fn connection_stats(&self, id: &NodeId) -> Option<quinn::ConnectionStats> {
        lock(&self.inner.pool).get(id).map(|c| c.stats())
    }

    /// Incoming bulk streams open now (admitted and not yet dropped).
    pub fn bulk_open(&self) -> usize {
        self.inner.bulk.open()
    }

    /// The drop counters.
    pub fn drops(&self) -> &Arc<Drops> {
        &self.inner.drops
    }

    /// Waits (at most `deadline`) until every queued frame has been written and the last ones
    /// acknowledged by their peers — so that goodbyes reach them before [`Transport::close`].
    pub async fn flush(&self, deadline: Duration) {
        let links: Vec<mpsc::Sender<LinkCmd>> = lock(&self.inner.links)
            .values()
            .map(|(_, tx)| tx.clone())
            .collect();
        let waits = async {
            let mut done = Vec::new();
            for tx in links {
                let (ack, rx) = oneshot::channel();
                if tx.send(LinkCmd::Flush(ack)).await.is_ok() {
                    done.push(rx);
                }
            }
            for rx in done {
                let _ = rx.await;
            }
        };
        let _ = tokio::time::timeout(deadline, waits).await;
    }

    /// Closes every connection and the endpoint; waits (at most `deadline`) for the peers to
    /// be told.
    pub async fn close(&self, deadline: Duration) {
        self.inner.closing.store(true, Ordering::Relaxed);
        lock(&self.inner.pool).drain();
        self.inner
            .endpoint
            .close(quinn::VarInt::from_u32(close::NORMAL), b"bye");
        let _ = tokio::time::timeout(deadline, self.inner.endpoint.wait_idle()).await;
    }

    /// Dials `addr` expecting `expect` and returns the raw connection, registered nowhere.
    /// For tests that need to misbehave inside an authenticated connection.
    pub async fn dial_raw(
        &self,
        addr: SocketAddr,
        expect: Expect,
    ) -> Result<quinn::Connection, TransportError> {
        self.inner.dial(addr, expect).await
    }
}

/// The NodeId proven by a connection's peer certificate.
pub fn connection_peer_id(conn: &quinn::Connection) -> Option<NodeId> {
    let identity = conn.peer_identity()?;
    let certs = identity
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    verify::cert_node_id(certs.first()?).ok()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bulk_tests;
