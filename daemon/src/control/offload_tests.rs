//! Reads beside delivery (issue 33): the control API's store reads run on the blocking pool,
//! bounded per kind, so reads that do not end neither stall the node's async worker (a
//! message stored meanwhile still reaches its subscriber) nor queue without bound (past the
//! limit, Search answers RESOURCE_EXHAUSTED).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chat_proto::v1::chat_service_server::ChatService;
use chat_proto::v1::{HistoryRequest, SearchRequest};
use ed25519_dalek::SigningKey;
use tonic::{Code, Request};

use super::ChatApi;
use super::testkit::fixture;
use crate::chat::ratelimit::Rate;
use crate::chat::{Chat, ChatConfig, Room};
use crate::offload::{DEFAULT_LIMITS, Limit, Offload, Work};

/// What the runtime's thread saw while the reads were stuck.
struct Seen {
    delivered: String,
    delivery: Duration,
    refused: (Code, String),
    refused_after: Duration,
}

/// On a runtime with ONE worker (every task shares it, as the ring's driver shares the
/// daemon's), two Searches and two Histories hold every place of their kinds, all stuck on a
/// read that does not end (the reader's connection held); a message stored meanwhile still
/// reaches a subscriber at once, a further Search waits its deadline and is refused with
/// RESOURCE_EXHAUSTED, and the stuck reads finish once the connection is free.
#[test]
fn stuck_reads_neither_stall_delivery_nor_queue_without_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = fixture();
    let chat = Chat::open(
        dir.path(),
        SigningKey::from_bytes(&[9; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("open");
    let lobby = Room::lobby();
    for i in 0..20 {
        chat.send_local(&lobby, &format!("hello {i}"))
            .expect("sent");
    }
    chat.commit().expect("commit");
    let wait = Duration::from_millis(300);
    let offload = Offload::new([
        Limit {
            running: 2,
            queued: 1,
            wait,
        },
        Limit {
            running: 2,
            queued: 16,
            wait: Duration::from_secs(60),
        },
        DEFAULT_LIMITS[2],
    ]);
    let rate = Rate {
        per_second: 100.0,
        burst: 100.0,
    };
    let api = ChatApi::new(chat.clone(), f.node.clone(), f.people.clone(), rate)
        .with_offload(offload.clone());

    // A read that does not end: the reader's connection is held until `release`.
    let (release, released) = mpsc::channel::<()>();
    let (held_tx, held) = mpsc::channel();
    let holder = chat.clone();
    let holding = std::thread::spawn(move || {
        let _guard = holder.hold_reader().expect("a file history has a reader");
        let _ = held_tx.send(());
        let _ = released.recv();
    });
    held.recv().expect("held");

    let (seen_tx, seen) = mpsc::channel();
    let (ended_tx, ended) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let search = || {
                Request::new(SearchRequest {
                    query: "hello".into(),
                    ..SearchRequest::default()
                })
            };
            let mut stuck = Vec::new();
            for _ in 0..2 {
                let (searching, r) = (api.clone(), search());
                stuck.push(tokio::spawn(async move {
                    searching.search(r).await.map(|_| ())
                }));
                let (reading, r) = (api.clone(), Request::new(HistoryRequest::default()));
                stuck.push(tokio::spawn(
                    async move { reading.history(r).await.map(|_| ()) },
                ));
            }
            // Until every place of both kinds is taken by a stuck read.
            let deadline = Instant::now() + Duration::from_secs(10);
            while offload.available(Work::Search) > 0 || offload.available(Work::Read) > 0 {
                assert!(Instant::now() < deadline, "the reads never started");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // The node's own delivery: a message stored now reaches its subscriber.
            let mut hub = chat.hub_subscribe();
            let sent = Instant::now();
            chat.send_local(&lobby, "live").expect("sent");
            let got = tokio::time::timeout(Duration::from_secs(5), hub.recv())
                .await
                .expect("delivered while the reads are stuck")
                .expect("hub");
            let delivery = sent.elapsed();
            // One more Search waits at most its deadline, then is refused.
            let asked = Instant::now();
            let refused = api.search(search()).await.expect_err("refused");
            let _ = seen_tx.send(Seen {
                delivered: got.message.text.clone(),
                delivery,
                refused: (refused.code(), refused.message().to_owned()),
                refused_after: asked.elapsed(),
            });
            let mut results = Vec::new();
            for s in stuck {
                results.push(s.await.expect("task").map_err(|e| e.code()));
            }
            let _ = ended_tx.send(results);
        });
    });
    let seen = match seen.recv_timeout(Duration::from_secs(30)) {
        Ok(s) => s,
        Err(_) => {
            let _ = release.send(());
            panic!("the node stalled while reads were stuck");
        }
    };
    assert_eq!(seen.delivered, "live");
    assert!(
        seen.delivery < Duration::from_secs(1),
        "delivery took {:?}",
        seen.delivery
    );
    assert_eq!(
        seen.refused.0,
        Code::ResourceExhausted,
        "{}",
        seen.refused.1
    );
    assert!(
        seen.refused.1.contains("busy with search calls"),
        "{}",
        seen.refused.1
    );
    assert!(
        seen.refused_after >= wait,
        "waited its deadline first: {:?}",
        seen.refused_after
    );
    // The stuck reads finish once the connection is free.
    let _ = release.send(());
    holding.join().expect("holder");
    let results = ended
        .recv_timeout(Duration::from_secs(30))
        .expect("the stuck reads finished");
    assert_eq!(results, vec![Ok(()); 4]);
    runner.join().expect("runner");
}
