//! What of an engine is stored, and its restoration: the account's keys, groups, blocks and
//! waiting group messages in one record ([`StoredCore`]); per peer its bundle, Olm sessions and
//! both streams ([`StoredPeer`]). The driver writes what changed ([`Engine::take_dirty`])
//! in one transaction with the messages shown, before it acknowledges or removes anything.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use vodozemac::olm::{Session, SessionPickle};

use super::{Engine, Group, Peer};
use crate::bundle::Bundle;
use crate::group::SignedGroup;
use crate::keys::{Keys, StoredKeys};
use crate::payload::Payload;
use crate::stream::{InStream, OutStream};

/// The account-wide part.
#[derive(Serialize, Deserialize)]
pub struct StoredCore {
    keys: StoredKeys,
    groups: Vec<(SignedGroup, bool)>,
    blocked: Vec<serde_bytes::ByteArray<32>>,
    waiting: Vec<Payload>,
}

/// One peer's part.
#[derive(Serialize, Deserialize)]
pub struct StoredPeer {
    bundle: Option<Bundle>,
    bundle_ms: u64,
    sessions: Vec<SessionPickle>,
    #[serde(with = "serde_bytes")]
    session_fallback: [u8; 32],
    out: OutStream,
    inn: InStream,
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing CBOR into a Vec cannot fail.
    ciborium::into_writer(v, &mut out).expect("CBOR into a Vec");
    out
}

impl Engine {
    /// What changed since the last call: whether the core did, and which peers.
    pub fn take_dirty(&mut self) -> (bool, Vec<[u8; 32]>) {
        let core = std::mem::take(&mut self.core_dirty);
        (core, std::mem::take(&mut self.dirty).into_iter().collect())
    }

    /// The core, encoded.
    pub fn export_core(&self) -> Vec<u8> {
        cbor(&StoredCore {
            keys: self.keys.store(),
            groups: self
                .groups
                .values()
                .map(|g| (g.signed.clone(), g.left))
                .collect(),
            blocked: self
                .blocked
                .iter()
                .map(|b| serde_bytes::ByteArray::new(*b))
                .collect(),
            waiting: self.waiting.clone(),
        })
    }

    /// Peer `peer`, encoded (`None`: not known).
    pub fn export_peer(&self, peer: &[u8; 32]) -> Option<Vec<u8>> {
        let p = self.peers.get(peer)?;
        Some(cbor(&StoredPeer {
            bundle: p.bundle.clone(),
            bundle_ms: p.bundle_ms,
            sessions: p.sessions.iter().map(Session::pickle).collect(),
            session_fallback: p.session_fallback,
            out: p.out.clone(),
            inn: p.inn.clone(),
        }))
    }

    /// The engine stored before: `core` and the peers' parts. `None` if the core does not
    /// decode; a peer's part that does not decode is skipped (and reported in the count).
    pub fn restore(
        signer: SigningKey,
        ttl_ms: u64,
        core: &[u8],
        peers: Vec<([u8; 32], Vec<u8>)>,
    ) -> Option<(Engine, usize)> {
        let c: StoredCore = ciborium::from_reader(core).ok()?;
        let keys = Keys::restore(c.keys)?;
        let mut e = Engine::with_keys(signer, keys, ttl_ms);
        e.blocked = c.blocked.into_iter().map(|b| b.into_array()).collect();
        e.waiting = c.waiting;
        let mut groups = BTreeMap::new();
        for (signed, left) in c.groups {
            if let Some(state) = signed.open() {
                groups.insert(
                    state.id,
                    Group {
                        state,
                        signed,
                        left,
                    },
                );
            }
        }
        e.groups = groups;
        let mut bad = 0;
        for (key, bytes) in peers {
            let Ok(s) = ciborium::from_reader::<StoredPeer, _>(&bytes[..]) else {
                bad += 1;
                continue;
            };
            let mut p = Peer::new();
            p.bundle = s.bundle;
            p.bundle_ms = s.bundle_ms;
            p.sessions = s.sessions.into_iter().map(Session::from_pickle).collect();
            p.session_fallback = s.session_fallback;
            p.out = s.out;
            p.inn = s.inn;
            e.peers.insert(key, p);
        }
        e.core_dirty = false;
        Some((e, bad))
    }
}
