//! Where a private file's ciphertext is kept (issue 35), on a real ring of six daemons: Alice
//! sends Bob a private file and the nodes that keep it for him (their `blobs/holds`) are
//! exactly the first `ring.record_replicas` successors of the ciphertext's hash, Alice left
//! out, as the ring reports its members (`chatctl ring --json` of every node, the ring checked
//! correct first) — not merely the nodes Alice happens to be connected to. After a node is
//! killed and the ring heals, a second file is placed on its hash's successors among the nodes
//! left.

use std::time::Duration;

use crate::cluster::{Cluster, poll};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// Holders asked (`ring.record_replicas`, set for every node).
const K: usize = 3;
const ALICE: usize = 0;

/// Bytes of a file whose contents differ by `seed`.
fn file(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(200_000);
    while out.len() < 200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The ring's members as the live nodes report them: each one's id and successor list
/// (`chatctl ring --json`), sorted.
fn members(c: &Cluster) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for i in c.live() {
        ids.push(c.members[i].id.clone());
        let ring = c
            .json(&c.members[i].dir, &["ring", "--json"])
            .expect("ring --json");
        for s in ring["successors"].as_array().expect("successors") {
            ids.push(s["node_id"].as_str().expect("node_id").to_owned());
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The first `k` members at or after `hash` clockwise, `skip` left out (ids and hashes are
/// lowercase hex of the same 32-byte space, so text order is ring order).
fn successors(members: &[String], hash: &str, k: usize, skip: &str) -> Vec<String> {
    let first = members
        .iter()
        .position(|id| id.as_str() >= hash)
        .unwrap_or(0);
    (0..members.len())
        .map(|j| members[(first + j) % members.len()].clone())
        .filter(|id| id != skip)
        .take(k)
        .collect()
}

/// The members whose `blobs/holds` names `hash` (a node writes it before it answers "held").
fn holding(c: &Cluster, hash: &str) -> Vec<String> {
    let mut out: Vec<String> = (0..c.members.len())
        .filter(|&i| {
            std::fs::read_to_string(c.members[i].dir.join("data/blobs/holds"))
                .is_ok_and(|t| t.lines().any(|l| l.starts_with(hash)))
        })
        .map(|i| c.members[i].id.clone())
        .collect();
    out.sort_unstable();
    out
}

/// Sends `bytes` from Alice to Bob as a private file; the ciphertext's hash and the holders
/// the send reported.
fn send(c: &Cluster, bytes: &[u8], name: &str) -> (String, u64) {
    let path = c.members[ALICE].dir.join(name);
    std::fs::write(&path, bytes).expect("writes the file");
    let sent = c.dm_file(ALICE, "bob", &path, &["here"]);
    let hash = sent["file"]["hash"].as_str().expect("hash").to_owned();
    (hash, sent["file_holders"].as_u64().expect("file_holders"))
}

/// Waits until every live node's successor list names every other live member (or is full):
/// the lookups' answers are then the whole truth.
fn settled(c: &Cluster) {
    let n = c.live().len();
    poll(FORM, Duration::from_millis(300), || {
        c.live()
            .into_iter()
            .all(|i| {
                c.json(&c.members[i].dir, &["ring", "--json"])
                    .and_then(|r| r["successors"].as_array().map(Vec::len))
                    .is_some_and(|l| l >= n - 1)
            })
            .then_some(())
    })
    .expect("every successor list is full");
}

#[test]
fn a_private_files_holders_are_its_hashs_successors() {
    let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let replicas = K.to_string();
    let mut c = Cluster::named_with_env(231, &names, FORM, |_| {
        vec![("CHATD_RING__RECORD_REPLICAS".into(), replicas.clone())]
    });
    c.ctl_ok(ALICE, &["dm", "bob", "hello"]);
    settled(&c);
    let ring = members(&c);
    assert_eq!(ring.len(), names.len(), "the ring reports every node");
    let (hash, held) = send(&c, &file(7), "one.bin");
    let mut want = successors(&ring, &hash, K, &c.members[ALICE].id);
    want.sort_unstable();
    assert_eq!(held, K as u64, "every successor held it");
    assert_eq!(holding(&c, &hash), want, "the holders of {hash}");

    // A node other than Alice and Bob goes; once the ring has healed, the next file is
    // placed on its hash's successors among the nodes left.
    let gone = 2 + (hash.as_bytes()[0] as usize % 4);
    c.kill(gone);
    c.await_ring(FORM);
    settled(&c);
    let ring = poll(FORM, Duration::from_millis(300), || {
        let ring = members(&c);
        (ring.len() == names.len() - 1).then_some(ring)
    })
    .expect("no live node names the node gone");
    let (hash, held) = send(&c, &file(8), "two.bin");
    let mut want = successors(&ring, &hash, K, &c.members[ALICE].id);
    want.sort_unstable();
    assert_eq!(held, K as u64);
    assert_eq!(
        holding(&c, &hash),
        want,
        "the holders of {hash} after churn"
    );
}
