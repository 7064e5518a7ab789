//! The chat core: signed envelopes, the hybrid logical clock, the SQLite history, and the hub
//! that fans messages out to subscribers — behind one cloneable [`Chat`] handle.
//!
//! - [`room`]: valid room names; [`envelope`]: signing, encoding and verifying messages;
//! - [`hlc`]: timestamps; [`store`]: history (its log checkpointed by `checkpoint`);
//!   [`hub`] and [`subscription`]: live delivery;
//! - [`ratelimit`]: token buckets (per-client send limits, failed-login limits);
//! - [`trace`]: message traces as people read them (the history plus the ring's trace);
//! - [`Chat`]'s methods by job: `send.rs` this node's own messages and their numbering,
//!   `receive.rs` what the ring brings and its commit, `reads.rs` history, search and
//!   subscriptions, `released.rs` the files of messages deleted or expired; this file the
//!   handle, its state and errors.
//!
//! Data flow: [`Chat::send_local`] numbers, signs, stores and publishes to local subscribers,
//! and returns the wire bytes for the broadcast; the control API calls it on the overlay driver
//! only once the overlay admits the broadcast (`overlay::originate`), so "sent" is true;
//! [`RingInbox`] verifies what the ring brings (once) and hands a driver turn's messages to
//! [`Chat::hand_over`]: with a file history, the store's own thread (`pipeline.rs`) stores
//! them, the driver having shown at once those certainly new; otherwise
//! [`Chat::accept_verified`] dedupes, stores and publishes there and then
//! ([`Chat::accept_remote`] takes wire bytes and verifies them first). Positions are reserved
//! and messages published under one lock, so subscribers see messages in position order.

mod accept;
pub mod attachment;
pub mod batch;
mod changes;
mod checkpoint;
pub mod envelope;
pub mod hlc;
pub mod hub;
mod inbox;
mod own;
mod pipeline;
mod queries;
pub mod ratelimit;
mod reader;
mod reads;
mod receive;
mod released;
pub mod room;
pub mod search;
mod send;
pub mod store;
pub mod subscription;
pub mod trace;
pub mod transcript;

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use ed25519_dalek::SigningKey;
use tokio::sync::Semaphore;

pub use envelope::{ChatMessage, MessageId};
pub use inbox::RingInbox;
pub use room::Room;
pub use store::Stored;
pub use subscription::{FeedEvent, Start};

use crate::metrics::Metrics;
use crate::nickname::Nickname;
use envelope::TextError;
// What the tests (`use super::*`) use of what the methods' files import.
use hlc::Clock;
use hub::Hub;
pub use queries::Rows;
use store::{Store, StoreError};
#[cfg(test)]
use {
    envelope::{Change, Draft, Kind},
    std::sync::atomic::Ordering,
    tokio::sync::mpsc,
};

pub use crate::config::{ChatConfig, DEFAULT_COMMIT_DELAY};

/// A local message, numbered, signed, stored and shown to local subscribers: what the
/// broadcast takes.
#[derive(Clone, Debug)]
pub struct Local {
    /// The stored message.
    pub stored: Arc<Stored>,
    /// The origin's sequence number (the broadcast numbers it the same way).
    pub seq: u64,
    /// The signed envelope, as [`Chat::accept_remote`] takes it on other nodes.
    pub wire: Vec<u8>,
}

/// A chat-layer failure that is not the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The history store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`Chat::send_local`] refused a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The text is empty or too long.
    #[error(transparent)]
    Text(#[from] TextError),
    /// `chat.outbound_queue` sends already wait for the overlay driver; try again later.
    #[error("too many messages waiting to be sent to the ring; try again shortly")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
}

/// Why [`Chat::change_as`] refused an edit or delete.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such message here.
    #[error("no message {0} in this node's history (never seen, or expired)")]
    NotFound(MessageId),
    /// Deleted already.
    #[error("message {0} was deleted")]
    Deleted(MessageId),
    /// Somebody else's message, or not a text message.
    #[error("message {0} is not yours: only its author can edit or delete it")]
    NotYours(MessageId),
    /// The new text is refused, the queue is full, or the store failed.
    #[error(transparent)]
    Send(#[from] SendError),
}

impl From<ChatError> for ChangeError {
    fn from(e: ChatError) -> Self {
        ChangeError::Send(SendError::Chat(e))
    }
}

/// Why [`Chat::accept_remote`] refused bytes from the ring.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Larger than [`envelope::MAX_WIRE_BYTES`].
    #[error("oversized envelope: {0} bytes")]
    Oversized(usize),
    /// Not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Already accepted (the normal fate of a message that arrives twice; not forwarded again).
    #[error("duplicate message")]
    Duplicate,
    /// A replay: the origin's sequence number is taken by another message, or the message is
    /// older than the history keeps.
    #[error("replayed message: {0}")]
    Replay(&'static str),
    /// Timestamp too far in the future.
    #[error(transparent)]
    FromFuture(#[from] hlc::TooFarAhead),
    /// An edit or delete of a message by another author (or of another room or kind).
    #[error("an edit or delete of somebody else's message")]
    NotAuthor,
    /// The store failed.
    #[error(transparent)]
    Chat(#[from] ChatError),
}

impl AcceptError {
    /// A short counter name for status reports, e.g. `bad_signature`.
    pub fn reason(&self) -> &'static str {
        match self {
            AcceptError::Oversized(_) => "oversized_envelope",
            AcceptError::Malformed(_) => "malformed_envelope",
            AcceptError::BadSignature => "bad_signature",
            AcceptError::Duplicate => "duplicate",
            AcceptError::Replay(_) => "replay",
            AcceptError::FromFuture(_) => "from_future",
            AcceptError::NotAuthor => "not_author",
            AcceptError::Chat(_) => "store_error",
        }
    }
}

/// Counters for status reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Local messages sent.
    pub sent: AtomicU64,
    /// Remote messages accepted.
    pub received: AtomicU64,
    /// Remote messages refused (any reason but duplicates).
    pub refused: AtomicU64,
}

/// Where people events go (the people service): it reads an event, applies it to the user
/// directory and returns the line shown for it (empty when nothing visible changed). Called
/// with the chat state locked: it must not call back into [`Chat`].
pub trait PeopleSink: Send + Sync + std::fmt::Debug {
    /// Applies a verified people event from node `from`.
    fn apply(&self, from: &ChatMessage) -> String;
}

/// People events [`Chat::people_events`] returns at most (the directory is rebuilt from them
/// at start).
pub const MAX_PEOPLE_EVENTS: usize = 100_000;

/// The chat core; clone it freely.
#[derive(Clone, Debug)]
pub struct Chat {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    key: SigningKey,
    nick: Option<Nickname>,
    clock: Clock,
    state: Mutex<State>,
    /// The control API's reads (file histories only; an in-memory one reads from `state`).
    reader: Option<Mutex<reader::Reader>>,
    hub: Hub,
    sending: Arc<Semaphore>,
    subscriptions: Arc<Semaphore>,
    counters: Counters,
    people: OnceLock<Arc<dyn PeopleSink>>,
    metrics: Arc<Metrics>,
    /// The search index's thread (file histories only).
    indexer: OnceLock<search::Indexer>,
    /// The store's own thread and the messages shown before it stored them (file histories,
    /// unless `CHAT_STORE=driver`; `pipeline.rs`).
    pipeline: OnceLock<Arc<pipeline::Pipeline>>,
    /// Messages a failed write lost, for the ring to fetch again ([`Chat::take_dropped`]).
    dropped: store::Dropped,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(p) = self.pipeline.get() {
            p.close();
        }
    }
}

#[derive(Debug)]
struct State {
    store: Store,
    seq: u64,
}

impl Chat {
    /// Opens the history in `data_dir`.
    pub fn open(
        data_dir: &Path,
        key: SigningKey,
        nick: Option<Nickname>,
        config: &ChatConfig,
    ) -> Result<Chat, ChatError> {
        // A damaged file fails the start with an error that names it (the operator moves it
        // aside), whichever of the opens below meets the damage first.
        let named = |file: &str| {
            let path = data_dir.join(file);
            move |e: StoreError| match e {
                StoreError::Sql(source) => StoreError::Open { path, source },
                e => e,
            }
        };
        let store = Store::open(data_dir, config.retention_messages)?;
        search::create(data_dir).map_err(named(search::INDEX_FILE))?;
        let reader = reader::Reader::open(data_dir).map_err(named(store::DB_FILE))?;
        let (head, horizon) = (
            store.head().map_err(named(store::DB_FILE))?,
            store.horizon(),
        );
        let chat = Chat::with_store(store, Some(reader), key, nick, config)?;
        let indexer = search::Indexer::start(data_dir).map_err(named(search::INDEX_FILE))?;
        let _ = chat.inner.indexer.set(indexer);
        if !pipeline::on_driver() {
            let p = Arc::new(
                pipeline::Pipeline::open(data_dir, head, horizon, config.commit_delay)
                    .map_err(named(store::DB_FILE))?,
            );
            p.start(&chat.inner)?;
            let _ = chat.inner.pipeline.set(p);
        }
        Ok(chat)
    }

    /// The same with an in-memory history (tests).
    pub fn in_memory(
        key: SigningKey,
        nick: Option<Nickname>,
        config: &ChatConfig,
    ) -> Result<Chat, ChatError> {
        let store = Store::in_memory(config.retention_messages)?;
        Ok(Chat::with_store(store, None, key, nick, config)?)
    }

    fn with_store(
        mut store: Store,
        reader: Option<reader::Reader>,
        key: SigningKey,
        nick: Option<Nickname>,
        config: &ChatConfig,
    ) -> Result<Chat, StoreError> {
        store.set_commit_delay(config.commit_delay);
        let (seq, newest) = store.resume_point(&key.verifying_key())?;
        let dropped = store.dropped();
        let chat = Chat {
            inner: Arc::new(Inner {
                key,
                nick,
                clock: Clock::starting_at(newest),
                state: Mutex::new(State { store, seq }),
                reader: reader.map(Mutex::new),
                hub: Hub::new(config.subscriber_queue),
                sending: Arc::new(Semaphore::new(config.outbound_queue.max(1))),
                subscriptions: Arc::new(Semaphore::new(config.max_subscribers)),
                counters: Counters::default(),
                people: OnceLock::new(),
                metrics: Arc::default(),
                indexer: OnceLock::new(),
                pipeline: OnceLock::new(),
                dropped,
            }),
        };
        Ok(chat)
    }

    /// Hands people events (from the ring and local) to `sink` from now on.
    pub fn set_people(&self, sink: Arc<dyn PeopleSink>) {
        let _ = self.inner.people.set(sink);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    /// Holds the writer as a stuck store would (tests).
    #[cfg(test)]
    fn hold_writer(&self) -> MutexGuard<'_, State> {
        self.state()
    }

    /// Messages waiting in the store thread's queue (tests).
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.inner.pipeline.get().map_or(0, |p| p.queued())
    }

    /// Holds the reader's connection as a slow read would (tests).
    #[cfg(test)]
    pub(crate) fn hold_reader(&self) -> Option<MutexGuard<'_, reader::Reader>> {
        self.inner
            .reader
            .as_ref()
            .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every message and shown event published from now on, straight from the hub (never
    /// waits; falling behind loses the oldest): the event log's feed. Counted in
    /// [`Chat::subscribers`].
    pub fn hub_subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<Stored>> {
        self.inner.hub.subscribe()
    }

    /// Open subscriptions.
    pub fn subscribers(&self) -> usize {
        self.inner.hub.subscribers()
    }

    /// ChatMessage counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The histograms and delivery counter `/metrics` shows.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "changes_tests.rs"]
mod changes_tests;

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod pipeline_tests;
