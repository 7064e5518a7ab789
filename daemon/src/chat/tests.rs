//! Unit tests of the [`Chat`] handle: two chat cores exchange envelopes the way the broadcast
//! layer will, and subscriptions replay, follow and lag.

use std::time::Duration;

use super::*;

fn core(seed: u8, nick: &str, config: &ChatConfig) -> Chat {
    Chat::in_memory(
        SigningKey::from_bytes(&[seed; 32]),
        nick.parse().ok(),
        config,
    )
    .expect("chat core")
}

async fn next(rx: &mut mpsc::Receiver<FeedEvent>) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event in time")
        .expect("subscription open")
}

fn text(event: &FeedEvent) -> &str {
    match event {
        FeedEvent::Message(s) => &s.message.text,
        FeedEvent::Lagged { .. } => panic!("unexpected lag: {event:?}"),
    }
}

#[tokio::test]
async fn a_local_message_reaches_another_core_once() {
    let config = ChatConfig::default();
    let alice = core(1, "alice", &config);
    let bob = core(2, "bob", &config);
    let lobby = Room::lobby();
    let out = alice.send_local(&lobby, "hi bob").expect("sent");
    let sent = out.stored.clone();
    assert_eq!((sent.message.seq, out.seq), (1, 1));

    let got = bob.accept_remote(&out.wire).expect("accepted");
    assert_eq!(got.message.id, sent.message.id);
    assert_eq!(got.message.nick.as_ref().map(|n| n.as_str()), Some("alice"));
    assert!(matches!(
        bob.accept_remote(&out.wire),
        Err(AcceptError::Duplicate)
    ));
    assert_eq!(bob.counters().received.load(Ordering::Relaxed), 1);
    assert_eq!(bob.after(0, None, 10).expect("history").len(), 1);

    let mut tampered = out.wire.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        bob.accept_remote(&tampered),
        Err(AcceptError::BadSignature)
    ));
    assert!(matches!(
        bob.accept_remote(b"junk"),
        Err(AcceptError::Malformed(_))
    ));
    assert!(matches!(
        bob.accept_remote(&vec![0; envelope::MAX_WIRE_BYTES + 1]),
        Err(AcceptError::Oversized(_))
    ));
    assert_eq!(bob.counters().refused.load(Ordering::Relaxed), 3);

    // From the ring: the inbox verifies once, in the validator, and stores on delivery.
    use crate::overlay::Inbox;
    let env = |seq, payload: &[u8]| chat_overlay::broadcast::Envelope {
        origin: sent.message.from_id(),
        seq,
        payload: payload.to_vec(),
    };
    let carol = core(3, "carol", &config);
    let inbox = RingInbox::new(carol.clone());
    assert!(!inbox.validate(&env(1, &tampered)), "bad signature");
    assert!(
        !inbox.validate(&env(2, &out.wire)),
        "sequence number differs"
    );
    assert!(!inbox.validate(&env(1, b"junk")));
    assert!(inbox.validate(&env(1, &out.wire)));
    inbox.deliver(&env(1, &out.wire));
    assert_eq!(carol.counters().received.load(Ordering::Relaxed), 1);
    assert_eq!(carol.counters().refused.load(Ordering::Relaxed), 0);
    assert_eq!(carol.after(0, None, 10).expect("history").len(), 1);
    // A delivery that was not validated here is verified, not trusted.
    let dave = core(4, "dave", &config);
    RingInbox::new(dave.clone()).deliver(&env(1, &tampered));
    assert_eq!(dave.counters().received.load(Ordering::Relaxed), 0);
    assert_eq!(dave.counters().refused.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn refuses_bad_texts_and_bounds_the_sends_waiting_for_the_ring() {
    let config = ChatConfig {
        outbound_queue: 1,
        ..ChatConfig::default()
    };
    let alice = core(1, "alice", &config);
    let lobby = Room::lobby();
    assert!(matches!(
        alice.send_local(&lobby, ""),
        Err(SendError::Text(_))
    ));
    let waiting = alice.sending_permit().expect("one may wait");
    assert!(matches!(alice.sending_permit(), Err(SendError::Busy)));
    drop(waiting);
    let _again = alice.sending_permit().expect("room again");
    let first = alice.send_local(&lobby, "one").expect("sent");
    assert_eq!(first.seq, 1, "a refused text uses no sequence number");
}

#[tokio::test]
async fn sequence_numbers_continue_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_bytes(&[3; 32]);
    let config = ChatConfig::default();
    let lobby = Room::lobby();
    let first = {
        let chat = Chat::open(dir.path(), key.clone(), None, &config).expect("open");
        chat.send_local(&lobby, "before").expect("sent").stored
    };
    let chat = Chat::open(dir.path(), key, None, &config).expect("reopen");
    let second = chat.send_local(&lobby, "after").expect("sent").stored;
    assert_eq!(second.message.seq, first.message.seq + 1);
    assert!(second.message.hlc > first.message.hlc);
}

#[tokio::test]
async fn subscriptions_replay_then_follow_by_room() {
    let chat = core(1, "alice", &ChatConfig::default());
    let lobby = Room::lobby();
    let dev: Room = "dev".parse().expect("room");
    let first = chat.send_local(&lobby, "l1").expect("sent").stored;
    chat.send_local(&dev, "d1").expect("sent");
    chat.send_local(&lobby, "l2").expect("sent");

    let mut all = chat
        .subscribe(None, Start::Backlog(2))
        .expect("ok")
        .expect("subscribed");
    assert_eq!(text(&next(&mut all).await), "d1");
    assert_eq!(text(&next(&mut all).await), "l2");
    let mut lobby_only = chat
        .subscribe(
            Some(lobby.clone()),
            Start::After {
                id: first.message.id,
                pos: first.pos,
            },
        )
        .expect("ok")
        .expect("subscribed");
    assert_eq!(text(&next(&mut lobby_only).await), "l2");
    let mut only_new = chat
        .subscribe(None, Start::Backlog(0))
        .expect("ok")
        .expect("subscribed");

    chat.send_local(&dev, "d2").expect("sent");
    chat.send_local(&lobby, "l3").expect("sent");
    assert_eq!(text(&next(&mut all).await), "d2");
    assert_eq!(text(&next(&mut all).await), "l3");
    assert_eq!(text(&next(&mut lobby_only).await), "l3");
    assert_eq!(text(&next(&mut only_new).await), "d2");
}

#[tokio::test]
async fn a_slow_subscriber_lags_without_holding_anyone_up() {
    let config = ChatConfig {
        subscriber_queue: 4,
        outbound_queue: 10_000,
        ..ChatConfig::default()
    };
    let chat = core(1, "alice", &config);
    let lobby = Room::lobby();
    let others = chat.subscribers();
    let mut slow = chat
        .subscribe(None, Start::Backlog(0))
        .expect("ok")
        .expect("subscribed");
    // Let the subscription reach its live phase before flooding: it follows the hub, and a
    // message stored after that came from its last replay page or the hub (the replay reads
    // the store off the task, so it may still be reading when the first message arrives).
    let first = chat.send_local(&lobby, "first").expect("sent").stored;
    assert_eq!(text(&next(&mut slow).await), "first");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while chat.subscribers() == others {
        assert!(
            std::time::Instant::now() < deadline,
            "never followed the hub"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = chat.send_local(&lobby, "second").expect("sent").stored;
    assert_eq!(text(&next(&mut slow).await), "second");
    for i in 0..500 {
        chat.send_local(&lobby, &format!("m{i}"))
            .expect("never blocks");
    }
    let mut delivered = vec![first.message.id, second.message.id];
    let (missed, resume_after) = loop {
        match next(&mut slow).await {
            FeedEvent::Message(s) => delivered.push(s.message.id),
            FeedEvent::Lagged {
                missed,
                resume_after,
            } => break (missed, resume_after),
        }
    };
    assert!(missed > 0);
    assert!(delivered.len() < 502, "it did fall behind");
    assert_eq!(resume_after, delivered.last().copied());
    assert!(slow.recv().await.is_none(), "the stream ends after Lagged");
    let resume = resume_after.expect("something was delivered");
    let pos = chat.position(&resume).expect("pos").expect("stored");
    let rest = chat.after(pos, None, 1000).expect("rest");
    assert_eq!(
        delivered.len() + rest.len(),
        502,
        "nothing is lost for good"
    );
}

#[tokio::test]
async fn subscriptions_are_bounded_and_released() {
    let config = ChatConfig {
        max_subscribers: 1,
        ..ChatConfig::default()
    };
    let chat = core(1, "alice", &config);
    let first = chat
        .subscribe(None, Start::Backlog(0))
        .expect("ok")
        .expect("first");
    assert!(
        chat.subscribe(None, Start::Backlog(0))
            .expect("ok")
            .is_none()
    );
    drop(first);
    let again = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Some(s)) = chat.subscribe(None, Start::Backlog(0)) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        again.is_ok(),
        "the slot is released when the client goes away"
    );
}

/// The ring never waits on a reader: while a History or ListRooms call holds the reader's
/// connection (a slow query), messages from the ring are still stored, committed and shown to
/// subscribers; the read itself waits for its own connection only.
#[test]
fn a_slow_read_does_not_hold_up_deliveries_from_the_ring() {
    use crate::overlay::Inbox;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ChatConfig {
        commit_delay: Duration::from_millis(20),
        ..ChatConfig::default()
    };
    let chat =
        Chat::open(dir.path(), SigningKey::from_bytes(&[9; 32]), None, &config).expect("open");
    let bob = core(2, "bob", &config);
    let lobby = Room::lobby();
    let sent: Vec<Local> = (0..50)
        .map(|i| bob.send_local(&lobby, &format!("m{i}")).expect("sent"))
        .collect();
    let envs: Vec<chat_overlay::broadcast::Envelope> = sent
        .iter()
        .map(|l| chat_overlay::broadcast::Envelope {
            origin: l.stored.message.from_id(),
            seq: l.seq,
            payload: l.wire.clone(),
        })
        .collect();

    let held = chat
        .hold_reader()
        .expect("a file history has its own reader");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let inbox = RingInbox::new(chat.clone());
    std::thread::spawn(move || {
        for env in &envs {
            assert!(inbox.validate(env));
            inbox.deliver(env);
        }
        inbox.flush();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the ring stored everything while a read was stuck");
    // The read is what waits: it needs the held connection.
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let reading = chat.clone();
    std::thread::spawn(move || {
        let _ = read_tx.send(
            reading
                .rooms()
                .map(|r| r.iter().map(|s| s.count).sum::<u64>()),
        );
    });
    assert!(
        read_rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "ListRooms did not use the held reader"
    );
    drop(held);
    let count = read_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the read finishes once its connection is free")
        .expect("rooms");
    assert_eq!(count, 50, "committed and visible to readers");
}

#[test]
fn stored_messages_are_found_by_their_words_newest_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let chat = Chat::open(
        dir.path(),
        SigningKey::from_bytes(&[7; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("chat");
    let lobby: Room = "lobby".parse().expect("room");
    let dev: Room = "dev".parse().expect("room");
    chat.send_local(&lobby, "Tea at five, anyone?")
        .expect("send");
    chat.send_local(&dev, "the build needs tea too")
        .expect("send");
    chat.send_local(&lobby, "coffee instead").expect("send");
    chat.send_local(&lobby, "[2J\" OR * NEAR(tea")
        .expect("send");
    let find = |q: &str, room: Option<&str>| -> Vec<String> {
        let s = search::Search {
            expression: search::expression(q).expect("query"),
            room,
            since_hlc: 0,
            before_pos: i64::MAX,
            limit: 10,
        };
        chat.search(&s)
            .expect("search")
            .expect("on disk")
            .into_iter()
            .map(|m| m.message.text)
            .collect()
    };
    // The indexer's pass (every 500 ms) makes them searchable.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while find("tea", None).len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        find("TEA", None),
        [
            "[2J\" OR * NEAR(tea",
            "the build needs tea too",
            "Tea at five, anyone?"
        ],
        "any case, newest first, query syntax in a message is just text"
    );
    assert_eq!(find("tea", Some("dev")), ["the build needs tea too"]);
    assert_eq!(find("co*", None), ["coffee instead"]);
    assert_eq!(find("tea five", None), ["Tea at five, anyone?"]);
    assert!(find("nothing-here", None).is_empty());
    // Syntax in a query is not interpreted either.
    assert_eq!(
        find("\" OR tea", None).len(),
        1,
        "only the message holding the quote and OR"
    );
}

/// A node whose history was lost (same key, empty store) meets its own earlier messages from
/// the ring: sending skips the numbers they hold instead of failing for ever, and numbers above
/// the floor the overlay gives it.
#[tokio::test]
async fn a_lost_history_never_makes_sending_fail() {
    let config = ChatConfig::default();
    let lobby = Room::lobby();
    let before = core(7, "x", &config);
    let old: Vec<Local> = (1..=3)
        .map(|i| {
            before
                .send_local(&lobby, &format!("old {i}"))
                .expect("sent")
        })
        .collect();
    let after = core(7, "x", &config);
    // Anti-entropy brings back its second and third messages before it sends.
    for l in &old[1..] {
        after.accept_remote(&l.wire).expect("own message back");
    }
    let first = after.send_local(&lobby, "new 1").expect("sent");
    assert_eq!(
        first.seq, 1,
        "nothing told it 1 is taken (the overlay's floor does)"
    );
    let second = after
        .send_local(&lobby, "new 2")
        .expect("2 is held: skipped, not an error");
    assert_eq!(second.seq, 4, "past the highest own number stored");
    let event = after.send_event(b"ev", "").expect("an event numbers on");
    assert_eq!(event.seq, 5);
    // The overlay's floor (the highest own number the ring holds) moves the counter up, never
    // down.
    after.number_above(10);
    assert_eq!(after.send_local(&lobby, "new 3").expect("sent").seq, 11);
    after.number_above(2);
    assert_eq!(after.send_local(&lobby, "new 4").expect("sent").seq, 12);
    // The same when the skipped number is an event's.
    let again = core(7, "x", &config);
    again.accept_remote(&event.wire).expect("own event back");
    again.number_above(4);
    assert_eq!(again.send_event(b"ev2", "").expect("skips past 5").seq, 6);
    // Another node has each message once: none of the new ones reuses an old number.
    let other = core(8, "y", &config);
    for l in old.iter().chain([&second, &event]) {
        other.accept_remote(&l.wire).expect("new to another node");
    }
    assert!(matches!(
        other.accept_remote(&first.wire),
        Err(AcceptError::Replay(_))
    ));
}

#[tokio::test]
async fn a_damaged_search_index_fails_the_open_with_its_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_bytes(&[4; 32]);
    let config = ChatConfig::default();
    {
        let chat = Chat::open(dir.path(), key.clone(), None, &config).expect("open");
        chat.send_local(&Room::lobby(), "before").expect("sent");
    }
    // Not a database any more (the history itself is intact).
    let index = dir.path().join(search::INDEX_FILE);
    for f in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("{}{f}", search::INDEX_FILE)));
    }
    std::fs::write(&index, vec![0x5a; 8192]).expect("damage");
    let Err(e) = Chat::open(dir.path(), key, None, &config) else {
        panic!("a damaged index fails the open");
    };
    assert!(
        e.to_string().contains(&index.display().to_string()),
        "the error names the file: {e}"
    );
}
