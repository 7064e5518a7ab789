//! Private messages over a real ring: a one-to-one message reaches only its recipient and its
//! text is found in no other node's data directory and in no log; a message to a stopped
//! recipient, with two other nodes killed meanwhile, arrives once when the recipient returns;
//! a group message reaches every member and no one else; a blocked sender's message never
//! shows (and the sender is not told).

use std::time::Duration;

use crate::cluster::{Cluster, found_in, poll};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long a message may take to arrive.
const ARRIVE: Duration = Duration::from_secs(45);

/// Member `i`'s private messages (`chatctl dms --json`) as JSON objects.
fn dms(c: &Cluster, i: usize) -> Vec<serde_json::Value> {
    let out = c.sandbox.chatctl_at(
        &c.members[i].dir.join("run/control.sock"),
        &["dms", "-n", "200", "--json"],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn texts(c: &Cluster, i: usize) -> Vec<String> {
    dms(c, i)
        .iter()
        .filter(|m| m["outgoing"] == false)
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// What a failed wait needs to be understood: each of `members`' private messages (their
/// status; the texts are the test's own markers), its view of the users, and the last lines
/// of its log.
fn diagnose(c: &Cluster, members: &[usize]) -> String {
    let mut out = String::new();
    for &i in members {
        let users = c.ctl(i, &["users", "--json"]);
        let tail = c.members[i]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(60))
            .unwrap_or_default();
        out += &format!(
            "--- member {i}: dms {:?}\nusers {}\nlog (last 60 lines, newest first):\n{}\n",
            dms(c, i),
            String::from_utf8_lossy(&users.stdout),
            tail
        );
    }
    out
}

/// The status of member `i`'s sent message with `text`.
fn status_of(c: &Cluster, i: usize, text: &str) -> Option<String> {
    dms(c, i)
        .into_iter()
        .find(|m| m["outgoing"] == true && m["text"] == text)
        .and_then(|m| m["status"].as_str().map(str::to_owned))
}

#[test]
fn private_messages_reach_only_their_recipients_even_offline() {
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let mut c = Cluster::named(22, &names, FORM);

    // 1. A one-to-one message reaches Bob only, and is acknowledged end to end.
    let secret = "private-marker-7d1f0c";
    let sent = c.ctl(0, &["dm", "bob", secret]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    if poll(ARRIVE, Duration::from_millis(200), || {
        texts(&c, 1).iter().any(|t| t == secret).then_some(())
    })
    .is_none()
    {
        panic!(
            "bob does not get alice's message\n{}",
            diagnose(&c, &[0, 1])
        );
    }
    let shown = dms(&c, 1);
    let m = shown.iter().find(|m| m["text"] == secret).expect("shown");
    assert_eq!(m["from"], "alice");
    assert_eq!(m["to"], "bob");
    poll(ARRIVE, Duration::from_millis(200), || {
        (status_of(&c, 0, secret).as_deref() == Some("delivered")).then_some(())
    })
    .expect("alice sees it delivered");
    for i in [2, 3, 4] {
        assert!(texts(&c, i).is_empty(), "{} got a message", names[i]);
    }
    // The text is in Alice's and Bob's private stores only; in no other node's files; in no
    // log at all.
    for i in [2, 3, 4] {
        assert_eq!(found_in(&c.members[i].dir, secret.as_bytes()), None);
    }
    for (m, name) in c.members.iter().zip(names) {
        let log = m.daemon.as_ref().map(|d| d.log()).unwrap_or_default();
        assert!(!log.contains(secret), "{name}'s log holds the text");
    }

    // Bob finds it by a word (his own node's index of his private messages); Carol does not.
    let found = c.ctl(1, &["search", "private-marker-7d1f0c", "--json"]);
    let found = String::from_utf8_lossy(&found.stdout);
    assert!(
        found.contains("\"kind\":\"private\"") && found.contains(secret),
        "{found}"
    );
    let none = c.ctl(2, &["search", "private-marker-7d1f0c", "--json"]);
    assert!(!String::from_utf8_lossy(&none.stdout).contains(secret));

    // Bob's export has his private messages only when asked, anonymised like the rest.
    let plain = c.ctl(1, &["export"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains(secret));
    let out = c.ctl(1, &["export", "--include-private", "--anonymize"]);
    let with = String::from_utf8_lossy(&out.stdout);
    let line = with
        .lines()
        .find(|l| l.contains(secret))
        .unwrap_or_else(|| {
            panic!(
                "the private message is exported: {with} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(line.contains("\"private\":true"), "{line}");
    assert!(!line.contains("alice") && !line.contains("bob"), "{line}");

    // 2. `send "@bob …"` is private too; a group reaches its members only.
    let out = c.ctl(2, &["send", "@bob from carol with the seeds' syntax"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.ctl(0, &["group", "create", "team", "bob", "carol"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = c.ctl(0, &["group", "send", "team", "group-marker"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    poll(ARRIVE, Duration::from_millis(200), || {
        (texts(&c, 1).iter().any(|t| t == "group-marker")
            && texts(&c, 2).iter().any(|t| t == "group-marker")
            && texts(&c, 1)
                .iter()
                .any(|t| t == "from carol with the seeds' syntax"))
        .then_some(())
    })
    .expect("bob and carol get the group message, bob carol's");
    let g = dms(&c, 2)
        .into_iter()
        .find(|m| m["text"] == "group-marker")
        .expect("carol's copy");
    assert_eq!(g["group"], "team");
    assert!(texts(&c, 3).is_empty() && texts(&c, 4).is_empty());
    // Dave is no member: he cannot post to it.
    assert!(
        !c.ctl(3, &["group", "send", "team", "intruder"])
            .status
            .success()
    );

    // 3. Bob blocks Carol: her next message is acknowledged and never shown.
    assert!(c.ctl(1, &["block", "carol"]).status.success());
    assert!(c.ctl(2, &["dm", "bob", "blocked-marker"]).status.success());
    poll(ARRIVE, Duration::from_millis(200), || {
        (status_of(&c, 2, "blocked-marker").as_deref() == Some("delivered")).then_some(())
    })
    .expect("carol sees it delivered (she is not told)");
    assert!(!texts(&c, 1).iter().any(|t| t == "blocked-marker"));
    // Her public messages are hidden from Bob, not from the others.
    assert!(c.ctl(2, &["send", "public-from-carol"]).status.success());
    for i in [0, 3] {
        poll(ARRIVE, Duration::from_millis(200), || {
            let out = c.ctl(i, &["tail", "-n", "50", "--room", "lobby"]);
            String::from_utf8_lossy(&out.stdout)
                .contains("public-from-carol")
                .then_some(())
        })
        .expect("the others see carol's public message");
    }
    let bob_tail = c.ctl(1, &["tail", "-n", "50", "--room", "lobby"]);
    assert!(!String::from_utf8_lossy(&bob_tail.stdout).contains("public-from-carol"));

    // 4. Bob stops; Alice writes; two other nodes are killed; Bob comes back and gets it once.
    let d = c.members[1].daemon.as_mut().expect("bob runs");
    d.signal(rustix::process::Signal::TERM);
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
    c.members[1].daemon = None;
    poll(ARRIVE, Duration::from_millis(300), || {
        let v = c.json(&c.members[0].dir, &["users", "--json"])?;
        v["users"]
            .as_array()?
            .iter()
            .any(|u| u["nickname"] == "bob" && u["presence"] == "offline")
            .then_some(())
    })
    .expect("alice sees bob offline");
    let later = "offline-marker-42";
    assert!(c.ctl(0, &["dm", "bob", later]).status.success());
    poll(ARRIVE, Duration::from_millis(200), || {
        (status_of(&c, 0, later).as_deref() == Some("stored")).then_some(())
    })
    .expect("alice's message is stored for later");
    c.kill(3);
    c.kill(4);
    c.restart(1, &[c.addr(0)]);
    poll(Duration::from_secs(90), Duration::from_millis(300), || {
        texts(&c, 1).iter().any(|t| t == later).then_some(())
    })
    .expect("bob gets the message sent while he was away");
    poll(ARRIVE, Duration::from_millis(300), || {
        (status_of(&c, 0, later).as_deref() == Some("delivered")).then_some(())
    })
    .expect("alice sees it delivered");
    let count = texts(&c, 1).iter().filter(|t| *t == later).count();
    assert_eq!(count, 1, "shown once");
    assert_eq!(
        texts(&c, 1).iter().filter(|t| *t == secret).count(),
        1,
        "nothing shown twice after the restart"
    );
    assert_eq!(found_in(&c.members[2].dir, later.as_bytes()), None);
}
