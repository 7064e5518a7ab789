//! People events on the wire: what an account says about itself (its signed [`Profile`]:
//! nickname with the claim that proves it, presence, away message) and what a node reports
//! about a neighbour it saw die ([`Event::NodeDown`]).
//!
//! An event travels as the body of a chat envelope of kind `People`, so it is signed by the
//! node that sends it, numbered, broadcast, repaired by anti-entropy and stored like any
//! message. A profile is signed again by the account's own key and names the node that hosts
//! the account: a receiver accepts it only from that node, only with a nickname claim record
//! signed by the same account for that very name, and only if its version is newer than the
//! one it holds. So no node can show another account's name, or its own under another's.

use chat_overlay::records::{Kind as RecordKind, Record};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::nickname::Nickname;

/// Longest away message, in bytes of UTF-8.
pub const MAX_AWAY_BYTES: usize = 200;

/// An account's presence (defined with the account's life in `chat_people::life`; its
/// serialised form is part of the profile).
pub use chat_people::life::Presence;

/// What an account says about itself; signed by the account's key ([`SignedProfile`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The account's ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub account: [u8; 32],
    /// The node that hosts it (and must be the one sending this).
    #[serde(with = "serde_bytes")]
    pub node: [u8; 32],
    /// The nickname, as the person wrote it.
    pub nick: String,
    /// The account's claim record of the nickname (kind `Nick`, key the lower-case name).
    pub claim: Record,
    /// A guest of another node's API (shown as `*nick`).
    pub guest: bool,
    /// Presence.
    pub presence: Presence,
    /// Away message (empty when none).
    pub away: String,
    /// Since when the presence holds (Unix milliseconds).
    pub since_ms: u64,
    /// Increases with every profile the account signs (Unix milliseconds, made monotonic).
    pub version: u64,
}

/// A profile and the account's signature over its CBOR bytes (behind the context
/// [`crate::sigctx::PROFILE`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedProfile {
    /// The CBOR encoding of a [`Profile`].
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// The account's ed25519 signature over `bytes`.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

/// A people event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// An account's new profile.
    Profile(SignedProfile),
    /// The sending node saw this node die (its predecessor vanished without leaving): every
    /// account it hosted is offline until it says otherwise.
    NodeDown(#[serde(with = "serde_bytes")] [u8; 32]),
    /// The events of one presence epoch (`chat_people::epoch`), gathered and broadcast by the epoch's
    /// holder: each item is a mailbox record signed by the node that published it, whose
    /// value is one of the events above.
    Batch(Vec<Record>),
}

/// Why an event is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not a well-formed event.
    #[error("malformed people event: {0}")]
    Malformed(&'static str),
    /// The account's signature does not verify.
    #[error("the profile's signature does not verify with its account key")]
    BadSignature,
    /// Sent by another node than the one the profile names.
    #[error("a profile sent by a node other than the one hosting the account")]
    WrongNode,
    /// The claim does not prove the nickname.
    #[error("the nickname claim does not prove the name: {0}")]
    BadClaim(&'static str),
}

impl Event {
    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = ciborium::into_writer(self, &mut out);
        out
    }

    /// Reads an event (not yet verified).
    pub fn decode(bytes: &[u8]) -> Result<Event, EventError> {
        ciborium::from_reader(bytes).map_err(|_| EventError::Malformed("not a people event"))
    }
}

/// The nickname's form in claims: lower case (names are unique regardless of case).
pub use chat_people::life::normalise;

impl Profile {
    /// Signs the profile with the account's key.
    pub fn sign(&self, key: &SigningKey) -> SignedProfile {
        let mut bytes = Vec::new();
        let _ = ciborium::into_writer(self, &mut bytes);
        let sig = key
            .sign(&crate::sigctx::with(crate::sigctx::PROFILE, &bytes))
            .to_bytes()
            .to_vec();
        SignedProfile { bytes, sig }
    }
}

impl SignedProfile {
    /// Decodes and checks the profile as sent by node `from`: the account's signature, the
    /// hosting node, the nickname's rules and the claim that proves it, the away message.
    pub fn open(&self, from: &[u8; 32]) -> Result<Profile, EventError> {
        let p: Profile = ciborium::from_reader(self.bytes.as_slice())
            .map_err(|_| EventError::Malformed("not a profile"))?;
        if &p.node != from {
            return Err(EventError::WrongNode);
        }
        let key = VerifyingKey::from_bytes(&p.account)
            .map_err(|_| EventError::Malformed("account is not a key"))?;
        let sig: [u8; 64] = self
            .sig
            .as_slice()
            .try_into()
            .map_err(|_| EventError::Malformed("signature is not 64 bytes"))?;
        let signed = crate::sigctx::with(crate::sigctx::PROFILE, &self.bytes);
        key.verify_strict(&signed, &Signature::from_bytes(&sig))
            .map_err(|_| EventError::BadSignature)?;
        let bare = p
            .nick
            .strip_prefix('*')
            .filter(|_| p.guest)
            .unwrap_or(&p.nick);
        bare.parse::<Nickname>()
            .map_err(|_| EventError::Malformed("invalid nickname"))?;
        if p.away.len() > MAX_AWAY_BYTES || p.away.chars().any(char::is_control) {
            return Err(EventError::Malformed(
                "away message too long or with control characters",
            ));
        }
        let c = &p.claim;
        if c.kind != RecordKind::Nick as u8 {
            return Err(EventError::BadClaim("not a nickname claim"));
        }
        if c.owner != p.account {
            return Err(EventError::BadClaim("claimed by another key"));
        }
        if c.key != normalise(&p.nick).into_bytes() {
            return Err(EventError::BadClaim("claims another name"));
        }
        if !c.verify() {
            return Err(EventError::BadClaim("bad signature"));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::records::Value;

    fn account() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn profile(nick: &str) -> Profile {
        let key = account();
        let claim = Record::sign(
            RecordKind::Nick,
            normalise(nick).into_bytes(),
            Value::Data(nick.as_bytes().to_vec()),
            &key,
            1,
            1,
            u64::MAX / 2,
        );
        Profile {
            account: key.verifying_key().to_bytes(),
            node: [1; 32],
            nick: nick.into(),
            claim,
            guest: false,
            presence: Presence::Online,
            away: String::new(),
            since_ms: 5,
            version: 7,
        }
    }

    #[test]
    fn a_signed_profile_opens_from_its_node_only() {
        let p = profile("Alice");
        let signed = p.sign(&account());
        assert_eq!(signed.open(&[1; 32]), Ok(p));
        assert_eq!(signed.open(&[2; 32]), Err(EventError::WrongNode));
        let round = Event::decode(&Event::Profile(signed.clone()).encode()).expect("decodes");
        assert_eq!(round, Event::Profile(signed));
    }

    #[test]
    fn a_profile_signed_without_its_context_is_refused() {
        let p = profile("alice");
        let mut signed = p.sign(&account());
        signed.sig = account().sign(&signed.bytes).to_bytes().to_vec();
        assert_eq!(signed.open(&[1; 32]), Err(EventError::BadSignature));
    }

    #[test]
    fn forged_names_and_signatures_are_refused() {
        // Another account's key signing the profile.
        let p = profile("alice");
        let forged = p.sign(&SigningKey::from_bytes(&[3; 32]));
        assert_eq!(forged.open(&[1; 32]), Err(EventError::BadSignature));
        // A claim of another name.
        let mut q = profile("alice");
        q.nick = "bob".into();
        assert!(matches!(
            q.sign(&account()).open(&[1; 32]),
            Err(EventError::BadClaim(_))
        ));
        // A claim by another key.
        let mut r = profile("alice");
        r.claim = Record::sign(
            RecordKind::Nick,
            b"alice".to_vec(),
            Value::Data(b"alice".to_vec()),
            &SigningKey::from_bytes(&[3; 32]),
            1,
            1,
            u64::MAX / 2,
        );
        assert!(matches!(
            r.sign(&account()).open(&[1; 32]),
            Err(EventError::BadClaim(_))
        ));
        // Reserved and invalid names, long away messages.
        for nick in ["*alice", "al ice", ""] {
            let mut p = profile("alice");
            p.nick = nick.into();
            p.claim = profile(nick).claim;
            assert!(p.sign(&account()).open(&[1; 32]).is_err(), "{nick:?}");
        }
        let mut long = profile("alice");
        long.away = "x".repeat(MAX_AWAY_BYTES + 1);
        assert!(long.sign(&account()).open(&[1; 32]).is_err());
        assert!(Event::decode(b"\xff\x00garbage").is_err());
    }
}

#[cfg(test)]
mod size {
    use super::*;
    use chat_overlay::records::Value;

    /// The simulator's presence scenario sizes its events after this (`EVENT_BYTES`).
    #[test]
    fn a_profile_event_is_about_the_size_the_simulator_uses() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let nick = "a-typical-name";
        let claim = Record::sign(
            RecordKind::Nick,
            normalise(nick).into_bytes(),
            Value::Data(nick.as_bytes().to_vec()),
            &key,
            1_800_000_000_000,
            1_800_000_000_000,
            1_802_592_000_000,
        );
        let p = Profile {
            account: key.verifying_key().to_bytes(),
            node: [1; 32],
            nick: nick.into(),
            claim,
            guest: false,
            presence: Presence::Away,
            away: "back at three".into(),
            since_ms: 1_800_000_000_000,
            version: 1_800_000_000_000,
        };
        let n = Event::Profile(p.sign(&key)).encode().len();
        assert!((440..=540).contains(&n), "a profile event is {n} bytes");
    }
}
