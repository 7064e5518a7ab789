//! Edits and deletes over a real ring: an edit and a delete made while one node is stopped
//! reach it after its restart (anti-entropy); every node shows the edited text and the
//! deleted message as deleted, in history and in search; another user's attempt to edit is
//! refused and changes nothing; private messages are edited and deleted at their recipient.

use std::time::Duration;

use crate::cluster::{Cluster, found_in, json_lines, poll};

/// How long the ring and the names may take.
const FORM: Duration = Duration::from_secs(60);
/// How long a message or change may take to arrive (a restarted node's through anti-entropy).
const ARRIVE: Duration = Duration::from_secs(60);

/// Member `i`'s history (`tail -n 200 --json`) as JSON objects.
fn history(c: &Cluster, i: usize) -> Vec<serde_json::Value> {
    json_lines(&c.ctl(i, &["tail", "-n", "200", "--json"]))
}

/// Member `i`'s stored message `id`.
fn message(c: &Cluster, i: usize, id: &str) -> Option<serde_json::Value> {
    history(c, i).into_iter().find(|m| m["id"] == id)
}

/// The texts of member `i`'s search for `q` (public rooms only).
fn search(c: &Cluster, i: usize, q: &str) -> Vec<String> {
    json_lines(&c.ctl(i, &["search", q, "--room", "lobby", "--json"]))
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn edits_and_deletes_reach_every_node_even_one_that_was_down() {
    let names = ["alice", "bob", "carol", "dave"];
    let mut c = Cluster::named(23, &names, FORM);

    // Alice says two things; everyone has both.
    let send = |text: &str| -> String {
        let out = c.ctl(0, &["send", text, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out)
            .first()
            .and_then(|m| m["id"].as_str().map(str::to_owned))
            .expect("the sent message's id")
    };
    let kept = send("meet at the harbour, edit-marker");
    let gone = send("the lantern is under the stairs, delete-marker");
    for (i, name) in names.iter().enumerate() {
        poll(ARRIVE, Duration::from_millis(200), || {
            (message(&c, i, &kept).is_some() && message(&c, i, &gone).is_some()).then_some(())
        })
        .unwrap_or_else(|| panic!("{name} has both messages"));
    }

    // Carol stops; Alice edits one and deletes the other.
    let d = c.members[2].daemon.as_mut().expect("carol runs");
    d.signal(rustix::process::Signal::TERM);
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
    c.members[2].daemon = None;
    let edit = c.ctl(0, &["edit", &kept, "meet at the station instead"]);
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    // A prefix names the message as well as the whole id.
    let delete = c.ctl(0, &["delete", &gone[..10]]);
    assert!(
        delete.status.success(),
        "{}",
        String::from_utf8_lossy(&delete.stderr)
    );

    // Bob cannot change Alice's message: refused, with a reason, and nothing changes.
    let hack = c.ctl(1, &["edit", &kept, "hacked by bob"]);
    assert_eq!(hack.status.code(), Some(4), "a refusal by chatd");
    let why = String::from_utf8_lossy(&hack.stderr);
    assert!(why.contains("not yours"), "{why}");
    // Nor can anyone edit what does not exist, or with an empty text.
    let unknown = c.ctl(1, &["edit", &"ab".repeat(32), "x"]);
    assert_eq!(unknown.status.code(), Some(4));
    assert_eq!(c.ctl(0, &["edit", &kept, " "]).status.code(), Some(2));
    let long = "x".repeat(5000);
    let over = c.ctl(0, &["edit", &kept, &long]);
    assert_eq!(over.status.code(), Some(4), "over the size limit");
    assert!(String::from_utf8_lossy(&over.stderr).contains("4096"));

    let settled = |c: &Cluster, i: usize| -> Option<()> {
        let k = message(c, i, &kept)?;
        let g = message(c, i, &gone)?;
        (k["text"] == "meet at the station instead"
            && k["edited"].is_string()
            && g["deleted"] == true
            && g["text"] == "")
            .then_some(())
    };
    for i in [0, 1, 3] {
        poll(ARRIVE, Duration::from_millis(200), || settled(&c, i))
            .unwrap_or_else(|| panic!("{} shows the edit and the delete", names[i]));
    }
    // Carol comes back: anti-entropy brings her both changes.
    c.restart(2, &[c.addr(0)]);
    poll(ARRIVE, Duration::from_millis(300), || settled(&c, 2))
        .expect("carol, down during both changes, shows them after her restart");
    // Bob's attempt changed nothing anywhere.
    for (i, name) in names.iter().enumerate() {
        assert!(
            !history(&c, i).iter().any(|m| m["text"] == "hacked by bob"),
            "{name}"
        );
    }

    // The deleted text is in no file of any node (history, its log, the search index, logs).
    // (The event log is rewritten by its own thread: wait for it, within a deadline.)
    for (m, name) in c.members.iter().zip(names) {
        poll(ARRIVE, Duration::from_millis(200), || {
            found_in(&m.dir, b"the lantern is under the stairs")
                .is_none()
                .then_some(())
        })
        .unwrap_or_else(|| panic!("{name}: the deleted text is still in a file"));
    }

    // Search finds the edited text, not the old one, and never the deleted message.
    for (i, name) in names.iter().enumerate() {
        poll(ARRIVE, Duration::from_millis(300), || {
            (search(&c, i, "station") == ["meet at the station instead"]
                && search(&c, i, "harbour").is_empty()
                && search(&c, i, "lantern").is_empty())
            .then_some(())
        })
        .unwrap_or_else(|| panic!("{name}'s search is up to date"));
    }
}

#[test]
fn private_messages_are_edited_and_deleted_at_their_recipient() {
    let names = ["alice", "bob"];
    let c = Cluster::named(24, &names, FORM);
    let dms = |i: usize| json_lines(&c.ctl(i, &["dms", "-n", "50", "--json"]));
    for text in ["private-one", "private-two"] {
        let out = c.ctl(0, &["dm", "bob", text]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    poll(ARRIVE, Duration::from_millis(200), || {
        (dms(1).iter().filter(|m| m["outgoing"] == false).count() == 2).then_some(())
    })
    .expect("bob has both");
    let id_of = |i: usize, text: &str| -> String {
        dms(i)
            .iter()
            .find(|m| m["text"] == text)
            .and_then(|m| m["id"].as_str().map(str::to_owned))
            .expect("an id")
    };
    let one = id_of(0, "private-one");
    let two = id_of(0, "private-two");
    // Bob cannot change Alice's message, even on his own node.
    let hack = c.ctl(1, &["edit", &one, "hacked"]);
    assert_eq!(hack.status.code(), Some(4));
    assert!(
        c.ctl(0, &["edit", &one, "private-one, edited"])
            .status
            .success()
    );
    assert!(c.ctl(0, &["delete", &two]).status.success());
    poll(ARRIVE, Duration::from_millis(200), || {
        let got = dms(1);
        let one = got.iter().find(|m| m["id"] == one.as_str())?;
        let two = got.iter().find(|m| m["id"] == two.as_str())?;
        (one["text"] == "private-one, edited"
            && one["edited"].is_string()
            && two["deleted"] == true
            && two["text"] == "")
            .then_some(())
    })
    .expect("bob sees the edit and the delete");
    // Gone from both stores' files, and from Bob's search.
    for (m, name) in c.members.iter().zip(names) {
        poll(ARRIVE, Duration::from_millis(200), || {
            found_in(&m.dir, b"private-two").is_none().then_some(())
        })
        .unwrap_or_else(|| panic!("{name}: the deleted text is still in a file"));
    }
    let found = c.ctl(1, &["search", "private", "--json"]);
    let found = String::from_utf8_lossy(&found.stdout);
    assert!(found.contains("private-one, edited"), "{found}");
    assert!(!found.contains("private-two"), "{found}");
}
