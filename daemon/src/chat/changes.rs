//! Edits and deletes in the history: what the store does, inside an insert's transaction,
//! with a message that changes another one or that earlier changes were waiting for.
//!
//! Rules (`docs/protocol.md`, "Edits and deletes"):
//! - Only the author changes a message: an edit or delete counts only when it has the
//!   target's origin (the signing node), author account and room. Checked here, on every node,
//!   against the signed envelopes; a change by anyone else is refused ([`Insert::Forbidden`]).
//! - Concurrent edits: the one with the highest `(hlc, id)` wins, the same everywhere; the
//!   others stay stored (so that they are not taken again) and are never shown.
//! - A delete wins over every edit. The target row keeps its place (so that ids and positions
//!   still resolve) but becomes [`Kind::Deleted`]: its text is gone and its wire form is the
//!   delete's, which names the author but holds no text. Every edit of it is deleted. The
//!   bytes are overwritten (`secure_delete`), and the search index is told (`reindex`).
//! - A change whose target is not here yet is *held*: stored with `held = 1`, at most
//!   [`MAX_HELD`] (the oldest go first), and applied when the target arrives — after the same
//!   author check, so a forged change that waited is dropped then.

use rusqlite::{Connection, OptionalExtension, params};

use super::envelope::{ChatMessage, Kind, MessageId, stored_extra};
use super::store::{Insert, StoreError};

/// Changes held for targets not yet here, at most.
pub const MAX_HELD: i64 = 4096;
/// Search re-index requests kept, at most (the indexer takes them within a second).
const MAX_REINDEX: i64 = 65_536;

/// What to do with a message offered to the store.
#[derive(Debug)]
pub(super) enum Plan {
    /// Store it as it is.
    Store,
    /// A text message whose edits came first: store it, then release them.
    Amend,
    /// A text message whose delete came first (held at `delete`): store it deleted.
    Redact { delete: i64, wire: Vec<u8> },
    /// An edit or delete of the stored text message at `target`.
    Change { target: i64 },
    /// An edit or delete whose target is not here: hold it.
    Hold,
    /// Do not store it; the store's answer.
    Refuse(Insert),
}

/// A stored row that changes (or is) a message, as far as ownership goes.
struct Row {
    pos: i64,
    kind: Kind,
    origin: Vec<u8>,
    room: String,
    author: Option<[u8; 32]>,
    wire: Vec<u8>,
}

impl Row {
    fn same_author(&self, m: &ChatMessage) -> bool {
        self.origin == m.origin.as_bytes()
            && self.author == m.author
            && self.room == m.room.as_str()
    }
}

/// `pos, kind, origin, room, wire` as read.
type RawRow = (i64, i64, Vec<u8>, String, Vec<u8>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode((pos, kind, origin, room, wire): RawRow) -> Option<Row> {
    Some(Row {
        pos,
        kind: Kind::from_code(kind as u64)?,
        author: stored_extra(&wire).and_then(|e| e.author),
        origin,
        room,
        wire,
    })
}

/// The stored message `id`.
fn message(db: &Connection, id: &MessageId) -> Result<Option<Row>, StoreError> {
    let found = db
        .prepare_cached("SELECT pos, kind, origin, room, wire FROM messages WHERE id = ?1")?
        .query_row([&id.0[..]], row)
        .optional()?;
    match found {
        None => Ok(None),
        Some(r) => decode(r).map(Some).ok_or(StoreError::Corrupt("message")),
    }
}

/// The stored edits and deletes of `id`.
fn changes_of(db: &Connection, id: &MessageId) -> Result<Vec<Row>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT pos, kind, origin, room, wire FROM messages WHERE target = ?1 AND kind IN (3, 4)",
    )?;
    let rows = stmt.query_map([&id.0[..]], row)?;
    rows.map(|r| decode(r?).ok_or(StoreError::Corrupt("change")))
        .collect()
}

fn delete_row(db: &Connection, pos: i64) -> Result<(), StoreError> {
    db.prepare_cached("DELETE FROM messages WHERE pos = ?1")?
        .execute([pos])?;
    Ok(())
}

/// Decides, before the insert, what `m` is; forged changes that were held for it go now.
pub(super) fn plan(db: &Connection, m: &ChatMessage) -> Result<Plan, StoreError> {
    match m.kind {
        Kind::People | Kind::Deleted => Ok(Plan::Store),
        Kind::Text => {
            let mut plan = Plan::Store;
            for c in changes_of(db, &m.id)? {
                if !c.same_author(m) {
                    delete_row(db, c.pos)?;
                } else if c.kind == Kind::Delete {
                    if !matches!(plan, Plan::Redact { .. }) {
                        plan = Plan::Redact {
                            delete: c.pos,
                            wire: c.wire,
                        };
                    }
                } else if matches!(plan, Plan::Store) {
                    plan = Plan::Amend;
                }
            }
            Ok(plan)
        }
        Kind::Edit | Kind::Delete => {
            let Some(target) = m.target else {
                return Err(StoreError::Corrupt("change without target"));
            };
            match message(db, &target)? {
                Some(t) if t.kind == Kind::Deleted => Ok(Plan::Refuse(Insert::Deleted)),
                Some(t) if t.kind != Kind::Text || !t.same_author(m) => {
                    Ok(Plan::Refuse(Insert::Forbidden))
                }
                Some(t) => Ok(Plan::Change { target: t.pos }),
                None => {
                    let deleted = changes_of(db, &target)?
                        .iter()
                        .any(|c| c.kind == Kind::Delete && c.same_author(m));
                    Ok(if deleted {
                        Plan::Refuse(Insert::Deleted)
                    } else {
                        Plan::Hold
                    })
                }
            }
        }
    }
}

/// Whether the plan stores `m` held (its `held` column).
pub(super) fn held(plan: &Plan) -> bool {
    matches!(plan, Plan::Hold)
}

/// Completes the plan once `m` is stored at `pos`; returns the store's answer.
pub(super) fn apply(
    db: &Connection,
    m: &ChatMessage,
    pos: i64,
    plan: Plan,
) -> Result<Insert, StoreError> {
    match plan {
        Plan::Store => Ok(Insert::New(pos)),
        Plan::Refuse(answer) => Ok(answer),
        Plan::Amend => {
            db.prepare_cached("UPDATE messages SET held = 0 WHERE target = ?1 AND held = 1")?
                .execute([&m.id.0[..]])?;
            Ok(Insert::Amended(pos))
        }
        Plan::Redact { delete, .. } => {
            db.prepare_cached("UPDATE messages SET held = 0 WHERE pos = ?1")?
                .execute([delete])?;
            erase_edits(db, &m.id)?;
            Ok(Insert::Redacted(pos))
        }
        Plan::Change { target } if m.kind == Kind::Edit => {
            reindex(db, target)?;
            let winner: Vec<u8> = db
                .prepare_cached(
                    "SELECT id FROM messages WHERE target = ?1 AND kind = 3
                     ORDER BY hlc DESC, id DESC LIMIT 1",
                )?
                .query_row([&target_id(m)?.0[..]], |r| r.get(0))?;
            Ok(if winner == m.id.0 {
                Insert::New(pos)
            } else {
                Insert::Superseded(pos)
            })
        }
        Plan::Change { target } => {
            // The delete: the target keeps its row, without its text (and its file goes).
            super::released::note_pos(db, target)?;
            db.pragma_update(None, "secure_delete", true)?;
            let done = (|| -> Result<(), StoreError> {
                db.prepare_cached(
                    "UPDATE messages SET kind = 5, body = '', nick = '', wire = ?2 WHERE pos = ?1",
                )?
                .execute(params![target, m.wire])?;
                erase_edits(db, &target_id(m)?)
            })();
            let _ = db.pragma_update(None, "secure_delete", "fast");
            done?;
            reindex(db, target)?;
            Ok(Insert::New(pos))
        }
        Plan::Hold => {
            if m.kind == Kind::Delete {
                // Whatever the author edited waits no more: its text goes with the delete.
                for c in changes_of(db, &target_id(m)?)? {
                    if c.kind == Kind::Edit && c.same_author(m) {
                        delete_row(db, c.pos)?;
                    }
                }
            }
            let held: i64 = db
                .prepare_cached("SELECT COUNT(*) FROM messages WHERE held = 1")?
                .query_row([], |r| r.get(0))?;
            if held > MAX_HELD {
                db.prepare_cached(
                    "DELETE FROM messages WHERE pos IN
                     (SELECT pos FROM messages WHERE held = 1 ORDER BY pos LIMIT ?1)",
                )?
                .execute([held - MAX_HELD])?;
            }
            Ok(Insert::Held(pos))
        }
    }
}

fn target_id(m: &ChatMessage) -> Result<MessageId, StoreError> {
    m.target.ok_or(StoreError::Corrupt("change without target"))
}

/// Deletes every edit of `id` (their texts), with their bytes overwritten.
fn erase_edits(db: &Connection, id: &MessageId) -> Result<(), StoreError> {
    db.pragma_update(None, "secure_delete", true)?;
    let done = db
        .prepare_cached("DELETE FROM messages WHERE target = ?1 AND kind = 3")
        .and_then(|mut s| s.execute([&id.0[..]]));
    let _ = db.pragma_update(None, "secure_delete", "fast");
    done?;
    Ok(())
}

/// Asks the search indexer to index the message at `pos` again (its text changed or went).
fn reindex(db: &Connection, pos: i64) -> Result<(), StoreError> {
    db.prepare_cached("INSERT INTO reindex (pos) VALUES (?1)")?
        .execute([pos])?;
    let n = db.last_insert_rowid();
    if n % 1024 == 0 {
        db.prepare_cached("DELETE FROM reindex WHERE n <= ?1")?
            .execute([n - MAX_REINDEX])?;
    }
    Ok(())
}
