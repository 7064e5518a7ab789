//! Junk private items (issue 32, attack 6) replayed against real daemons: a hostile peer
//! that speaks the real protocol reads Bob's public key bundle from the DHT and delivers
//! thousands of genuine Olm pre-key messages, sealed to Bob's account, straight to Bob's
//! node (`direct` service, body `account ‖ sealed`), each claiming a made-up sender whose
//! bundle nobody has. Such items cannot be authenticated; Bob's node must keep them only in
//! its one bounded queue (the excess is dropped and counted as `dm_waiting_evicted`), keep
//! answering, and still take a message from a correspondent it never talked to before.

use std::net::SocketAddr;
use std::time::Duration;

use chat_dm::bundle::Bundle;
use chat_dm::seal::{Inner, seal};
use chat_overlay::direct::wire::{DirectRequest, DirectResponse};
use chat_overlay::wire::{Message, Request, Response};
use chatd::transport::{self, Inbound, Transport};
use ed25519_dalek::SigningKey;
use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{Account, SessionConfig};

use crate::cluster::{Cluster, poll};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long a message may take to arrive.
const ARRIVE: Duration = Duration::from_secs(60);
/// Junk items sent, in all: enough that more than [`OLD_PEER_TABLE`] reach the engine even
/// where a loaded machine's direct queue drops a few thousand of them.
const JUNK: usize = 8_000;
/// Hostile keys (origins) sharing the flood: Bob's node limits each origin to 50 bodies a
/// second after a burst of 100, so the flood comes from many keys, each paced under that
/// (750 items a second in all, about what one node takes in).
const ORIGINS: usize = 30;
/// Items an origin sends at once, then one every [`PACE`].
const BURST: usize = 20;
const PACE: Duration = Duration::from_millis(40);
/// The bound of the peer table the attack filled before the fix: the test's junk reaching
/// the engine must be more than this for the replay to mean anything.
const OLD_PEER_TABLE: u64 = 4096;
/// Items waiting for their sender's bundle on a node, at most (`chat_dm`'s
/// `MAX_WAITING_ITEMS`).
const MAX_WAITING: u64 = 512;

/// What Bob's node answered the flood.
#[derive(Debug, Default)]
struct Answers {
    accepted: usize,
    rate_limited: usize,
    other: usize,
    unanswered: usize,
}

/// A drop counter of `status` (0 when absent).
fn counter(s: &serde_json::Value, name: &str) -> u64 {
    s["dropped"][name].as_u64().unwrap_or(0)
}

/// Bob's account and key bundle, as anyone in the ring reads them (`chatctl` on Carol's node).
fn bobs_bundle(c: &Cluster, reader: usize) -> Option<([u8; 32], Bundle)> {
    let users = c.json(&c.members[reader].dir, &["users", "--json"])?;
    let id = users["users"]
        .as_array()?
        .iter()
        .find(|u| u["nickname"] == "bob")?["user_id"]
        .as_str()?
        .to_owned();
    let account: [u8; 32] = hex::decode(&id).ok()?.try_into().ok()?;
    let got = c.json(
        &c.members[reader].dir,
        &["record", "get", "keys", &id, "--json"],
    )?;
    let value: Vec<u8> = got["records"].as_array()?.first()?["value"]
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<_>>()?;
    Some((account, Bundle::decode(&value, &account).ok()?))
}

/// `JUNK` direct bodies for `account`: genuine pre-key messages of a throw-away Olm account,
/// sealed to the account's seal key, each naming a random made-up sender.
fn junk(account: [u8; 32], bundle: &Bundle) -> Vec<Vec<u8>> {
    let olm = Account::new();
    let mut session = olm
        .create_outbound_session(
            SessionConfig::version_1(),
            Curve25519PublicKey::from_bytes(bundle.olm_curve25519),
            Curve25519PublicKey::from_bytes(bundle.fallback),
        )
        .expect("an outbound session to Bob's bundle");
    (0..JUNK)
        .map(|_| {
            let (olm_type, olm) = session.encrypt(b"junk").expect("encrypts").to_parts();
            let inner = Inner {
                sender: rand::random(),
                olm_type: u8::try_from(olm_type).expect("olm type"),
                olm,
            };
            let sealed = seal(&inner, &bundle.seal, &account).expect("seals");
            [&account[..], &sealed].concat()
        })
        .collect()
}

/// One origin: a fresh key that connects to `target` and delivers `bodies`, paced under the
/// per-origin rate, then collects the answers (within a deadline).
async fn origin(net: u8, target: SocketAddr, bodies: Vec<Vec<u8>>) -> Answers {
    let key = SigningKey::from_bytes(&rand::random());
    let (tx, mut rx) = tokio::sync::mpsc::channel(bodies.len() + 64);
    let cfg = transport::Config::new(format!("127.0.{net}.200:0").parse().expect("addr"), 8);
    let t: Transport<Message> = Transport::bind(&key, cfg, tx).expect("bind");
    let peer = t.first_contact(target).await.expect("handshake with bob");
    let n = bodies.len();
    for (i, body) in bodies.into_iter().enumerate() {
        if i >= BURST {
            tokio::time::sleep(PACE).await;
        }
        let msg = Message::Request {
            id: i as u64 + 1,
            body: Request::Direct(DirectRequest::Deliver { body }),
        };
        t.send(peer, &msg);
    }
    let mut a = Answers::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut answered = std::collections::HashSet::new();
    while answered.len() < n {
        let Ok(Some(inbound)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let Inbound::Message {
            msg: Message::Response { id, body },
            ..
        } = inbound
        else {
            continue;
        };
        if !answered.insert(id) {
            continue;
        }
        match body {
            Response::Direct(DirectResponse::Accepted) => a.accepted += 1,
            Response::Direct(DirectResponse::RateLimited { .. }) => a.rate_limited += 1,
            _ => a.other += 1,
        }
    }
    a.unanswered = n - answered.len();
    t.close(Duration::from_secs(2)).await;
    a
}

/// Every origin at once; the answers summed.
fn flood(net: u8, target: SocketAddr, bodies: Vec<Vec<u8>>) -> Answers {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let per = bodies.len().div_ceil(ORIGINS);
        let mut bodies = bodies.into_iter();
        let mut tasks = Vec::new();
        for _ in 0..ORIGINS {
            let chunk: Vec<Vec<u8>> = bodies.by_ref().take(per).collect();
            tasks.push(tokio::spawn(origin(net, target, chunk)));
        }
        let mut sum = Answers::default();
        for t in tasks {
            let a = t.await.expect("origin task");
            sum.accepted += a.accepted;
            sum.rate_limited += a.rate_limited;
            sum.other += a.other;
            sum.unanswered += a.unanswered;
        }
        sum
    })
}

/// The resident memory of process `pid` in KiB (Linux), if it can be read.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn junk_private_items_stay_bounded_and_a_new_correspondent_still_gets_through() {
    const NET: u8 = 73;
    let (alice, bob, carol) = (0, 1, 2);
    let c = Cluster::named(NET, &["alice", "bob", "carol"], FORM);

    // The attacker reads Bob's public bundle like any user of the ring would.
    let (account, bundle) = poll(FORM, Duration::from_millis(300), || bobs_bundle(&c, carol))
        .expect("bob's key bundle is in the DHT");
    let before = c.status(bob).expect("bob's status");
    assert_eq!(counter(&before, "dm_waiting_evicted"), 0, "{before}");
    let pid = c.members[bob].daemon.as_ref().expect("bob runs").pid();
    let rss_before = rss_kib(pid);

    let answers = flood(NET, c.addr(bob), junk(account, &bundle));
    eprintln!("bob's node answered the flood: {answers:?}");
    // The flood really reached Bob's private-message engine: most items were accepted by
    // the direct service (paced under its per-origin rate).
    assert!(
        answers.accepted >= JUNK * 9 / 10,
        "too few junk items were accepted: {answers:?}"
    );

    // The junk is dropped, not kept: every accepted item is dropped at the direct service's
    // own bounded queue (logged with a running count; not in `status`), evicted from the
    // waiting queue, or still waits there (at most its bound). Wait until the engine has taken
    // enough of them for that to hold. Without junk the eviction counter is 0 (checked above).
    let accepted = answers.accepted as u64;
    let queue_full = |c: &Cluster| -> u64 {
        let log = c.members[bob]
            .daemon
            .as_ref()
            .map(|d| d.log())
            .unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("the receiving queue is full"))
            .filter_map(|l| {
                l.split("dropped=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .max()
            .unwrap_or(0u64)
    };
    let settled = poll(ARRIVE, Duration::from_millis(300), || {
        let evicted = counter(&c.status(bob)?, "dm_waiting_evicted");
        let dropped = queue_full(&c);
        (evicted > 0 && accepted <= evicted + dropped + MAX_WAITING).then_some((evicted, dropped))
    });
    let s = c.status(bob).expect("bob's node still answers");
    let (evicted, queue_full) = settled.unwrap_or_else(|| panic!("junk was not evicted: {s}"));
    let dm: Vec<(&String, &serde_json::Value)> = s["dropped"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| k.starts_with("dm_")).collect())
        .unwrap_or_default();
    eprintln!(
        "bob's node evicted {evicted} junk items, its direct queue dropped {queue_full}; its \
         private drops: {dm:?}"
    );
    assert!(
        evicted + queue_full <= accepted,
        "{evicted} evicted, {queue_full} dropped at the direct queue, of {answers:?}: {s}"
    );
    assert!(
        accepted - queue_full > OLD_PEER_TABLE,
        "only {} junk items reached bob's engine",
        accepted - queue_full
    );

    // A correspondent Bob never talked to gets through at once (no `HeldFull`, no restart).
    let text = "after-the-junk-4c1e";
    let sent = c.sandbox.chatctl_at(
        &c.members[alice].dir.join("run/control.sock"),
        &["dm", "bob", text],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let got = poll(ARRIVE, Duration::from_millis(250), || {
        c.received(bob).iter().any(|t| t == text).then_some(())
    });
    let s = c.status(bob).expect("bob's node still answers");
    assert!(got.is_some(), "bob does not get alice's message: {s}");
    assert_eq!(counter(&s, "dm_held_full"), 0, "{s}");
    assert_eq!(s["joined"], true, "{s}");
    c.await_ring(Duration::from_secs(10));

    // Bob's memory: thousands of peers kept per claimed sender would show here; the bounded
    // queue holds at most 1 MiB of items.
    if let (Some(b), Some(a)) = (rss_before, rss_kib(pid)) {
        eprintln!("bob's resident memory: {b} KiB before, {a} KiB after");
        assert!(
            a.saturating_sub(b) < 96 * 1024,
            "bob's node grew by {} KiB",
            a - b
        );
    }
}
