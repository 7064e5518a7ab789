//! Hostile names: a profile that claims a held name (signed by its own account, with an
//! early `created`) is shown with a suffix and never receives the one-to-one messages sent to
//! that name — the name is what the DHT's holders answer; and once two people have talked, a
//! different key behind the name is refused until the sender accepts it (trust on first use),
//! with a safety number both sides see alike.

use std::time::Duration;

use chat_overlay::broadcast::Envelope;
use chat_overlay::broadcast::wire::Bcast;
use chat_overlay::records::{Kind, Record, Value};
use chat_overlay::wire::{Message, Notice};
use chatd::chat::envelope::{self, Draft};
use chatd::chat::hlc::{Timestamp, wall_millis};
use chatd::chat::room::Room;
use chatd::people::event::{Event, Presence, Profile};
use ed25519_dalek::SigningKey;

use crate::cluster::{Cluster, json_lines, poll};
use crate::file_messages::inject;

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long a message or a profile may take to arrive.
const ARRIVE: Duration = Duration::from_secs(45);

/// Member `i`'s private messages (`chatctl dms --json`).
fn dms(c: &Cluster, i: usize) -> Vec<serde_json::Value> {
    json_lines(&c.ctl(i, &["dms", "-n", "200", "--json"]))
}

fn received(c: &Cluster, i: usize, text: &str) -> bool {
    dms(c, i)
        .iter()
        .any(|m| m["outgoing"] == false && m["text"] == text)
}

/// Member `i`'s users as (shown name, user id).
fn users(c: &Cluster, i: usize) -> Vec<(String, String, serde_json::Value)> {
    c.json(&c.members[i].dir, &["users", "--json"])
        .and_then(|v| v["users"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or("").to_owned();
            (s("nickname"), s("user_id"), u)
        })
        .collect()
}

/// Each of `members`' private messages, users and last log lines, for a failed wait.
fn diagnose(c: &Cluster, members: &[usize]) -> String {
    let mut out = String::new();
    for &i in members {
        let tail = c.members[i]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(60))
            .unwrap_or_default();
        let list: Vec<(String, String)> = users(c, i).into_iter().map(|u| (u.0, u.1)).collect();
        out += &format!(
            "--- member {i}: dms {:?}\nusers {list:?}\nlog (newest first):\n{tail}\n",
            dms(c, i),
        );
    }
    out
}

/// Member `i`'s own account (hex).
fn own_id(c: &Cluster, i: usize) -> String {
    users(c, i)
        .into_iter()
        .find(|u| u.2["self"] == true)
        .map(|u| u.1)
        .expect("the node lists its own user")
}

/// The broadcast repair a hostile node sends: a people event from node `node_key` carrying
/// the profile of account `account`, hosted there, claiming `nick` with a self-signed claim
/// created at the dawn of time.
fn forged_profile(node_key: &SigningKey, account: &SigningKey, nick: &str) -> Message {
    let node = chatd::identity::node_id(&node_key.verifying_key());
    let now = wall_millis();
    let claim = Record::sign(
        Kind::Nick,
        nick.to_ascii_lowercase().into_bytes(),
        Value::Data(nick.as_bytes().to_vec()),
        account,
        1,
        1,
        now + 20 * 24 * 3600 * 1000,
    );
    let profile = Profile {
        account: account.verifying_key().to_bytes(),
        node: node.0,
        nick: nick.into(),
        claim,
        guest: false,
        presence: Presence::Online,
        away: String::new(),
        since_ms: now,
        version: now,
    };
    let event = Event::Profile(profile.sign(account)).encode();
    let signed = envelope::sign(
        node_key,
        &Draft {
            seq: 1,
            hlc: Timestamp::new(now, 0),
            room: &Room::lobby(),
            text: "",
            event: Some(&event),
            author: None,
            nick: None,
            change: None,
        },
    )
    .expect("signs");
    let env = Envelope {
        origin: node,
        seq: 1,
        payload: signed.wire.to_vec(),
    };
    Message::Notice(Notice::Broadcast(Bcast::Repair { id: env.id(), env }))
}

#[test]
fn a_forged_profile_claiming_a_held_name_gets_no_messages_sent_to_it() {
    let names = ["alice", "carol", "bob"];
    let c = Cluster::named(61, &names, FORM);
    let alice = own_id(&c, 0);

    // A hostile node (not even in the ring) makes up an account claiming "alice", signed by
    // that account, created at time 1 — earlier than alice's real claim — and hands it to
    // carol's node as a broadcast repair; it travels on along the ring.
    let node_key = SigningKey::from_bytes(&[0x61; 32]);
    let forger = SigningKey::from_bytes(&[0x62; 32]);
    let forged = hex::encode(forger.verifying_key().to_bytes());
    let repair = forged_profile(&node_key, &forger, "alice");
    inject(&node_key, "127.0.61.200:0", c.addr(1), &repair);

    // Carol's node takes the profile (its signatures hold) — and shows it with a suffix: the
    // DHT's holders name alice's real account, which keeps the plain name.
    let seen = poll(ARRIVE, Duration::from_millis(200), || {
        let list = users(&c, 1);
        let fake = list.iter().find(|u| u.1 == forged)?;
        let real = list.iter().find(|u| u.1 == alice)?;
        (fake.0.starts_with("alice#") && real.0 == "alice").then(|| (fake.0.clone(), list.len()))
    });
    let (shown, _) = seen.unwrap_or_else(|| {
        panic!(
            "carol never showed the forged profile apart from alice: {:?}",
            users(&c, 1)
        )
    });
    assert_ne!(shown, "alice");

    // A one-to-one message to "alice" reaches alice's account, acknowledged end to end.
    let text = "for-the-real-alice-5c1e";
    let sent = c.ctl(1, &["dm", "alice", text]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let arrived = poll(ARRIVE, Duration::from_millis(250), || {
        received(&c, 0, text).then_some(())
    });
    assert!(arrived.is_some(), "alice never got the message");
    let to = dms(&c, 1)
        .into_iter()
        .find(|m| m["outgoing"] == true && m["text"] == text)
        .expect("carol's sent message");
    assert_eq!(to["to_id"], alice, "{to}");
    assert!(!received(&c, 2, text), "bob got alice's message");

    // Every node shows the forged account with a suffix once it has it.
    for i in [0, 2] {
        let ok = poll(ARRIVE, Duration::from_millis(250), || {
            users(&c, i)
                .iter()
                .find(|u| u.1 == forged)
                .is_some_and(|u| u.0.starts_with("alice#"))
                .then_some(())
        });
        assert!(ok.is_some(), "node {i}: {:?}", users(&c, i));
    }
}

#[test]
fn a_new_key_behind_a_name_is_refused_until_the_sender_accepts_it() {
    let mut c = Cluster::named(62, &["alice", "carol"], FORM);
    let first = "before-the-change-0a7b";
    let sent = c.ctl(1, &["dm", "alice", first]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        poll(ARRIVE, Duration::from_millis(250), || received(
            &c, 0, first
        )
        .then_some(()))
        .is_some(),
        "alice never got the first message"
    );
    let old_alice = own_id(&c, 0);

    // Alice's node is gone with its key; carol loses the records it held (a new disk, say).
    // A new node with a new key claims the free name "alice".
    c.kill(0);
    if let Some(mut d) = c.members[1].daemon.take() {
        d.signal(rustix::process::Signal::TERM);
        d.wait_exit(Duration::from_secs(15)).expect("carol stops");
    }
    for f in ["records.sqlite", "records.sqlite-wal", "records.sqlite-shm"] {
        let _ = std::fs::remove_file(c.members[1].dir.join("data").join(f));
    }
    let new = c.add_with_env(&[], &[("CHATD_NODE__NICKNAME", "alice")]);
    c.restart(1, &[c.addr(new)]);
    c.await_ring(FORM);
    let new_alice = own_id(&c, new);
    assert_ne!(new_alice, old_alice);
    // Carol shows the new key with the plain name (the DHT's holders name it) and the old
    // one with a suffix, marked: the conversation under "alice" is bound to the old key.
    let shown = poll(FORM, Duration::from_millis(250), || {
        let list = users(&c, 1);
        let now = list.iter().find(|u| u.1 == new_alice)?;
        let before = list.iter().find(|u| u.1 == old_alice)?;
        (now.0 == "alice" && before.0.starts_with("alice#")).then(|| now.2.clone())
    });
    let shown = shown.unwrap_or_else(|| {
        panic!(
            "carol never showed the new alice: {}",
            diagnose(&c, &[1, new])
        )
    });
    assert_eq!(shown["key_changed"], true, "{shown}");

    // Carol's next message to "alice" is refused, with the way out in the message.
    let second = "after-the-change-3d9f";
    let refused = poll(FORM, Duration::from_millis(500), || {
        let out = c.ctl(1, &["dm", "alice", second]);
        assert!(
            !out.status.success(),
            "sent to a changed key without asking"
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.contains("key changed").then_some(err)
    });
    let err = refused.unwrap_or_else(|| panic!("never refused as a changed key"));
    assert!(
        err.contains("chatctl verify alice") && err.contains("--accept-new-key"),
        "{err}"
    );

    // Both sides see the same safety number; carol is told the key changed.
    let v = c
        .json(&c.members[1].dir, &["verify", "alice", "--json"])
        .expect("verify");
    assert_eq!(v["key_changed"], true, "{v}");
    assert_eq!(v["user_id"], new_alice.as_str(), "{v}");
    assert_eq!(v["bound_user_id"], old_alice.as_str(), "{v}");
    let number = v["safety_number"].as_str().unwrap_or("").to_owned();
    assert_eq!(number.split(' ').count(), 12, "{number}");
    let theirs = poll(ARRIVE, Duration::from_millis(250), || {
        c.json(&c.members[new].dir, &["verify", "carol", "--json"])
    })
    .expect("alice's verify");
    assert_eq!(theirs["safety_number"], number.as_str(), "{theirs}");

    // A message from the new key reaches carol marked: "alice" is bound to the old key.
    let hello = "hello-from-the-new-key-2b77";
    let out = c.ctl(new, &["dm", "carol", hello]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let marked = poll(ARRIVE, Duration::from_millis(250), || {
        dms(&c, 1)
            .into_iter()
            .find(|m| m["outgoing"] == false && m["text"] == hello)
    });
    let marked = marked.unwrap_or_else(|| {
        panic!(
            "carol never got the new alice's message: {}",
            diagnose(&c, &[1, new])
        )
    });
    assert_eq!(marked["key_changed"], true, "{marked}");

    // Accepted: sent to the new key, and from then on without the flag.
    let third = "accepted-new-key-61c2";
    let out = c.ctl(1, &["dm", "--accept-new-key", "alice", third]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fourth = "bound-again-8e04";
    let out = c.ctl(1, &["dm", "alice", fourth]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = poll(ARRIVE, Duration::from_millis(250), || {
        (received(&c, new, third) && received(&c, new, fourth)).then_some(())
    });
    assert!(
        both.is_some(),
        "the new alice never got the accepted messages: {}",
        diagnose(&c, &[1, new])
    );
    assert!(
        !received(&c, new, second),
        "the refused message went out after all"
    );

    // Confirmed: shown verified in carol's user list.
    let v = c
        .json(
            &c.members[1].dir,
            &["verify", "alice", "--confirm", "--json"],
        )
        .expect("verify --confirm");
    assert_eq!(
        (v["verified"].as_bool(), v["key_changed"].as_bool()),
        (Some(true), Some(false))
    );
    let marked = users(&c, 1)
        .into_iter()
        .find(|u| u.1 == new_alice)
        .map(|u| (u.0, u.2["verified"].clone(), u.2["key_changed"].clone()));
    assert_eq!(
        marked,
        Some((
            "alice".into(),
            serde_json::json!(true),
            serde_json::json!(false)
        ))
    );
    // The new alice's message is no longer marked changed but verified; the old alice's
    // first one now is marked.
    let now = dms(&c, 1);
    let of = |text: &str, key: &str| {
        now.iter()
            .find(|m| m["text"] == text)
            .map(|m| m[key].clone())
    };
    assert_eq!(of(hello, "key_changed"), Some(serde_json::Value::Null));
    assert_eq!(of(hello, "verified"), Some(serde_json::json!(true)));
    assert_eq!(of(first, "key_changed"), Some(serde_json::json!(true)));
}
