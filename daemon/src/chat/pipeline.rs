//! The chat store off the ring's driver: its own thread (`chat-store`), fed one driver turn at
//! a time, with messages shown to local subscribers before they are stored.
//!
//! **A turn at a time.** The overlay driver collects the messages one turn delivers
//! ([`super::RingInbox`]) and, once the turn's forwards are queued, hands them over in one
//! call ([`super::Chat::hand_over`]): one lock of the queue, and a wake of the thread only when
//! it sleeps with nothing to do. The thread then gathers for the commit delay
//! (`chat.commit_delay_ms`) before it takes everything queued and stores it as one
//! transaction, so under load it wakes about once per delay, not once per message.
//!
//! **Shown before stored.** A plain text message that the store will certainly take as new is
//! published to the hub by the driver at once, at a position reserved for it here ([`Shown`]);
//! the thread later stores it at that position. "Certainly new" is decided without the
//! writer: no message handed over and not yet committed has its id or names it as a target
//! (`inflight`), its timestamp is above the retention horizon, and its sequence number is
//! above every one its origin has in the store or handed over (`seqs`, kept in memory, read
//! once per origin on a read-only connection of the driver's own, `probe`) — or, for a message
//! that arrives out of order, one indexed read there finds no committed row with its id, its
//! origin and sequence number, or naming it as a target. Anything else — edits, deletes,
//! people events, a message with changes held for it, a duplicate from before a restart — is
//! left to the thread, which decides, stores and publishes it as before (and is woken for it at
//! once). Positions are only ever reserved under the [`Shown`] lock, and publishing happens
//! under it too, so subscribers receive messages in position order, as they require.
//!
//! **Reads.** A message shown and not yet committed stays in `pending` until its commit; the
//! history reads merge it with the committed rows they read on the reader's connection
//! ([`super::Chat::after`], [`super::Chat::before`]), so a subscription that joins meanwhile
//! neither misses nor repeats it, and no read takes the writer's lock. This node's own messages
//! are still stored and committed before `Send` returns (on the driver), so a History right
//! after a Send sees them.
//!
//! **Bounded.** At most [`QUEUE`] messages wait for the thread. A turn that finds no room makes
//! the driver wait until the thread has taken the queue (`store_queue_waits_total` counts such
//! waits): the driver never drops a message it has shown, and its own inbound queue pushes back
//! on the peers meanwhile. `pending` and `inflight` hold only queued or uncommitted messages,
//! so they are bounded by twice [`QUEUE`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tracing::{debug, error, warn};

use super::Inner;
use super::envelope::{ChatMessage, Kind, MessageId};
use super::queries::Rows;
use super::room::Room;
use super::store::{DB_FILE, Insert, StoreError, Stored};

/// Messages waiting for the store thread at most; a turn that finds no room waits (counted).
pub const QUEUE: usize = 1024;

/// Environment variable: `driver` stores on the overlay driver, as before issue 33 (the A/B
/// measurements switch it; docs/performance.md); anything else, or nothing, uses the thread.
pub const STORE_ENV: &str = "CHAT_STORE";

/// Environment variable: the thread's gathering period in milliseconds (default: the commit
/// delay, `chat.commit_delay_ms`), for measurements.
pub const GATHER_ENV: &str = "CHAT_STORE_GATHER_MS";

/// How long [`Pipeline::settle`] waits for the thread at most.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// Work for the store thread.
// Boxing the message would cost an allocation per message decided; the queue is bounded.
#[allow(clippy::large_enum_variant)]
enum Job {
    /// Shown already, at its position: store it there.
    Shown(Arc<Stored>),
    /// Not shown: the store decides what it is (and publishes it if it is to be shown).
    Decide(ChatMessage),
}

/// The queue between the driver and the thread.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// The thread waits for a first job; whoever queues one wakes it.
    idle: bool,
    /// The thread is to stop gathering and take the queue now.
    urgent: bool,
    /// No more jobs: the thread stores what is queued and stops.
    closed: bool,
    /// Jobs ever queued, and ever stored and committed (or given up).
    queued: u64,
    done: u64,
    /// Callers waiting for room or for the thread to finish ([`Pipeline::settle`]).
    waiting: usize,
}

/// Positions, and the messages shown but not yet committed.
#[derive(Debug)]
pub(super) struct Shown {
    /// The next position to hand out.
    next: i64,
    /// Shown and not yet committed, by position.
    pending: VecDeque<Arc<Stored>>,
    /// Ids of messages handed over and not yet committed, and the ids they target.
    inflight: HashMap<MessageId, u32>,
    /// Per origin (at most [`MAX_ORIGINS`]), a sequence number at or above every one of its
    /// messages stored or handed over: the highest stored when first asked, raised by each
    /// message handed over since.
    seqs: HashMap<[u8; 32], u64>,
}

/// Origins whose highest sequence number [`Shown`] keeps; past that it forgets them all and
/// reads each again when it next sees it.
const MAX_ORIGINS: usize = 4096;

impl Shown {
    /// The next position, reserved.
    pub(super) fn reserve(&mut self) -> i64 {
        let pos = self.next;
        self.next += 1;
        pos
    }

    /// Notes `stored`, just published, as shown and not yet committed.
    pub(super) fn shown(&mut self, stored: Arc<Stored>) {
        self.pending.push_back(stored);
    }

    fn enter(&mut self, m: &ChatMessage) {
        for id in std::iter::once(m.id).chain(m.target) {
            *self.inflight.entry(id).or_default() += 1;
        }
    }

    fn leave(&mut self, id: MessageId, target: Option<MessageId>) {
        for id in std::iter::once(id).chain(target) {
            if let Some(n) = self.inflight.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    self.inflight.remove(&id);
                }
            }
        }
    }
}

/// The store thread's side of the chat core (module comment).
pub(super) struct Pipeline {
    shown: Mutex<Shown>,
    queue: Mutex<Queue>,
    /// The thread waits here for jobs (and gathers).
    wake: Condvar,
    /// The driver waits here for room, [`Pipeline::settle`] for the thread.
    moved: Condvar,
    /// The driver's read-only connection for its check of a message's novelty.
    probe: Mutex<Connection>,
    /// The store's retention horizon (timestamps at or below it are refused), as last seen.
    horizon: AtomicI64,
    gather: Duration,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the environment asks for the store on the driver (before issue 33).
pub fn on_driver() -> bool {
    std::env::var(STORE_ENV).is_ok_and(|v| v == "driver")
}

impl Pipeline {
    /// A pipeline for the history in `dir` whose newest position is `head`; `gather` is the
    /// commit delay.
    pub(super) fn open(
        dir: &Path,
        head: i64,
        horizon: i64,
        gather: Duration,
    ) -> Result<Pipeline, StoreError> {
        let probe = Connection::open(dir.join(DB_FILE))?;
        probe.pragma_update(None, "query_only", true)?;
        Ok(Pipeline {
            shown: Mutex::new(Shown {
                next: head + 1,
                pending: VecDeque::new(),
                inflight: HashMap::new(),
                seqs: HashMap::new(),
            }),
            queue: Mutex::default(),
            wake: Condvar::new(),
            moved: Condvar::new(),
            probe: Mutex::new(probe),
            horizon: AtomicI64::new(horizon),
            gather: std::env::var(GATHER_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(gather, Duration::from_millis),
        })
    }

    /// The positions' lock (taken after the writer's, never before it).
    pub(super) fn shown(&self) -> MutexGuard<'_, Shown> {
        lock(&self.shown)
    }

    /// Notes the store's retention horizon.
    pub(super) fn set_horizon(&self, horizon: i64) {
        self.horizon.store(horizon, Ordering::Relaxed);
    }

    /// Starts the thread, which holds `inner` only while it stores.
    pub(super) fn start(self: &Arc<Self>, inner: &Arc<Inner>) -> Result<(), StoreError> {
        let weak = Arc::downgrade(inner);
        let p = self.clone();
        std::thread::Builder::new()
            .name("chat-store".into())
            .spawn(move || {
                // Its death would leave the driver waiting for room that never comes and
                // shown messages never stored: it stops the daemon (status 1), as a dead
                // supervised task does; what it held comes back by anti-entropy after the
                // restart.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if crate::supervise::fault("chat-store") {
                        panic!("injected fault");
                    }
                    run(&p, &weak)
                }));
                if ran.is_err() {
                    error!("the chat store thread panicked; stopping the daemon");
                    std::process::exit(1);
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(())
    }

    /// Hands one driver turn's verified `messages` over: waits for room if need be (counted),
    /// publishes those that are certainly new at once and queues everything for the thread.
    pub(super) fn hand_over(&self, inner: &Inner, messages: Vec<ChatMessage>) {
        self.wait_for_room(inner, messages.len());
        let mut jobs = Vec::with_capacity(messages.len());
        let mut urgent = false;
        {
            let mut shown = self.shown();
            for message in messages {
                if let Err(e) = inner.clock.observe(message.hlc) {
                    debug!(error = %e, "broadcast not accepted by the chat store");
                    inner.counters.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                shown.enter(&message);
                let fresh = self.certainly_new(&mut shown, &message);
                if fresh {
                    let pos = shown.reserve();
                    let stored = Arc::new(Stored { pos, message });
                    inner.observe_latency(&stored);
                    inner.counters.received.fetch_add(1, Ordering::Relaxed);
                    inner.hub.publish(stored.clone());
                    shown.shown(stored.clone());
                    jobs.push(Job::Shown(stored));
                } else {
                    urgent = true;
                    jobs.push(Job::Decide(message));
                }
            }
        }
        if jobs.is_empty() {
            return;
        }
        let mut q = lock(&self.queue);
        q.queued += jobs.len() as u64;
        q.jobs.extend(jobs);
        if q.idle {
            q.idle = false;
            self.wake.notify_one();
        } else if urgent && !q.urgent {
            q.urgent = true;
            self.wake.notify_one();
        }
    }

    /// Whether the store will take `m` as a new message to show as it is (module comment);
    /// notes its sequence number as handed over. `m` is already in `inflight` (once).
    fn certainly_new(&self, shown: &mut Shown, m: &ChatMessage) -> bool {
        let origin = *m.origin.as_bytes();
        let high = match shown.seqs.get(&origin) {
            Some(high) => Some(*high),
            None => self.highest_seq(&origin),
        };
        if let Some(high) = high {
            if shown.seqs.len() >= MAX_ORIGINS && !shown.seqs.contains_key(&origin) {
                shown.seqs.clear();
            }
            shown.seqs.insert(origin, high.max(m.seq));
        }
        if m.kind != Kind::Text || m.target.is_some() {
            return false;
        }
        if shown.inflight.get(&m.id).is_some_and(|n| *n > 1) {
            // A copy, or a change of it, is on its way to the store.
            return false;
        }
        if (m.hlc.0 as i64) <= self.horizon.load(Ordering::Relaxed) {
            return false;
        }
        // Above every sequence number of its origin stored: not stored (its id covers its
        // origin and number), no other message holds the number, and no change of it by its
        // author is held (an author numbers a change after its target). A change by anyone
        // else is dropped when its target arrives. Only the store's row can say more.
        if high.is_some_and(|high| m.seq > high) {
            return true;
        }
        self.unknown(m)
    }

    /// The highest sequence number of `origin` stored (0 for none); `None` if the read failed.
    fn highest_seq(&self, origin: &[u8; 32]) -> Option<u64> {
        let probe = lock(&self.probe);
        let high = probe
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE origin = ?1")
            .and_then(|mut s| s.query_row([&origin[..]], |r| r.get::<_, i64>(0)));
        match high {
            Ok(high) => Some(u64::try_from(high).unwrap_or(0)),
            Err(e) => {
                debug!(error = %e, "sequence read failed; the store decides");
                None
            }
        }
    }

    /// Whether no committed row has `m`'s id, its origin and sequence number, or names it as a
    /// target (one read on the driver's own connection).
    fn unknown(&self, m: &ChatMessage) -> bool {
        let probe = lock(&self.probe);
        let known = probe
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?1)
                     OR EXISTS (SELECT 1 FROM messages WHERE origin = ?2 AND seq = ?3)
                     OR EXISTS (SELECT 1 FROM messages WHERE target = ?1)",
            )
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![&m.id.0[..], &m.origin.as_bytes()[..], m.seq as i64],
                    |r| r.get::<_, bool>(0),
                )
            });
        match known {
            Ok(known) => !known,
            Err(e) => {
                debug!(error = %e, "novelty check failed; the store decides");
                false
            }
        }
    }

    /// Waits until `n` more messages fit in the queue (counting the wait), waking the thread.
    fn wait_for_room(&self, inner: &Inner, n: usize) {
        let mut q = lock(&self.queue);
        if q.jobs.is_empty() || q.jobs.len() + n <= QUEUE || q.closed {
            return;
        }
        inner.metrics.store_queue_waits.inc();
        q.urgent = true;
        q.idle = false;
        self.wake.notify_one();
        q.waiting += 1;
        while !q.jobs.is_empty() && q.jobs.len() + n > QUEUE && !q.closed {
            q = self.moved.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        q.waiting -= 1;
    }

    /// Waits until the thread has stored and committed everything queued before this call
    /// (at most [`SETTLE_WAIT`]).
    pub(super) fn settle(&self) {
        let mut q = lock(&self.queue);
        let target = q.queued;
        if q.done >= target {
            return;
        }
        q.urgent = true;
        q.idle = false;
        self.wake.notify_one();
        q.waiting += 1;
        let deadline = Instant::now() + SETTLE_WAIT;
        while q.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn!(
                    done = q.done,
                    target, "the chat store thread is not keeping up; going on"
                );
                break;
            }
            q = self
                .moved
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        q.waiting -= 1;
    }

    /// Messages waiting in the queue (tests).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        lock(&self.queue).jobs.len()
    }

    /// Stops the thread once it has stored what is queued.
    pub(super) fn close(&self) {
        let mut q = lock(&self.queue);
        q.closed = true;
        self.wake.notify_one();
    }

    /// Shown messages not yet committed, after position `from` (oldest first, at most
    /// `limit`), as a read of `rows` in `room` would return them.
    pub(super) fn after(
        &self,
        from: i64,
        room: Option<&Room>,
        limit: usize,
        rows: Rows,
    ) -> Vec<Stored> {
        let shown = self.shown();
        shown
            .pending
            .iter()
            .filter(|s| s.pos > from && fits(s, room, rows))
            .take(limit)
            .map(|s| Stored::clone(s))
            .collect()
    }

    /// Shown messages not yet committed before position `before` (the newest `limit`, oldest
    /// first), as a history read in `room` would return them.
    pub(super) fn before(&self, before: i64, room: Option<&Room>, limit: usize) -> Vec<Stored> {
        let shown = self.shown();
        let mut rows: Vec<Stored> = shown
            .pending
            .iter()
            .rev()
            .filter(|s| s.pos < before && fits(s, room, Rows::History))
            .take(limit)
            .map(|s| Stored::clone(s))
            .collect();
        rows.reverse();
        rows
    }

    /// The shown message `id` not yet committed, if any.
    pub(super) fn find(&self, id: &MessageId) -> Option<Stored> {
        let shown = self.shown();
        shown
            .pending
            .iter()
            .find(|s| s.message.id == *id)
            .map(|s| Stored::clone(s))
    }
}

/// Whether `s` belongs in a read of `rows` in `room`.
fn fits(s: &Stored, room: Option<&Room>, rows: Rows) -> bool {
    if room.is_some_and(|r| *r != s.message.room) {
        return false;
    }
    match s.message.kind {
        Kind::Text | Kind::Deleted => true,
        Kind::People => !s.message.text.is_empty(),
        Kind::Edit | Kind::Delete => rows == Rows::Feed,
    }
}

/// Merges committed `rows` with `pending` ones (both oldest first): a position in both is
/// the committed row's (it shows later edits).
pub(super) fn merge(rows: Vec<Stored>, pending: Vec<Stored>) -> Vec<Stored> {
    if pending.is_empty() {
        return rows;
    }
    let mut all = rows;
    all.extend(pending);
    // Stable: the committed row of a position comes first and is kept.
    all.sort_by_key(|s| s.pos);
    all.dedup_by_key(|s| s.pos);
    all
}

/// The thread: waits for a first job, gathers for the commit delay (unless woken for an
/// urgent one), takes the queue, stores it, commits, and starts again. It holds the chat core
/// only while it stores, so the core can go (its `Drop` closes the queue).
fn run(p: &Pipeline, weak: &Weak<Inner>) {
    // Whether the last period brought work: then the next one starts without waiting to be
    // woken (the driver does not wake a thread that is gathering), so under steady load the
    // thread wakes once per period.
    let mut busy = false;
    loop {
        let jobs = {
            let mut q = lock(&p.queue);
            if !busy {
                while q.jobs.is_empty() && !q.closed {
                    q.idle = true;
                    q = p.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                q.idle = false;
            }
            let until = Instant::now() + p.gather;
            while !q.urgent && !q.closed {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                q = p
                    .wake
                    .wait_timeout(q, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            q.urgent = false;
            if q.jobs.is_empty() {
                if q.closed {
                    return;
                }
                // A whole period brought nothing: sleep until woken.
                busy = false;
                continue;
            }
            busy = true;
            if q.waiting > 0 {
                // The driver may wait for room.
                p.moved.notify_all();
            }
            std::mem::take(&mut q.jobs)
        };
        let n = jobs.len() as u64;
        match weak.upgrade() {
            Some(inner) => inner.store_jobs(p, jobs),
            None => {
                error!(
                    messages = n,
                    "the chat core is gone; queued messages not stored"
                );
            }
        }
        let mut q = lock(&p.queue);
        q.done += n;
        if q.waiting > 0 {
            p.moved.notify_all();
        }
    }
}

impl Inner {
    /// Stores `jobs` in one transaction, then forgets them as pending.
    fn store_jobs(&self, p: &Pipeline, jobs: VecDeque<Job>) {
        let mut done = Vec::with_capacity(jobs.len());
        for job in jobs {
            match job {
                Job::Shown(stored) => {
                    let mut state = self.state();
                    match state.store.insert_at(&stored.message, Some(stored.pos)) {
                        Ok(Insert::New(pos)) if pos == stored.pos => {}
                        Ok(other) => {
                            self.metrics.shown_not_stored.inc();
                            warn!(
                                pos = stored.pos,
                                ?other,
                                "a message shown before it was stored was not stored as new"
                            );
                        }
                        Err(e) => error!(error = %e, "a message shown was not stored"),
                    }
                    p.set_horizon(state.store.horizon());
                    drop(state);
                    done.push((stored.message.id, stored.message.target));
                }
                Job::Decide(message) => {
                    done.push((message.id, message.target));
                    if let Err(e) = self.count(self.accept_message(message)) {
                        debug!(
                            reason = e.reason(),
                            "broadcast not accepted by the chat store"
                        );
                    }
                }
            }
        }
        // A failed commit was logged by the store, which rolled the group back and noted its
        // messages for the ring's driver: anti-entropy brings them back.
        let _ = self.commit_writer();
        let mut shown = p.shown();
        for (id, target) in &done {
            shown.leave(*id, *target);
        }
        if shown.inflight.is_empty() {
            shown.pending.clear();
        } else {
            let ids: HashSet<MessageId> = done.iter().map(|(id, _)| *id).collect();
            shown.pending.retain(|s| !ids.contains(&s.message.id));
        }
    }
}
