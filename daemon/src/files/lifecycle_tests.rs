//! Unit tests for [`super`] and the fetch sharing: a deleted message's file leaves the store
//! (unless another message keeps it), a released file is no longer served, and two fetches of
//! one blob share one transfer.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use chat_blobs::{Hash, MediaType};
use ed25519_dalek::SigningKey;

use super::super::tests::{data, node};
use crate::chat::attachment::Attachment;
use crate::chat::room::Room;
use crate::chat::{Chat, ChatConfig};

const ALICE: Option<[u8; 32]> = Some([0xa1; 32]);

fn reference(hash: Hash, size: u64) -> Attachment {
    Attachment {
        hash: hash.0,
        name: "report.bin".into(),
        size,
        media: MediaType::Unknown,
        width: 0,
        height: 0,
        thumbnail: Vec::new(),
        thumbnail_refused: false,
    }
}

/// Polls `f` every 50 ms until it is true or `within` passed.
async fn until(within: Duration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_fetches_of_one_blob_share_one_transfer() {
    let a = node(1);
    let b = node(2);
    let bytes = data(3 << 20);
    let info = a.files.import_bytes(bytes.clone()).await.expect("imports");
    let size = info.size;
    let (one, two) = tokio::join!(
        b.files.fetch(info.hash, size, vec![a.peer]),
        b.files.fetch(info.hash, size, vec![a.peer]),
    );
    assert_eq!(one.expect("the first fetch").hash, info.hash);
    assert_eq!(two.expect("the second fetch").hash, info.hash);
    let st = b.files.stats();
    assert_eq!(st.fetches_joined.load(Relaxed), 1, "the second waited");
    assert_eq!(st.bytes_fetched.load(Relaxed), size, "fetched once");
    assert_eq!(b.files.read_to_vec(info.hash).await.expect("reads"), bytes);
    assert!(!b.files.is_fetching(&info.hash));
    // A fetch that fails hands over to the one waiting, which tries on its own.
    let missing = Hash([7; 32]);
    let (one, two) = tokio::join!(
        b.files.fetch(missing, 1000, vec![a.peer]),
        b.files.fetch(missing, 1000, vec![a.peer]),
    );
    assert!(one.is_err() && two.is_err());
    assert_eq!(st.fetch_failures.load(Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_messages_file_leaves_the_store_unless_another_keeps_it() {
    let a = node(3);
    let b = node(4);
    let chat = Chat::in_memory(
        SigningKey::from_bytes(&[9; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("chat");
    tokio::spawn(super::run(b.files.clone(), chat.clone()));
    let lobby = Room::lobby();
    let kept = a.files.import_bytes(data(100_000)).await.expect("imports");
    let gone = a.files.import_bytes(data(200_000)).await.expect("imports");
    for f in [kept, gone] {
        b.files
            .fetch(f.hash, f.size, vec![a.peer])
            .await
            .expect("fetched");
    }
    b.files.pin(gone.hash).await.expect("pins");
    let m1 = chat
        .send_attached(&lobby, "one", ALICE, Some(&reference(kept.hash, kept.size)))
        .expect("sent");
    chat.send_attached(&lobby, "two", ALICE, Some(&reference(kept.hash, kept.size)))
        .expect("sent");
    let m3 = chat
        .send_attached(
            &lobby,
            "three",
            ALICE,
            Some(&reference(gone.hash, gone.size)),
        )
        .expect("sent");
    let summary = b.files.summary().await.expect("summary");
    assert_eq!((summary.files, summary.pinned_files), (2, 1));
    assert_eq!(summary.pinned_bytes, gone.size);
    // An edit keeps the file; deleting one of two messages with the same file keeps it.
    chat.change_as(m3.stored.message.id, Some("three!"), ALICE)
        .expect("edit");
    chat.change_as(m1.stored.message.id, None, ALICE)
        .expect("delete");
    chat.change_as(m3.stored.message.id, None, ALICE)
        .expect("delete");
    let files = b.files.clone();
    let removed = until(Duration::from_secs(10), async || {
        matches!(files.info(gone.hash).await, Ok(None))
    })
    .await;
    assert!(
        removed,
        "the deleted message's file is still held (pinned or not)"
    );
    assert!(b.files.info(kept.hash).await.expect("info").is_some());
    assert_eq!(b.files.stats().released.load(Relaxed), 1);
    assert!(b.files.was_released(&gone.hash));
    assert_eq!(b.files.summary().await.expect("summary").pinned_files, 0);
    // B no longer serves it: a fetch from B alone finds nothing.
    let c = node(5);
    let err = c
        .files
        .fetch(gone.hash, gone.size, vec![b.peer])
        .await
        .expect_err("B does not serve a released file");
    assert!(
        matches!(err, crate::files::FilesError::NoProvider { bad: 0, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_messages_file_leaves_the_store() {
    let a = node(6);
    let chat = Chat::in_memory(
        SigningKey::from_bytes(&[8; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("chat");
    tokio::spawn(super::run(a.files.clone(), chat.clone()));
    let own = a.files.import_bytes(data(50_000)).await.expect("imports");
    a.files.pin(own.hash).await.expect("pins");
    chat.send_attached(
        &Room::lobby(),
        "old news",
        ALICE,
        Some(&reference(own.hash, own.size)),
    )
    .expect("sent");
    // chat.retention_days with everything older than now expired (the pruning task's call).
    let c = chat.clone();
    let pruned = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.prune_expired(Duration::ZERO).expect("prunes") == 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    })
    .await
    .expect("joins");
    assert!(pruned, "the message never expired");
    let files = a.files.clone();
    let removed = until(Duration::from_secs(10), async || {
        matches!(files.info(own.hash).await, Ok(None))
    })
    .await;
    assert!(removed, "the expired message's (pinned) file is still held");
    assert_eq!(a.files.summary().await.expect("summary").pinned_files, 0);
}
