//! The records this node holds, kept in SQLite (`records.sqlite` in the data directory) so a
//! restarted node serves them at once instead of waiting for the holders' comparison to send
//! them again.
//!
//! The overlay decides what is held; this file only mirrors it. Writes go through a bounded
//! queue to one writer thread, off the ring's path, in one transaction per batch. If the queue
//! is full the write is skipped and counted: the record is still held in memory and by the
//! other holders, and after a restart the holders' comparison brings back what the file lacks
//! (the file can never hold more than the node held: a record is written only when the overlay
//! holds it, and every record read back is verified again by the overlay).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use chat_overlay::records::{Hash, Record};
use rusqlite::{Connection, params};
use tracing::{debug, warn};

/// Writes waiting for the writer thread, at most.
pub const QUEUE: usize = 16_384;

/// Why the record file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordStoreError {
    /// SQLite failed.
    #[error("record store {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
    /// The writer thread could not be started.
    #[error("record store: cannot start its writer: {0}")]
    Thread(std::io::Error),
}

/// One write.
#[derive(Debug)]
pub enum Write {
    /// The node holds this record now.
    Hold(Box<Record>),
    /// The node no longer holds the record with this hash.
    Release(Hash),
}

/// The record file's writer.
#[derive(Debug)]
pub struct RecordFile {
    queue: SyncSender<Write>,
    skipped: AtomicU64,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        hash BLOB PRIMARY KEY,
        expires_unix_ms INTEGER NOT NULL,
        body BLOB NOT NULL
    ) WITHOUT ROWID;
";

fn open_db(path: &Path) -> Result<Connection, RecordStoreError> {
    let err = |source| RecordStoreError::Sql {
        path: path.display().to_string(),
        source,
    };
    let db = Connection::open(path).map_err(err)?;
    db.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
    db.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    db.execute_batch(SCHEMA).map_err(err)?;
    Ok(db)
}

/// Opens (or creates) `records.sqlite` in `dir`, drops what expired by `now_ms`, and returns
/// the remaining records (undecodable rows are dropped and counted in the log) with the
/// writer that keeps the file in step.
pub fn open(
    dir: &Path,
    now_ms: u64,
) -> Result<(Vec<Record>, RecordFile, JoinHandle<()>), RecordStoreError> {
    let path = dir.join("records.sqlite");
    let db = open_db(&path)?;
    let err = |source| RecordStoreError::Sql {
        path: path.display().to_string(),
        source,
    };
    db.execute(
        "DELETE FROM records WHERE expires_unix_ms <= ?1",
        params![now_ms as i64],
    )
    .map_err(err)?;
    let mut records = Vec::new();
    let mut bad = Vec::new();
    {
        let mut stmt = db.prepare("SELECT hash, body FROM records").map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(err)?;
        for row in rows {
            let (hash, body) = row.map_err(err)?;
            match ciborium::from_reader::<Record, _>(&body[..]) {
                Ok(r) if r.hash().0[..] == hash[..] => records.push(r),
                _ => bad.push(hash),
            }
        }
    }
    if !bad.is_empty() {
        warn!(
            rows = bad.len(),
            "record store: dropping rows that do not decode"
        );
        for h in &bad {
            db.execute("DELETE FROM records WHERE hash = ?1", params![h])
                .map_err(err)?;
        }
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    let writer = std::thread::Builder::new()
        .name("record-store".into())
        .spawn(move || {
            let mut db = db;
            crate::supervise::keep_running("the record file writer", || write_loop(&mut db, &rx))
        })
        .map_err(RecordStoreError::Thread)?;
    Ok((
        records,
        RecordFile {
            queue: tx,
            skipped: AtomicU64::new(0),
        },
        writer,
    ))
}

impl RecordFile {
    /// Queues `w` without waiting; a full queue skips it (counted, logged).
    pub fn write(&self, w: Write) {
        match self.queue.try_send(w) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.skipped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    warn!(
                        skipped = n + 1,
                        "record store: write queue full; the file will lag the node's records"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Writes skipped because the queue was full.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

fn write_loop(db: &mut Connection, rx: &Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        if let Err(e) = apply(db, &batch) {
            warn!(error = %e, writes = batch.len(), "record store: write failed");
        }
    }
    debug!("record store: writer stopped");
}

fn apply(db: &mut Connection, batch: &[Write]) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO records (hash, expires_unix_ms, body) VALUES (?1, ?2, ?3)",
        )?;
        let mut del = tx.prepare_cached("DELETE FROM records WHERE hash = ?1")?;
        for w in batch {
            match w {
                Write::Hold(r) => {
                    let mut body = Vec::with_capacity(r.size());
                    if ciborium::into_writer(r.as_ref(), &mut body).is_ok() {
                        put.execute(params![
                            &r.hash().0[..],
                            i64::try_from(r.expires).unwrap_or(i64::MAX),
                            body
                        ])?;
                    }
                }
                Write::Release(h) => {
                    del.execute(params![&h.0[..]])?;
                }
            }
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::records::{Kind, Value};
    use ed25519_dalek::SigningKey;

    fn record(n: u8, expires: u64) -> Record {
        let k = SigningKey::from_bytes(&[n; 32]);
        Record::sign(
            Kind::Profile,
            k.verifying_key().to_bytes().to_vec(),
            Value::Data(vec![n; 10]),
            &k,
            1,
            1_000,
            expires,
        )
    }

    #[test]
    fn held_records_come_back_released_and_expired_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (none, file, writer) = open(dir.path(), 0).expect("open");
        assert!(none.is_empty());
        let (a, b, c) = (record(1, 10_000), record(2, 10_000), record(3, 5_000));
        for r in [&a, &b, &c] {
            file.write(Write::Hold(Box::new(r.clone())));
        }
        file.write(Write::Release(b.hash()));
        drop(file);
        writer.join().expect("writer");
        let (back, _file, _w) = open(dir.path(), 6_000).expect("reopen");
        assert_eq!(back, vec![a], "b was released, c expired");
    }

    #[test]
    fn a_corrupt_row_is_dropped_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = open_db(&dir.path().join("records.sqlite")).expect("db");
            db.execute(
                "INSERT INTO records (hash, expires_unix_ms, body) VALUES (?1, ?2, ?3)",
                params![vec![1u8; 32], 99_999i64, vec![0xffu8; 7]],
            )
            .expect("insert");
        }
        let (back, _f, _w) = open(dir.path(), 0).expect("open");
        assert!(back.is_empty());
        let db = open_db(&dir.path().join("records.sqlite")).expect("db");
        let n: i64 = db
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 0);
    }
}
