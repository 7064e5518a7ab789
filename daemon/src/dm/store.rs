//! `dm.sqlite` (mode 0600): each hosted account's private-conversation state — its keys,
//! groups and blocks (`core`), per peer its Olm sessions and streams (`peer`) — and its
//! private messages, both directions (`message`); and the conversations bound to keys
//! (`contact`, `contacts.rs`). The engine's changes and the messages they
//! show are written in one transaction before anything is acknowledged to the network, so a
//! crash can neither lose an acknowledged message nor show one twice.
//!
//! The file holds secrets (Olm keys) and plaintext of this node's own users only; it never
//! holds another node's users' messages (those pass as sealed items in `records.sqlite`).

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

/// File name in the data directory.
pub const FILE: &str = "dm.sqlite3";
/// Private messages kept per account, at most (the oldest go first).
pub const MAX_MESSAGES: i64 = 100_000;

/// The columns [`row`] reads.
const COLUMNS: &str = "m.id, m.sender, m.peer, m.grp, m.text, m.sent_ms, m.outgoing, m.status,
    m.edited_ms, m.deleted, m.file";

/// A message row of a query selecting [`COLUMNS`] (`None` if a key column has the wrong
/// length).
fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Row>> {
    let id: Vec<u8> = r.get(0)?;
    let from: Vec<u8> = r.get(1)?;
    Ok(Some(Row {
        id: match id.try_into() {
            Ok(id) => id,
            Err(_) => return Ok(None),
        },
        from: match from.try_into() {
            Ok(f) => f,
            Err(_) => return Ok(None),
        },
        peer: key32(r.get(2)?),
        group: key16(r.get(3)?),
        text: r.get(4)?,
        sent_ms: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
        outgoing: r.get(6)?,
        status: r.get(7)?,
        edited_ms: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        deleted: r.get(9)?,
        file: r.get(10)?,
    }))
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("private message store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("private message store {path}: {source}")]
    Mode {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("private message store: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// A stored private message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub id: [u8; 16],
    pub from: [u8; 32],
    /// The other account of a direct conversation (sender or recipient).
    pub peer: Option<[u8; 32]>,
    pub group: Option<[u8; 16]>,
    pub text: String,
    pub sent_ms: u64,
    pub outgoing: bool,
    /// 0 for received messages; the engine's status number otherwise.
    pub status: u8,
    /// When its sender last edited it (the sender's clock); 0 if never.
    pub edited_ms: u64,
    /// Its sender deleted it (the text is gone).
    pub deleted: bool,
    /// A private file's reference (`files::private`, its key included), if it carries one.
    pub file: Option<Vec<u8>>,
}

/// An edit (`text`) or delete of message `id`, applied only to a message sent by `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub id: [u8; 16],
    pub from: [u8; 32],
    pub text: Option<String>,
    pub sent_ms: u64,
}

/// An account's stored engine: its core and its peers' parts.
pub type Stored = (Vec<u8>, Vec<([u8; 32], Vec<u8>)>);

/// One transaction's worth of writes.
#[derive(Default)]
pub struct Batch {
    pub core: Option<Vec<u8>>,
    pub peers: Vec<([u8; 32], Vec<u8>)>,
    pub messages: Vec<Row>,
    /// (message id, status)
    pub statuses: Vec<([u8; 16], u8)>,
    pub changes: Vec<Change>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.core.is_none()
            && self.peers.is_empty()
            && self.messages.is_empty()
            && self.statuses.is_empty()
            && self.changes.is_empty()
    }
}

/// The store.
pub struct Store {
    pub(super) conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn key16(v: Option<Vec<u8>>) -> Option<[u8; 16]> {
    v.and_then(|v| v.try_into().ok())
}

fn key32(v: Option<Vec<u8>>) -> Option<[u8; 32]> {
    v.and_then(|v| v.try_into().ok())
}

impl Store {
    /// Opens (creating) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE);
        // Created with mode 0600 before SQLite opens it; an existing file is tightened.
        let created = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path);
        let mode = |source| StoreError::Mode {
            path: path.clone(),
            source,
        };
        created.map_err(mode)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(mode)?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;
             CREATE TABLE IF NOT EXISTS core (
                 account BLOB PRIMARY KEY, state BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS peer (
                 account BLOB NOT NULL, peer BLOB NOT NULL, state BLOB NOT NULL,
                 PRIMARY KEY (account, peer));
             CREATE TABLE IF NOT EXISTS message (
                 n INTEGER PRIMARY KEY, account BLOB NOT NULL, id BLOB NOT NULL,
                 sender BLOB NOT NULL, peer BLOB, grp BLOB, text TEXT NOT NULL,
                 sent_ms INTEGER NOT NULL, outgoing INTEGER NOT NULL, status INTEGER NOT NULL,
                 UNIQUE (account, id));
             CREATE INDEX IF NOT EXISTS message_account ON message (account, n);
             CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(
                 text, content = 'message', content_rowid = 'n',
                 tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
             CREATE TRIGGER IF NOT EXISTS message_fts_add AFTER INSERT ON message BEGIN
                 INSERT INTO message_fts (rowid, text) VALUES (new.n, new.text);
             END;
             CREATE TRIGGER IF NOT EXISTS message_fts_del AFTER DELETE ON message BEGIN
                 INSERT INTO message_fts (message_fts, rowid, text)
                     VALUES ('delete', old.n, old.text);
             END;
             CREATE TRIGGER IF NOT EXISTS message_fts_upd AFTER UPDATE OF text ON message BEGIN
                 INSERT INTO message_fts (message_fts, rowid, text)
                     VALUES ('delete', old.n, old.text);
                 INSERT INTO message_fts (rowid, text) VALUES (new.n, new.text);
             END;",
        )
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        // Edits and deletes: added to a store of an earlier version.
        let edits: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('message') WHERE name = 'edited_ms'",
            [],
            |r| r.get(0),
        )?;
        if !edits {
            conn.execute_batch(
                "ALTER TABLE message ADD COLUMN edited_ms INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE message ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;",
            )?;
        }
        // Private files' references (`files::private`): added to a store of an earlier version.
        let files: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('message') WHERE name = 'file'",
            [],
            |r| r.get(0),
        )?;
        if !files {
            conn.execute_batch("ALTER TABLE message ADD COLUMN file BLOB;")?;
        }
        // Conversations bound to keys (`contacts.rs`): added to a store of an earlier version.
        super::contacts::create(&conn)?;
        // The WAL and shared-memory files get SQLite's default mode: tighten them too.
        for ext in ["-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{ext}", path.display()));
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                    .map_err(mode)?;
            }
        }
        Ok(Store { conn })
    }

    /// The stored state of `account`: its core and its peers.
    pub fn load(&self, account: &[u8; 32]) -> Result<Option<Stored>, StoreError> {
        let core: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT state FROM core WHERE account = ?1",
                params![&account[..]],
                |r| r.get(0),
            )
            .optional()?;
        let Some(core) = core else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT peer, state FROM peer WHERE account = ?1")?;
        let peers = stmt
            .query_map(params![&account[..]], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?
            .filter_map(|r| r.ok())
            .filter_map(|(k, v)| Some((k.try_into().ok()?, v)))
            .collect();
        Ok(Some((core, peers)))
    }

    /// Writes `batch` for `account` in one transaction; returns the ids of the messages its
    /// changes changed (a change of a message that is not its sender's, of a deleted one,
    /// or older than the message's last edit, changes nothing).
    pub fn commit(
        &mut self,
        account: &[u8; 32],
        batch: &Batch,
    ) -> Result<Vec<[u8; 16]>, StoreError> {
        let tx = self.conn.transaction()?;
        if let Some(core) = &batch.core {
            tx.execute(
                "INSERT OR REPLACE INTO core (account, state) VALUES (?1, ?2)",
                params![&account[..], core],
            )?;
        }
        for (peer, state) in &batch.peers {
            tx.execute(
                "INSERT OR REPLACE INTO peer (account, peer, state) VALUES (?1, ?2, ?3)",
                params![&account[..], &peer[..], state],
            )?;
        }
        for m in &batch.messages {
            tx.execute(
                "INSERT OR IGNORE INTO message
                     (account, id, sender, peer, grp, text, sent_ms, outgoing, status, file)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    &account[..],
                    &m.id[..],
                    &m.from[..],
                    m.peer.as_ref().map(|p| p.to_vec()),
                    m.group.as_ref().map(|g| g.to_vec()),
                    m.text,
                    i64::try_from(m.sent_ms).unwrap_or(i64::MAX),
                    m.outgoing,
                    m.status,
                    m.file,
                ],
            )?;
        }
        for (id, status) in &batch.statuses {
            tx.execute(
                "UPDATE message SET status = ?3 WHERE account = ?1 AND id = ?2",
                params![&account[..], &id[..], status],
            )?;
        }
        let mut changed = Vec::new();
        for c in &batch.changes {
            let sent = i64::try_from(c.sent_ms).unwrap_or(i64::MAX);
            let n = match &c.text {
                Some(text) => tx.execute(
                    "UPDATE message SET text = ?4, edited_ms = ?5
                     WHERE account = ?1 AND id = ?2 AND sender = ?3 AND deleted = 0
                       AND edited_ms <= ?5",
                    params![&account[..], &c.id[..], &c.from[..], text, sent],
                )?,
                None => tx.execute(
                    "UPDATE message SET text = '', edited_ms = 0, deleted = 1, file = NULL
                     WHERE account = ?1 AND id = ?2 AND sender = ?3 AND deleted = 0",
                    params![&account[..], &c.id[..], &c.from[..]],
                )?,
            };
            if n > 0 {
                changed.push(c.id);
            }
        }
        if !batch.messages.is_empty() {
            tx.execute(
                "DELETE FROM message WHERE account = ?1 AND n <= (
                     SELECT n FROM message WHERE account = ?1 ORDER BY n DESC LIMIT 1 OFFSET ?2)",
                params![&account[..], MAX_MESSAGES],
            )?;
        }
        tx.commit()?;
        if batch.changes.iter().any(|c| c.text.is_none()) && !changed.is_empty() {
            // A deleted text leaves no old copy in the write-ahead log either.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(changed)
    }

    /// Whether the store can write now: a small row written and deleted in one transaction
    /// (while commits fail, to see space return).
    pub fn probe(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS probe (x BLOB);
             INSERT INTO probe (x) VALUES (zeroblob(16384));
             DELETE FROM probe;",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces the text and the file reference of `account`'s message `id` (a transcript of
    /// a private voice message made later, for that account only); whether it was there.
    pub fn transcribed(
        &self,
        account: &[u8; 32],
        id: &[u8; 16],
        text: &str,
        file: &[u8],
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE message SET text = ?3, file = ?4 WHERE account = ?1 AND id = ?2 AND deleted = 0",
            params![&account[..], &id[..], text, file],
        )?;
        Ok(n > 0)
    }

    /// `account`'s message `id`.
    pub fn get(&self, account: &[u8; 32], id: &[u8; 16]) -> Result<Option<Row>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM message AS m WHERE m.account = ?1 AND m.id = ?2");
        Ok(self
            .conn
            .query_row(&sql, params![&account[..], &id[..]], row)
            .optional()?
            .flatten())
    }

    /// The newest `limit` messages of `account` (oldest first), optionally only those with
    /// `peer` or in `group`.
    pub fn history(
        &self,
        account: &[u8; 32],
        peer: Option<&[u8; 32]>,
        group: Option<&[u8; 16]>,
        before: Option<&[u8; 16]>,
        limit: u32,
    ) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM message AS m
             WHERE m.account = ?1 AND (?2 IS NULL OR m.peer = ?2) AND (?3 IS NULL OR m.grp = ?3)
               AND (?5 IS NULL OR m.n < (SELECT n FROM message WHERE account = ?1 AND id = ?5))
             ORDER BY m.n DESC LIMIT ?4"
        ))?;
        let mut rows: Vec<Row> = stmt
            .query_map(
                params![
                    &account[..],
                    peer.map(|p| p.to_vec()),
                    group.map(|g| g.to_vec()),
                    limit,
                    before.map(|b| b.to_vec()),
                ],
                row,
            )?
            .filter_map(|r| r.ok())
            .flatten()
            .collect();
        rows.reverse();
        Ok(rows)
    }

    /// `account`'s messages matching the FTS5 `expression` (from [`crate::chat::search`]),
    /// sent at or after `since_ms`, newest first.
    pub fn search(
        &self,
        account: &[u8; 32],
        expression: &str,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM message_fts f JOIN message m ON m.n = f.rowid
             WHERE message_fts MATCH ?1 AND m.account = ?2 AND m.sent_ms >= ?3
             ORDER BY m.n DESC LIMIT ?4"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    expression,
                    &account[..],
                    i64::try_from(since_ms).unwrap_or(i64::MAX),
                    limit
                ],
                row,
            )?
            .filter_map(|r| r.ok())
            .flatten()
            .collect();
        Ok(rows)
    }

    /// Deletes messages sent before `before_ms` (`chat.retention_days`); returns how many.
    pub fn prune(&mut self, before_ms: u64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM message WHERE sent_ms < ?1",
            params![i64::try_from(before_ms).unwrap_or(i64::MAX)],
        )?)
    }
}
