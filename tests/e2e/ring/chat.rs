//! Chat over a real ring: a message sent on any node reaches every node's tail exactly once,
//! `kill -9` of a quarter of the nodes while messages flow loses nothing for the survivors,
//! and a restarted node catches up on what it missed; group commit loses nothing either.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use crate::cluster::{Cluster, poll};
use crate::support::{line_reader, wait_for_text};

const FORM: Duration = Duration::from_secs(60);
const SPREAD: Duration = Duration::from_secs(60);

/// Texts in member `i`'s history, with how often each appears.
pub(crate) fn texts(c: &Cluster, i: usize) -> Option<BTreeMap<String, usize>> {
    let socket = c.members[i].dir.join("run/control.sock");
    let out = c
        .sandbox
        .chatctl_at(&socket, &["tail", "-n", "1000", "--json"]);
    if !out.status.success() {
        return None;
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["kind"] == "event" {
            continue;
        }
        *m.entry(v["text"].as_str()?.to_owned()).or_insert(0) += 1;
    }
    Some(m)
}

fn send(c: &Cluster, i: usize, text: &str) {
    let socket = c.members[i].dir.join("run/control.sock");
    let out = c.sandbox.chatctl_at(&socket, &["send", text]);
    assert!(
        out.status.success(),
        "send on node {i}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits until every live member shows exactly `want`, each once.
pub(crate) fn await_all(c: &Cluster, want: &[String]) {
    let ok = poll(SPREAD, Duration::from_millis(200), || {
        c.live()
            .into_iter()
            .all(|i| {
                texts(c, i).is_some_and(|m| {
                    want.iter().all(|t| m.get(t) == Some(&1)) && m.values().all(|n| *n == 1)
                })
            })
            .then_some(())
    });
    if ok.is_none() {
        let report: Vec<String> = c
            .live()
            .into_iter()
            .map(|i| {
                let m = texts(c, i).unwrap_or_default();
                let missing = want.iter().filter(|t| !m.contains_key(*t)).count();
                let dup = m.values().filter(|n| **n > 1).count();
                format!("node {i}: {missing} missing, {dup} duplicated")
            })
            .collect();
        panic!("messages did not reach every node once: {report:?}");
    }
}

#[test]
fn messages_reach_every_node_once_and_survive_crashes_and_restarts() {
    let mut c = Cluster::new(2);
    let first = c.add(&[]);
    let seed = [c.addr(first)];
    for _ in 1..8 {
        c.add(&seed);
    }
    c.await_ring(FORM);

    let mut want = Vec::new();
    for (k, i) in [0, 3, 7, 5].into_iter().enumerate() {
        let t = format!("hello {k} from node {i}");
        send(&c, i, &t);
        want.push(t);
    }
    await_all(&c, &want);
    let s = c.status(3).expect("status");
    assert!(s["messages_sent"].as_u64() >= Some(1), "{s}");
    assert!(s["messages_received"].as_u64() >= Some(3), "{s}");

    // kill -9 two of eight while messages flow: the survivors lose nothing.
    for k in 0..20 {
        let from = [0, 2, 4, 6][k % 4];
        if k == 5 {
            c.members[1].daemon = None; // SIGKILL
        }
        if k == 10 {
            c.members[5].daemon = None;
        }
        let t = format!("flow {k}");
        send(&c, from, &t);
        want.push(t);
    }
    await_all(&c, &want);

    // A restarted node catches up on what it missed while it was down.
    c.restart(5, &[c.addr(0)]);
    c.await_ring(FORM);
    await_all(&c, &want);
}

/// A rolling upgrade that adds a service: half the nodes run a build with the overlay's
/// test-only echo service (debug builds honour `CHAT_OVERLAY_TEST_ECHO`). The others count its
/// messages as unknown and answer its requests "unsupported"; nobody closes a connection or
/// takes a peer for dead, the ring stays correct and every message reaches every node once.
#[test]
fn a_ring_mixing_builds_with_and_without_a_service_loses_no_message() {
    let mut c = Cluster::new(5);
    let first = c.add(&[]);
    let seed = [c.addr(first)];
    for i in 1..6 {
        if i % 2 == 1 {
            c.add_with_env(&seed, &[("CHAT_OVERLAY_TEST_ECHO", "1")]);
        } else {
            c.add(&seed);
        }
    }
    c.await_ring(FORM);
    // Old nodes next to a new one hear the echo service (its period is 1 s) and ignore it
    // (which old nodes are next to a new one depends on the random ids).
    let heard = poll(FORM, Duration::from_millis(200), || {
        [0, 2, 4]
            .into_iter()
            .any(|i| c.dropped(i, "unknown_message") > 0)
            .then_some(())
    });
    assert!(heard.is_some(), "old nodes never saw the new service");
    let mut want = Vec::new();
    for (k, i) in [0, 1, 2, 3, 4, 5, 0, 3].into_iter().enumerate() {
        let t = format!("mixed {k} from node {i}");
        send(&c, i, &t);
        want.push(t);
    }
    await_all(&c, &want);
    assert!(c.ring_error().is_none(), "{:?}", c.ring_error());
    for i in 0..6 {
        assert_eq!(
            c.dropped(i, "undecodable_frame"),
            0,
            "node {i} closed a connection"
        );
    }
}

/// How many messages with `text` member `i`'s database file holds: what another connection
/// sees, i.e. what is committed.
fn on_disk(c: &Cluster, i: usize, text: &str) -> i64 {
    let path = c.members[i].dir.join("data/chat.sqlite3");
    let db = rusqlite::Connection::open(&path).expect("open the node's database");
    db.query_row(
        "SELECT COUNT(*) FROM messages WHERE body = ?1",
        [text],
        |r| r.get(0),
    )
    .expect("count")
}

/// Whether member `i`'s tail shows `text` exactly once.
fn shows_once(c: &Cluster, i: usize, text: &str) -> bool {
    texts(c, i).is_some_and(|m| m.get(text) == Some(&1))
}

/// Messages from the ring are committed in groups. With a long delay (10 s) a relay shows a
/// message before its disk has it; `kill -9` then loses it from that disk but not from the
/// node (its neighbours send it again after the restart), and SIGTERM commits it. With the
/// default delay a relayed message reaches the disk while the node idles.
#[test]
fn group_commit_loses_nothing_on_crash_or_stop() {
    let mut c = Cluster::new(4);
    let first = c.add(&[]);
    let seed = [c.addr(first)];
    let plain = c.add(&seed);
    let late = [("CHATD_CHAT__COMMIT_DELAY_MS", "10000")];
    let crashing = c.add_with_env(&seed, &late);
    let stopping = c.add_with_env(&seed, &late);
    c.await_ring(FORM);
    let everywhere = |c: &Cluster, text: &str| {
        poll(SPREAD, Duration::from_millis(100), || {
            c.live()
                .into_iter()
                .all(|i| shows_once(c, i, text))
                .then_some(())
        })
        .is_some()
    };

    send(&c, first, "held back");
    assert!(
        everywhere(&c, "held back"),
        "the message reached every node"
    );
    assert_eq!(on_disk(&c, first, "held back"), 1, "own messages at once");
    assert_eq!(on_disk(&c, crashing, "held back"), 0, "not committed yet");
    assert_eq!(on_disk(&c, stopping, "held back"), 0, "not committed yet");

    // A follower of the crashing node has seen the message; it must keep following.
    let mut tail = c
        .sandbox
        .chatctl()
        .arg("--socket")
        .arg(c.members[crashing].dir.join("run/control.sock"))
        .args(["tail", "-f", "-n", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(c.sandbox.path().join("tail.err")).expect("stderr file"))
        .spawn()
        .expect("tail -f");
    let lines = line_reader(&mut tail);
    let mut followed = Vec::new();
    assert!(
        wait_for_text(&lines, &mut followed, "held back", SPREAD),
        "{followed:?}"
    );

    c.members[crashing].daemon = None; // SIGKILL
    assert_eq!(on_disk(&c, crashing, "held back"), 0, "gone from the disk");

    let daemon = c.members[stopping].daemon.as_mut().expect("running");
    daemon.signal(rustix::process::Signal::TERM);
    assert!(daemon.wait_exit(Duration::from_secs(20)).is_some(), "stops");
    assert_eq!(
        on_disk(&c, stopping, "held back"),
        1,
        "committed on the way out"
    );
    c.members[stopping].daemon = None;

    c.restart(crashing, &seed);
    let back = poll(SPREAD, Duration::from_millis(200), || {
        shows_once(&c, crashing, "held back").then_some(())
    });
    assert!(back.is_some(), "the restarted node got the message again");

    send(&c, first, "soon on disk");
    assert!(everywhere(&c, "soon on disk"));
    let committed = poll(SPREAD, Duration::from_millis(50), || {
        (on_disk(&c, plain, "soon on disk") == 1).then_some(())
    });
    assert!(committed.is_some(), "committed within the default delay");

    // The follower resumed after the message the crash had taken from the disk.
    assert!(
        wait_for_text(&lines, &mut followed, "soon on disk", SPREAD),
        "tail -f kept following: {followed:?}, exited: {:?}, stderr: {}",
        tail.try_wait(),
        std::fs::read_to_string(c.sandbox.path().join("tail.err")).unwrap_or_default()
    );
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(followed, ["held back", "soon on disk"]);
}
