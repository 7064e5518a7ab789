//! The history's read queries, on any connection: the writer's ([`super::store::Store`]) or a
//! reader's ([`super::reader::Reader`]), so one piece of SQL serves both.

use ed25519_dalek::VerifyingKey;
use rusqlite::{Connection, params};

use super::envelope::{ChatMessage, Kind, MessageId};
use super::hlc::Timestamp;
use super::room::Room;
use super::store::{RoomSummary, StoreError, Stored};

/// A stored row's columns: the message `m` with the text of its winning edit `e`, if any
/// (`changes.rs`); select them `FROM` [`MESSAGES`].
pub(super) const COLUMNS_M: &str = "m.pos, m.id, m.origin, m.seq, m.hlc, m.kind, m.room, m.nick,
    COALESCE(e.body, m.body), m.wire, e.hlc, m.target";
const COLUMNS: &str = COLUMNS_M;
/// The winning edit `e` (the highest timestamp, then id) of a message `m`, if any.
macro_rules! edit_join {
    () => {
        "LEFT JOIN messages AS e ON e.pos =
    (SELECT x.pos FROM messages AS x WHERE x.target = m.id AND x.kind = 3
     ORDER BY x.hlc DESC, x.id DESC LIMIT 1)"
    };
}
pub(super) use edit_join;
/// The messages `m`, each with its winning edit `e`.
pub(super) const MESSAGES: &str = concat!("messages AS m ", edit_join!());
/// The rows a history shows: text messages (deleted ones as such) and the lines of people
/// events.
const SHOWN: &str = "(m.kind IN (1, 5) OR (m.kind = 2 AND m.body != ''))";
/// The rows a subscription replays: those, and the edits and deletes that apply (an edit
/// only while it wins).
const FEED: &str = "(m.kind IN (1, 4, 5) OR (m.kind = 2 AND m.body != '')
    OR (m.kind = 3 AND m.pos = (SELECT x.pos FROM messages AS x WHERE x.target = m.target
        AND x.kind = 3 ORDER BY x.hlc DESC, x.id DESC LIMIT 1))) AND m.held = 0";

/// Which rows a read returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// What a history shows ([`SHOWN`]).
    History,
    /// What a subscription replays ([`FEED`]).
    Feed,
}

impl Rows {
    fn filter(self) -> &'static str {
        match self {
            Rows::History => SHOWN,
            Rows::Feed => FEED,
        }
    }
}

/// Up to `limit` messages after position `after` (oldest first), optionally of one room.
pub(super) fn after(
    db: &Connection,
    after: i64,
    room: Option<&Room>,
    limit: usize,
    rows: Rows,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {MESSAGES} WHERE m.pos > ?1 AND (?2 IS NULL OR m.room = ?2) AND {}
         ORDER BY m.pos ASC LIMIT ?3",
        rows.filter()
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
        "SELECT {COLUMNS} FROM {MESSAGES} WHERE m.pos < ?1 AND (?2 IS NULL OR m.room = ?2) AND {SHOWN}
         ORDER BY m.pos DESC LIMIT ?3"
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
        "SELECT {COLUMNS} FROM {MESSAGES} WHERE m.pos > ?4 AND m.pos < ?1 AND (?2 IS NULL OR m.room = ?2) AND {SHOWN}
         ORDER BY m.pos DESC LIMIT ?3"
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

/// The row whose `column` (`m.id` or `m.pos`) is `value`.
pub(super) fn by(
    db: &Connection,
    column: &str,
    value: impl rusqlite::ToSql,
) -> Result<Option<Stored>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM {MESSAGES} WHERE {column} = ?1");
    let mut stmt = db.prepare_cached(&sql)?;
    let mut rows = stmt.query_map([value], raw_row)?;
    rows.next()
        .map(|r| r.map_err(StoreError::from).and_then(decode))
        .transpose()
}

/// The newest `limit` people events, oldest first.
pub(super) fn people_events(db: &Connection, limit: usize) -> Result<Vec<Stored>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM {MESSAGES} WHERE m.kind = 2 ORDER BY m.pos DESC LIMIT ?1");
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
    Option<i64>,
    Option<Vec<u8>>,
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
        r.get(10)?,
        r.get(11)?,
    ))
}

pub(super) fn decode(row: RawRow) -> Result<Stored, StoreError> {
    let (pos, id, origin, seq, hlc, kind, room, nick, body, wire, edited, target) = row;
    let origin: [u8; 32] = origin
        .try_into()
        .map_err(|_| StoreError::Corrupt("origin"))?;
    let kind = Kind::from_code(kind as u64).ok_or(StoreError::Corrupt("kind"))?;
    let extra = super::envelope::stored_extra(&wire).ok_or(StoreError::Corrupt("envelope"))?;
    if kind == Kind::People && extra.event.is_empty() {
        return Err(StoreError::Corrupt("event"));
    }
    let target = match (kind, target) {
        (Kind::Edit | Kind::Delete, Some(t)) => Some(MessageId(
            t.try_into().map_err(|_| StoreError::Corrupt("target"))?,
        )),
        (Kind::Edit | Kind::Delete, None) => return Err(StoreError::Corrupt("target")),
        _ => None,
    };
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
            target,
            edited: edited.map(|h| Timestamp(h as u64)),
            event: extra.event,
            author: extra.author,
            attachment: extra.attachment,
            transcript: extra.transcript,
            wire,
        },
    })
}
