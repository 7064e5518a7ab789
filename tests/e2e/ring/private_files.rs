//! Private files over a real ring (issue 35): `chatctl dm bob --file report.pdf` while Bob's
//! node is stopped; the sender's node has the file's ciphertext kept by other nodes, then
//! stops too; one holder's copy is damaged on disk; Bob comes back and `chatctl get` gives him
//! the file byte-identical. No node but Alice's and Bob's has a 64-byte run of the plaintext
//! anywhere in its data directory (sqlite files included). A group file reaches every member;
//! a file whose every copy is damaged fails `get` with a clear error and writes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cluster::{Cluster, found_in, poll};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long a message (and its file) may take to arrive.
const ARRIVE: Duration = Duration::from_secs(60);
const ALICE: usize = 0;
const BOB: usize = 1;

fn ctl(c: &Cluster, i: usize, args: &[&str]) -> std::process::Output {
    c.sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), args)
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "chatctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Member `i`'s received private messages with a file, as JSON.
fn received_files(c: &Cluster, i: usize) -> Vec<serde_json::Value> {
    let out = ctl(c, i, &["dms", "-n", "200", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["outgoing"] == false && m.get("file").is_some())
        .collect()
}

/// A PDF-like file of about 1 MB whose every 64-byte run is distinctive.
fn pdf(seed: u64) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    let mut x = seed | 1;
    while out.len() < 1_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(b"\n%%EOF\n");
    out
}

/// The complete blob files named `hash` under member `i`'s data directory.
fn blob_path(c: &Cluster, i: usize, hash: &str) -> PathBuf {
    c.members[i].dir.join("data/blobs/complete").join(hash)
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("reads the blob");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).expect("writes the blob");
}

/// Five named nodes; Alice and Bob have talked once and Bob's node remembers the others.
fn five(net: u8) -> Cluster {
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let c = Cluster::named(net, &names, FORM);
    ok(&ctl(&c, ALICE, &["dm", "bob", "hello"]));
    poll(FORM, Duration::from_millis(200), || {
        c.received(BOB).iter().any(|t| t == "hello").then_some(())
    })
    .expect("bob gets the first message");
    c
}

/// Sends `file` from Alice to Bob while Bob's node is stopped; returns the sent message.
fn send_to_stopped_bob(c: &mut Cluster, path: &Path) -> serde_json::Value {
    c.kill(BOB);
    let out = ctl(
        c,
        ALICE,
        &[
            "dm",
            "--json",
            "bob",
            "--file",
            path.to_str().expect("utf-8"),
            "the",
            "report",
        ],
    );
    let text = ok(&out);
    serde_json::from_str(text.lines().last().expect("a line")).expect("json")
}

#[test]
fn a_private_pdf_reaches_an_offline_bob_after_its_sender_stopped() {
    let mut c = five(211);
    let bytes = pdf(0x5eed);
    let path = c.members[ALICE].dir.join("report.pdf");
    std::fs::write(&path, &bytes).expect("writes the file");
    let sent = send_to_stopped_bob(&mut c, &path);
    assert_eq!(sent["text"], "the report");
    assert_eq!(sent["file"]["name"], "report.pdf");
    assert_eq!(sent["file"]["size"], bytes.len() as u64);
    assert_eq!(sent["file"]["media_type"], "application/pdf");
    let holders = sent["file_holders"].as_u64().expect("file_holders");
    assert!(holders >= 1, "{sent}");
    let cipher = sent["file"]["hash"].as_str().expect("hash").to_owned();
    assert_ne!(
        cipher,
        blake3::hash(&bytes).to_hex().as_str(),
        "the blob is not the plaintext"
    );
    let id = sent["id"].as_str().expect("id").to_owned();
    // The holders have the ciphertext (as complete blobs); Alice's node stops.
    let held: Vec<usize> = (2..5)
        .filter(|&i| blob_path(&c, i, &cipher).exists())
        .collect();
    assert_eq!(held.len() as u64, holders, "holders {held:?}");
    // The message itself is in Bob's mailbox before Alice's node stops (SIGTERM).
    poll(ARRIVE, Duration::from_millis(300), || {
        let out = ctl(&c, ALICE, &["dms", "-n", "50", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|m| m["id"] == id.as_str() && m["status"] == "stored")
            .then_some(())
    })
    .expect("alice's node stores the message in bob's mailbox");
    if let Some(mut d) = c.members[ALICE].daemon.take() {
        d.signal(rustix::process::Signal::TERM);
        d.wait_exit(Duration::from_secs(20))
            .expect("alice's node stops");
    }
    // One holder's copy is damaged on disk (when there is another): it must not reach Bob.
    if held.len() >= 2 {
        flip_a_byte(&blob_path(&c, held[0], &cipher));
    }
    // Bob returns through Carol and gets the message, then the file.
    c.restart(BOB, &[c.addr(2)]);
    let m = poll(ARRIVE, Duration::from_millis(300), || {
        received_files(&c, BOB)
            .into_iter()
            .find(|m| m["id"] == id.as_str())
    })
    .expect("bob gets the message with the file");
    assert_eq!(m["file"]["name"], "report.pdf");
    let dest = c.members[BOB].dir.join("got.pdf");
    let got = poll(ARRIVE, Duration::from_secs(1), || {
        let out = ctl(&c, BOB, &["get", &id, "-o", dest.to_str()?, "--force"]);
        out.status.success().then_some(())
    });
    assert!(
        got.is_some(),
        "bob's get never succeeded; his log:\n{}",
        c.members[BOB]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(40))
            .unwrap_or_default()
    );
    assert!(
        std::fs::read(&dest).expect("the file") == bytes,
        "byte-identical"
    );
    // No other node has a run of the plaintext anywhere in its data directory.
    let run = &bytes[500_000..500_064];
    for i in 2..5 {
        assert_eq!(
            found_in(&c.members[i].dir.join("data"), run),
            None,
            "node {i} holds plaintext"
        );
    }
    // Bob's node keeps the ciphertext and the key, not a plaintext copy.
    assert_eq!(found_in(&c.members[BOB].dir.join("data"), run), None);
}

#[test]
fn a_group_file_reaches_every_member_and_a_damaged_file_fails_cleanly() {
    let names = ["alice", "bob", "carol", "dave"];
    let c = Cluster::named(212, &names, FORM);
    ok(&ctl(
        &c,
        ALICE,
        &["group", "create", "team", "bob", "carol"],
    ));
    let bytes = pdf(0xabc);
    let path = c.members[ALICE].dir.join("plan.pdf");
    std::fs::write(&path, &bytes).expect("writes the file");
    let out = ctl(
        &c,
        ALICE,
        &[
            "group",
            "send",
            "team",
            "--file",
            path.to_str().expect("utf-8"),
        ],
    );
    ok(&out);
    for i in [1, 2] {
        let m = poll(ARRIVE, Duration::from_millis(300), || {
            received_files(&c, i).into_iter().next()
        })
        .unwrap_or_else(|| panic!("member {i} never got the group file"));
        assert_eq!(m["group"], "team");
        assert_eq!(m["text"], "📎 plan.pdf", "no caption: the name is the text");
        let id = m["id"].as_str().expect("id").to_owned();
        let dest = c.members[i].dir.join("plan.pdf");
        let got = poll(ARRIVE, Duration::from_secs(1), || {
            let out = ctl(&c, i, &["get", &id, "-o", dest.to_str()?, "--force"]);
            out.status.success().then_some(())
        });
        assert!(got.is_some(), "member {i}'s get never succeeded");
        assert!(
            std::fs::read(&dest).expect("the file") == bytes,
            "member {i}"
        );
    }
    assert!(received_files(&c, 3).is_empty(), "dave is no member");

    // A file whose every copy is damaged: Bob's `get` fails with a clear error, no file.
    let other = pdf(0xdef);
    let path = c.members[ALICE].dir.join("broken.pdf");
    std::fs::write(&path, &other).expect("writes the file");
    let out = c.dm_file(ALICE, "bob", "--file", &path);
    let sent: serde_json::Value =
        serde_json::from_str(ok(&out).lines().last().expect("a line")).expect("json");
    let cipher = sent["file"]["hash"].as_str().expect("hash").to_owned();
    let id = sent["id"].as_str().expect("id").to_owned();
    // Wait for Bob's node to have fetched it, then damage every copy (Bob's included).
    poll(ARRIVE, Duration::from_millis(300), || {
        blob_path(&c, BOB, &cipher).exists().then_some(())
    })
    .expect("bob's node fetches the file");
    for i in 0..4 {
        let p = blob_path(&c, i, &cipher);
        if p.exists() {
            flip_a_byte(&p);
        }
    }
    let dest = c.members[BOB].dir.join("broken.pdf");
    let out = ctl(&c, BOB, &["get", &id, "-o", dest.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "a damaged file is not delivered");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.trim().is_empty(), "a clear error");
    assert!(!dest.exists(), "nothing written: {err}");
    let leftovers: Vec<_> = std::fs::read_dir(&c.members[BOB].dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".chatctl-get"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left");
}
