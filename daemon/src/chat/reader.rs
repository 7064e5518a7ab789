//! A connection of its own for the history reads of the control API (History pages, ListRooms,
//! subscription replay), so that a slow read never holds up the writer — the ring driver,
//! which stores every message it relays and then forwards the next one.
//!
//! SQLite in WAL mode lets readers and the writer work at once; this connection is
//! `query_only`. It sees what is committed: messages from the ring join the history within the
//! group-commit delay (`chat.commit_delay_ms`), a node's own messages at once. Subscriptions
//! therefore replay from here and read the last, possibly uncommitted rows from the writer
//! only after they have joined the live feed (`subscription.rs`).

use std::path::Path;

use rusqlite::Connection;

use super::queries;
use super::room::Room;
use super::store::{DB_FILE, RoomSummary, StoreError, Stored};

/// A read-only connection to the history.
#[derive(Debug)]
pub struct Reader {
    db: Connection,
}

impl Reader {
    /// Opens `DIR/chat.sqlite3`, which the writer has created.
    pub fn open(dir: &Path) -> Result<Reader, StoreError> {
        let db = Connection::open(dir.join(DB_FILE))?;
        db.pragma_update(None, "query_only", true)?;
        Ok(Reader { db })
    }

    /// Up to `limit` messages after position `after` (oldest first).
    pub fn after(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        queries::after(&self.db, after, room, limit)
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

    /// Every room with stored messages.
    pub fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        queries::rooms(&self.db)
    }
}
