//! People over a real ring: network-wide unique nicknames (a collision resolved with a
//! suffix, a reserved `*` name refused with the rule), one user list on every node, presence
//! (away, back, offline after SIGTERM within 5 s and after SIGKILL within 45 s), a nickname
//! change seen everywhere, and messages named by their author's verified nickname (never by
//! the name a node writes into its envelopes).

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, poll};

/// How long the ring and the first announcements may take.
const FORM: Duration = Duration::from_secs(60);

/// Member `i`'s user list as (nickname, presence, away message, user id) rows.
fn users(c: &Cluster, i: usize) -> Option<Vec<(String, String, String, String)>> {
    let v = c.json(&c.members[i].dir, &["users", "--json"])?;
    let rows = v["users"]
        .as_array()?
        .iter()
        .map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or("").to_owned();
            (
                s("nickname"),
                s("presence"),
                s("away_message"),
                s("user_id"),
            )
        })
        .collect();
    Some(rows)
}

/// Waits until every live member's user list satisfies `ok` and all lists are equal.
fn await_lists(
    c: &Cluster,
    deadline: Duration,
    what: &str,
    ok: impl Fn(&[(String, String, String, String)]) -> bool,
) -> Vec<(String, String, String, String)> {
    let found = poll(deadline, Duration::from_millis(200), || {
        let lists: Vec<_> = c
            .live()
            .into_iter()
            .map(|i| users(c, i))
            .collect::<Option<_>>()?;
        let first = lists.first()?.clone();
        (ok(&first) && lists.iter().all(|l| *l == first)).then_some(first)
    });
    found.unwrap_or_else(|| {
        let lists: Vec<_> = c.live().into_iter().map(|i| users(c, i)).collect();
        panic!("{what}: the user lists never agreed: {lists:#?}")
    })
}

fn status(c: &Cluster, i: usize) -> serde_json::Value {
    c.status(i).expect("status")
}

fn nick_of(c: &Cluster, i: usize) -> String {
    status(c, i)["nickname"].as_str().unwrap_or("").to_owned()
}

fn presence_of(list: &[(String, String, String, String)], nick: &str) -> Option<String> {
    list.iter().find(|u| u.0 == nick).map(|u| u.1.clone())
}

#[test]
fn nicknames_are_unique_and_presence_reaches_every_node() {
    let mut c = Cluster::new(12);
    let nick = |n: &'static str| [("CHATD_NODE__NICKNAME", n)];
    c.add_with_env(&[], &nick("alice"));
    let boot = [c.addr(0)];
    c.add_with_env(&boot, &nick("Alice"));
    c.add_with_env(&boot, &nick("carol"));
    c.add_with_env(&boot, &nick("dave"));
    c.await_ring(FORM);

    // Names are claimed once the nodes joined; the second "alice" (any case) gets a suffix and
    // is told why — at once when the claim finds the name taken, or shortly after when both
    // claims were granted while the ring was still forming (then the name's holders elect one
    // owner, `docs/protocol.md` "Disputed names", and the other renames itself).
    let wishes = ["alice", "Alice"];
    let suffixed = |i: usize, s: &str| {
        s.len() == wishes[i].len() + 4
            && s.starts_with(wishes[i])
            && s[5..].chars().all(|ch| ch.is_ascii_digit())
    };
    let claimed = poll(FORM, Duration::from_millis(200), || {
        let n: Vec<String> = (0..4).map(|i| nick_of(&c, i)).collect();
        let one_owner =
            (n[0] == wishes[0] && suffixed(1, &n[1])) || (n[1] == wishes[1] && suffixed(0, &n[0]));
        (one_owner && n.iter().all(|s| !s.is_empty())).then_some(n)
    });
    let claimed = claimed.unwrap_or_else(|| {
        panic!(
            "names: {:?}",
            (0..4).map(|i| nick_of(&c, i)).collect::<Vec<_>>()
        )
    });
    let (winner, loser) = if claimed[0] == wishes[0] {
        (0, 1)
    } else {
        (1, 0)
    };
    let owner = claimed[winner].clone();
    let second = &claimed[loser];
    let note = status(&c, loser)["nickname_note"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(note.contains("alice") || note.contains("Alice"), "{note}");

    // One user list everywhere, everybody online.
    let list = await_lists(&c, FORM, "after joining", |l| {
        l.len() == 4 && l.iter().all(|u| u.1 == "online")
    });
    let names: Vec<&str> = list.iter().map(|u| u.0.as_str()).collect();
    assert!(
        names.contains(&owner.as_str())
            && names.contains(&"carol")
            && names.contains(&second.as_str()),
        "{names:?}"
    );

    // A forged name is not shown: the loser still writes the name it wished for into its
    // envelopes, but what every node shows is what its account's claim proves.
    let sent = c.sandbox.chatctl_at(
        &c.members[loser].dir.join("run/control.sock"),
        &["send", "hi from the second alice"],
    );
    assert!(sent.status.success());
    let shown = poll(FORM, Duration::from_millis(200), || {
        let froms: Vec<String> = c
            .live()
            .into_iter()
            .filter_map(|i| {
                let out = c.sandbox.chatctl_at(
                    &c.members[i].dir.join("run/control.sock"),
                    &["tail", "--json", "-n", "100"],
                );
                String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).ok()?;
                    (v["text"] == "hi from the second alice")
                        .then(|| v["from"].as_str().unwrap_or("").to_owned())
                })
            })
            .collect();
        (froms.len() == c.live().len()).then_some(froms)
    })
    .expect("the message reached every node");
    assert!(
        shown.iter().all(|f| f == second),
        "shown as {shown:?}, not {second}"
    );

    // A reserved or malformed name is refused with the rule; nothing changes.
    for bad in ["*carol", "", "al ice", &"x".repeat(33)] {
        let out = c
            .sandbox
            .chatctl_at(&c.members[2].dir.join("run/control.sock"), &["nick", bad]);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nickname"), "{bad:?}: {err}");
        if bad.starts_with('*') {
            assert!(err.contains("reserved for guests"), "{err}");
        }
    }
    // A name another user holds is not taken from them (in any case): a suffixed one is.
    let taken = c
        .json(&c.members[2].dir, &["nick", "ALICE", "--json"])
        .expect("nick");
    let got = taken["nickname"].as_str().expect("nickname").to_owned();
    assert!(got.starts_with("ALICE") && got.len() == 9, "{taken}");
    assert_eq!(nick_of(&c, winner), owner);

    // A rename is seen everywhere, as an event line too.
    let renamed = c
        .json(&c.members[2].dir, &["nick", "caroline", "--json"])
        .expect("nick");
    assert_eq!(renamed["nickname"], "caroline");
    await_lists(&c, FORM, "after a rename", |l| {
        l.iter().any(|u| u.0 == "caroline") && !l.iter().any(|u| u.0 == got)
    });

    // Away with a message, then back.
    let away = c.sandbox.chatctl_at(
        &c.members[3].dir.join("run/control.sock"),
        &["away", "at", "lunch"],
    );
    assert!(
        away.status.success(),
        "{}",
        String::from_utf8_lossy(&away.stderr)
    );
    await_lists(&c, FORM, "away", |l| {
        l.iter()
            .any(|u| u.0 == "dave" && u.1 == "away" && u.2 == "at lunch")
    });
    let long = "x".repeat(201);
    let out = c
        .sandbox
        .chatctl_at(&c.members[3].dir.join("run/control.sock"), &["away", &long]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("away_message"));
    assert!(
        c.sandbox
            .chatctl_at(&c.members[3].dir.join("run/control.sock"), &["back"])
            .status
            .success()
    );
    await_lists(&c, FORM, "back", |l| {
        presence_of(l, "dave").as_deref() == Some("online")
    });

    // A flood of presence changes is cut off per account, with the wait.
    let sock0 = c.members[0].dir.join("run/control.sock");
    let refused = (0..14).find_map(|i| {
        let out = c
            .sandbox
            .chatctl_at(&sock0, &["away", &format!("flood {i}")]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
    });
    let refused = refused.expect("14 changes in a row were all accepted");
    assert!(refused.contains("too often"), "{refused}");

    // A message is named by its author's verified nickname on every node.
    let sent = c.sandbox.chatctl_at(
        &c.members[2].dir.join("run/control.sock"),
        &["send", "hi from caroline"],
    );
    assert!(sent.status.success());
    let named = poll(FORM, Duration::from_millis(200), || {
        c.live()
            .into_iter()
            .all(|i| {
                let out = c.sandbox.chatctl_at(
                    &c.members[i].dir.join("run/control.sock"),
                    &["tail", "--json", "-n", "100"],
                );
                String::from_utf8_lossy(&out.stdout).lines().any(|l| {
                    serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                        v["text"] == "hi from caroline"
                            && v["from"] == "caroline"
                            && v["kind"] == "message"
                    })
                })
            })
            .then_some(())
    });
    assert!(
        named.is_some(),
        "the message was not named caroline everywhere"
    );
    // Event lines are in tail, marked as events.
    let out = c.sandbox.chatctl_at(
        &c.members[0].dir.join("run/control.sock"),
        &["tail", "--json", "-n", "100"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("\"kind\":\"event\"") && l.contains("is now caroline")),
        "{text}"
    );

    // SIGTERM: offline everywhere within 5 s.
    let t = Instant::now();
    if let Some(d) = c.members[3].daemon.as_mut() {
        d.signal(rustix::process::Signal::TERM);
        assert!(
            d.wait_exit(Duration::from_secs(10))
                .is_some_and(|s| s.success())
        );
    }
    c.members[3].daemon = None;
    await_lists(&c, Duration::from_secs(5), "after SIGTERM", |l| {
        presence_of(l, "dave").as_deref() == Some("offline")
    });
    eprintln!(
        "offline after SIGTERM seen everywhere after {:?}",
        t.elapsed()
    );

    // SIGKILL: offline everywhere within 45 s, through the ring neighbour's report.
    let t = Instant::now();
    c.kill(2);
    await_lists(&c, Duration::from_secs(45), "after SIGKILL", |l| {
        presence_of(l, "caroline").as_deref() == Some("offline")
    });
    eprintln!(
        "offline after SIGKILL seen everywhere after {:?}",
        t.elapsed()
    );
}
