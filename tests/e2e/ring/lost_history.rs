//! A node whose chat history was lost (its store moved aside, then truncated to nothing) and
//! that restarts with the same identity key sends again at once and loses nothing: it learns
//! from its neighbours the highest number of its own the ring holds before it numbers a
//! message, so no new message reuses a number of an old one (which every other node would drop
//! as a copy), and its old messages, which anti-entropy brings back, never make a send fail
//! (`docs/protocol.md`, "Own sequence numbers").

use std::time::Duration;

use crate::chat::await_all;
use crate::cluster::Cluster;

const FORM: Duration = Duration::from_secs(60);

/// Sends `text` on member `i`; the send must succeed at the first try.
fn send(c: &Cluster, i: usize, text: &str) {
    let socket = c.members[i].dir.join("run/control.sock");
    let out = c.sandbox.chatctl_at(&socket, &["send", text]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.to_lowercase().contains("corrupt"),
        "send on node {i} failed for good: {err}"
    );
    assert!(out.status.success(), "send on node {i}: {err}");
}

/// The chat store's files of member `i` (the history and its search index, with their logs).
fn store_files(c: &Cluster, i: usize) -> Vec<std::path::PathBuf> {
    let data = c.members[i].dir.join("data");
    std::fs::read_dir(&data)
        .expect("data directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("chat.sqlite3") || n.starts_with("search.sqlite3"))
        })
        .collect()
}

#[test]
fn a_node_whose_history_was_lost_sends_again_and_loses_nothing() {
    let mut c = Cluster::new(157);
    let first = c.add(&[]);
    let seed = [c.addr(first)];
    for _ in 1..4 {
        c.add(&seed);
    }
    c.await_ring(FORM);
    let x = 2;
    let mut want = Vec::new();
    for k in 1..=3 {
        let text = format!("x before the loss {k}");
        send(&c, x, &text);
        want.push(text);
    }
    await_all(&c, &want);

    // The store is moved aside: x restarts with the same key and an empty history.
    c.kill(x);
    let aside = c.members[x].dir.join("lost");
    std::fs::create_dir_all(&aside).expect("mkdir");
    let moved = store_files(&c, x);
    assert!(!moved.is_empty(), "x has a chat store");
    for f in moved {
        let to = aside.join(f.file_name().expect("a file"));
        std::fs::rename(&f, &to).expect("move aside");
    }
    c.restart(x, &seed);
    c.await_ring(FORM);
    for k in 1..=3 {
        let text = format!("x after the first loss {k}");
        send(&c, x, &text);
        want.push(text);
    }
    await_all(&c, &want);

    // Again, the store truncated to nothing this time.
    c.kill(x);
    for f in store_files(&c, x) {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "chat.sqlite3" || name == "search.sqlite3" {
            std::fs::File::create(&f).expect("truncate");
        } else {
            std::fs::remove_file(&f).expect("drop the log");
        }
    }
    c.restart(x, &seed);
    c.await_ring(FORM);
    for k in 1..=3 {
        let text = format!("x after the second loss {k}");
        send(&c, x, &text);
        want.push(text);
    }
    // Every node, x included, holds all nine of x's messages exactly once.
    await_all(&c, &want);
}
