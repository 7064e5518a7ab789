//! Files whose messages went: the hashes of the file references of text messages that a
//! delete, `chat.retention_days` or `chat.retention_messages` removed from the history, noted
//! in the same transaction (table `released`, at most [`MAX_RELEASED`] rows, the oldest
//! dropped), for the files service to take ([`Chat::take_released`]) and remove from the blob
//! store unless another kept message still references the same hash ([`Chat::references`]).
//!
//! A noted hash is only a candidate: the files service asks [`Chat::references`] before it
//! removes anything, so a hash noted twice, or referenced again by a later message, is
//! harmless.

use rusqlite::{Connection, params};

use super::envelope::stored_extra;
use super::store::StoreError;
use super::{Chat, ChatError};

/// Hashes waiting for the files service at most (it takes them every few seconds).
pub const MAX_RELEASED: i64 = 4096;
/// Hashes handed over per call of [`Chat::take_released`] at most.
pub const TAKE: usize = 256;

/// The table; created when the history opens (an older history gets it then).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS released (n INTEGER PRIMARY KEY, hash BLOB NOT NULL);
";

/// The file reference's hash in a stored text message's envelope, if it has one.
fn hash_of(wire: &[u8]) -> Option<[u8; 32]> {
    stored_extra(wire)?.attachment.map(|a| a.hash)
}

fn note(db: &Connection, hash: &[u8; 32]) -> Result<(), StoreError> {
    db.prepare_cached("INSERT INTO released (hash) VALUES (?1)")?
        .execute([&hash[..]])?;
    let n = db.last_insert_rowid();
    if n % 256 == 0 {
        db.prepare_cached("DELETE FROM released WHERE n <= ?1")?
            .execute([n - MAX_RELEASED])?;
    }
    Ok(())
}

/// Notes the file of the text message at `pos` (about to be deleted or pruned), if any.
pub(super) fn note_pos(db: &Connection, pos: i64) -> Result<(), StoreError> {
    let wire: Option<Vec<u8>> = db
        .prepare_cached("SELECT wire FROM messages WHERE pos = ?1 AND kind = 1")?
        .query_row([pos], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if let Some(h) = wire.as_deref().and_then(hash_of) {
        note(db, &h)?;
    }
    Ok(())
}

/// Notes the files of the text messages `WHERE <sql>` (with `args`), about to be removed.
pub(super) fn note_where(
    db: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<(), StoreError> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT wire FROM messages WHERE kind = 1 AND pos IN ({sql})"
    ))?;
    let wires = stmt.query_map(args, |r| r.get::<_, Vec<u8>>(0))?;
    let mut hashes = Vec::new();
    for w in wires {
        if let Some(h) = hash_of(&w?) {
            hashes.push(h);
        }
    }
    for h in hashes {
        note(db, &h)?;
    }
    Ok(())
}

/// Takes up to `limit` noted hashes (oldest first), deduplicated.
pub(super) fn take(db: &Connection, limit: usize) -> Result<Vec<[u8; 32]>, StoreError> {
    let rows: Vec<(i64, Vec<u8>)> = db
        .prepare_cached("SELECT n, hash FROM released ORDER BY n LIMIT ?1")?
        .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(Vec::new());
    };
    db.prepare_cached("DELETE FROM released WHERE n <= ?1")?
        .execute(params![last])?;
    let mut out: Vec<[u8; 32]> = Vec::new();
    for (_, h) in rows {
        if let Ok(h) = <[u8; 32]>::try_from(h)
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    Ok(out)
}

/// Whether a kept (not deleted, not held) text message references the file `hash`.
pub(super) fn references(db: &Connection, hash: &[u8; 32]) -> Result<bool, StoreError> {
    // The raw hash in the envelope's bytes finds the candidates; decoding confirms it is
    // the reference's (and not, by a one-in-2^256 chance, other bytes).
    let mut stmt = db.prepare_cached(
        "SELECT wire FROM messages WHERE kind = 1 AND held = 0 AND instr(wire, ?1) > 0",
    )?;
    let wires = stmt.query_map([&hash[..]], |r| r.get::<_, Vec<u8>>(0))?;
    for w in wires {
        if hash_of(&w?) == Some(*hash) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Chat {
    /// Takes (up to [`TAKE`]) hashes of files whose messages were deleted or expired since
    /// the last call (module docs). When there are some, the writer's open batch is committed
    /// first, so that [`Chat::references`] (on the reader's connection) sees the removals.
    pub fn take_released(&self) -> Result<Vec<[u8; 32]>, ChatError> {
        let mut state = self.state();
        let taken = state.store.take_released(TAKE)?;
        if !taken.is_empty() {
            state.store.commit()?;
        }
        Ok(taken)
    }

    /// Whether a kept text message references the file `hash`: a scan of the committed
    /// history on the reader's connection (the writer's for an in-memory history), so the
    /// writer — which the ring's messages wait for — is not held meanwhile.
    pub fn references(&self, hash: &[u8; 32]) -> Result<bool, ChatError> {
        match &self.inner.reader {
            Some(r) => Ok(references(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
                hash,
            )?),
            None => Ok(self.state().store.references(hash)?),
        }
    }
}

#[cfg(test)]
#[path = "released_tests.rs"]
mod tests;
