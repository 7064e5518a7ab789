//! Private messages to a recipient who was away arrive within seconds of its return, in
//! every order (issue 37): Bob's node stops or dies, Alice sends him 6 messages at once, two other
//! nodes are killed (holders of Bob's mailbox among them, likely), Bob comes back — before
//! Alice's node gave up waiting for an acknowledgement, after every item is in his mailbox,
//! after Alice's node has stopped too, or before Alice's node (stopped right after the sends)
//! comes back, or after Alice's node stopped while the one node left (the holder of his
//! mailbox) is frozen. Each time all 6 show exactly once within 10 s of both nodes being back
//! in the ring (of the holder answering again, in the last order).

use std::time::{Duration, Instant};

use crate::cluster::{Cluster, poll};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long after its return Bob may wait for all his messages.
const PROMPT: Duration = Duration::from_secs(10);
const ALICE: usize = 0;
const BOB: usize = 1;

fn ctl(c: &Cluster, i: usize, args: &[&str]) -> std::process::Output {
    c.sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), args)
}

/// Member `i`'s own messages (`chatctl dms --json`) with `text`: their statuses.
fn statuses(c: &Cluster, i: usize, marker: &str) -> Vec<String> {
    let out = ctl(c, i, &["dms", "-n", "200", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["outgoing"] == true && m["text"].as_str().is_some_and(|t| t.starts_with(marker))
        })
        .map(|m| m["status"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Stops member `i` with SIGTERM and waits for it to exit.
fn stop(c: &mut Cluster, i: usize) {
    if let Some(mut d) = c.members[i].daemon.take() {
        d.signal(rustix::process::Signal::TERM);
        d.wait_exit(Duration::from_secs(20)).expect("stopped");
    }
}

/// Five named nodes; Alice and Bob have talked once (Alice holds Bob's keys and the
/// conversation is bound), then Bob's node stops (`stopping`: SIGTERM, while Alice sends) or
/// dies (SIGKILL: a power cut, no goodbye, so Alice's node still shows him online and tries
/// direct delivery first) and Alice sends 6 messages at once.
fn bob_away_with_six(net: u8, marker: &str, stopping: bool) -> Cluster {
    let names = ["alice", "bob", "carol", "dave", "erin"];
    // The ring's own default timers, as a user runs it (not the suite's short ones).
    let mut c = Cluster::new(net);
    c.sandbox.write_config("");
    c.add_with_env(&[], &[("CHATD_NODE__NICKNAME", names[0])]);
    let boot = [c.addr(0)];
    for n in &names[1..] {
        c.add_with_env(&boot, &[("CHATD_NODE__NICKNAME", n)]);
    }
    c.await_ring(FORM);
    assert!(ctl(&c, ALICE, &["dm", "bob", "hello"]).status.success());
    poll(FORM, Duration::from_millis(200), || {
        c.received(BOB).iter().any(|t| t == "hello").then_some(())
    })
    .expect("bob gets the first message");
    poll(FORM, Duration::from_millis(200), || {
        let out = ctl(&c, ALICE, &["users", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["users"]
            .as_array()?
            .iter()
            .any(|u| u["nickname"] == "bob")
            .then_some(())
    })
    .expect("alice lists bob");
    // Bob's node has run long enough to remember the other four (its `peers` file, checked
    // every 2 s): it comes back through them, since it restarts without a bootstrap and two of
    // them, and Alice's in some orders, are gone by then.
    let peers = c.members[BOB].dir.join("data/peers");
    poll(FORM, Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&peers).ok()?;
        (text.lines().count() >= names.len() - 1).then_some(())
    })
    .expect("bob's node remembers the other four");
    let mut going = None;
    if stopping {
        // Bob stops (SIGTERM) while Alice sends: his node may still take some of them
        // directly on its way out.
        let d = c.members[BOB].daemon.take().expect("bob runs");
        d.signal(rustix::process::Signal::TERM);
        going = Some(d);
    } else {
        c.kill(BOB);
    }
    for k in 0..6 {
        let text = format!("{marker}-{k}");
        let out = ctl(&c, ALICE, &["dm", "bob", &text]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if let Some(mut d) = going {
        d.wait_exit(Duration::from_secs(20))
            .expect("bob's node stopped");
    }
    // Two other nodes die right after: the ring is repairing while Alice's node tries (direct
    // delivery to a node it may still show online, then puts to holders that may have died).
    c.kill(2);
    c.kill(3);
    c
}

/// Restarts member `i` (no bootstrap: through its remembered peers) and waits until its node
/// is in a ring: the time from the restart's start to that, and that start.
fn restart_joined(c: &mut Cluster, i: usize) -> (Duration, Instant) {
    let start = Instant::now();
    c.restart(i, &[]);
    poll(FORM, Duration::from_millis(100), || {
        c.status(i).filter(|s| s["joined"] == true).map(|_| ())
    })
    .unwrap_or_else(|| panic!("node {i} joins or founds a ring again"));
    (start.elapsed(), start)
}

/// Restarts Bob, waits until his node is in the ring, and then at most [`PROMPT`] for all 6
/// messages; checks each shows once. Returns the times from the restart to his joining and to
/// the last message.
fn bob_returns(c: &mut Cluster, marker: &str) -> (Duration, Duration) {
    let (joined, start) = restart_joined(c, BOB);
    six_shown_once(c, marker, "his return");
    let took = start.elapsed();
    // Bob rejoined the one ring (no ring of his own).
    c.await_ring(FORM);
    (joined, took)
}

/// Waits at most [`PROMPT`] for all 6 of `marker`'s messages on Bob's node and checks that
/// each shows once; `after` names what the wait started at (for the failure message, with
/// the last lines of Bob's log).
fn six_shown_once(c: &Cluster, marker: &str, after: &str) {
    let want: Vec<String> = (0..6).map(|k| format!("{marker}-{k}")).collect();
    let all = poll(PROMPT, Duration::from_millis(100), || {
        let got = c.received(BOB);
        want.iter().all(|w| got.contains(w)).then_some(())
    });
    let got = c.received(BOB);
    assert!(
        all.is_some(),
        "bob has {} of 6 messages {PROMPT:?} after {after}: {got:?}\nbob's log:\n{}",
        want.iter().filter(|w| got.contains(w)).count(),
        c.members[BOB]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(60))
            .unwrap_or_default()
    );
    for w in &want {
        assert_eq!(
            got.iter().filter(|g| *g == w).count(),
            1,
            "{w} shown once: {got:?}"
        );
    }
}

/// Waits until Alice's 6 messages are all in Bob's mailbox.
fn stored(c: &Cluster, marker: &str) {
    poll(Duration::from_secs(90), Duration::from_millis(250), || {
        let s = statuses(c, ALICE, marker);
        (s.len() == 6 && s.iter().all(|s| s == "stored")).then_some(())
    })
    .expect("alice's 6 messages are stored in bob's mailbox");
}

#[test]
fn offline_messages_arrive_promptly_when_the_recipient_returns_before_the_ack_timeout() {
    // The scenario: Bob returns 5 s later, well within Alice's 30 s wait.
    let mut c = bob_away_with_six(139, "early", true);
    std::thread::sleep(Duration::from_secs(5));
    let took = bob_returns(&mut c, "early");
    eprintln!("bob back before the ack timeout: (joined, all 6) {took:?} after his restart");
    poll(FORM, Duration::from_millis(200), || {
        let s = statuses(&c, ALICE, "early");
        (s.len() == 6 && s.iter().all(|s| s == "delivered")).then_some(())
    })
    .expect("alice sees all 6 delivered");
}

#[test]
fn offline_messages_arrive_promptly_when_the_recipient_returns_after_they_were_stored() {
    let mut c = bob_away_with_six(140, "late", false);
    stored(&c, "late");
    let took = bob_returns(&mut c, "late");
    eprintln!("bob back after they were stored: (joined, all 6) {took:?} after his restart");
}

#[test]
fn offline_messages_arrive_promptly_when_the_sender_is_gone_by_then() {
    let mut c = bob_away_with_six(141, "gone", false);
    stored(&c, "gone");
    stop(&mut c, ALICE);
    let took = bob_returns(&mut c, "gone");
    eprintln!("bob back after alice stopped: (joined, all 6) {took:?} after his restart");
}

#[test]
fn offline_messages_arrive_promptly_when_the_sender_returns_after_the_recipient() {
    // Alice's node stops right after the sends (her messages may not have left yet: they wait
    // in her node's store); Bob comes back first, then Alice.
    let mut c = bob_away_with_six(142, "both", false);
    stop(&mut c, ALICE);
    let (joined, _) = restart_joined(&mut c, BOB);
    let (alice_joined, start) = restart_joined(&mut c, ALICE);
    six_shown_once(&c, "both", "alice's return");
    eprintln!(
        "alice back after bob (bob joined {joined:?} after his restart): alice joined {alice_joined:?}, all 6 {:?} after her restart",
        start.elapsed()
    );
    c.await_ring(FORM);
}

#[test]
fn offline_messages_arrive_promptly_when_the_last_holder_is_slow_to_answer_the_return() {
    // The sender gone order, with the one node left (Erin, the holder of Bob's mailbox) frozen
    // (SIGSTOP: alive to the kernel, silent to the ring) while Bob's node starts: what a loaded
    // machine does to a first contact. Bob's node hears nobody, founds a ring of its own and
    // reads an empty mailbox; Erin goes on 4 s later and the two rings merge. All 6 must still
    // arrive within 10 s of Erin answering again.
    const ERIN: usize = 4;
    let mut c = bob_away_with_six(143, "slow", false);
    stored(&c, "slow");
    stop(&mut c, ALICE);
    let erin = c.members[ERIN].daemon.as_ref().expect("erin runs");
    erin.signal(rustix::process::Signal::STOP);
    let (joined, start) = restart_joined(&mut c, BOB);
    std::thread::sleep(Duration::from_secs(4).saturating_sub(start.elapsed()));
    let erin = c.members[ERIN].daemon.as_ref().expect("erin runs");
    erin.signal(rustix::process::Signal::CONT);
    let cont = Instant::now();
    six_shown_once(&c, "slow", "erin answers again");
    let took = cont.elapsed();
    eprintln!(
        "bob back while erin was frozen: bob joined {joined:?} after his restart, all 6 {took:?} after erin went on ({:?} after bob's restart)",
        start.elapsed()
    );
    c.await_ring(FORM);
}
