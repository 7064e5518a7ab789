//! Junk private items: pre-key messages sealed to a real account under made-up senders, whose
//! bundles the DHT does not have. They must leave the engine's state bounded (no peer per
//! claimed sender, one bounded queue, bounded fetches) and must not stop a real correspondent.

use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{Account, Session, SessionConfig};

use super::Net;
use crate::Dropped;
use crate::engine::waiting::{
    MAX_FETCHES, MAX_WAITING_BYTES, MAX_WAITING_ITEMS, MAX_WAITING_PER_SENDER,
};
use crate::engine::{Action, Engine, UNBUNDLED_WAIT_MS, WaitingStats};
use crate::seal::{Inner, seal};

/// Makes junk for one recipient: genuine Olm pre-key messages of a throw-away Olm account,
/// sealed to the recipient under whatever sender the attacker names.
struct Junk {
    to: [u8; 32],
    seal_key: [u8; 32],
    session: Session,
    _olm: Account,
}

impl Junk {
    fn new(net: &Net, to: [u8; 32]) -> Junk {
        let bundle = net.engines[&to].bundle();
        let olm = Account::new();
        let session = olm
            .create_outbound_session(
                SessionConfig::version_1(),
                Curve25519PublicKey::from_bytes(bundle.olm_curve25519),
                Curve25519PublicKey::from_bytes(bundle.fallback),
            )
            .expect("session");
        Junk {
            to,
            seal_key: bundle.seal,
            session,
            _olm: olm,
        }
    }

    fn item(&mut self, claimed: [u8; 32]) -> Vec<u8> {
        let msg = self.session.encrypt(b"junk").expect("encrypts");
        let (olm_type, olm) = msg.to_parts();
        let inner = Inner {
            sender: claimed,
            olm_type: olm_type as u8,
            olm,
        };
        seal(&inner, &self.seal_key, &self.to).expect("seals")
    }
}

/// A made-up account key.
fn made_up(n: u32) -> [u8; 32] {
    let mut k = [0xEE; 32];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k
}

fn fetches(acts: &[Action]) -> usize {
    acts.iter()
        .filter(|a| matches!(a, Action::FetchBundle { .. }))
        .count()
}

fn within_bounds(w: WaitingStats) {
    assert!(w.items <= MAX_WAITING_ITEMS, "{w:?}");
    assert!(w.bytes <= MAX_WAITING_BYTES, "{w:?}");
    assert!(w.senders <= w.items, "{w:?}");
    assert!(w.fetching <= MAX_FETCHES, "{w:?}");
}

#[test]
fn ten_thousand_junk_items_leave_the_state_bounded_and_a_new_correspondent_still_gets_through() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let mut junk = Junk::new(&net, b);
    let mut asked = 0;
    for round in 0..100u32 {
        let items = (0..100u32)
            .map(|i| (None, junk.item(made_up(round * 100 + i))))
            .collect();
        let acts = net.with(b, |e, now| e.receive(items, now));
        assert!(fetches(&acts) <= MAX_FETCHES, "bounded fetches per batch");
        asked += fetches(&acts);
        // The made-up senders have no bundle: every fetch finds nothing.
        net.run(b, acts);
        net.now += 100;
        let acts = net.with(b, Engine::tick);
        assert!(fetches(&acts) <= MAX_FETCHES);
        asked += fetches(&acts);
        net.run(b, acts);
        within_bounds(net.engines[&b].waiting_stats());
    }
    let e = &net.engines[&b];
    assert_eq!(e.peer_count(), 0, "no peer for a claimed sender");
    assert!(asked <= 200 * MAX_FETCHES);
    let evicted = e.drops().get(&Dropped::WaitEvicted).copied().unwrap_or(0);
    assert!(evicted >= 10_000 - MAX_WAITING_ITEMS as u64, "{evicted}");
    assert_eq!(net.engines[&b].waiting_stats().items, MAX_WAITING_ITEMS);

    // Alice writes to Bob for the first time: her item is taken, her bundle asked for at
    // once, and the message shown.
    let value = net.sealed(1, 2, "hello bob");
    let acts = net.with(b, |e, now| e.receive(vec![(None, value)], now));
    assert!(
        acts.iter()
            .any(|x| matches!(x, Action::FetchBundle { peer } if *peer == a)),
        "{acts:?}"
    );
    net.run(b, acts);
    assert_eq!(net.texts(2), vec!["hello bob"]);
    assert_eq!(net.engines[&b].peer_count(), 1);

    // The junk's fetches back off and stop: within the wait, every queued sender is asked a
    // bounded number of times, then the queue is empty and nothing more is fetched.
    let mut later = 0;
    let end = net.now + UNBUNDLED_WAIT_MS;
    while net.now <= end {
        net.now += 1_000;
        let acts = net.with(b, Engine::tick);
        later += fetches(&acts);
        net.run(b, acts);
    }
    assert!(
        later <= MAX_WAITING_ITEMS * 10,
        "{later} fetches in 10 minutes"
    );
    assert_eq!(net.engines[&b].waiting_stats(), WaitingStats::default());
    net.now += 60_000;
    assert_eq!(fetches(&net.with(b, Engine::tick)), 0);
    assert_eq!(net.engines[&b].peer_count(), 1);
}

#[test]
fn junk_from_made_up_senders_cannot_push_out_a_real_senders_waiting_item() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    // Alice's first item waits: the first lookup of her bundle finds nothing.
    let value = net.sealed(1, 2, "still here");
    let acts = net.with(b, |e, now| e.receive(vec![(None, value)], now));
    assert_eq!(fetches(&acts), 1);
    assert!(
        net.with(b, |e, now| e.bundle_fetched(a, None, now))
            .is_empty()
    );

    // One made-up sender floods: it keeps its share only.
    let mut junk = Junk::new(&net, b);
    let flood = (0..1000).map(|_| (None, junk.item(made_up(7)))).collect();
    let acts = net.with(b, |e, now| e.receive(flood, now));
    net.run(b, acts);
    let w = net.engines[&b].waiting_stats();
    assert_eq!(w.items, 1 + MAX_WAITING_PER_SENDER, "{w:?}");
    // Then many made-up senders, each with its full share, fill the queue past its bound.
    for s in 0..64 {
        let items = (0..MAX_WAITING_PER_SENDER)
            .map(|_| (None, junk.item(made_up(100 + s))))
            .collect();
        let acts = net.with(b, |e, now| e.receive(items, now));
        net.run(b, acts);
        within_bounds(net.engines[&b].waiting_stats());
    }
    assert_eq!(
        net.engines[&b].waiting_stats().items,
        MAX_WAITING_ITEMS,
        "the queue is full"
    );
    assert!(net.texts(2).is_empty());

    // Alice's item was not pushed out: her bundle's next fetch (after its backoff, among the
    // junk's) finds it, and the message shows.
    for _ in 0..60 {
        if !net.texts(2).is_empty() {
            break;
        }
        net.now += 1_000;
        let acts = net.with(b, Engine::tick);
        net.run(b, acts);
    }
    assert_eq!(net.texts(2), vec!["still here"]);
}
