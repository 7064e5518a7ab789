//! A node gets the public messages it missed without anyone resending them: one killed with
//! SIGKILL and restarted gets those broadcast while it was down; one whose disk filled up (its
//! chat store's writes failed and were rolled back) gets those it lost once there is room
//! again, without a restart (`docs/protocol.md`, "Anti-entropy").

use std::time::Duration;

use crate::chat::texts;
use crate::cluster::{Cluster, Tmpfs, poll};

const DEADLINE: Duration = Duration::from_secs(60);

fn send(c: &Cluster, i: usize, text: &str) -> bool {
    let socket = c.members[i].dir.join("run/control.sock");
    c.sandbox
        .chatctl_at(&socket, &["send", text])
        .status
        .success()
}

/// Polls until member `i` shows every text of `want`, each once; panics with what it has.
fn await_texts(c: &Cluster, i: usize, want: &[String]) {
    let got = poll(DEADLINE, Duration::from_millis(300), || {
        texts(c, i).filter(|t| want.iter().all(|w| t.get(w) == Some(&1)))
    });
    assert!(
        got.is_some(),
        "node {i} lacks some of {want:?}: it has {:?}",
        texts(c, i)
    );
}

#[test]
fn a_restarted_node_gets_what_was_broadcast_while_it_was_down() {
    let mut c = Cluster::named(170, &["a", "b", "c", "d"], Duration::from_secs(30));
    c.kill(3);
    let want: Vec<String> = (0..10).map(|k| format!("while-down-{k}")).collect();
    for (k, text) in want.iter().enumerate() {
        assert!(send(&c, k % 3, text), "send {text}");
    }
    for i in 0..3 {
        await_texts(&c, i, &want);
    }
    c.restart(3, &[c.addr(0)]);
    await_texts(&c, 3, &want);
}

#[test]
fn a_node_whose_disk_filled_up_gets_what_its_store_lost() {
    if !Tmpfs::available("backfill disk full") {
        return;
    }
    let mut c = Cluster::named(171, &["a", "b", "c"], Duration::from_secs(30));
    // Node 3's data directory is a small tmpfs.
    let dir = c.sandbox.path().join("n3");
    let data = dir.join("data");
    let Some(_mount) = Tmpfs::mount(&data, "8m", "backfill disk full") else {
        return;
    };
    let listen = "127.0.171.13:0".parse().expect("addr");
    let i = c.start_at(dir, listen, &[c.addr(0)], Vec::new());
    c.await_ring(Duration::from_secs(30));
    // Fill the disk.
    let filler = data.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        while f.write_all(&[0u8; 65536]).is_ok() {}
    }
    let want: Vec<String> = (0..10).map(|k| format!("disk-full-{k}")).collect();
    for (k, text) in want.iter().enumerate() {
        assert!(send(&c, k % 3, text), "send {text}");
    }
    for j in 0..3 {
        await_texts(&c, j, &want);
    }
    // Its store could not keep them (the control API still answers).
    let lost = texts(&c, i).map_or(0, |t| want.iter().filter(|w| !t.contains_key(*w)).count());
    std::fs::remove_file(&filler).expect("free the disk");
    await_texts(&c, i, &want);
    assert!(
        lost > 0,
        "the full disk lost nothing: the test did not test the repair"
    );
}
