//! Unit tests for [`super`]: which removals note a file, and the reference check.

use std::time::{Duration, Instant};

use chat_blobs::MediaType;
use ed25519_dalek::SigningKey;

use crate::chat::attachment::Attachment;
use crate::chat::room::Room;
use crate::chat::{Chat, ChatConfig};

const ALICE: Option<[u8; 32]> = Some([0xa1; 32]);

fn core(seed: u8, config: &ChatConfig) -> Chat {
    Chat::in_memory(SigningKey::from_bytes(&[seed; 32]), None, config).expect("chat core")
}

fn file(hash: u8) -> Attachment {
    Attachment {
        hash: [hash; 32],
        name: "report.pdf".into(),
        size: 4096,
        media: MediaType::Pdf,
        width: 0,
        height: 0,
        thumbnail: Vec::new(),
        thumbnail_refused: false,
    }
}

#[test]
fn a_delete_releases_the_file_unless_another_message_keeps_it() {
    let alice = core(1, &ChatConfig::default());
    let lobby = Room::lobby();
    let a = alice
        .send_attached(&lobby, "the report", ALICE, Some(&file(1)))
        .expect("sent");
    let b = alice
        .send_attached(&lobby, "again", ALICE, Some(&file(1)))
        .expect("sent");
    let c = alice
        .send_attached(&lobby, "other", ALICE, Some(&file(2)))
        .expect("sent");
    assert!(alice.references(&[1; 32]).expect("query"));
    assert!(!alice.references(&[3; 32]).expect("query"));
    assert!(alice.take_released().expect("take").is_empty());
    // An edit changes the text only: the file stays.
    alice
        .change_as(c.stored.message.id, Some("other (edited)"), ALICE)
        .expect("edit");
    assert!(alice.take_released().expect("take").is_empty());
    assert!(alice.references(&[2; 32]).expect("query"));
    // Deleting one of two messages with the same file: noted, but still referenced.
    alice
        .change_as(a.stored.message.id, None, ALICE)
        .expect("delete");
    assert_eq!(alice.take_released().expect("take"), [[1; 32]]);
    assert!(
        alice.take_released().expect("take").is_empty(),
        "taken once"
    );
    assert!(alice.references(&[1; 32]).expect("query"));
    alice
        .change_as(b.stored.message.id, None, ALICE)
        .expect("delete");
    alice
        .change_as(c.stored.message.id, None, ALICE)
        .expect("delete");
    assert_eq!(alice.take_released().expect("take"), [[1; 32], [2; 32]]);
    assert!(!alice.references(&[1; 32]).expect("query"));
    assert!(!alice.references(&[2; 32]).expect("query"));
}

#[test]
fn a_delete_from_the_ring_releases_the_file() {
    let alice = core(1, &ChatConfig::default());
    let bob = core(2, &ChatConfig::default());
    let lobby = Room::lobby();
    let m = alice
        .send_attached(&lobby, "pic", ALICE, Some(&file(5)))
        .expect("sent");
    bob.accept_remote(&m.wire).expect("accepted");
    assert!(bob.references(&[5; 32]).expect("query"));
    let del = alice
        .change_as(m.stored.message.id, None, ALICE)
        .expect("delete");
    bob.accept_remote(&del.wire).expect("accepted");
    assert_eq!(bob.take_released().expect("take"), [[5; 32]]);
    assert!(!bob.references(&[5; 32]).expect("query"));
}

#[test]
fn retention_releases_the_files_of_expired_and_dropped_messages() {
    // By age (chat.retention_days): everything older than now.
    let alice = core(1, &ChatConfig::default());
    let lobby = Room::lobby();
    alice
        .send_attached(&lobby, "old file", ALICE, Some(&file(7)))
        .expect("sent");
    alice.send_as(&lobby, "old text", ALICE).expect("sent");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alice.prune_expired(Duration::ZERO).expect("pruned") == 0 {
        assert!(Instant::now() < deadline, "nothing expired");
        std::thread::yield_now();
    }
    // (Both may go in one pass or two.)
    let _ = alice.prune_expired(Duration::ZERO);
    assert_eq!(alice.take_released().expect("take"), [[7; 32]]);
    assert!(!alice.references(&[7; 32]).expect("query"));

    // By count (chat.retention_messages).
    let config = ChatConfig {
        retention_messages: 2,
        ..ChatConfig::default()
    };
    let bob = core(2, &config);
    bob.send_attached(&lobby, "first", ALICE, Some(&file(8)))
        .expect("sent");
    bob.send_as(&lobby, "second", ALICE).expect("sent");
    assert!(bob.take_released().expect("take").is_empty());
    bob.send_as(&lobby, "third", ALICE).expect("sent");
    assert_eq!(bob.take_released().expect("take"), [[8; 32]]);
}
