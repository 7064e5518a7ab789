//! A modified node against a held nickname (issue 32, attack 1), replayed on real daemons:
//! mallory's node gets, in its own `records.sqlite`, a claim of `alice` signed by mallory's
//! account and backdated to `created = 1` (and loses its copy of alice's real claim, if it held
//! one), and restarts. It serves and pushes that claim like any record it holds. The holders
//! keep alice's claim: every node's DHT names alice's account, alice keeps her name on her own
//! node, mallory's `chatctl nick alice` does not give it the name, and a private message to
//! `alice` reaches alice and nobody else.

use std::path::Path;
use std::time::Duration;

use chat_overlay::records::{Kind, Record, Value, location};
use chatd::identity::Identity;
use ed25519_dalek::SigningKey;

use crate::cluster::{Cluster, poll};

const FORM: Duration = Duration::from_secs(60);
/// How long the forged claim may take to meet the holders (a stray is handed over after 4
/// comparison periods of 3 s) and a message to arrive.
const SETTLE: Duration = Duration::from_secs(60);

fn account(dir: &Path) -> SigningKey {
    let (id, _) =
        Identity::load_or_create_file(&dir.join("data"), "account.key").expect("account key");
    id.signing_key().clone()
}

/// The owner (hex) of the `nick NAME` record member `i` reads from the DHT.
fn holder_of(c: &Cluster, i: usize, name: &str) -> Option<String> {
    let v = c.json(
        &c.members[i].dir,
        &["record", "get", "nick", name, "--json"],
    )?;
    let owner = v["records"].as_array()?.first()?["owner"].clone();
    match owner {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Array(bytes) => Some(hex::encode(
            bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Vec<u8>>(),
        )),
        _ => None,
    }
}

/// The owners (hex) of the `nick NAME` claims the record file in `dir` holds.
fn held(dir: &Path, name: &str) -> Vec<String> {
    let Ok(db) = rusqlite::Connection::open(dir.join("data/records.sqlite")) else {
        return Vec::new();
    };
    let Ok(mut rows) = db.prepare("SELECT body FROM records") else {
        return Vec::new();
    };
    rows.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map(|rows| {
            rows.filter_map(Result::ok)
                .filter_map(|b| ciborium::from_reader::<Record, _>(&b[..]).ok())
                .filter(|r| r.kind == Kind::Nick as u8 && r.key == name.as_bytes())
                .map(|r| hex::encode(r.owner))
                .collect()
        })
        .unwrap_or_default()
}

/// The members holding `nick NAME` by the ring's rule: the three whose ids follow its
/// location clockwise.
fn holders(c: &Cluster, name: &str) -> Vec<usize> {
    let loc = hex::encode(location(Kind::Nick as u8, name.as_bytes()).0);
    let mut ids: Vec<(String, usize)> = (0..c.members.len())
        .map(|i| (c.members[i].id.clone(), i))
        .collect();
    ids.sort();
    let first = ids.iter().position(|(id, _)| *id >= loc).unwrap_or(0);
    ids.rotate_left(first);
    ids.into_iter().take(3).map(|(_, i)| i).collect()
}

/// What every member holds and reads of `nick NAME`, for a failure's message.
fn stores(c: &Cluster, names: &[&str], name: &str) -> String {
    c.live()
        .into_iter()
        .map(|i| {
            format!(
                "{} {}: holds {:?}, reads {:?}\n",
                names[i],
                &c.members[i].id[..8],
                held(&c.members[i].dir, name),
                holder_of(c, i, name)
            )
        })
        .collect()
}

/// Replaces every `nick NAME` row of the record file in `dir` by `forged`.
fn plant(dir: &Path, name: &str, forged: &Record) {
    let db = rusqlite::Connection::open(dir.join("data/records.sqlite")).expect("record file");
    let rows: Vec<(Vec<u8>, Vec<u8>)> = db
        .prepare("SELECT hash, body FROM records")
        .expect("select")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .filter_map(Result::ok)
        .collect();
    for (hash, body) in rows {
        if let Ok(r) = ciborium::from_reader::<Record, _>(&body[..])
            && r.kind == Kind::Nick as u8
            && r.key == name.as_bytes()
        {
            db.execute("DELETE FROM records WHERE hash = ?1", [hash])
                .expect("delete");
        }
    }
    let mut body = Vec::new();
    ciborium::into_writer(forged, &mut body).expect("cbor");
    db.execute(
        "INSERT INTO records (hash, expires_unix_ms, body) VALUES (?1, ?2, ?3)",
        rusqlite::params![forged.hash().0.to_vec(), forged.expires as i64, body],
    )
    .expect("insert");
}

#[test]
fn a_backdated_claim_planted_in_a_nodes_record_file_does_not_take_a_held_name() {
    let names = ["alice", "carol", "mallory", "dave", "erin"];
    let (alice, carol, mallory) = (0, 1, 2);
    let mut c = Cluster::named(71, &names, FORM);
    let alice_key = hex::encode(account(&c.members[alice].dir).verifying_key().to_bytes());
    poll(SETTLE, Duration::from_millis(300), || {
        c.live()
            .into_iter()
            .all(|i| holder_of(&c, i, "alice").as_deref() == Some(alice_key.as_str()))
            .then_some(())
    })
    .expect("every node reads alice's claim");
    // The name is held: its three holders keep alice's claim (a claim taken while the ring
    // was still forming may sit at its first node until the holders compare ranges).
    let holding = holders(&c, "alice");
    poll(SETTLE, Duration::from_millis(300), || {
        holding
            .iter()
            .all(|&i| held(&c.members[i].dir, "alice") == [alice_key.clone()])
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the holders never held alice's claim\n{}",
            stores(&c, &names, "alice")
        )
    });

    // Mallory's node stops; its record file gets the forged claim; it starts again.
    c.members[mallory].daemon = None;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let forged = Record::sign(
        Kind::Nick,
        b"alice".to_vec(),
        Value::Data(b"alice".to_vec()),
        &account(&c.members[mallory].dir),
        1,
        1,
        now + 24 * 3600 * 1000,
    );
    plant(&c.members[mallory].dir, "alice", &forged);
    c.restart(mallory, &[c.addr(alice)]);

    // The forged claim meets a holder of alice's: a dispute the holders' answers settle.
    let settled = poll(SETTLE, Duration::from_millis(300), || {
        c.live()
            .into_iter()
            .any(|i| {
                c.members[i]
                    .daemon
                    .as_ref()
                    .is_some_and(|d| d.log().contains("two claims of one name met here"))
            })
            .then_some(())
    });
    assert!(
        settled.is_some(),
        "no holder met the forged claim\n{}",
        c.members[mallory]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(40))
            .unwrap_or_default()
    );

    // Every node's DHT still names alice, alice keeps her name. A read that finds no answer
    // yet (a node just back, its view still filling) is asked again; an answer naming anyone
    // but alice fails at once.
    for i in c.live() {
        poll(SETTLE, Duration::from_millis(300), || {
            let owner = holder_of(&c, i, "alice")?;
            assert_eq!(
                owner,
                alice_key,
                "{} reads another owner of alice\n{}",
                names[i],
                stores(&c, &names, "alice")
            );
            Some(())
        })
        .unwrap_or_else(|| panic!("{} reads no owner of alice", names[i]));
    }
    let nick_of = |c: &Cluster, i: usize| {
        c.status(i)
            .and_then(|s| s["nickname"].as_str().map(str::to_owned))
    };
    assert_eq!(nick_of(&c, alice).as_deref(), Some("alice"));

    // Mallory asks for the name through its own node: it does not get it.
    let _ = c.sandbox.chatctl_at(
        &c.members[mallory].dir.join("run/control.sock"),
        &["nick", "alice"],
    );
    let taken = poll(Duration::from_secs(20), Duration::from_millis(300), || {
        nick_of(&c, mallory).filter(|n| n != "alice" && !n.is_empty())
    });
    assert!(
        taken.is_some(),
        "mallory's node shows {:?}",
        nick_of(&c, mallory)
    );
    assert_ne!(nick_of(&c, mallory).as_deref(), Some("alice"));
    assert_eq!(
        holder_of(&c, carol, "alice").as_deref(),
        Some(alice_key.as_str())
    );

    // Carol writes to alice: alice reads it, mallory does not.
    let secret = "for-alice-only-3b9e";
    let sent = c.sandbox.chatctl_at(
        &c.members[carol].dir.join("run/control.sock"),
        &["dm", "alice", secret],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    poll(SETTLE, Duration::from_millis(300), || {
        c.received(alice).iter().any(|t| t == secret).then_some(())
    })
    .expect("alice gets carol's message");
    assert!(!c.received(mallory).iter().any(|t| t == secret));
}
