//! Unit tests for [`super`]: dedupe, sequence reuse, paging, rooms, retention, the log and
//! group commit, the messages a failed write lost.

use std::time::{Duration, Instant};

use super::*;
use crate::chat::envelope::{Draft, sign};
use ed25519_dalek::SigningKey;

fn msg(key: u8, seq: u64, ms: u64, room: &str, text: &str) -> ChatMessage {
    let room: Room = room.parse().expect("room");
    sign(
        &SigningKey::from_bytes(&[key; 32]),
        &Draft {
            seq,
            hlc: Timestamp::new(ms, 0),
            room: &room,
            text,
            nick: None,
            event: None,
            author: None,
            change: None,
        },
    )
    .expect("signs")
}

#[test]
fn dedupes_by_id_and_by_origin_sequence() {
    let mut store = Store::in_memory(100).expect("store");
    let a = msg(1, 1, 1000, "lobby", "a");
    assert_eq!(store.insert(&a).expect("insert"), Insert::New(1));
    assert_eq!(store.insert(&a).expect("insert"), Insert::Duplicate);
    let conflicting = msg(1, 1, 1001, "lobby", "other text, same seq");
    assert_eq!(
        store.insert(&conflicting).expect("insert"),
        Insert::SeqReused
    );
    let b = msg(2, 1, 1002, "lobby", "b");
    assert_eq!(store.insert(&b).expect("insert"), Insert::New(2));
    assert_eq!(store.position(&b.id).expect("pos"), Some(2));
    let stored = store.after(0, None, 10).expect("after");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].message, a, "round trips every field");
}

#[test]
fn pages_by_room_in_both_directions() {
    let mut store = Store::in_memory(100).expect("store");
    for i in 1..=10u64 {
        let room = if i % 2 == 0 { "even" } else { "odd" };
        store
            .insert(&msg(1, i, 1000 + i, room, &format!("m{i}")))
            .expect("insert");
    }
    let even: Room = "even".parse().expect("room");
    let texts = |v: Vec<Stored>| v.into_iter().map(|s| s.message.text).collect::<Vec<_>>();
    assert_eq!(
        texts(store.after(0, Some(&even), 2).expect("q")),
        ["m2", "m4"]
    );
    assert_eq!(
        texts(store.after(4, Some(&even), 10).expect("q")),
        ["m6", "m8", "m10"]
    );
    assert_eq!(
        texts(store.before(i64::MAX, Some(&even), 2).expect("q")),
        ["m8", "m10"]
    );
    assert_eq!(
        texts(store.before(6, None, 3).expect("q")),
        ["m3", "m4", "m5"]
    );
    let rooms = store.rooms().expect("rooms");
    assert_eq!(
        rooms
            .iter()
            .map(|r| (r.name.as_str(), r.count))
            .collect::<Vec<_>>(),
        [("even", 5), ("odd", 5)]
    );
    assert_eq!(rooms[0].last_hlc, Timestamp::new(1010, 0));
}

#[test]
fn retention_prunes_and_refuses_what_is_older_than_the_horizon() {
    let mut store = Store::in_memory(3).expect("store");
    for i in 1..=5u64 {
        store
            .insert(&msg(1, i, 1000 + i, "lobby", "x"))
            .expect("insert");
    }
    let kept = store.after(0, None, 10).expect("after");
    assert_eq!(kept.iter().map(|s| s.pos).collect::<Vec<_>>(), [3, 4, 5]);
    // seq 1 was pruned: offering it again is refused, not stored twice.
    assert_eq!(
        store
            .insert(&msg(1, 1, 1001, "lobby", "x"))
            .expect("insert"),
        Insert::Stale
    );
    // A kept message older than the horizon is still recognised as a duplicate.
    let mut late = Store::in_memory(3).expect("store");
    let old = msg(2, 1, 900, "lobby", "late but kept");
    late.insert(&msg(1, 1, 1001, "lobby", "x")).expect("insert");
    late.insert(&msg(1, 2, 1002, "lobby", "x")).expect("insert");
    late.insert(&old).expect("insert");
    late.insert(&msg(1, 3, 1003, "lobby", "x")).expect("insert");
    assert_eq!(late.insert(&old).expect("insert"), Insert::Duplicate);
    assert_eq!(
        late.insert(&msg(2, 2, 950, "lobby", "new but old"))
            .expect("insert"),
        Insert::Stale
    );
    let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert_eq!(store.resume_point(&key).expect("resume").0, 5);
    // The horizon survives reopening (it is read back from the meta table).
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut s = Store::open(dir.path(), 1).expect("open");
        s.insert(&msg(1, 1, 1001, "lobby", "a")).expect("insert");
        s.insert(&msg(1, 2, 1002, "lobby", "b")).expect("insert");
    }
    let mut s = Store::open(dir.path(), 1).expect("reopen");
    assert_eq!(
        s.insert(&msg(1, 1, 1001, "lobby", "a")).expect("insert"),
        Insert::Stale
    );
}

#[test]
fn survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = msg(1, 1, 1000, "lobby", "kept");
    {
        let mut store = Store::open(dir.path(), 10).expect("open");
        store.insert(&a).expect("insert");
        // An own message records its sequence number with it, in the same transaction.
        assert_eq!(
            store
                .insert_own(&msg(9, 12, 1001, "lobby", "mine"))
                .expect("insert own"),
            Insert::New(2)
        );
    }
    let store = Store::open(dir.path(), 10).expect("reopen");
    assert_eq!(store.position(&a.id).expect("pos"), Some(1));
    let other = SigningKey::from_bytes(&[5; 32]).verifying_key();
    assert_eq!(store.resume_point(&other).expect("resume").0, 12);
}

#[test]
fn the_log_is_checkpointed_off_the_write_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path(), 10_000).expect("open");
    let auto: i64 = store
        .db
        .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(auto, 0, "commits never checkpoint");
    let body = "x".repeat(1000);
    for seq in 1..=200 {
        store
            .insert(&msg(1, seq, 1000 + seq, "lobby", &body))
            .expect("insert");
    }
    // 200 KB of messages reach the database file only through the checkpoint thread.
    let db_file = dir.path().join(DB_FILE);
    let size = || std::fs::metadata(&db_file).map_or(0, |m| m.len());
    let deadline = std::time::Instant::now() + super::super::checkpoint::INTERVAL * 10;
    while size() < 200_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(size() >= 200_000, "database file is {} bytes", size());
}

/// The restart counter in the write-ahead log's header (big-endian, bytes 12..16), which
/// SQLite increments each time the log starts over from its beginning.
fn log_restarts(dir: &Path) -> Option<u32> {
    let header = std::fs::read(dir.join(format!("{DB_FILE}-wal"))).ok()?;
    Some(u32::from_be_bytes(header.get(12..16)?.try_into().ok()?))
}

#[test]
fn the_log_restarts_while_messages_keep_arriving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path(), 100_000).expect("open");
    // A message every millisecond or so, never pausing for a checkpoint to catch up. One
    // checkpoint pass per second restarted the log about every 4 s here; the passes that
    // copy what the previous pass left restart it about every second (once per checkpoint).
    let deadline = std::time::Instant::now() + super::super::checkpoint::INTERVAL * 10;
    let mut first = None;
    let mut seq = 0;
    loop {
        seq += 1;
        store
            .insert(&msg(1, seq, 1000 + seq, "lobby", "steady"))
            .expect("insert");
        let now = log_restarts(dir.path());
        let first = *first.get_or_insert(now);
        if now.zip(first).is_some_and(|(n, f)| n >= f + 3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log never restarted in {seq} messages (counter {now:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Messages another connection sees in `dir`'s database: the committed ones.
fn committed(dir: &Path) -> i64 {
    let db = Connection::open(dir.join(DB_FILE)).expect("open");
    db.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn relayed_messages_are_committed_in_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path(), 1000).expect("open");
    let hour = Duration::from_secs(3600);
    store.set_commit_delay(hour);
    let before = Instant::now();
    for seq in 1..=3 {
        let m = msg(1, seq, 1000 + seq, "lobby", "relayed");
        assert_eq!(store.insert(&m).expect("insert"), Insert::New(seq as i64));
    }
    // Readers on the store's connection see the batch; the file does not have it yet.
    assert_eq!(store.after(0, None, 10).expect("after").len(), 3);
    assert_eq!(committed(dir.path()), 0);
    assert!(!store.commit_due(Instant::now()));
    assert!(store.commit_due(before + hour + Duration::from_secs(1)));
    let deadline = store.commit_deadline().expect("a batch is open");
    assert!(
        deadline >= before + hour * 2,
        "twice the delay after it opened"
    );
    assert_eq!(
        store
            .insert(&msg(1, 2, 1002, "lobby", "relayed"))
            .expect("insert"),
        Insert::Duplicate
    );
    assert_eq!(committed(dir.path()), 0, "a duplicate commits nothing");

    store.commit().expect("commit");
    assert_eq!(committed(dir.path()), 3);
    assert_eq!(store.commit_deadline(), None);
    assert!(!store.commit_due(before + hour * 10));
    // A duplicate with no batch open leaves none open.
    store
        .insert(&msg(1, 1, 1001, "lobby", "relayed"))
        .expect("insert");
    assert_eq!(store.commit_deadline(), None);

    // This node's own message is committed before insert_own returns, with the batch.
    store
        .insert(&msg(1, 4, 1004, "lobby", "relayed"))
        .expect("insert");
    assert_eq!(committed(dir.path()), 3);
    store
        .insert_own(&msg(9, 1, 1005, "lobby", "mine"))
        .expect("insert own");
    assert_eq!(committed(dir.path()), 5);

    // A store that is dropped (the daemon stopping) commits its batch.
    store
        .insert(&msg(1, 5, 1006, "lobby", "relayed"))
        .expect("insert");
    assert_eq!(committed(dir.path()), 5);
    drop(store);
    assert_eq!(committed(dir.path()), 6);
}

#[test]
fn a_full_batch_is_committed_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path(), 10_000).expect("open");
    store.set_commit_delay(Duration::from_secs(3600));
    for seq in 1..=MAX_BATCH as u64 + 1 {
        store
            .insert(&msg(1, seq, 1000 + seq, "lobby", "burst"))
            .expect("insert");
    }
    assert_eq!(committed(dir.path()), MAX_BATCH as i64);
    assert!(store.commit_deadline().is_some(), "the next batch is open");
}

#[test]
fn without_a_delay_each_message_is_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path(), 10).expect("open");
    store
        .insert(&msg(1, 1, 1000, "lobby", "at once"))
        .expect("insert");
    assert_eq!(committed(dir.path()), 1);
    assert_eq!(store.commit_deadline(), None);
}

#[test]
fn messages_past_the_age_limit_go_from_the_history_the_file_and_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut store = Store::open(dir.path(), 1000).expect("store");
    for i in 0..20u64 {
        let text = format!("secret-old-{i:02}");
        store
            .insert(&msg(1, i + 1, 1_000 + i, "lobby", &text))
            .expect("insert");
    }
    for i in 0..5u64 {
        let text = format!("kept-new-{i}");
        store
            .insert(&msg(2, i + 1, 9_000 + i, "lobby", &text))
            .expect("insert");
    }
    store.commit().expect("commit");
    // Chunked: 8, 8, then the last 4 (fewer than the chunk: done).
    assert_eq!(store.prune_older(5_000, 8).expect("prune"), 8);
    assert_eq!(store.prune_older(5_000, 8).expect("prune"), 8);
    assert_eq!(store.prune_older(5_000, 8).expect("prune"), 4);
    assert_eq!(store.prune_older(5_000, 8).expect("prune"), 0);
    let left: Vec<String> = store
        .after(0, None, 100)
        .expect("after")
        .into_iter()
        .map(|s| s.message.text)
        .collect();
    assert_eq!(
        left,
        [
            "kept-new-0",
            "kept-new-1",
            "kept-new-2",
            "kept-new-3",
            "kept-new-4"
        ]
    );
    // The ring offering an expired message again is refused.
    assert_eq!(
        store
            .insert(&msg(3, 1, 4_000, "lobby", "late and old"))
            .expect("insert"),
        Insert::Stale
    );
    // Not in the database file nor its log any more (overwritten, log emptied).
    drop(store);
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let found = bytes.windows(11).any(|w| w == b"secret-old-");
        assert!(!found, "{} still holds expired text", path.display());
    }
}

#[test]
fn a_damaged_history_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).expect("garbage");
    let err = match Store::open(dir.path(), 10) {
        Ok(_) => panic!("a file that is not a database opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&dir.path().join(DB_FILE).display().to_string()),
        "{err}"
    );
}

#[test]
fn a_failed_write_notes_the_messages_it_lost() {
    let mut store = Store::in_memory(100_000).expect("store");
    store.set_commit_delay(Duration::from_secs(60));
    let dropped = store.dropped();
    store
        .insert(&msg(1, 1, 1000, "lobby", "kept"))
        .expect("insert");
    store.commit().expect("commit");
    // The disk fills up: no page may be added.
    let pages: i64 = store
        .db
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("page count");
    store
        .db
        .pragma_update(None, "max_page_count", pages)
        .expect("limit");
    let big = "x".repeat(3000);
    let mut failed = None;
    for seq in 2..200 {
        if store
            .insert(&msg(1, seq, 1000 + seq, "lobby", &big))
            .is_err()
        {
            failed = Some(seq);
            break;
        }
    }
    let failed = failed.expect("the full disk refused a write");
    let origin = *SigningKey::from_bytes(&[1; 32]).verifying_key().as_bytes();
    let lost: Vec<u64> = dropped
        .lock()
        .expect("lock")
        .iter()
        .map(|(o, seq)| {
            assert_eq!(*o, origin);
            *seq
        })
        .collect();
    // Every message of the rolled-back batch, and the one that failed; not the committed one.
    assert_eq!(lost, (2..=failed).collect::<Vec<_>>());
}
