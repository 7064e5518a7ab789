//! A presence epoch's batch as a receiver applies it: an item counts as its node's people
//! event only if it was made as an epoch item (its value behind
//! `sigctx::PRESENCE_EPOCH_ITEM`); any other record the node signed at the epoch's key — what
//! a client could once put through `RecordService` — is skipped.

use std::time::Duration;

use chat_overlay::records::{Kind as RecordKind, Record, Value};
use ed25519_dalek::SigningKey;

use super::event::{Event, Presence, Profile, normalise};
use super::{People, PeopleConfig};

/// A people service on node `[5; 32]`.
fn people(dir: &std::path::Path) -> std::sync::Arc<People> {
    let key = SigningKey::from_bytes(&[5; 32]);
    let node = crate::identity::node_id(&key.verifying_key());
    let chat = crate::chat::Chat::in_memory(key.clone(), None, &crate::chat::ChatConfig::default())
        .expect("chat");
    let (records, _) = crate::records::Records::open(dir, key).expect("records");
    People::open(
        dir,
        node,
        chat,
        records,
        PeopleConfig {
            wish: "bob".parse().expect("nick"),
            away_after: Duration::ZERO,
            nick_ttl: Duration::from_secs(3600),
        },
    )
    .expect("people")
}

/// Another node's epoch item (`value`) announcing `carol`, hosted there.
fn item(other: &SigningKey, value: impl Fn(Vec<u8>) -> Vec<u8>) -> Record {
    let account = SigningKey::from_bytes(&[77; 32]);
    let node = crate::identity::node_id(&other.verifying_key());
    let claim = Record::sign(
        RecordKind::Nick,
        normalise("carol").into_bytes(),
        Value::Data(b"carol".to_vec()),
        &account,
        1,
        1,
        u64::MAX / 2,
    );
    let profile = Profile {
        account: account.verifying_key().to_bytes(),
        node: node.0,
        nick: "carol".into(),
        claim,
        guest: false,
        presence: Presence::Online,
        away: String::new(),
        since_ms: 1,
        version: 1,
    };
    let event = Event::Profile(profile.sign(&account)).encode();
    let now = crate::records::unix_ms();
    let key = chat_people::epoch::epoch_key(chat_people::epoch::epoch_of(now));
    Record::sign(
        RecordKind::Mailbox,
        key.to_vec(),
        Value::Data(value(event)),
        other,
        now,
        now,
        now + 60_000,
    )
}

#[test]
fn only_items_made_as_epoch_items_are_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = people(dir.path());
    let other = SigningKey::from_bytes(&[6; 32]);
    // The bare event, as a client's mailbox put used to make the node sign it: skipped.
    let bare = item(&other, |e| e);
    let line = p.apply_batch(&[bare], true);
    assert!(line.is_empty(), "{line}");
    assert!(
        p.find("carol").is_none(),
        "a record not made as an epoch item was applied"
    );
    // Behind another purpose's context: skipped too.
    let profile_ctx = item(&other, |e| crate::sigctx::with(crate::sigctx::PROFILE, &e));
    p.apply_batch(&[profile_ctx], true);
    assert!(p.find("carol").is_none());
    // Made as an epoch item: applied.
    let made = item(&other, |e| {
        crate::sigctx::with(crate::sigctx::PRESENCE_EPOCH_ITEM, &e)
    });
    let line = p.apply_batch(&[made], true);
    assert!(line.contains("carol"), "{line}");
    assert!(p.find("carol").is_some());
}
