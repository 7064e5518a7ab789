//! One hosted account's private conversations as a state machine: the local user sends, the
//! network delivers items, time passes; the engine answers with [`Action`]s for its driver
//! (the daemon's DM service, or the simulator) to carry out. It never does I/O and never logs
//! text.
//!
//! A sent message stays in the sender's stream until the recipient's end-to-end
//! acknowledgement; each attempt encrypts it afresh (so a lost or undecryptable item never
//! blocks the stream), goes directly to the recipient's node when it is online and otherwise
//! into its mailbox, whose item is put again (same bytes) every [`REPUT`] so that a mailbox
//! whose replicas all died comes back. The receive path is in `receive.rs`, persistence in
//! `persist.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chat_overlay::records::{Hash, Kind, Record, Value};
use ed25519_dalek::SigningKey;
use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{Session, SessionConfig};

use crate::bundle::Bundle;
use crate::group::GroupState;
use crate::keys::Keys;
use crate::payload::{Body, Conv, Payload};
use crate::seal::{Inner, seal};
pub use crate::stream::Status;
use crate::stream::{InStream, OutStream, Pending};
pub(crate) use crate::text::{check_text, check_text_with};
use crate::{DmError, Dropped, MAX_PENDING, MAX_PENDING_PER_PEER, SEND_PER_MIN};

mod changes;
mod groups;
mod persist;
mod receive;
pub mod waiting;

pub use changes::Changed;
pub use persist::{StoredCore, StoredPeer};
pub use waiting::WaitingStats;

/// Without an outcome for an attempt this long, it is made again.
pub const OUTCOME_WAIT_MS: u64 = 60_000;
/// Without an acknowledgement this long after a direct delivery, the message goes to the
/// mailbox.
pub const DIRECT_ACK_WAIT_MS: u64 = 30_000;
/// A pending mailbox item is put again (same bytes) this often.
pub const REPUT_MS: u64 = 10 * 60_000;
/// A mailbox item lives at most this long; a fresh one replaces it an hour before.
pub const ITEM_LIFE_MS: u64 = 7 * 24 * 3_600_000;
const FRESH_BEFORE_MS: u64 = 3_600_000;
/// A peer's bundle is fetched again when a session must be made and it is older than this.
pub const BUNDLE_MAX_AGE_MS: u64 = 3_600_000;
/// A missing bundle (not yet published, or the lookup failed) is fetched again this soon.
pub(crate) const FETCH_RETRY_MS: u64 = 5_000;
/// Items waiting for their sender's bundle are kept this long at most while its fetch is
/// retried (with a backoff, `waiting.rs`); then they are let go (the sender sends again until
/// acknowledged, and a mailbox item is read again at the next drain).
pub const UNBUNDLED_WAIT_MS: u64 = 10 * 60_000;
/// Keys are rotated this often (of running time).
pub const ROTATE_MS: u64 = 7 * 24 * 3_600_000;
/// Olm sessions kept per peer.
const MAX_SESSIONS: usize = 5;

/// An item to take: its mailbox hash (`None`: delivered directly) and its sealed value.
pub type Item = (Option<Hash>, Vec<u8>);

/// A message to show the account's user (received, or sent by it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub id: [u8; 16],
    pub from: [u8; 32],
    /// The recipient (for a group message: the account that shows it).
    pub to: [u8; 32],
    pub group: Option<[u8; 16]>,
    pub text: String,
    /// A private file's reference (opaque to the engine), if the message carries one.
    pub file: Option<Vec<u8>>,
    /// The sender's clock.
    pub sent_ms: u64,
    pub outgoing: bool,
}

/// How an attempt to send went (reported by the driver).
#[derive(Clone, Debug)]
pub enum Delivery {
    /// The recipient's node accepted it.
    Direct,
    /// Its item is in the recipient's mailbox.
    Stored(Record),
    /// Neither worked; try again after this long.
    Failed { retry_ms: u64 },
}

/// A sealed value on its way to an account ([`Action::Send`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient account.
    pub to: [u8; 32],
    /// The message's number (0: an acknowledgement, whose outcome is not reported).
    pub seq: u64,
    /// The sealed value.
    pub value: Vec<u8>,
    /// Into the mailbox, not to the recipient's node.
    pub mailbox: bool,
    /// The item is in the mailbox already: a failed direct delivery is not stored again.
    pub direct_only: bool,
    /// When its mailbox item expires (Unix ms).
    pub expires_ms: u64,
}

/// What the engine asks its driver to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Fetch `peer`'s bundle (its `keys` record) and report it with
    /// [`Engine::bundle_fetched`].
    FetchBundle { peer: [u8; 32] },
    /// Send sealed `value` to account `to`: directly to its node if it is online (unless
    /// `mailbox`), else as a mailbox item expiring at `expires_ms` ([`item_record`]). Report
    /// the outcome with [`Engine::outcome`] unless `seq` is 0 (an acknowledgement). With
    /// `direct_only` (the item is in the mailbox already; [`Engine::peer_online`]) a failed
    /// direct delivery is reported as [`Delivery::Failed`] rather than stored again.
    Send(Outgoing),
    /// Put this pending item again (report `Removed` with [`Engine::item_removed`]).
    Reput {
        to: [u8; 32],
        seq: u64,
        record: Record,
    },
    /// Remove these items from this account's mailbox (the state that took them is
    /// persisted first).
    Remove(Vec<Hash>),
    /// Show a message.
    Show(Shown),
    /// Apply an edit or delete to a stored message — only if it is the change's sender's.
    Change(Changed),
    /// A sent message's status changed.
    Status {
        id: [u8; 16],
        to: [u8; 32],
        status: Status,
    },
    /// A group this account is in changed (or it was removed: `state` without it).
    Group(GroupState),
}

/// A mailbox item of `value` for `recipient`, signed by a fresh key (so holders do not learn
/// the sender), expiring at `expires_ms`.
pub fn item_record(recipient: &[u8; 32], value: Vec<u8>, now_ms: u64, expires_ms: u64) -> Record {
    let key = SigningKey::from_bytes(&crate::random::<32>());
    let nonce = u64::from_be_bytes(crate::random::<8>());
    Record::sign(
        Kind::Mailbox,
        recipient.to_vec(),
        Value::Data(value),
        &key,
        nonce,
        now_ms,
        expires_ms,
    )
}

/// What the engine knows of one peer.
pub(crate) struct Peer {
    pub bundle: Option<Bundle>,
    pub bundle_ms: u64,
    pub fetch_ms: u64,
    /// Newest or most recently used first.
    pub sessions: Vec<Session>,
    /// The fallback key the first session (if not yet answered) was made with.
    pub session_fallback: [u8; 32],
    pub out: OutStream,
    pub inn: InStream,
    pub ack_owed: bool,
}

impl Peer {
    fn new() -> Peer {
        Peer {
            bundle: None,
            bundle_ms: 0,
            fetch_ms: 0,
            sessions: Vec::new(),
            session_fallback: [0; 32],
            out: OutStream::default(),
            inn: InStream::default(),
            ack_owed: false,
        }
    }

    /// Whether this peer's bundle is to be fetched now (never yet, or the last fetch was
    /// [`FETCH_RETRY_MS`] ago); if so, the fetch is noted as made now.
    pub(crate) fn fetch_due(&mut self, now_ms: u64) -> bool {
        let due = self.fetch_ms == 0 || now_ms.saturating_sub(self.fetch_ms) >= FETCH_RETRY_MS;
        if due {
            self.fetch_ms = now_ms;
        }
        due
    }
}

/// A local group: its state, signed, and whether this account is out of it.
pub(crate) struct Group {
    pub state: GroupState,
    pub signed: crate::group::SignedGroup,
    pub left: bool,
}

/// One account's engine.
pub struct Engine {
    me: [u8; 32],
    signer: SigningKey,
    keys: Keys,
    ttl_ms: u64,
    peers: BTreeMap<[u8; 32], Peer>,
    groups: BTreeMap<[u8; 16], Group>,
    /// Group messages whose group is not known yet.
    waiting: Vec<Payload>,
    /// Items waiting for their (claimed) sender's bundle: the only state kept for a sender
    /// before it is authenticated.
    unbundled: waiting::Waiting,
    blocked: BTreeSet<[u8; 32]>,
    buckets: HashMap<[u8; 32], (f64, u64)>,
    dirty: BTreeSet<[u8; 32]>,
    core_dirty: bool,
    drops: BTreeMap<Dropped, u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("me", &hex::encode(&self.me[..4]))
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A new engine for the account of `signer`, with new keys; undelivered messages expire
    /// after `ttl_ms`.
    pub fn new(signer: SigningKey, ttl_ms: u64, now_ms: u64) -> Engine {
        Engine::with_keys(signer, Keys::generate(now_ms), ttl_ms)
    }

    fn with_keys(signer: SigningKey, keys: Keys, ttl_ms: u64) -> Engine {
        Engine {
            me: signer.verifying_key().to_bytes(),
            signer,
            keys,
            ttl_ms,
            peers: BTreeMap::new(),
            groups: BTreeMap::new(),
            waiting: Vec::new(),
            unbundled: waiting::Waiting::default(),
            blocked: BTreeSet::new(),
            buckets: HashMap::new(),
            dirty: BTreeSet::new(),
            core_dirty: true,
            drops: BTreeMap::new(),
        }
    }

    /// The account.
    pub fn me(&self) -> [u8; 32] {
        self.me
    }

    /// The bundle to publish.
    pub fn bundle(&self) -> Bundle {
        self.keys.bundle(self.me)
    }

    /// Whether the keys are due for rotation.
    pub fn rotation_due(&self, now_ms: u64) -> bool {
        now_ms >= self.keys.rotated_ms().saturating_add(ROTATE_MS)
    }

    /// Rotates the keys (publish [`Engine::bundle`] afterwards).
    pub fn rotate(&mut self, now_ms: u64) {
        self.keys.rotate(now_ms);
        self.core_dirty = true;
    }

    /// Dropped network input, by reason.
    pub fn drops(&self) -> &BTreeMap<Dropped, u64> {
        &self.drops
    }

    /// The items waiting for their senders' bundles, and the fetches of those.
    pub fn waiting_stats(&self) -> WaitingStats {
        self.unbundled.stats()
    }

    /// How many peers (authenticated correspondents, and recipients of this account) are known.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Messages waiting for acknowledgements: (recipient, message id, status).
    pub fn pending(&self) -> Vec<([u8; 32], [u8; 16], Status)> {
        let mut out = Vec::new();
        for (to, p) in &self.peers {
            for pend in p.out.pending.values() {
                if let Body::Text { nonce, .. } = &pend.body {
                    out.push((*to, crate::message_id(&self.me, nonce), pend.status));
                }
            }
        }
        out
    }

    /// Blocks `who`: its private messages are acknowledged and never shown.
    pub fn block(&mut self, who: [u8; 32]) -> bool {
        self.core_dirty = true;
        self.blocked.insert(who)
    }

    /// Unblocks `who`.
    pub fn unblock(&mut self, who: &[u8; 32]) -> bool {
        self.core_dirty = true;
        self.blocked.remove(who)
    }

    /// The blocked accounts.
    pub fn blocked(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.blocked.iter()
    }

    /// Whether `who` is blocked.
    pub fn is_blocked(&self, who: &[u8; 32]) -> bool {
        self.blocked.contains(who)
    }

    /// Sends `text` privately to `to`.
    pub fn send_text(&mut self, to: [u8; 32], text: &str, now_ms: u64) -> Result<Shown, DmError> {
        self.send_with(to, text, None, now_ms)
    }

    /// Sends `text` privately to `to`, with a private file's reference `file` (opaque here).
    pub fn send_with(
        &mut self,
        to: [u8; 32],
        text: &str,
        file: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Result<Shown, DmError> {
        if to == self.me {
            return Err(DmError::ToSelf);
        }
        check_text_with(text, file.as_deref())?;
        self.admit(to, now_ms)?;
        let nonce = crate::random::<16>();
        self.enqueue(
            to,
            Body::Text {
                conv: Conv::Direct,
                nonce,
                text: text.to_owned(),
                file: file.clone(),
            },
            now_ms,
        )?;
        Ok(Shown {
            id: crate::message_id(&self.me, &nonce),
            from: self.me,
            to,
            group: None,
            text: text.to_owned(),
            file,
            sent_ms: now_ms,
            outgoing: true,
        })
    }

    /// Takes one token of the per-recipient (or per-group) send rate.
    fn admit(&mut self, key: [u8; 32], now_ms: u64) -> Result<(), DmError> {
        let rate = f64::from(SEND_PER_MIN) / 60_000.0;
        let burst = f64::from(SEND_PER_MIN);
        if self.buckets.len() > 4096 {
            self.buckets
                .retain(|_, (t, at)| *t + rate * now_ms.saturating_sub(*at) as f64 - burst < 0.0);
        }
        let (tokens, at) = self.buckets.entry(key).or_insert((burst, now_ms));
        *tokens = (*tokens + rate * now_ms.saturating_sub(*at) as f64).min(burst);
        *at = now_ms;
        if *tokens < 1.0 {
            return Err(DmError::RateLimited {
                retry_after_ms: ((1.0 - *tokens) / rate).ceil() as u64,
            });
        }
        *tokens -= 1.0;
        Ok(())
    }

    /// Numbers `body` in the stream to `to` and queues it.
    fn enqueue(&mut self, to: [u8; 32], body: Body, now_ms: u64) -> Result<u64, DmError> {
        let total: usize = self.peers.values().map(|p| p.out.pending.len()).sum();
        if total >= MAX_PENDING {
            return Err(DmError::Backlog(format!(
                "{MAX_PENDING} private messages already wait for their recipients"
            )));
        }
        let peer = self.peers.entry(to).or_insert_with(Peer::new);
        if peer.out.pending.len() >= MAX_PENDING_PER_PEER {
            return Err(DmError::Backlog(format!(
                "{MAX_PENDING_PER_PEER} private messages already wait for this recipient"
            )));
        }
        let seq = peer.out.push(Pending {
            body,
            sent_ms: now_ms,
            deadline_ms: now_ms.saturating_add(self.ttl_ms),
            status: Status::Queued,
            next_ms: now_ms,
            attempts: 0,
            item: None,
            reput_ms: u64::MAX,
        });
        self.dirty.insert(to);
        Ok(seq)
    }

    /// What is due at `now_ms`: attempts, re-puts, bundle fetches, expiries.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        // Received items wait for their senders' bundles: a fetch failed or found nothing
        // (not yet stored where the lookup went); ask again, within the bounds.
        let gone = self.unbundled.expire(now_ms);
        self.count_n(Dropped::WaitExpired, gone);
        self.start_fetches(now_ms, &mut actions);
        let mut due: Vec<([u8; 32], Vec<u64>)> = Vec::new();
        for (to, peer) in &mut self.peers {
            let mut seqs = Vec::new();
            let mut expired = Vec::new();
            for (seq, p) in &mut peer.out.pending {
                if now_ms >= p.deadline_ms {
                    expired.push(*seq);
                    continue;
                }
                if let Some(item) = &p.item {
                    if item.expires.saturating_sub(FRESH_BEFORE_MS) <= now_ms {
                        p.item = None;
                        p.status = Status::Queued;
                        p.next_ms = now_ms;
                    } else if now_ms >= p.reput_ms {
                        p.reput_ms = now_ms + REPUT_MS;
                        actions.push(Action::Reput {
                            to: *to,
                            seq: *seq,
                            record: item.clone(),
                        });
                    }
                }
                if now_ms >= p.next_ms {
                    seqs.push(*seq);
                }
            }
            for seq in expired {
                if let Some(p) = peer.out.pending.remove(&seq)
                    && let Body::Text { nonce, .. } = p.body
                {
                    actions.push(Action::Status {
                        id: crate::message_id(&self.me, &nonce),
                        to: *to,
                        status: Status::Expired,
                    });
                }
                self.dirty.insert(*to);
            }
            if !seqs.is_empty() {
                due.push((*to, seqs));
            }
        }
        for (to, seqs) in due {
            self.attempt(to, &seqs, now_ms, false, &mut actions);
        }
        actions
    }

    /// `to` was seen online again (its presence, or its node's announcement): every message
    /// still unacknowledged goes to its node directly now, whatever it waited for — the
    /// acknowledgement of an earlier direct delivery, or the recipient's next mailbox read.
    /// Items already in the mailbox stay there (a failed direct attempt does not store them
    /// again); the recipient shows each message once however many copies arrive.
    pub fn peer_online(&mut self, to: [u8; 32], now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(peer) = self.peers.get(&to) else {
            return actions;
        };
        let seqs: Vec<u64> = peer.out.pending.keys().copied().collect();
        if !seqs.is_empty() {
            self.attempt(to, &seqs, now_ms, true, &mut actions);
        }
        actions
    }

    /// The node started again with this engine restored: attempts whose outcome it waited for
    /// when it stopped will never report, so the messages they carried are due now rather than
    /// after [`OUTCOME_WAIT_MS`].
    pub fn resume(&mut self, now_ms: u64) {
        for (to, peer) in &mut self.peers {
            let mut changed = false;
            for p in peer.out.pending.values_mut() {
                if p.status == Status::Queued && p.attempts > 0 && p.next_ms > now_ms {
                    p.next_ms = now_ms;
                    changed = true;
                }
            }
            if changed {
                self.dirty.insert(*to);
            }
        }
    }

    /// Whether messages to `to` wait for their acknowledgement.
    pub fn has_pending(&self, to: &[u8; 32]) -> bool {
        self.peers
            .get(to)
            .is_some_and(|p| !p.out.pending.is_empty())
    }

    /// The accounts messages of this account wait for.
    pub fn pending_peers(&self) -> Vec<[u8; 32]> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.out.pending.is_empty())
            .map(|(to, _)| *to)
            .collect()
    }

    /// Encrypts and sends the pending messages `seqs` to `to` (or fetches its bundle first);
    /// `direct`: straight to its node, whatever the status ([`Engine::peer_online`]).
    fn attempt(
        &mut self,
        to: [u8; 32],
        seqs: &[u64],
        now_ms: u64,
        direct: bool,
        actions: &mut Vec<Action>,
    ) {
        let Some(peer) = self.peers.get_mut(&to) else {
            return;
        };
        let established = peer.sessions.iter().any(|s| s.has_received_message());
        let stale = now_ms.saturating_sub(peer.bundle_ms) > BUNDLE_MAX_AGE_MS;
        if peer.bundle.is_none() || (!established && stale) {
            if peer.fetch_due(now_ms) {
                actions.push(Action::FetchBundle { peer: to });
            }
            if peer.bundle.is_none() {
                for seq in seqs {
                    if let Some(p) = peer.out.pending.get_mut(seq) {
                        p.next_ms = now_ms + FETCH_RETRY_MS;
                    }
                }
                return;
            }
        }
        for &seq in seqs {
            let Some(peer) = self.peers.get(&to) else {
                return;
            };
            let Some(p) = peer.out.pending.get(&seq) else {
                continue;
            };
            let payload = Payload {
                from: self.me,
                to,
                seq,
                floor: peer.out.floor(),
                sent_ms: p.sent_ms,
                body: p.body.clone(),
            };
            let mailbox = !direct && p.status == Status::Sent;
            let direct_only = direct && p.item.is_some();
            let expires_ms = p.deadline_ms.min(now_ms + ITEM_LIFE_MS);
            let Some(value) = self.encrypt(&to, &payload) else {
                return;
            };
            let Some(p) = self
                .peers
                .get_mut(&to)
                .and_then(|x| x.out.pending.get_mut(&seq))
            else {
                continue;
            };
            p.attempts = p.attempts.saturating_add(1);
            p.next_ms = now_ms + OUTCOME_WAIT_MS;
            actions.push(Action::Send(Outgoing {
                to,
                seq,
                value,
                mailbox,
                direct_only,
                expires_ms,
            }));
        }
        self.dirty.insert(to);
    }

    /// Seals `payload` for `to` through its Olm session (made from its bundle if needed).
    pub(crate) fn encrypt(&mut self, to: &[u8; 32], payload: &Payload) -> Option<Vec<u8>> {
        let peer = self.peers.get_mut(to)?;
        let bundle = peer.bundle.clone()?;
        let pick = peer
            .sessions
            .iter()
            .position(|s| s.has_received_message())
            .or_else(|| {
                (!peer.sessions.is_empty() && peer.session_fallback == bundle.fallback).then_some(0)
            });
        let i = match pick {
            Some(i) => i,
            None => {
                let s = self
                    .keys
                    .olm()
                    .create_outbound_session(
                        SessionConfig::version_1(),
                        Curve25519PublicKey::from_bytes(bundle.olm_curve25519),
                        Curve25519PublicKey::from_bytes(bundle.fallback),
                    )
                    .ok()?;
                peer.sessions.insert(0, s);
                peer.sessions.truncate(MAX_SESSIONS);
                peer.session_fallback = bundle.fallback;
                0
            }
        };
        let msg = peer.sessions[i].encrypt(payload.encode()).ok()?;
        let (olm_type, olm) = msg.to_parts();
        let inner = Inner {
            sender: self.me,
            olm_type: olm_type as u8,
            olm,
        };
        self.dirty.insert(*to);
        seal(&inner, &bundle.seal, to).ok()
    }

    /// `peer`'s bundle arrived (`None`: it has none, or it did not verify).
    ///
    /// A peer not known yet is only taken on if items wait for it, and kept only if one of
    /// them made a session with that bundle (the sender proved it holds the bundle's keys).
    pub fn bundle_fetched(
        &mut self,
        peer: [u8; 32],
        bundle: Option<Bundle>,
        now_ms: u64,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let bundle = bundle.filter(|b| b.account == peer);
        self.unbundled.fetched(&peer, bundle.is_some(), now_ms);
        let Some(b) = bundle else {
            return actions;
        };
        let known = self.peers.contains_key(&peer);
        let waiting = self.unbundled.take(&peer);
        if !known {
            if waiting.is_empty() {
                // Nobody here waits for it (given up, or never asked): no state.
                return actions;
            }
            if self.peers.len() >= crate::MAX_PEERS {
                self.count_n(Dropped::HeldFull, waiting.len());
                return actions;
            }
        }
        let p = self.peers.entry(peer).or_insert_with(Peer::new);
        p.bundle = Some(b);
        p.bundle_ms = now_ms;
        let seqs: Vec<u64> = p
            .out
            .pending
            .iter()
            .filter(|(_, x)| x.status == Status::Queued)
            .map(|(s, _)| *s)
            .collect();
        self.dirty.insert(peer);
        if !waiting.is_empty() {
            actions.extend(self.receive(waiting, now_ms));
        }
        if !seqs.is_empty() {
            self.attempt(peer, &seqs, now_ms, false, &mut actions);
        }
        if !known
            && self
                .peers
                .get(&peer)
                .is_some_and(|p| p.sessions.is_empty() && p.out.pending.is_empty())
        {
            // None of the items came from the bundle's owner: forget the peer again.
            self.peers.remove(&peer);
            self.dirty.remove(&peer);
        }
        actions
    }

    /// Takes `peer`'s bundle as if a fetch had brought it, without anything waiting for it
    /// (tests that play a sender by hand).
    #[cfg(test)]
    pub(crate) fn learn_bundle(&mut self, peer: [u8; 32], bundle: Bundle, now_ms: u64) {
        let p = self.peers.entry(peer).or_insert_with(Peer::new);
        p.bundle = Some(bundle);
        p.bundle_ms = now_ms;
    }

    /// Starts the due fetches of waiting senders' bundles, within the bound of fetches.
    pub(crate) fn start_fetches(&mut self, now_ms: u64, actions: &mut Vec<Action>) {
        for peer in self.unbundled.due_fetches(now_ms) {
            actions.push(Action::FetchBundle { peer });
        }
    }

    /// How the attempt to send `seq` to `to` went.
    pub fn outcome(&mut self, to: [u8; 32], seq: u64, d: Delivery, now_ms: u64) -> Vec<Action> {
        let me = self.me;
        let Some(p) = self
            .peers
            .get_mut(&to)
            .and_then(|x| x.out.pending.get_mut(&seq))
        else {
            return Vec::new();
        };
        let status = match d {
            Delivery::Direct | Delivery::Failed { .. } if p.item.is_some() => {
                // A direct attempt for an item already in the mailbox ([`Engine::peer_online`]):
                // the item stays, refreshed as before; the acknowledgement ends both.
                let item_ms = p
                    .item
                    .as_ref()
                    .map_or(u64::MAX, |i| i.expires.saturating_sub(FRESH_BEFORE_MS));
                p.next_ms = p.deadline_ms.min(item_ms);
                Status::Stored
            }
            Delivery::Direct => {
                p.next_ms = now_ms + DIRECT_ACK_WAIT_MS;
                Status::Sent
            }
            Delivery::Stored(record) => {
                p.next_ms = p
                    .deadline_ms
                    .min(record.expires.saturating_sub(FRESH_BEFORE_MS));
                p.reput_ms = now_ms + REPUT_MS;
                p.item = Some(record);
                Status::Stored
            }
            Delivery::Failed { retry_ms } => {
                p.next_ms = now_ms + retry_ms.max(1000);
                if p.status == Status::Sent {
                    Status::Sent
                } else {
                    Status::Queued
                }
            }
        };
        self.dirty.insert(to);
        let changed = p.status != status;
        p.status = status;
        match (&p.body, changed) {
            (Body::Text { nonce, .. }, true) => vec![Action::Status {
                id: crate::message_id(&me, nonce),
                to,
                status,
            }],
            _ => Vec::new(),
        }
    }

    /// A re-put of the item of `seq` was refused: the recipient removed it. If the message is
    /// still unacknowledged, a fresh item follows.
    pub fn item_removed(&mut self, to: [u8; 32], seq: u64, now_ms: u64) {
        if let Some(p) = self
            .peers
            .get_mut(&to)
            .and_then(|x| x.out.pending.get_mut(&seq))
        {
            p.item = None;
            p.reput_ms = u64::MAX;
            p.status = Status::Queued;
            p.next_ms = now_ms + DIRECT_ACK_WAIT_MS;
            self.dirty.insert(to);
        }
    }

    pub(crate) fn count(&mut self, d: Dropped) {
        self.count_n(d, 1);
    }

    pub(crate) fn count_n(&mut self, d: Dropped, n: usize) {
        if n > 0 {
            *self.drops.entry(d).or_insert(0) += n as u64;
        }
    }
}
