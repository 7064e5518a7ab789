//! DHT records on real daemons: a record put through one chatd survives SIGKILL of two of
//! its three holders and is read from a third node; a holder killed and restarted serves the
//! record from its record file before any other holder could have sent it again.

use std::time::Duration;

use chat_overlay::NodeId;
use chat_overlay::records::{Kind, location};

use crate::cluster::{CONFIG, Cluster, poll};

/// `chatctl record get nick NAME --json` at member `i`: the value of the one record.
fn read(c: &Cluster, i: usize, name: &str) -> Option<Vec<u8>> {
    let v = c.json(
        &c.members[i].dir,
        &["record", "get", "nick", name, "--json"],
    )?;
    let rec = v["records"].as_array()?.first()?.clone();
    rec["value"]
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect()
}

/// Member indices of the `k` true holders of `nick NAME`: the successor of its location and
/// the next ones, among the live members.
fn holders(c: &Cluster, name: &str, k: usize) -> Vec<usize> {
    let loc = location(Kind::Nick as u8, name.as_bytes());
    let mut live: Vec<(NodeId, usize)> = c
        .live()
        .into_iter()
        .map(|i| (c.members[i].id.parse().expect("node id"), i))
        .collect();
    live.sort();
    let start = live.iter().position(|(id, _)| *id >= loc).unwrap_or(0);
    (0..k).map(|j| live[(start + j) % live.len()].1).collect()
}

/// Waits until every member of `hs` holds at least one record.
fn all_hold(c: &Cluster, hs: &[usize], deadline: Duration) {
    let ok = poll(deadline, Duration::from_millis(200), || {
        hs.iter().all(|&h| held(c, h) >= 1).then_some(())
    });
    assert!(
        ok.is_some(),
        "the holders {hs:?} did not all get the record"
    );
}

fn held(c: &Cluster, i: usize) -> u64 {
    c.status(i)
        .and_then(|s| s["records_held"].as_u64())
        .unwrap_or(0)
}

fn cluster(net: u8, n: usize, extra: &str) -> Cluster {
    let mut c = Cluster::new(net);
    c.sandbox.write_config(&format!("{CONFIG}{extra}"));
    let first = c.add(&[]);
    for _ in 1..n {
        c.add(&[c.addr(first)]);
    }
    c.await_ring(Duration::from_secs(60));
    // A correct ring may still have short successor lists (they fill one stabilisation at a
    // time): wait until every node has as many as it can, so a put's copies go to the
    // holders this test names (the sync that would repair it is off in some tests).
    let want = (n - 1).min(3);
    let full = poll(Duration::from_secs(60), Duration::from_millis(200), || {
        c.live()
            .into_iter()
            .all(|i| {
                c.json(&c.members[i].dir, &["ring", "--json"])
                    .and_then(|r| r["successors"].as_array().map(Vec::len))
                    .is_some_and(|len| len >= want)
            })
            .then_some(())
    });
    assert!(full.is_some(), "the successor lists never filled");
    c
}

fn put(c: &Cluster, i: usize, name: &str, value: &str) {
    let out = c.sandbox.chatctl_at(
        &c.members[i].dir.join("run/control.sock"),
        &["record", "put", "nick", name, value],
    );
    assert!(
        out.status.success(),
        "put failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_record_survives_two_of_its_holders_killed() {
    let mut c = cluster(7, 6, "");
    put(&c, 0, "alice", "hello");
    let hs = holders(&c, "alice", 3);
    // Every holder has it (pushed by the primary at once).
    all_hold(&c, &hs, Duration::from_secs(20));
    // Kill two holders (not the node that put it), read from a node that is neither.
    let victims: Vec<usize> = hs.iter().copied().filter(|&h| h != 0).take(2).collect();
    for &v in &victims {
        c.kill(v);
    }
    let reader = c
        .live()
        .into_iter()
        .find(|i| *i != 0 && !hs.contains(i))
        .expect("a reader that is no holder");
    let got = poll(Duration::from_secs(60), Duration::from_millis(300), || {
        read(&c, reader, "alice")
    });
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    // The survivors restore three copies among the live nodes.
    all_hold(&c, &holders(&c, "alice", 3), Duration::from_secs(60));
}

#[test]
fn a_restarted_holder_serves_its_records_from_disk() {
    // Holders compare digests only every ten minutes here: whatever a restarted holder has
    // within the test, it read from its own record file.
    let mut c = cluster(8, 5, "record_sync_ms = 600000\n");
    put(&c, 1, "bob", "from disk");
    let hs = holders(&c, "bob", 3);
    all_hold(&c, &hs, Duration::from_secs(20));
    let h = *hs
        .iter()
        .find(|&&h| h != 0)
        .expect("a holder other than the first node");
    c.kill(h);
    // Rejoin through a node that stays up, and be a member before the others go.
    let via = c
        .live()
        .into_iter()
        .find(|i| !hs.contains(i))
        .expect("a node that is no holder");
    let via = c.addr(via);
    c.restart(h, &[via]);
    assert!(
        held(&c, h) >= 1,
        "the restarted holder did not restore the record"
    );
    assert!(
        poll(Duration::from_secs(30), Duration::from_millis(200), || c
            .status(h)
            .and_then(|s| s["joined"].as_bool())
            .filter(|j| *j))
        .is_some(),
        "the restarted holder did not rejoin"
    );
    // Now the other holders die: the record can only come from the restarted one.
    for &o in hs.iter().filter(|&&o| o != h) {
        c.kill(o);
    }
    let reader = c.live().into_iter().find(|i| *i != h).expect("a reader");
    let got = poll(Duration::from_secs(60), Duration::from_millis(300), || {
        read(&c, reader, "bob")
    });
    assert_eq!(got.as_deref(), Some(&b"from disk"[..]));
}
