//! The history's read queries, on any connection: the writer's ([`super::store::Store`]) or a
//! reader's ([`super::reader::Reader`]), so one piece of SQL serves both.

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, params};

use super::envelope::{ChatMessage, Kind, MessageId};
use super::hlc::Timestamp;
use super::room::Room;
use super::store::{RoomSummary, StoreError, Stored};

const COLUMNS: &str = "pos, id, origin, seq, hlc, kind, room, nick, body, wire";
/// The same columns of a table aliased `m`.
pub(super) const COLUMNS_M: &str =
    "m.pos, m.id, m.origin, m.seq, m.hlc, m.kind, m.room, m.nick, m.body, m.wire";

/// Up to `limit` messages after position `after` (oldest first), optionally of one room.
pub(super) fn after(
    db: &Connection,
    after: i64,
    room: Option<&Room>,
    limit: usize,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE pos > ?1 AND (?2 IS NULL OR room = ?2) AND (kind = 1 OR body != '')
         ORDER BY pos ASC LIMIT ?3"
    );
    query(db, &sql, after, room, limit)
}

/// Up to `limit` newest messages before position `before` (returned oldest first).
pub(super) fn before(
    db: &Connection,
    before: i64,
    room: Option<&Room>,
    limit: usize,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE pos < ?1 AND (?2 IS NULL OR room = ?2) AND (kind = 1 OR body != '')
         ORDER BY pos DESC LIMIT ?3"
    );
    let mut rows = query(db, &sql, before, room, limit)?;
    rows.reverse();
    Ok(rows)
}

/// Up to `limit` newest messages with `low < pos < high` (returned oldest first).
pub(super) fn between(
    db: &Connection,
    low: i64,
    high: i64,
    room: Option<&Room>,
    limit: usize,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE pos > ?4 AND pos < ?1 AND (?2 IS NULL OR room = ?2) AND (kind = 1 OR body != '')
         ORDER BY pos DESC LIMIT ?3"
    );
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![high, room.map(Room::as_str), limit as i64, low],
        raw_row,
    )?;
    let mut rows = rows
        .map(|r| r.map_err(StoreError::from).and_then(decode))
        .collect::<Result<Vec<_>, _>>()?;
    rows.reverse();
    Ok(rows)
}

fn query(
    db: &Connection,
    sql: &str,
    bound: i64,
    room: Option<&Room>,
    limit: usize,
) -> Result<Vec<Stored>, StoreError> {
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![bound, room.map(Room::as_str), limit as i64],
        raw_row,
    )?;
    rows.map(|r| r.map_err(StoreError::from).and_then(decode))
        .collect()
}

/// The newest `limit` people events, oldest first.
pub(super) fn people_events(db: &Connection, limit: usize) -> Result<Vec<Stored>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE kind = 2 ORDER BY pos DESC LIMIT ?1");
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![limit as i64], raw_row)?;
    let mut out = rows
        .map(|r| r.map_err(StoreError::from).and_then(decode))
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// Every room with stored messages, by name.
pub(super) fn rooms(db: &Connection) -> Result<Vec<RoomSummary>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT m.room, c.n, m.id, m.hlc FROM
           (SELECT room, COUNT(*) AS n, MAX(pos) AS p FROM messages WHERE kind = 1 GROUP BY room) AS c
         JOIN messages AS m ON m.pos = c.p ORDER BY m.room",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    rows.map(|row| {
        let (name, n, id, hlc) = row?;
        Ok(RoomSummary {
            name,
            count: n as u64,
            last_id: MessageId(id.try_into().map_err(|_| StoreError::Corrupt("id"))?),
            last_hlc: Timestamp(hlc as u64),
        })
    })
    .collect()
}

pub(super) type RawRow = (
    i64,
    Vec<u8>,
    Vec<u8>,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    Vec<u8>,
);

pub(super) fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

pub(super) fn decode(row: RawRow) -> Result<Stored, StoreError> {
    let (pos, id, origin, seq, hlc, kind, room, nick, body, wire) = row;
    let origin: [u8; 32] = origin
        .try_into()
        .map_err(|_| StoreError::Corrupt("origin"))?;
    let kind = Kind::from_code(kind as u64).ok_or(StoreError::Corrupt("kind"))?;
    let (event, author) =
        super::envelope::stored_extra(&wire).ok_or(StoreError::Corrupt("envelope"))?;
    if kind == Kind::People && event.is_empty() {
        return Err(StoreError::Corrupt("event"));
    }
    Ok(Stored {
        pos,
        message: ChatMessage {
            id: MessageId(id.try_into().map_err(|_| StoreError::Corrupt("id"))?),
            origin: VerifyingKey::from_bytes(&origin).map_err(|_| StoreError::Corrupt("origin"))?,
            seq: seq as u64,
            hlc: Timestamp(hlc as u64),
            kind,
            room: room.parse().map_err(|_| StoreError::Corrupt("room"))?,
            nick: match nick.as_str() {
                "" => None,
                n => Some(n.parse().map_err(|_| StoreError::Corrupt("nick"))?),
            },
            text: body,
            event,
            author,
            wire,
        },
    })
}
