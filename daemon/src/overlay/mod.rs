//! The overlay driver: runs the sans-IO overlay (`chat_overlay::Overlay`) over the QUIC
//! transport.
//!
//! - [`driver`]: the task that owns the overlay node, feeds it inputs (authenticated messages,
//!   timers, unreachable peers, commands) and executes its outputs;
//! - [`timers`]: the overlay's timers on tokio;
//! - [`bootstrap`]: first contact with `--bootstrap` addresses of unknown NodeId;
//! - [`originate`]: our own broadcasts, answered only once the overlay took them;
//! - [`membership`]: what the driver tells the rest of the daemon (joined, ring size);
//! - [`met`]: the nodes this node has met lately, for maps of the ring.
//!
//! The driver never looks inside a `wire::Message`: whatever variants the overlay defines are
//! carried as they are. Everything else talks to the driver through a [`OverlayHandle`].

pub mod bootstrap;
mod driver;
pub mod membership;
pub mod met;
pub mod originate;
pub mod timers;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_overlay::ring::{Finger, Stats};
use chat_overlay::{ChordConfig, Input, Message, NodeId, Peer};
use ed25519_dalek::SigningKey;
use tokio::sync::{mpsc, oneshot, watch};

use crate::overlay::membership::Membership;
use crate::supervise::Tasks;
use crate::transport::{self, PeerInfo, Transport, TransportError};

/// Commands queued to the driver before it stops taking more.
const COMMAND_QUEUE: usize = 256;
/// Messages from peers queued to the driver (beyond this, readers wait: QUIC flow control
/// then slows the peers down).
const INBOUND_QUEUE: usize = 1024;
/// The most messages the driver takes from its inbound queue in one turn; the broadcasts
/// among them are verified as one batch ([`Inbox::prevalidate`]).
pub const MAX_BATCH: usize = 64;

/// What the driver is asked to do.
pub enum DriverCommand {
    /// Feed this input to the overlay.
    Input(Input),
    /// Report the routing state.
    View(oneshot::Sender<RingView>),
    /// Leave gracefully; answered once the overlay reports `Left`.
    Leave(oneshot::Sender<()>),
    /// Broadcast a message of ours if the overlay admits it now ([`originate`]).
    Originate {
        job: originate::Job,
        reply: oneshot::Sender<Result<(), chat_overlay::BroadcastError>>,
    },
    /// Look up the successors of `key` ([`OverlayHandle::successors`]).
    Lookup {
        key: NodeId,
        reply: oneshot::Sender<LookupOutcome>,
    },
    /// Ask the ring how broadcast (`origin`, `seq`) travelled.
    Trace {
        origin: NodeId,
        seq: u64,
        reply: oneshot::Sender<TraceOutcome>,
    },
}

/// A lookup's answer: the key's successor and the nodes after it, nearest first.
pub type LookupOutcome = Result<Vec<Peer>, chat_overlay::LookupError>;

/// What a trace of one broadcast found, or why none ran.
pub type TraceOutcome =
    Result<chat_overlay::broadcast::trace::TraceResult, chat_overlay::BroadcastError>;

impl std::fmt::Debug for DriverCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverCommand::Input(i) => f.debug_tuple("Input").field(i).finish(),
            DriverCommand::View(_) => f.write_str("View"),
            DriverCommand::Leave(_) => f.write_str("Leave"),
            DriverCommand::Originate { .. } => f.write_str("Originate"),
            DriverCommand::Lookup { key, .. } => {
                f.debug_struct("Lookup").field("key", key).finish()
            }
            DriverCommand::Trace { origin, seq, .. } => f
                .debug_struct("Trace")
                .field("origin", origin)
                .field("seq", seq)
                .finish(),
        }
    }
}

/// A snapshot of the node's routing state.
#[derive(Debug, Clone)]
pub struct RingView {
    /// This node.
    pub me: Peer,
    /// Whether the node is a ring member.
    pub member: bool,
    /// The predecessor, if known.
    pub predecessor: Option<Peer>,
    /// The successor list, nearest first.
    pub successors: Vec<Peer>,
    /// The distinct fingers, nearest first.
    pub fingers: Vec<Finger>,
    /// Estimated ring size.
    pub size_estimate: u64,
    /// The exact ring size, when the node can know it
    /// ([`chat_overlay::Overlay::ring_size_exact`]).
    pub size_exact: Option<u64>,
    /// The peers the ring suspects of having failed, now.
    pub suspects: Vec<chat_overlay::NodeId>,
    /// The nodes met lately ([`met`]), ordered by node id.
    pub met: Vec<met::MetNode>,
    /// The overlay's counters.
    pub stats: Stats,
    /// The broadcast counters.
    pub broadcast: chat_overlay::broadcast::BroadcastStats,
    /// The records counters.
    pub records: chat_overlay::records::RecordsStats,
    /// DHT records held.
    pub records_held: usize,
    /// Their size as the record store counts it.
    pub records_bytes: usize,
    /// The direct-delivery counters.
    pub direct: chat_overlay::direct::DirectStats,
}

/// The application behind the DHT records: it hears every records event inline (answers to
/// its puts and gets, records to persist or forget, owned records to re-sign). It must not
/// block: the driver calls it on the ring's path.
pub trait RecordSink: Send + Sync + 'static {
    /// One records event.
    fn event(&self, e: chat_overlay::records::RecordsEvent);
}

/// The application behind direct delivery: it hears every direct event inline (outcomes of
/// its sends, bodies for this node). It must not block: the driver calls it on the ring's path.
pub trait DirectSink: Send + Sync + 'static {
    /// One direct-delivery event.
    fn event(&self, e: chat_overlay::DirectEvent);
}

/// The application behind the ring: it judges every broadcast before the overlay stores,
/// forwards or delivers it, and receives each new one once. Both are called inline by the
/// driver, so nothing is lost between the overlay and the application.
pub trait Inbox: Send + Sync + 'static {
    /// Whether `env` is acceptable (for chat: a validly signed envelope from `env.origin`).
    fn validate(&self, env: &chat_overlay::broadcast::Envelope) -> bool;
    /// The envelopes one turn of the driver took that the overlay will ask
    /// [`Inbox::validate`] about (at most [`MAX_BATCH`]): the inbox may judge them together
    /// now (batch verification) and answer `validate` from what it found. It must still refuse
    /// in `validate` whatever it would refuse alone.
    fn prevalidate(&self, _envs: &[&chat_overlay::broadcast::Envelope]) {}
    /// `env`, validated and seen for the first time here.
    fn deliver(&self, env: &chat_overlay::broadcast::Envelope);
    /// The driver's turn has ended: its forwards are queued; what [`Inbox::deliver`] took
    /// during it may now be handed on (the chat store's thread takes a whole turn at once).
    fn end_turn(&self) {}
    /// Whether work deferred by [`Inbox::deliver`] (the chat store's group commit) is due at
    /// `now`; the driver then calls [`Inbox::flush`] once the sends of its last input have left.
    fn flush_due(&self, _now: std::time::Instant) -> bool {
        false
    }
    /// When deferred work must be done even if no input arrives: the driver wakes by then.
    fn flush_deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// Does the deferred work.
    fn flush(&self) {}
    /// Broadcasts [`Inbox::deliver`] took that the application then lost (its store's write
    /// failed), as `(origin, seq)`, since the last call: the driver makes the overlay forget
    /// it saw them, so that anti-entropy brings them back.
    fn take_dropped(&self) -> Vec<(chat_overlay::NodeId, u64)> {
        Vec::new()
    }
}

/// The applications the driver hands the overlay's events to, inline.
pub struct Apps {
    /// Broadcasts: validation and delivery.
    pub inbox: Arc<dyn Inbox>,
    /// DHT records' events.
    pub records: Arc<dyn RecordSink>,
    /// Direct delivery's events.
    pub direct: Arc<dyn DirectSink>,
}

/// Settings of the driver and its transport.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// The transport.
    pub transport: transport::Config,
    /// The overlay.
    pub chord: ChordConfig,
    /// Addresses to join through; empty founds a ring (unless a remembered peer answers).
    pub bootstrap: Vec<crate::config::PeerAddr>,
    /// Peers remembered from an earlier run (their ids then, and addresses), tried beside the
    /// bootstrap.
    pub remembered: Vec<Peer>,
    /// LAN discovery, when on: its peers are tried too.
    pub lan: Option<Arc<dyn LanPeers>>,
}

/// Peers found on the local network, as the first contact uses them (implemented by
/// `discovery::mdns::Lan`; the ring names no discovery type, so discovery can depend on it).
pub trait LanPeers: std::fmt::Debug + Send + Sync {
    /// The addresses of each peer seen, most recently announced first.
    fn peer_addrs(&self) -> Vec<Vec<std::net::SocketAddr>>;
    /// A receiver that changes whenever a new peer or address is seen.
    fn watch(&self) -> watch::Receiver<u64>;
}

/// A handle to the running driver; cheap to clone.
#[derive(Clone)]
pub struct OverlayHandle {
    commands: mpsc::Sender<DriverCommand>,
    transport: Transport<Message>,
    predecessor: watch::Receiver<Option<Peer>>,
}

impl std::fmt::Debug for OverlayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayHandle").finish_non_exhaustive()
    }
}

/// Test builds only (debug assertions on): when this variable is set, the node also runs the
/// overlay's test-only echo service, so a test can mix nodes with and without a service.
/// Release builds ignore it.
pub const TEST_ECHO_ENV: &str = "CHAT_OVERLAY_TEST_ECHO";

/// Starts the transport on `socket` and starts the driver (and, with bootstrap addresses, the first
/// contact). The driver and the transport's accept loop join `tasks`, which the app supervises.
/// The driver holds the node's [`Membership`], not the node. Must run inside a tokio runtime.
pub fn start(
    id: NodeId,
    membership: Arc<Membership>,
    key: &SigningKey,
    cfg: RingConfig,
    socket: std::net::UdpSocket,
    apps: Apps,
    tasks: &mut Tasks,
) -> Result<OverlayHandle, TransportError> {
    let Apps {
        inbox,
        records,
        direct,
    } = apps;
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let transport = Transport::bind_socket(key, cfg.transport.clone(), socket, inbound_tx)?;
    let listen = transport
        .local_addr()
        .map_err(|source| TransportError::Bind {
            addr: cfg.transport.listen,
            source,
        })?;
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (predecessor_tx, predecessor) = watch::channel(None);
    let me = Peer {
        id,
        addr: advertised(listen),
    };
    let seed =
        u64::from_le_bytes(id.0[..8].try_into().unwrap_or_default()) ^ std::process::id() as u64;
    let mut chord = cfg.chord.clone();
    // Records' times are wall-clock times; the driver's epoch is "now".
    chord.records.epoch_unix_ms = crate::clock::unix_ms();
    let mut overlay = chat_overlay::Overlay::new(me, chord, seed);
    let validator = inbox.clone();
    overlay.set_validator(Box::new(move |env| validator.validate(env)));
    if cfg!(debug_assertions) && std::env::var_os(TEST_ECHO_ENV).is_some() {
        // A build "with a newer service", for the mixed-ring test (tests/e2e/ring/chat.rs).
        if let Err(e) = overlay.add_service(Box::new(chat_overlay::testing::Echo::default())) {
            tracing::warn!("test echo service not added: {e}");
        }
    }
    let driver = driver::Driver::new(
        membership.clone(),
        overlay,
        transport.clone(),
        predecessor_tx,
        inbox,
        records,
        direct,
    );
    driver::spawn(driver, inbound_rx, command_rx, tasks)?;
    if let Some(accept) = transport.take_accept_task() {
        tasks.spawn("the QUIC accept loop", async move {
            if let Err(e) = accept.await
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        });
    }
    let mut addrs = cfg.bootstrap.clone();
    for r in &cfg.remembered {
        let a = crate::config::PeerAddr::Ip(r.addr);
        if !addrs.contains(&a) && a != crate::config::PeerAddr::Ip(listen) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() && cfg.lan.is_none() {
        let _ = commands.try_send(DriverCommand::Input(Input::Create));
    } else {
        let contacts = bootstrap::Contacts {
            addrs,
            found_if_silent: cfg.bootstrap.is_empty(),
            remembered: cfg.remembered.clone(),
            me: id,
            membership,
            lan: cfg.lan.clone(),
        };
        // Supervised: it ends by design once the join is handed over; a panic stops the daemon.
        tasks.spawn_finite(
            "the bootstrap",
            bootstrap::run(transport.clone(), contacts, commands.clone()),
        );
    }
    Ok(OverlayHandle {
        commands,
        transport,
        predecessor,
    })
}

/// The overlay configuration for the `[ring]` settings.
pub fn chord_config(ring: &crate::config::RingSettings) -> ChordConfig {
    let mut c = ChordConfig::default();
    c.ring.stabilize_interval = Duration::from_millis(ring.stabilize_ms);
    c.ring.fix_fingers_min = Duration::from_millis(ring.fix_fingers_ms);
    c.ring.fix_fingers_max = c.ring.fix_fingers_max.max(c.ring.fix_fingers_min);
    c.ring.check_predecessor_interval = Duration::from_millis(ring.check_predecessor_ms);
    c.ring.rpc_timeout = Duration::from_millis(ring.rpc_timeout_ms);
    c.broadcast.rate_per_sec = ring.origin_rate;
    c.broadcast.rate_burst = ring.origin_burst;
    c.broadcast.reply_delay = Duration::from_millis(ring.reply_delay_ms);
    // A node whose history was lost learns its own numbering before it sends (protocol.md).
    c.broadcast.numbering_wait = chat_overlay::broadcast::NUMBERING_WAIT;
    c.records.replicas = ring.record_replicas as usize;
    c.records.max_bytes = (ring.record_store_mb as usize).saturating_mul(1024 * 1024);
    c.records.sync_interval = Duration::from_millis(ring.record_sync_ms);
    c
}

/// The address other nodes see for us: a wildcard listen address is not dialable, so the
/// peers' view (the source address of our packets) is what counts; we report the bound one.
fn advertised(listen: SocketAddr) -> SocketAddr {
    listen
}

impl OverlayHandle {
    /// The routing state, or `None` when the driver has stopped.
    pub async fn view(&self) -> Option<RingView> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(DriverCommand::View(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Asks the ring how broadcast (`origin`, `seq`) travelled (`None` when the driver has
    /// stopped). The walk ends by itself: every question is answered or times out.
    pub async fn trace(&self, origin: NodeId, seq: u64) -> Option<TraceOutcome> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(DriverCommand::Trace {
                origin,
                seq,
                reply: tx,
            })
            .await
            .ok()?;
        rx.await.ok()
    }

    /// The successors of `key` as a lookup through the ring finds them: the key's successor
    /// and the nodes after it, nearest first (the successor's own successor list; this node
    /// may be among them). `None` when the driver has stopped; the overlay bounds the lookup
    /// by its deadline and hop limit.
    pub async fn successors(&self, key: NodeId) -> Option<LookupOutcome> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(DriverCommand::Lookup { key, reply: tx })
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Whether the driver has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Feeds an input to the overlay (e.g. a lookup, or a broadcast once the overlay has one).
    /// Returns false when the driver's queue is full or it has stopped.
    pub fn submit(&self, input: Input) -> bool {
        self.commands.try_send(DriverCommand::Input(input)).is_ok()
    }

    /// Leaves the ring gracefully: the overlay hands our neighbours to each other, and the
    /// goodbyes are flushed to the peers. Returns true if the leave completed within `deadline`.
    pub async fn leave(&self, deadline: Duration) -> bool {
        let work = async {
            let (tx, rx) = oneshot::channel();
            self.commands.send(DriverCommand::Leave(tx)).await.ok()?;
            rx.await.ok()?;
            self.transport.flush(deadline).await;
            Some(())
        };
        matches!(tokio::time::timeout(deadline, work).await, Ok(Some(())))
    }

    /// Closes every connection (after [`OverlayHandle::leave`]).
    pub async fn close(&self, deadline: Duration) {
        self.transport.close(deadline).await;
    }

    /// Connected peers, ordered by NodeId.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.transport.peers()
    }

    /// Drops by reason: the transport's, plus the overlay's invalid, stale and unknown messages.
    pub fn dropped(&self, view: Option<&RingView>) -> BTreeMap<String, u64> {
        let stats = view.map(|v| &v.stats);
        let mut m: BTreeMap<String, u64> = self
            .transport
            .drops()
            .snapshot()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        m.insert("invalid_message".into(), stats.map_or(0, |s| s.invalid));
        m.insert("stale_response".into(), stats.map_or(0, |s| s.stale));
        // A service, version or message type this build does not speak (ignored).
        m.insert("unknown_message".into(), stats.map_or(0, |s| s.unknown));
        if let Some(b) = view.map(|v| &v.broadcast) {
            for (k, n) in [
                ("broadcast_bad_id", b.dropped_bad_id),
                ("bad_signature", b.dropped_invalid),
                ("broadcast_out_of_range", b.dropped_out_of_range),
                ("broadcast_oversized", b.dropped_oversized),
                ("rate_limited", b.dropped_rate),
                ("broadcast_busy", b.dropped_busy),
            ] {
                m.insert(k.into(), n);
            }
        }
        if let Some(r) = view.map(|v| &v.records) {
            for (k, n) in [
                ("record_invalid", r.refused_invalid),
                ("record_not_holder", r.refused_range),
                ("record_rate_limited", r.refused_rate),
                ("record_over_quota", r.refused_quota),
            ] {
                m.insert(k.into(), n);
            }
        }
        if let Some(d) = view.map(|v| &v.direct) {
            m.insert("direct_rate_limited".into(), d.refused_rate);
            m.insert("direct_oversized".into(), d.refused_size);
            m.insert("direct_refused_store".into(), d.refused_app);
        }
        m
    }

    /// The node's predecessor on the ring as the overlay last reported it (`None`: none
    /// known). A watch, not a queue: a reader that was busy sees the latest value, never a
    /// backlog of stale ones, and nothing else the driver does wakes it.
    pub fn predecessor(&self) -> watch::Receiver<Option<Peer>> {
        self.predecessor.clone()
    }

    /// The transport, for sending wire messages directly.
    pub fn transport(&self) -> &Transport<Message> {
        &self.transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keys_default_to_the_overlay_defaults() {
        let ours = chord_config(&crate::config::RingSettings::default());
        let overlay = ChordConfig::default();
        assert_eq!(
            ours.ring.stabilize_interval,
            overlay.ring.stabilize_interval
        );
        assert_eq!(ours.ring.fix_fingers_min, overlay.ring.fix_fingers_min);
        assert_eq!(ours.ring.fix_fingers_max, overlay.ring.fix_fingers_max);
        assert_eq!(
            ours.ring.check_predecessor_interval,
            overlay.ring.check_predecessor_interval
        );
        assert_eq!(ours.ring.rpc_timeout, overlay.ring.rpc_timeout);
        assert_eq!(ours.broadcast.rate_per_sec, overlay.broadcast.rate_per_sec);
        assert_eq!(ours.broadcast.rate_burst, overlay.broadcast.rate_burst);
        assert_eq!(ours.broadcast.reply_delay, overlay.broadcast.reply_delay);
        assert_eq!(ours.records.replicas, overlay.records.replicas);
        assert_eq!(ours.records.max_bytes, overlay.records.max_bytes);
        assert_eq!(ours.records.sync_interval, overlay.records.sync_interval);
    }

    #[test]
    fn the_ring_keys_reach_the_overlay() {
        // (Was in config/tests.rs; here so that config does not depend on the ring.)
        let s = crate::config::RingSettings {
            origin_rate: 500,
            stabilize_ms: 150,
            reply_delay_ms: 0,
            ..Default::default()
        };
        let chord = chord_config(&s);
        assert_eq!(chord.broadcast.rate_per_sec, 500);
        assert_eq!(
            chord.broadcast.rate_burst,
            crate::config::RingSettings::default().origin_burst
        );
        assert_eq!(chord.ring.stabilize_interval, Duration::from_millis(150));
        assert!(chord.broadcast.reply_delay.is_zero());
        assert_eq!(
            chord_config(&crate::config::RingSettings::default())
                .broadcast
                .reply_delay,
            ChordConfig::default().broadcast.reply_delay
        );
    }
}
