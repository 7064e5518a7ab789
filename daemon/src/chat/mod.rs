//! The chat core: signed envelopes, the hybrid logical clock, the SQLite history, and the hub
//! that fans messages out to subscribers — behind one cloneable [`Chat`] handle.
//!
//! - [`room`]: valid room names; [`envelope`]: signing, encoding and verifying messages;
//! - [`hlc`]: timestamps; [`store`]: history (its log checkpointed by `checkpoint`);
//!   [`hub`] and [`subscription`]: live delivery;
//! - [`ratelimit`]: token buckets (per-client send limits, failed-login limits);
//! - [`trace`]: message traces as people read them (the history plus the ring's trace).
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
pub mod room;
pub mod search;
pub mod store;
pub mod subscription;
pub mod trace;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use ed25519_dalek::SigningKey;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

pub use envelope::{ChatMessage, MessageId};
pub use inbox::RingInbox;
pub use room::Room;
pub use store::Stored;
pub use subscription::{FeedEvent, Start};

use crate::metrics::Metrics;
use crate::nickname::Nickname;
use envelope::{Change, Draft, EnvelopeError, Kind, TextError};
use hlc::Clock;
use hub::Hub;
pub use queries::Rows;
use store::{Store, StoreError};

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
        let store = Store::open(data_dir, config.retention_messages)?;
        search::create(data_dir)?;
        let reader = reader::Reader::open(data_dir)?;
        let (head, horizon) = (store.head()?, store.horizon());
        let chat = Chat::with_store(store, Some(reader), key, nick, config)?;
        let _ = chat.inner.indexer.set(search::Indexer::start(data_dir)?);
        if !pipeline::on_driver() {
            let p = Arc::new(pipeline::Pipeline::open(
                data_dir,
                head,
                horizon,
                config.commit_delay,
            )?);
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

    /// Numbers, signs and stores a people event of this node (its line `text` is shown to
    /// local subscribers), as [`Chat::send_local`] does a message; the caller broadcasts it.
    pub fn send_event(&self, event: &[u8], text: &str) -> Result<Local, SendError> {
        let mut state = self.state();
        let mut shown = self.inner.pipeline.get().map(|p| p.shown());
        let at = shown.as_mut().map(|s| s.reserve());
        let key = self.inner.key.verifying_key();
        let (pos, message) = own::insert_own(&mut state, &key, at, |seq| {
            let mut message = envelope::sign(
                &self.inner.key,
                &Draft {
                    seq,
                    hlc: self.inner.clock.tick(),
                    room: &Room::lobby(),
                    text: "",
                    event: Some(event),
                    author: None,
                    nick: self.inner.nick.as_ref(),
                    change: None,
                },
            )?;
            message.text = text.to_owned();
            Ok(message)
        })?;
        let stored = Arc::new(Stored { pos, message });
        if !text.is_empty() {
            self.inner.hub.publish(stored.clone());
        }
        drop(shown);
        drop(state);
        Ok(Local {
            seq: stored.message.seq,
            wire: stored.message.wire.to_vec(),
            stored,
        })
    }

    /// The stored people events, oldest first (at most [`MAX_PEOPLE_EVENTS`], the newest).
    pub fn people_events(&self) -> Result<Vec<ChatMessage>, ChatError> {
        let rows = match &self.inner.reader {
            Some(r) => queries::people_events(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
                MAX_PEOPLE_EVENTS,
            ),
            None => self.state().store.people_events(MAX_PEOPLE_EVENTS),
        }?;
        Ok(rows.into_iter().map(|s| s.message).collect())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    /// A place among the `chat.outbound_queue` sends that may wait for the overlay driver at
    /// once, held until the send is answered; [`SendError::Busy`] when none is free.
    pub fn sending_permit(&self) -> Result<OwnedSemaphorePermit, SendError> {
        self.inner
            .sending
            .clone()
            .try_acquire_owned()
            .map_err(|_| SendError::Busy)
    }

    /// Numbers and signs `text` for `room`, stores it and shows it to local subscribers. The
    /// caller broadcasts it at once: the control API runs this on the overlay driver, only once
    /// the overlay admits the broadcast.
    pub fn send_local(&self, room: &Room, text: &str) -> Result<Local, SendError> {
        self.send_as(room, text, None)
    }

    /// [`Chat::send_local`] for the hosted account `author`.
    pub fn send_as(
        &self,
        room: &Room,
        text: &str,
        author: Option<[u8; 32]>,
    ) -> Result<Local, SendError> {
        envelope::check_text(text)?;
        let state = self.state();
        self.store_own(state, |seq| {
            envelope::sign(
                &self.inner.key,
                &Draft {
                    seq,
                    hlc: self.inner.clock.tick(),
                    room,
                    text,
                    nick: self.inner.nick.as_ref(),
                    event: None,
                    author,
                    change: None,
                },
            )
        })
    }

    /// Stores this node's own message or change that `sign` signs with the next own number
    /// (past any own message the store holds: `own.rs`), shows it to local subscribers and
    /// counts it as sent.
    fn store_own(
        &self,
        mut state: MutexGuard<'_, State>,
        sign: impl Fn(u64) -> Result<ChatMessage, envelope::TextError>,
    ) -> Result<Local, SendError> {
        // Committed before the caller answers: a read right after sees it.
        let mut shown = self.inner.pipeline.get().map(|p| p.shown());
        let at = shown.as_mut().map(|s| s.reserve());
        let key = self.inner.key.verifying_key();
        let (pos, message) = own::insert_own(&mut state, &key, at, sign)?;
        let stored = Arc::new(Stored { pos, message });
        self.inner.hub.publish(stored.clone());
        drop(shown);
        drop(state);
        self.inner.counters.sent.fetch_add(1, Ordering::Relaxed);
        Ok(Local {
            seq: stored.message.seq,
            wire: stored.message.wire.to_vec(),
            stored,
        })
    }

    /// Edits (`edit` the new text) or deletes (`edit` `None`) the message `target` of the
    /// hosted account `author`: checks that it is this node's and that account's, signs the
    /// change, stores it (applying it) and shows it to local subscribers; the caller
    /// broadcasts it at once, as after [`Chat::send_as`].
    pub fn change_as(
        &self,
        target: MessageId,
        edit: Option<&str>,
        author: Option<[u8; 32]>,
    ) -> Result<Local, ChangeError> {
        if let Some(text) = edit {
            envelope::check_text(text).map_err(SendError::from)?;
        }
        let state = self.state();
        let Some(old) = state.store.find(&target).map_err(ChatError::from)? else {
            return Err(ChangeError::NotFound(target));
        };
        let old = old.message;
        match old.kind {
            Kind::Deleted => return Err(ChangeError::Deleted(target)),
            Kind::Text if old.origin == self.inner.key.verifying_key() && old.author == author => {}
            _ => return Err(ChangeError::NotYours(target)),
        }
        Ok(self.store_own(state, |seq| {
            envelope::sign(
                &self.inner.key,
                &Draft {
                    seq,
                    hlc: self.inner.clock.tick(),
                    room: &old.room,
                    text: edit.unwrap_or(""),
                    nick: self.inner.nick.as_ref(),
                    event: None,
                    author,
                    change: Some(match edit {
                        Some(_) => Change::Edit(target),
                        None => Change::Delete(target),
                    }),
                },
            )
        })?)
    }

    /// The stored message `id` as it stands now (edited, or deleted), if stored.
    pub fn find(&self, id: &MessageId) -> Result<Option<Stored>, ChatError> {
        let Some(p) = self.inner.pipeline.get() else {
            return Ok(self.state().store.find(id)?);
        };
        if let Some(s) = p.find(id) {
            return Ok(Some(s));
        }
        match &self.inner.reader {
            Some(r) => Ok(queries::by(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
                "m.id",
                &id.0[..],
            )?),
            None => Ok(self.state().store.find(id)?),
        }
    }

    /// Hands one driver turn's verified messages from the ring over to the store's thread
    /// (`pipeline.rs`), or stores them here when there is none.
    pub fn hand_over(&self, messages: Vec<ChatMessage>) {
        match self.inner.pipeline.get() {
            Some(p) => p.hand_over(&self.inner, messages),
            None => {
                for m in messages {
                    if let Err(e) = self.accept_verified(m) {
                        tracing::debug!(
                            reason = e.reason(),
                            "broadcast not accepted by the chat store"
                        );
                    }
                }
            }
        }
    }

    /// Whether messages from the ring go to the store's own thread (`pipeline.rs`).
    pub fn pipelined(&self) -> bool {
        self.inner.pipeline.get().is_some()
    }

    /// Verifies, dedupes, stores and publishes an envelope from the ring. `Ok` means the
    /// message is new here (forward it); [`AcceptError::Duplicate`] means it was seen before.
    pub fn accept_remote(&self, wire: &[u8]) -> Result<Arc<Stored>, AcceptError> {
        let message = envelope::open(wire).map_err(|e| match e {
            EnvelopeError::Oversized(n) => AcceptError::Oversized(n),
            EnvelopeError::Malformed(why) => AcceptError::Malformed(why),
            EnvelopeError::BadSignature => AcceptError::BadSignature,
        });
        self.inner
            .count(message.and_then(|m| self.inner.accept_message(m)))
    }

    /// [`Chat::accept_remote`] for a message already verified in this process (by the ring's
    /// validator, [`RingInbox`]).
    pub fn accept_verified(&self, message: ChatMessage) -> Result<Arc<Stored>, AcceptError> {
        self.inner.count(self.inner.accept_message(message))
    }

    /// Messages matching `s`, newest first (committed ones: a message is searchable once
    /// the indexer's next pass has seen it, within about a second). `None` for a history
    /// kept in memory, which has no index.
    pub fn search(&self, s: &search::Search<'_>) -> Result<Option<Vec<Stored>>, ChatError> {
        let Some(reader) = &self.inner.reader else {
            return Ok(None);
        };
        let r = reader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Some(search::query(&r.db, s)?))
    }

    /// Deletes the messages older than `max_age` (`chat.retention_days`), in chunks so that
    /// the writer is never held for long; returns how many went.
    pub fn prune_expired(&self, max_age: std::time::Duration) -> Result<usize, ChatError> {
        /// Messages deleted per hold of the writer.
        const CHUNK: usize = 5000;
        let now = hlc::wall_millis();
        let cut = now.saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        let mut total = 0;
        loop {
            let n = self.state().store.prune_older(cut, CHUNK)?;
            total += n;
            if n < CHUNK {
                return Ok(total);
            }
        }
    }

    /// Whether messages from the ring have waited the commit delay at `now`.
    pub fn commit_due(&self, now: Instant) -> bool {
        !self.pipelined() && self.state().store.commit_due(now)
    }

    /// When messages from the ring waiting uncommitted must be committed at the latest.
    pub fn commit_deadline(&self) -> Option<Instant> {
        if self.pipelined() {
            return None;
        }
        self.state().store.commit_deadline()
    }

    /// Takes the `(origin, seq)` of the messages from the ring that a failed write lost (disk
    /// full, I/O error) since the last call: the ring's driver makes the overlay forget it saw
    /// them, so that anti-entropy brings them back (`docs/protocol.md`, "Anti-entropy").
    pub fn take_dropped(&self) -> Vec<([u8; 32], u64)> {
        let mut d = self.inner.dropped.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *d)
    }

    /// Commits messages from the ring that wait uncommitted (a failure is logged by the store
    /// and rolls them back).
    /// With the store's own thread: waits until it has stored and committed everything
    /// handed over before (shutdown, tests).
    pub fn commit(&self) -> Result<(), ChatError> {
        if let Some(p) = self.inner.pipeline.get() {
            p.settle();
        }
        self.inner.commit_writer()
    }

    /// Starts a subscription to `room` (all rooms if `None`). Returns `Ok(None)` when
    /// `chat.max_subscribers` subscriptions are open.
    pub fn subscribe(
        &self,
        room: Option<Room>,
        start: Start,
    ) -> Result<Option<mpsc::Receiver<FeedEvent>>, ChatError> {
        let Ok(permit) = self.inner.subscriptions.clone().try_acquire_owned() else {
            return Ok(None);
        };
        subscription::spawn(self.clone(), room, start, permit).map(Some)
    }

    /// The local position of message `id`, if stored.
    pub fn position(&self, id: &MessageId) -> Result<Option<i64>, ChatError> {
        if self.pipelined() {
            return Ok(self.find(id)?.map(|s| s.pos));
        }
        Ok(self.state().store.position(id)?)
    }

    /// A page of history on the reader's connection (never the writer's lock), or on the
    /// writer's for an in-memory history: after `bound` (oldest first) or, with `after` false,
    /// the newest before it.
    fn page(
        &self,
        bound: i64,
        room: Option<&Room>,
        limit: usize,
        after: Option<Rows>,
    ) -> Result<Vec<Stored>, ChatError> {
        let rows = match &self.inner.reader {
            Some(r) => {
                let r = r.lock().unwrap_or_else(|p| p.into_inner());
                match after {
                    Some(rows) => queries::after(&r.db, bound, room, limit, rows),
                    None => queries::before(&r.db, bound, room, limit),
                }
            }
            None => {
                let state = self.state();
                match after {
                    Some(rows) => state.store.after_rows(bound, room, limit, rows),
                    None => state.store.before(bound, room, limit),
                }
            }
        };
        Ok(rows?)
    }

    /// Up to `limit` messages after position `after`, oldest first. Committed rows come from
    /// the reader's connection ([`reader`]); the last few that the ring's group commit has not
    /// committed yet (at most `store::MAX_BATCH`, the newest) from the writer's, in a short
    /// indexed read.
    pub fn after(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, ChatError> {
        self.after_rows(after, room, limit, Rows::History)
    }

    /// [`Chat::after`] with the edits and deletes a subscription replays.
    pub fn feed_after(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, ChatError> {
        self.after_rows(after, room, limit, Rows::Feed)
    }

    fn after_rows(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
        which: Rows,
    ) -> Result<Vec<Stored>, ChatError> {
        if let Some(p) = self.inner.pipeline.get() {
            // Pending first: one committed meanwhile is in the committed rows read after.
            let pending = p.after(after, room, limit, which);
            let rows = self.page(after, room, limit, Some(which))?;
            let mut rows = pipeline::merge(rows, pending);
            rows.truncate(limit);
            return Ok(rows);
        }
        let mut rows = self.page(after, room, limit, Some(which))?;
        if rows.len() < limit && self.inner.reader.is_some() {
            // Every committed row after `after` is in `rows`: what follows is newer.
            let from = rows.last().map_or(after, |s| s.pos);
            let more = self
                .state()
                .store
                .after_rows(from, room, limit - rows.len(), which)?;
            rows.extend(more);
        }
        Ok(rows)
    }

    /// Up to `limit` newest messages before position `before`, oldest first: the uncommitted
    /// newest from the writer's connection, the rest from the reader's (as [`Chat::after`]).
    pub fn before(
        &self,
        before: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, ChatError> {
        if self.inner.reader.is_none() {
            return self.page(before, room, limit, None);
        }
        if let Some(p) = self.inner.pipeline.get() {
            let pending = p.before(before, room, limit);
            let rows = self.page(before, room, limit, None)?;
            let rows = pipeline::merge(rows, pending);
            let extra = rows.len().saturating_sub(limit);
            return Ok(rows.into_iter().skip(extra).collect());
        }
        // Rows after the committed head are the group commit's (or committed since).
        let head = self.committed_head()?;
        let newest = self.state().store.between(head, before, room, limit)?;
        if newest.len() >= limit {
            return Ok(newest);
        }
        let mut rows = self.page(before.min(head + 1), room, limit - newest.len(), None)?;
        rows.extend(newest);
        Ok(rows)
    }

    /// The newest committed position (0 when empty).
    fn committed_head(&self) -> Result<i64, ChatError> {
        Ok(self
            .page(i64::MAX, None, 1, None)?
            .last()
            .map_or(0, |s| s.pos))
    }

    /// The newest position overall (0 when empty) and the newest `n` messages up to it. The
    /// head is read first: a message stored meanwhile lies after it and comes with the replay
    /// that follows.
    fn backlog(&self, room: Option<&Room>, n: usize) -> Result<(i64, Vec<Stored>), ChatError> {
        let head = self.before(i64::MAX, None, 1)?.last().map_or(0, |s| s.pos);
        let backlog = if n == 0 || head == 0 {
            Vec::new()
        } else {
            self.before(head + 1, room, n)?
        };
        Ok((head, backlog))
    }

    /// Rooms with stored messages (committed ones; the reader's connection).
    pub fn rooms(&self) -> Result<Vec<store::RoomSummary>, ChatError> {
        match &self.inner.reader {
            Some(r) => Ok(queries::rooms(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
            )?),
            None => Ok(self.state().store.rooms()?),
        }
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
