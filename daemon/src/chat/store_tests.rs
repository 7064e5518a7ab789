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
        store.set_own_seq(7).expect("own seq");
    }
    let store = Store::open(dir.path(), 10).expect("reopen");
    assert_eq!(store.position(&a.id).expect("pos"), Some(1));
    let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert_eq!(store.resume_point(&key).expect("resume").0, 7);
}
