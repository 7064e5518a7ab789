//! Full-text search of the history with SQLite's FTS5, off the message path.
//!
//! The index lives in a file of its own, `search.sqlite3` beside `chat.sqlite3`: a contentless
//! FTS5 table (the text is already in the history) whose rowid is the message's local
//! position. An indexer thread adds what the writer committed since its last pass — in
//! batches, every [`EVERY`] — so storing a message costs the ring's path nothing, and a message
//! is searchable within about a second. Messages gone from the history (retention) are
//! dropped from the index at the low end; a query joins the history, so a message that is no
//! longer stored is never returned whatever the index holds.
//!
//! Queries are words, each matched as a word prefix-free token (`hello world` finds messages
//! holding both), or a prefix with a trailing `*`; every word is quoted before it reaches
//! FTS5, so no query syntax from a client is interpreted. Newest first.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};
use tracing::warn;

use super::store::{DB_FILE, StoreError, Stored};

/// File name of the index inside the data directory.
pub const INDEX_FILE: &str = "search.sqlite3";
/// How often the indexer looks for new messages.
pub const EVERY: Duration = Duration::from_millis(500);
/// Messages indexed per transaction.
const BATCH: i64 = 5000;
/// Words in a query at most.
pub const MAX_WORDS: usize = 16;
/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 512;

const SCHEMA: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS idx USING fts5(body, content='', contentless_delete=1,
    tokenize='unicode61 remove_diacritics 2', prefix='2 3');
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// Creates the index file if missing (before anything attaches it).
pub fn create(dir: &Path) -> Result<(), StoreError> {
    let db = Connection::open(dir.join(INDEX_FILE))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.execute_batch(SCHEMA)?;
    Ok(())
}

/// Attaches the index to a connection of the history as `s`.
pub fn attach(db: &Connection, dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(INDEX_FILE);
    db.execute("ATTACH DATABASE ?1 AS s", [path.to_string_lossy().as_ref()])?;
    Ok(())
}

/// Why a query is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No word to look for.
    #[error("give at least one word to search for")]
    Empty,
    /// Over the bounds.
    #[error("at most {MAX_WORDS} words and {MAX_QUERY_BYTES} bytes")]
    TooLong,
}

/// `query` as an FTS5 expression: each word quoted (so no operator of the user's is taken
/// as one), a trailing `*` kept as a prefix search, all of them required.
pub fn expression(query: &str) -> Result<String, QueryError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(QueryError::TooLong);
    }
    let words: Vec<String> = query
        .split_whitespace()
        .filter_map(|w| {
            let (word, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, true),
                None => (w, false),
            };
            // Only the letters and digits are indexed: a word of punctuation matches nothing.
            let word: String = word.chars().filter(|c| !c.is_control()).collect();
            if !word.chars().any(char::is_alphanumeric) {
                return None;
            }
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            Some(if prefix { format!("{quoted}*") } else { quoted })
        })
        .collect();
    match words.len() {
        0 => Err(QueryError::Empty),
        n if n > MAX_WORDS => Err(QueryError::TooLong),
        _ => Ok(words.join(" ")),
    }
}

/// A search: the FTS5 expression and the filters.
#[derive(Debug, Clone, Default)]
pub struct Search<'a> {
    /// From [`expression`].
    pub expression: String,
    /// Only this room.
    pub room: Option<&'a str>,
    /// Only messages timestamped at or after this raw HLC value.
    pub since_hlc: i64,
    /// Only messages at positions below this one (paging; `i64::MAX` for none).
    pub before_pos: i64,
    /// Candidates examined at most (the caller filters further, e.g. by author).
    pub limit: usize,
}

/// Matching messages, newest first (on a connection with the index attached).
pub fn query(db: &Connection, s: &Search<'_>) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "SELECT {} FROM s.idx AS f JOIN messages AS m ON m.pos = f.rowid {}
         WHERE f.idx MATCH ?1 AND m.kind = 1 AND f.rowid < ?2 AND (?3 IS NULL OR m.room = ?3) AND m.hlc >= ?4
         ORDER BY f.rowid DESC LIMIT ?5",
        super::queries::COLUMNS_M,
        super::queries::edit_join!(),
    );
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            s.expression,
            s.before_pos,
            s.room,
            s.since_hlc,
            s.limit as i64
        ],
        super::queries::raw_row,
    )?;
    rows.map(|r| r.map_err(StoreError::from).and_then(super::queries::decode))
        .collect()
}

/// The indexer thread; stops when dropped.
#[derive(Debug)]
pub struct Indexer {
    _stop: mpsc::Sender<()>,
}

impl Indexer {
    /// Starts indexing the history in `dir` (whose index [`create`] made).
    pub fn start(dir: &Path) -> Result<Indexer, StoreError> {
        let db = Connection::open(dir.join(DB_FILE))?;
        attach(&db, dir)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("chat-search-index".into())
            .spawn(move || {
                crate::supervise::keep_running("the search indexer", || {
                    loop {
                        match index_pass(&db) {
                            Ok(n) if n >= BATCH as usize => continue,
                            Ok(_) => {}
                            Err(e) => warn!(error = %e, "search index: a pass failed; retrying"),
                        }
                        if !matches!(
                            stopped.recv_timeout(EVERY),
                            Err(mpsc::RecvTimeoutError::Timeout)
                        ) {
                            return;
                        }
                    }
                })
            })
            .map_err(StoreError::Thread)?;
        Ok(Indexer { _stop: stop })
    }
}

/// Indexes up to [`BATCH`] messages committed since the last pass and drops entries below
/// the oldest stored message; returns how many were indexed.
pub fn index_pass(db: &Connection) -> Result<usize, StoreError> {
    let tx = db.unchecked_transaction()?;
    let mut mark: i64 = tx
        .query_row("SELECT value FROM s.meta WHERE key = 'indexed'", [], |r| {
            r.get(0)
        })
        .unwrap_or(0);
    // The history only grows at the top; an index ahead of it belongs to another history
    // (the file was replaced): start over.
    let newest: Option<i64> = tx.query_row("SELECT MAX(pos) FROM messages", [], |r| r.get(0))?;
    if mark > newest.unwrap_or(0) {
        tx.execute("INSERT INTO s.idx (idx) VALUES ('delete-all')", [])?;
        mark = 0;
    }
    let top: Option<i64> = tx.query_row(
        "SELECT MAX(pos) FROM (SELECT pos FROM messages WHERE pos > ?1 ORDER BY pos LIMIT ?2)",
        params![mark, BATCH],
        |r| r.get(0),
    )?;
    let changed = reindex(&tx, mark)?;
    let Some(top) = top else {
        tx.commit()?;
        return Ok(changed);
    };
    let n = tx.execute(
        &format!(
            "INSERT INTO s.idx (rowid, body) SELECT m.pos, COALESCE(e.body, m.body)
             FROM {} WHERE m.pos > ?1 AND m.pos <= ?2 AND m.kind = 1",
            super::queries::MESSAGES
        ),
        params![mark, top],
    )?;
    tx.execute(
        "INSERT INTO s.meta (key, value) VALUES ('indexed', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [top],
    )?;
    // What retention took from the low end goes from the index too.
    let low: Option<i64> = tx.query_row("SELECT MIN(pos) FROM messages", [], |r| r.get(0))?;
    tx.execute(
        "DELETE FROM s.idx WHERE rowid < ?1",
        [low.unwrap_or(top + 1)],
    )?;
    tx.commit()?;
    Ok(n.max((top - mark) as usize).max(changed))
}

/// Indexes again the messages up to `mark` (already indexed) whose text an edit or delete
/// changed since the last pass (the store's `reindex` rows); returns how many requests it
/// took. Those above `mark` are indexed with their current text by the pass itself.
fn reindex(tx: &rusqlite::Transaction<'_>, mark: i64) -> Result<usize, StoreError> {
    let mut done: i64 = tx
        .query_row(
            "SELECT value FROM s.meta WHERE key = 'reindexed'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let newest: Option<i64> = tx.query_row("SELECT MAX(n) FROM reindex", [], |r| r.get(0))?;
    if done > newest.unwrap_or(0) {
        // Another history's requests (the file was replaced): start over.
        done = 0;
    }
    let asked: Vec<(i64, i64)> = tx
        .prepare_cached("SELECT n, pos FROM reindex WHERE n > ?1 ORDER BY n LIMIT ?2")?
        .query_map(params![done, BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some(&(last, _)) = asked.last() else {
        return Ok(0);
    };
    let add = format!(
        "INSERT INTO s.idx (rowid, body) SELECT m.pos, COALESCE(e.body, m.body)
         FROM {} WHERE m.pos = ?1 AND m.kind = 1",
        super::queries::MESSAGES
    );
    for &(_, pos) in asked.iter().filter(|(_, pos)| *pos <= mark) {
        tx.prepare_cached("DELETE FROM s.idx WHERE rowid = ?1")?
            .execute([pos])?;
        tx.prepare_cached(&add)?.execute([pos])?;
    }
    tx.execute(
        "INSERT INTO s.meta (key, value) VALUES ('reindexed', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [last],
    )?;
    Ok(asked.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_quoted_words_and_bounded() {
        assert_eq!(
            expression("hello world").as_deref(),
            Ok("\"hello\" \"world\"")
        );
        assert_eq!(expression("tea*").as_deref(), Ok("\"tea\"*"));
        assert_eq!(
            expression("a\" OR b NEAR(").as_deref(),
            Ok("\"a\"\"\" \"OR\" \"b\" \"NEAR(\"")
        );
        assert_eq!(expression("  ... !! "), Err(QueryError::Empty));
        assert_eq!(expression(&"w ".repeat(20)), Err(QueryError::TooLong));
        assert_eq!(expression(&"x".repeat(600)), Err(QueryError::TooLong));
    }
}

/// The search benchmark (docs/performance.md, "Search"):
/// `cargo test --release -p chatd --lib search_bench -- --ignored --nocapture`
/// (`SEARCH_BENCH_MESSAGES` to change the 1,000,000).
#[cfg(test)]
mod bench {
    use std::time::Instant;

    use ed25519_dalek::SigningKey;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::chat::envelope::{Draft, sign};
    use crate::chat::hlc::Timestamp;
    use crate::chat::room::Room;
    use crate::chat::store::Store;

    /// A word of a 5,000-word vocabulary, the low ranks far more frequent (Zipf-like).
    fn word(rng: &mut impl Rng) -> String {
        let u: f64 = rng.random();
        let rank = (5000f64.powf(u) as usize).min(4999);
        format!("w{rank}")
    }

    #[test]
    #[ignore = "a benchmark: run with --ignored --release"]
    fn search_bench() {
        let n: u64 = std::env::var("SEARCH_BENCH_MESSAGES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        let dir = tempfile::tempdir().expect("tmp");
        let mut store = Store::open(dir.path(), n + 1).expect("store");
        store.set_commit_delay(std::time::Duration::from_secs(3600));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let rooms: Vec<Room> = (0..20)
            .map(|i| format!("room{i}").parse().expect("room"))
            .collect();
        let keys: Vec<SigningKey> = (0..50u8)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect();
        let mut seqs = vec![0u64; keys.len()];
        let start = Instant::now();
        for i in 0..n {
            let k = rng.random_range(0..keys.len());
            seqs[k] += 1;
            let words = rng.random_range(6..16);
            let text: Vec<String> = (0..words).map(|_| word(&mut rng)).collect();
            let room = &rooms[rng.random_range(0..rooms.len())];
            let m = sign(
                &keys[k],
                &Draft {
                    seq: seqs[k],
                    hlc: Timestamp::new(1_700_000_000_000 + i, 0),
                    room,
                    text: &text.join(" "),
                    nick: None,
                    event: None,
                    author: None,
                    change: None,
                },
            )
            .expect("signs");
            store.insert(&m).expect("insert");
        }
        store.commit().expect("commit");
        let stored = start.elapsed();
        create(dir.path()).expect("index");
        let db = Connection::open(dir.path().join(DB_FILE)).expect("open");
        attach(&db, dir.path()).expect("attach");
        let start = Instant::now();
        while index_pass(&db).expect("pass") > 0 {}
        let indexed = start.elapsed();
        let reader = Connection::open(dir.path().join(DB_FILE)).expect("open");
        attach(&reader, dir.path()).expect("attach");
        let mut times = Vec::new();
        let mut by_kind: [Vec<std::time::Duration>; 4] = Default::default();
        let mut hits = 0;
        for i in 0..1000 {
            let q = match i % 4 {
                0 => word(&mut rng),
                1 => format!("{} {}", word(&mut rng), word(&mut rng)),
                2 => format!("w{}*", rng.random_range(1..50)),
                _ => format!("w{}", rng.random_range(2000..5000)),
            };
            let room = (i % 3 == 0).then(|| rooms[i % rooms.len()].as_str());
            let s = Search {
                expression: expression(&q).expect("query"),
                room,
                since_hlc: 0,
                before_pos: i64::MAX,
                limit: 51,
            };
            let t = Instant::now();
            hits += query(&reader, &s).expect("query").len();
            times.push(t.elapsed());
            by_kind[i % 4].push(t.elapsed());
        }
        times.sort();
        for (k, what) in [
            "one word",
            "two words",
            "a 2-3 letter prefix",
            "a rare word",
        ]
        .iter()
        .enumerate()
        {
            by_kind[k].sort();
            let v = &by_kind[k];
            println!(
                "  {what}: p50 {:.2} ms, p99 {:.2} ms",
                v[v.len() / 2].as_secs_f64() * 1000.0,
                v[v.len() * 99 / 100].as_secs_f64() * 1000.0
            );
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let size =
            |f: &str| std::fs::metadata(dir.path().join(f)).map_or(0, |m| m.len()) / (1 << 20);
        println!(
            "search_bench: {n} messages stored in {:.1} s, indexed in {:.1} s ({} MiB history, {} MiB index); 1000 queries: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.1} results each",
            stored.as_secs_f64(),
            indexed.as_secs_f64(),
            size(DB_FILE),
            size(INDEX_FILE),
            ms(times[500]),
            ms(times[990]),
            ms(times[999]),
            hits as f64 / 1000.0
        );
        assert!(
            times[990] < std::time::Duration::from_millis(50),
            "p99 over 50 ms"
        );
    }
}
