//! Private messages to a node whose disk is full: bob's data directory is a small tmpfs,
//! filled while alice sends him private messages. His node cannot store them, so it must not
//! acknowledge them (no "delivered" for alice, nothing removed from his mailbox); once space
//! returns, every one arrives exactly once (`docs/protocol.md`, "Private messages": an item
//! is acknowledged only after the recipient's node wrote it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Tmpfs, poll};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long the messages may take once space returned.
const ARRIVE: Duration = Duration::from_secs(90);
/// How long bob's disk stays full after the last send.
const FULL_FOR: Duration = Duration::from_secs(15);

/// Member `i`'s private messages (`chatctl dms --json`).
fn dms(c: &Cluster, i: usize) -> Vec<serde_json::Value> {
    let out = c.ctl(i, &["dms", "-n", "200", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How many times member `i` shows each received text.
fn received(c: &Cluster, i: usize) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for m in dms(c, i).iter().filter(|m| m["outgoing"] == false) {
        *n.entry(m["text"].as_str().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    n
}

/// The texts member `i` sent that its node shows as delivered.
fn delivered(c: &Cluster, i: usize) -> Vec<String> {
    dms(c, i)
        .into_iter()
        .filter(|m| m["outgoing"] == true && m["status"] == "delivered")
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}

/// Alice (0) must never be told "delivered" for a message bob (2) does not show: her view is
/// read first, so a message delivered by then is written on bob's node by then.
fn check_no_early_delivery(c: &Cluster, want: &[String]) {
    let told = delivered(c, 0);
    let has = received(c, 2);
    for t in told.iter().filter(|t| want.contains(t)) {
        assert!(
            has.contains_key(t),
            "alice was told {t:?} was delivered, but bob does not have it (he has {has:?})"
        );
    }
}

/// The last lines of member `i`'s log, for a failed wait.
fn log_tail(c: &Cluster, i: usize) -> String {
    c.members[i]
        .daemon
        .as_ref()
        .map(|d| d.log_tail(40))
        .unwrap_or_default()
}

#[test]
fn private_messages_to_a_full_disk_are_not_acknowledged_and_arrive_once_space_returns() {
    if !Tmpfs::available("dm disk full") {
        return;
    }
    let mut c = Cluster::named(173, &["alice", "carol"], FORM);
    // Bob's node: its data directory is a small tmpfs.
    let dir = c.sandbox.path().join("n2");
    let data = dir.join("data");
    let Some(_mount) = Tmpfs::mount(&data, "8m", "dm disk full") else {
        return;
    };
    let listen = "127.0.173.12:0".parse().expect("addr");
    let env = vec![("CHATD_NODE__NICKNAME".to_owned(), "bob".to_owned())];
    let bob = c.start_at(dir, listen, &[c.addr(0)], env);
    assert_eq!(bob, 2);
    c.await_ring(FORM);
    // Bob's name reaches alice's node a little after the ring forms (a send before then is
    // refused: "nobody is called bob").
    poll(FORM, Duration::from_millis(300), || {
        let users = c.json(&c.members[0].dir, &["users", "--json"])?;
        users["users"]
            .as_array()?
            .iter()
            .any(|u| u["nickname"] == "bob")
            .then_some(())
    })
    .expect("alice's node knows bob's name");
    // A first message with room to spare: sessions and bundles are in place.
    let warm = "dm-full-warm".to_owned();
    let sent = c.ctl(0, &["dm", "bob", &warm]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    poll(FORM, Duration::from_millis(300), || {
        delivered(&c, 0).contains(&warm).then_some(())
    })
    .unwrap_or_else(|| panic!("the first message is not delivered\n{}", log_tail(&c, 2)));

    // Fill bob's disk.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        while f.write_all(&[0u8; 65536]).is_ok() {}
        let _ = f.sync_all();
    }
    let want: Vec<String> = (0..5).map(|k| format!("dm-full-{k}")).collect();
    for text in &want {
        let sent = c.ctl(0, &["dm", "bob", text]);
        assert!(
            sent.status.success(),
            "alice sends {text}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
        check_no_early_delivery(&c, &want);
    }
    // While the disk stays full, nothing of it is shown or acknowledged.
    let _: Option<()> = poll(FULL_FOR, Duration::from_millis(500), || {
        check_no_early_delivery(&c, &want);
        None
    });
    let early = received(&c, 2);
    assert!(
        want.iter().all(|t| !early.contains_key(t)),
        "bob shows messages his store could not write: {early:?}"
    );

    // Space returns: every message arrives exactly once, and alice is told delivered for
    // each only once bob has it.
    std::fs::remove_file(&filler).expect("free the disk");
    let freed = Instant::now();
    let arrived = poll(ARRIVE, Duration::from_millis(300), || {
        check_no_early_delivery(&c, &want);
        let has = received(&c, 2);
        want.iter().all(|t| has.contains_key(t)).then_some(())
    });
    if arrived.is_none() {
        panic!(
            "bob lacks some of {want:?} {:?} after space returned: he has {:?}\n{}",
            ARRIVE,
            received(&c, 2),
            log_tail(&c, 2)
        );
    }
    eprintln!(
        "dm disk full: {} failed commits on bob's node; every message arrived {:.1} s after \
         space returned",
        c.dropped(2, "dm_commit_failed"),
        freed.elapsed().as_secs_f64()
    );
    poll(ARRIVE, Duration::from_millis(300), || {
        check_no_early_delivery(&c, &want);
        let told = delivered(&c, 0);
        want.iter().all(|t| told.contains(t)).then_some(())
    })
    .expect("alice is told every message was delivered");
    let has = received(&c, 2);
    for t in want.iter().chain([&warm]) {
        assert_eq!(has.get(t), Some(&1), "bob shows {t:?} once: {has:?}");
    }
    // Last (a build without the counter fails the checks above first): the full disk did
    // make bob's store fail, so the test tested what it claims.
    assert!(
        c.dropped(2, "dm_commit_failed") > 0,
        "bob's store never failed to write: the test did not test a full disk\n{}",
        log_tail(&c, 2)
    );
}
