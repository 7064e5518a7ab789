//! A connection of its own for the history reads of the control API (History pages, ListRooms,
//! subscription replay), so that a slow read never holds up the writer — the overlay driver,
//! which stores every message it relays and then forwards the next one.
//!
//! SQLite in WAL mode lets readers and the writer work at once; this connection is
//! `query_only`. It sees what is committed: messages from the ring join the history within the
//! group-commit delay (`chat.commit_delay_ms`), a node's own messages at once. Subscriptions
//! therefore replay from here and read the last, possibly uncommitted rows from the writer
//! only after they have joined the live feed (`subscription.rs`).

use std::path::Path;

use rusqlite::Connection;

use super::store::{DB_FILE, StoreError};

/// A read-only connection to the history; the queries are `queries.rs`'s, shared with the
/// writer.
#[derive(Debug)]
pub struct Reader {
    pub(super) db: Connection,
}

impl Reader {
    /// Opens `DIR/chat.sqlite3`, which the writer has created, with the search index
    /// (`search.sqlite3`, see `search.rs`) attached.
    pub fn open(dir: &Path) -> Result<Reader, StoreError> {
        let db = Connection::open(dir.join(DB_FILE))?;
        super::search::attach(&db, dir)?;
        db.pragma_update(None, "query_only", true)?;
        Ok(Reader { db })
    }
}
