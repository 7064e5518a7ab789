//! Unit tests for [`super`]: dedupe, sequence reuse, paging, rooms and retention.

use super::*;
use crate::chat::envelope::{Draft, sign};
use ed25519_dalek::SigningKey;

fn msg(key: u8, seq: u64, ms: u64, room: &str, text: &str) -> Message {
    let room: Room = room.parse().expect("room");
    sign(
        &SigningKey::from_bytes(&[key; 32]),
        &Draft {
            seq,
            hlc: Timestamp::new(ms, 0),
            room: &room,
            text,
            nick: None,
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
    let key = SigningKey::from_bytes(&[1; 32]).verifying_key();
    assert_eq!(store.resume_point(&key).expect("resume").0, 5);
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
