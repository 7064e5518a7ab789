//! ChatMessage history in SQLite (`chat.sqlite3` in the data directory).
//!
//! One table of verified messages in the order this node accepted them (`pos`, its local
//! position, which is what subscriptions resume from), deduplicated by id and by
//! `(origin, sequence)`. Retention is bounded: past `chat.retention_messages` rows the oldest
//! are deleted, and the newest deleted timestamp becomes the *horizon*: older messages arriving
//! later are refused, because the store can no longer tell them from replays.
//!
//! Statements are prepared once and cached; the log is checkpointed by a
//! [`Checkpointer`] thread, never inside a commit.
//!
//! **Group commit.** Messages relayed from the ring join an open write transaction (a
//! *batch*) that is committed once it is `commit_delay` old — by the overlay driver, after the
//! sends of the message at hand have left ([`Store::commit_due`], [`Store::commit_deadline`]) —
//! or when it holds [`MAX_BATCH`] messages, when this node's own message is stored (a `Send`
//! returns only once its message is committed), and when the store is dropped. Reads on this
//! connection see the batch, so history and subscriptions never disagree with what was shown.
//! What a crash (`kill -9`) takes is at most `commit_delay` of relayed messages from this
//! node's disk, never from the ring: the restarted node's overlay remembers nothing, so its
//! neighbours' anti-entropy sends them again. Committing every message instead cost about four
//! page writes per message and most of the store's time (docs/performance.md).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, OptionalExtension, params};

use super::changes;
use super::checkpoint::Checkpointer;
use super::envelope::{ChatMessage, Kind, MessageId};
use super::hlc::Timestamp;
use super::queries;
use super::released;
use super::room::Room;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "chat.sqlite3";

/// Bytes of write-ahead log kept when the log restarts.
const LOG_SIZE_LIMIT: i64 = 16 << 20;

/// Messages one batch holds at most; the insert that fills it commits it.
pub const MAX_BATCH: usize = 256;

/// Messages lost to a failed write that wait for the ring to be told ([`Store::dropped`]);
/// past this the oldest are kept and the rest come back only after a restart.
pub const MAX_DROPPED: usize = 4096;

/// `(origin, seq)` of messages a failed write lost, shared with the ring's driver, which makes
/// the overlay forget it saw them so that anti-entropy brings them back.
pub type Dropped = Arc<Mutex<Vec<([u8; 32], u64)>>>;

/// A stored message and its local position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Local acceptance order (1, 2, …; never reused).
    pub pos: i64,
    /// The message.
    pub message: ChatMessage,
}

/// What the store thinks of a message offered to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// Stored at this position.
    New(i64),
    /// Already stored.
    Duplicate,
    /// The origin already used this sequence number for a different message.
    SeqReused,
    /// Older than the retention horizon.
    Stale,
    /// A text message stored at this position, with edits that came before it: read it
    /// back to show its current text.
    Amended(i64),
    /// A text message whose delete came before it: stored deleted (nothing to show).
    Redacted(i64),
    /// An edit or delete stored at this position, held until its target arrives.
    Held(i64),
    /// An edit stored at this position that a later one (by timestamp, then id) overrides.
    Superseded(i64),
    /// A change of a message that is deleted, or the message itself after its delete: not
    /// stored again.
    Deleted,
    /// An edit or delete of a message of another author, room or kind: refused.
    Forbidden,
}

impl Insert {
    /// Where the message was stored, if it was.
    pub fn stored_at(&self) -> Option<i64> {
        match *self {
            Insert::New(p)
            | Insert::Amended(p)
            | Insert::Redacted(p)
            | Insert::Held(p)
            | Insert::Superseded(p) => Some(p),
            _ => None,
        }
    }
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("chat store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A row does not decode (the file was damaged or edited).
    #[error("chat store: corrupt row: {0}")]
    Corrupt(&'static str),
    /// A thread of the store could not start.
    #[error("chat store: {0}")]
    Thread(std::io::Error),
    /// The history file could not be opened or set up (damaged, not a database, no space).
    #[error("chat store {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
}

/// A summary of one room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomSummary {
    /// The room.
    pub name: String,
    /// Stored messages in it.
    pub count: u64,
    /// Its newest message.
    pub last_id: MessageId,
    /// Its newest message's timestamp.
    pub last_hlc: Timestamp,
}

/// The SQLite history.
#[derive(Debug)]
pub struct Store {
    db: Connection,
    retention: u64,
    /// Checkpoints the log off the write path (file databases only).
    checkpointer: Option<Checkpointer>,
    /// How long relayed messages may wait uncommitted (zero: commit each one).
    commit_delay: Duration,
    /// The open write transaction, if any.
    batch: Option<Batch>,
    /// The retention horizon (a copy of the `meta` row, which the batch may not have
    /// committed yet).
    horizon: i64,
    /// The batch deleted a message's text: once it is committed, the write-ahead log is
    /// emptied too, so no old copy of the text stays in it.
    erased: bool,
    /// Messages a failed write lost (at most [`MAX_DROPPED`]).
    dropped: Dropped,
}

/// The open write transaction.
#[derive(Debug)]
struct Batch {
    opened: Instant,
    /// New messages in it.
    messages: usize,
    /// Their `(origin, seq)`, told to the ring if the batch is rolled back.
    keys: Vec<([u8; 32], u64)>,
}

// `pos` is the rowid without AUTOINCREMENT (which costs a write of `sqlite_sequence` per
// insert): a rowid is reused only after the largest one is deleted, and pruning always keeps
// the newest message. Databases created with AUTOINCREMENT keep it; both behave the same.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    pos    INTEGER PRIMARY KEY,
    id     BLOB    NOT NULL UNIQUE,
    origin BLOB    NOT NULL,
    seq    INTEGER NOT NULL,
    hlc    INTEGER NOT NULL,
    kind   INTEGER NOT NULL,
    room   TEXT    NOT NULL,
    nick   TEXT    NOT NULL,
    body   TEXT    NOT NULL,
    wire   BLOB    NOT NULL,
    UNIQUE (origin, seq)
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, pos);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// Edits and deletes (`changes.rs`): the changed message's id (`target`), whether the change
/// waits for it (`held`), and the positions whose text the search index must read again.
/// Added to a history of an earlier version when it is opened.
const CHANGES: &str = "
ALTER TABLE messages ADD COLUMN target BLOB;
ALTER TABLE messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
";
const CHANGE_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS messages_by_target ON messages (target, hlc, id) WHERE target IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_held ON messages (pos) WHERE held = 1;
CREATE TABLE IF NOT EXISTS reindex (n INTEGER PRIMARY KEY, pos INTEGER NOT NULL);
";

impl Store {
    /// Opens (creating if needed) `DIR/chat.sqlite3`, keeping at most `retention` messages.
    pub fn open(dir: &Path, retention: u64) -> Result<Store, StoreError> {
        let path = dir.join(DB_FILE);
        let named = |e: StoreError| match e {
            StoreError::Sql(source) => StoreError::Open {
                path: path.clone(),
                source,
            },
            e => e,
        };
        let db = Connection::open(&path).map_err(|e| named(e.into()))?;
        let mut store = Store::with_connection(db, retention).map_err(named)?;
        store.checkpointer = Checkpointer::start(&path);
        if store.checkpointer.is_some() {
            store.db.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        // A log that grew past this (a burst the checkpoints could not keep up with) is cut
        // back when it restarts; below it, restarts rewrite pages already in the page cache.
        store
            .db
            .pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
        Ok(store)
    }

    /// An in-memory store (tests).
    pub fn in_memory(retention: u64) -> Result<Store, StoreError> {
        Store::with_connection(Connection::open_in_memory()?, retention)
    }

    fn with_connection(db: Connection, retention: u64) -> Result<Store, StoreError> {
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        // Deleted and moved content is zeroed within the pages being written anyway (no extra
        // I/O), so an expired message leaves no stale copy behind (`prune_older`).
        db.pragma_update(None, "secure_delete", "fast")?;
        db.execute_batch(SCHEMA)?;
        let has_changes: bool = db.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'target'",
            [],
            |r| r.get(0),
        )?;
        if !has_changes {
            db.execute_batch(CHANGES)?;
        }
        db.execute_batch(CHANGE_INDEXES)?;
        db.execute_batch(released::SCHEMA)?;
        let horizon = meta(&db, "horizon")?.unwrap_or(0);
        Ok(Store {
            horizon,
            db,
            retention: retention.max(1),
            checkpointer: None,
            commit_delay: Duration::ZERO,
            batch: None,
            erased: false,
            dropped: Dropped::default(),
        })
    }

    /// Lets relayed messages wait up to `delay` in an open transaction (zero, the default:
    /// commit each message).
    pub fn set_commit_delay(&mut self, delay: Duration) {
        self.commit_delay = delay;
    }

    /// Offers a verified message relayed from the ring. A new one joins the batch: it is
    /// visible to reads at once and committed within the commit delay.
    pub fn insert(&mut self, m: &ChatMessage) -> Result<Insert, StoreError> {
        self.insert_at(m, None)
    }

    /// [`Store::insert`] at position `pos` if it is new (`None`: the next after the newest),
    /// for a position reserved before the insert (`pipeline.rs`).
    pub fn insert_at(&mut self, m: &ChatMessage, pos: Option<i64>) -> Result<Insert, StoreError> {
        let result = self.insert_with(m, None, pos)?;
        let batch = self.batch.as_ref().map_or(0, |b| b.messages);
        if self.commit_delay.is_zero() || batch == 0 || batch >= MAX_BATCH {
            self.commit()?;
        }
        Ok(result)
    }

    /// Offers this node's own message `m` and records its sequence number as the latest own
    /// one (which survives pruning; see [`Store::resume_point`]); commits it, with the batch,
    /// before returning.
    pub fn insert_own(&mut self, m: &ChatMessage) -> Result<Insert, StoreError> {
        self.insert_own_at(m, None)
    }

    /// [`Store::insert_own`] at a reserved position (as [`Store::insert_at`]).
    pub fn insert_own_at(
        &mut self,
        m: &ChatMessage,
        pos: Option<i64>,
    ) -> Result<Insert, StoreError> {
        let result = self.insert_with(m, Some(m.seq), pos)?;
        self.commit()?;
        Ok(result)
    }

    fn insert_with(
        &mut self,
        m: &ChatMessage,
        own_seq: Option<u64>,
        pos: Option<i64>,
    ) -> Result<Insert, StoreError> {
        let result = self.insert_in_batch(m, own_seq, pos);
        if result.is_err() {
            // The message itself is lost too (whether or not it was new).
            self.note_dropped(std::iter::once((*m.origin.as_bytes(), m.seq)));
        }
        result
    }

    fn insert_in_batch(
        &mut self,
        m: &ChatMessage,
        own_seq: Option<u64>,
        pos: Option<i64>,
    ) -> Result<Insert, StoreError> {
        if self.batch.is_none() {
            // BEGIN and COMMIT as cached statements: rusqlite's `transaction()` parses them
            // anew each time, which costs as much as the insert itself. IMMEDIATE: the write
            // lock is taken at once (waiting, if need be, for a checkpoint that holds it).
            // A transaction that began by reading (the insert's checks do) and then writes
            // would instead fail with "database is locked", without waiting, whenever the
            // checkpointer's RESTART held the lock at that moment.
            self.db.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            self.batch = Some(Batch {
                opened: Instant::now(),
                messages: 0,
                keys: Vec::new(),
            });
        }
        match self.insert_in_transaction(m, own_seq, pos) {
            Ok(insert) => {
                if let (Some(_), Some(b)) = (insert.stored_at(), self.batch.as_mut()) {
                    b.messages += 1;
                    b.keys.push((*m.origin.as_bytes(), m.seq));
                }
                Ok(insert)
            }
            Err(e) => {
                // A statement failed half way (I/O error, disk full): nothing of the
                // transaction can be trusted.
                self.roll_back(&e);
                Err(e)
            }
        }
    }

    /// Commits the batch, if one is open. On failure the batch is rolled back (its messages
    /// are noted in [`Store::dropped`]: the ring's anti-entropy brings them back) and the
    /// error returned.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.batch.is_none() {
            return Ok(());
        }
        let committed = self
            .db
            .prepare_cached("COMMIT")
            .and_then(|mut c| c.execute([]));
        match committed {
            Ok(_) => {
                if self.batch.take().is_some_and(|b| b.messages > 0)
                    && let Some(c) = &self.checkpointer
                {
                    c.written();
                }
                if std::mem::take(&mut self.erased) {
                    // Rare (a user deleted a message): copy the log into the file and empty
                    // it, as a retention pass does (a no-op while a reader holds an old
                    // snapshot past the busy timeout; the next delete or pass tries again).
                    let _ = self
                        .db
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
                }
                Ok(())
            }
            Err(e) => {
                let e = StoreError::from(e);
                self.roll_back(&e);
                Err(e)
            }
        }
    }

    /// The list of messages lost to failed writes, which the ring's driver empties.
    pub fn dropped(&self) -> Dropped {
        self.dropped.clone()
    }

    fn note_dropped(&self, keys: impl IntoIterator<Item = ([u8; 32], u64)>) {
        let mut d = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        let room = MAX_DROPPED.saturating_sub(d.len());
        d.extend(keys.into_iter().take(room));
    }

    fn roll_back(&mut self, why: &StoreError) {
        let batch = self.batch.take();
        let lost = batch.as_ref().map_or(0, |b| b.messages);
        if let Some(b) = batch {
            self.note_dropped(b.keys);
        }
        // Leave no transaction open behind a failed statement or COMMIT.
        if !self.db.is_autocommit() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
        // A pruning insert of the batch may have moved the horizon.
        if let Ok(h) = meta(&self.db, "horizon") {
            self.horizon = h.unwrap_or(0);
        }
        if lost > 0 {
            tracing::error!(messages = lost, error = %why, "chat store: uncommitted messages dropped");
        }
    }

    /// Deletes up to `limit` messages timestamped before `cut` (Unix milliseconds) — the age
    /// bound of `chat.retention_days` — with their bytes overwritten (`secure_delete`), and
    /// moves the horizon to `cut` so that the ring cannot bring them back. Commits the open
    /// batch first and its own deletion at once; the checkpointer then takes the deleted
    /// pages out of the write-ahead log. Returns how many were deleted (call again while it
    /// is `limit`).
    pub fn prune_older(&mut self, cut_ms: u64, limit: usize) -> Result<usize, StoreError> {
        self.commit()?;
        let cut = Timestamp::new(cut_ms, 0).0 as i64;
        self.db.pragma_update(None, "secure_delete", true)?;
        let result = (|| -> Result<usize, StoreError> {
            let tx = self.db.unchecked_transaction()?;
            released::note_where(
                &tx,
                "SELECT pos FROM messages WHERE hlc < ?1 ORDER BY pos LIMIT ?2",
                params![cut, limit as i64],
            )?;
            let n = tx
                .prepare_cached(
                    "DELETE FROM messages WHERE pos IN
                     (SELECT pos FROM messages WHERE hlc < ?1 ORDER BY pos LIMIT ?2)",
                )?
                .execute(params![cut, limit as i64])?;
            if cut > self.horizon {
                set_meta(&tx, "horizon", cut)?;
            }
            tx.commit()?;
            Ok(n)
        })();
        let _ = self.db.pragma_update(None, "secure_delete", "fast");
        let n = result?;
        self.horizon = self.horizon.max(cut);
        if n > 0 {
            // Out of the write-ahead log too: copy it into the file and empty it (a reader
            // holding an old snapshot makes this a no-op; the next pruning tries again).
            let _ = self
                .db
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(n)
    }

    /// Takes up to `limit` hashes of files whose messages went (`released.rs`).
    pub fn take_released(&mut self, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
        released::take(&self.db, limit)
    }

    /// Whether a kept text message references the file `hash` (`released.rs`).
    pub fn references(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        released::references(&self.db, hash)
    }

    /// Whether the batch has waited the commit delay at `now`.
    pub fn commit_due(&self, now: Instant) -> bool {
        self.batch
            .as_ref()
            .is_some_and(|b| now.saturating_duration_since(b.opened) >= self.commit_delay)
    }

    /// When the batch must be committed even if nothing else happens: twice the delay after
    /// it opened (a message arriving after one delay commits it sooner).
    pub fn commit_deadline(&self) -> Option<Instant> {
        let b = self.batch.as_ref()?;
        Some(b.opened + self.commit_delay * 2)
    }

    fn insert_in_transaction(
        &mut self,
        m: &ChatMessage,
        own_seq: Option<u64>,
        at: Option<i64>,
    ) -> Result<Insert, StoreError> {
        let known = |db: &Connection| -> Result<bool, StoreError> {
            Ok(db
                .prepare_cached("SELECT 1 FROM messages WHERE id = ?1")?
                .exists([&m.id.0[..]])?)
        };
        if (m.hlc.0 as i64) <= self.horizon {
            return Ok(if known(&self.db)? {
                Insert::Duplicate
            } else {
                Insert::Stale
            });
        }
        let plan = changes::plan(&self.db, m)?;
        if let changes::Plan::Refuse(answer) = plan {
            return Ok(if known(&self.db)? {
                Insert::Duplicate
            } else {
                answer
            });
        }
        let (kind, text, wire) = match &plan {
            changes::Plan::Redact { wire, .. } => (Kind::Deleted, "", wire),
            _ => (m.kind, m.text.as_str(), &m.wire),
        };
        // One statement in the common case: the unique indexes on `id` and `(origin, seq)`
        // find a conflict, and only then is it told apart.
        let inserted = self
            .db
            .prepare_cached(
                "INSERT INTO messages (id, origin, seq, hlc, kind, room, nick, body, wire, target, held, pos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                &m.id.0[..],
                &m.origin.as_bytes()[..],
                m.seq as i64,
                m.hlc.0 as i64,
                kind.code() as i64,
                m.room.as_str(),
                m.nick.as_ref().map(|n| n.as_str()).unwrap_or(""),
                text,
                wire,
                m.target.as_ref().map(|t| &t.0[..]),
                changes::held(&plan),
                at,
            ])?;
        if inserted == 0 {
            return Ok(if known(&self.db)? {
                Insert::Duplicate
            } else {
                Insert::SeqReused
            });
        }
        let tx = &self.db;
        let pos = tx.last_insert_rowid();
        let answer = changes::apply(tx, m, pos, plan)?;
        if m.kind == Kind::Delete || matches!(answer, Insert::Redacted(_)) {
            self.erased = true;
        }
        let cut = pos - self.retention as i64;
        if cut > 0 {
            let dropped: Option<i64> = tx
                .prepare_cached("SELECT MAX(hlc) FROM messages WHERE pos <= ?1")?
                .query_row([cut], |r| r.get(0))?;
            if let Some(h) = dropped {
                released::note_where(tx, "SELECT pos FROM messages WHERE pos <= ?1", [cut])?;
                tx.prepare_cached("DELETE FROM messages WHERE pos <= ?1")?
                    .execute([cut])?;
                self.horizon = h.max(self.horizon);
                set_meta(tx, "horizon", self.horizon)?;
            }
        }
        if let Some(seq) = own_seq {
            set_meta(tx, "own_seq", seq as i64)?;
        }
        Ok(answer)
    }

    /// The highest sequence number `origin` used in a stored (or pruned) message, and the newest
    /// timestamp stored: where this node's own counters resume after a restart.
    pub fn resume_point(&self, origin: &VerifyingKey) -> Result<(u64, Timestamp), StoreError> {
        let (seq, hlc): (Option<i64>, Option<i64>) = self.db.query_row(
            "SELECT (SELECT MAX(seq) FROM messages WHERE origin = ?1), (SELECT MAX(hlc) FROM messages)",
            [&origin.as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let own = meta(&self.db, "own_seq")?.unwrap_or(0);
        let horizon = meta(&self.db, "horizon")?.unwrap_or(0);
        Ok((
            seq.unwrap_or(0).max(own) as u64,
            Timestamp(hlc.unwrap_or(0).max(horizon) as u64),
        ))
    }

    /// The newest position (0 when empty).
    pub fn head(&self) -> Result<i64, StoreError> {
        Ok(self
            .db
            .query_row("SELECT COALESCE(MAX(pos), 0) FROM messages", [], |r| {
                r.get(0)
            })?)
    }

    /// The retention horizon: messages timestamped at or below it are refused.
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    /// The local position of message `id`, if stored.
    pub fn position(&self, id: &MessageId) -> Result<Option<i64>, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT pos FROM messages WHERE id = ?1")?
            .query_row([&id.0[..]], |r| r.get(0))
            .optional()?)
    }

    /// Up to `limit` messages after position `after` (oldest first), optionally of one room.
    pub fn after(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        queries::after(&self.db, after, room, limit, queries::Rows::History)
    }

    /// [`Store::after`] choosing the rows.
    pub fn after_rows(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
        rows: queries::Rows,
    ) -> Result<Vec<Stored>, StoreError> {
        queries::after(&self.db, after, room, limit, rows)
    }

    /// The stored message `id` as it stands now, if stored.
    pub fn find(&self, id: &MessageId) -> Result<Option<Stored>, StoreError> {
        queries::by(&self.db, "m.id", &id.0[..])
    }

    /// Changes held for targets not yet here.
    pub fn count_held(&self) -> Result<i64, StoreError> {
        Ok(self
            .db
            .prepare_cached("SELECT COUNT(*) FROM messages WHERE held = 1")?
            .query_row([], |r| r.get(0))?)
    }

    /// The message stored at `pos` as it stands now.
    pub fn get(&self, pos: i64) -> Result<Option<Stored>, StoreError> {
        queries::by(&self.db, "m.pos", pos)
    }

    /// Up to `limit` newest messages before position `before` (returned oldest first).
    pub fn before(
        &self,
        before: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        queries::before(&self.db, before, room, limit)
    }

    /// Up to `limit` newest messages with `low < pos < high` (returned oldest first).
    pub fn between(
        &self,
        low: i64,
        high: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        queries::between(&self.db, low, high, room, limit)
    }

    /// The newest `limit` people events, oldest first.
    pub fn people_events(&self, limit: usize) -> Result<Vec<Stored>, StoreError> {
        queries::people_events(&self.db, limit)
    }

    /// Every room with stored messages, by name.
    pub fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        queries::rooms(&self.db)
    }
}

impl Drop for Store {
    /// Commits the batch: a node that stops keeps what it showed.
    fn drop(&mut self) {
        let _ = self.commit();
    }
}

fn meta(db: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(db
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn set_meta(db: &Connection, key: &str, value: i64) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
