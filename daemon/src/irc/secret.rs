//! IRC passwords: one per local account, derived from a key of the node's (`irc.key` in the
//! data directory, 32 random bytes, mode 0600, made on first use).
//!
//! A password names its account and proves it: `op-MAC` for the operator's account,
//! `uidN-MAC` for local Unix user N's, where MAC is the first 128 bits of
//! `blake3::keyed_hash(irc.key, "chatd irc password " ‖ tag)` in hex. So the password tells
//! chatd whose account a client logs in to, the client cannot choose another, and nobody
//! without the key (the operator's data directory) can make one. `chatctl irc-password` prints
//! the caller's own (`NodeService.GetIrcPassword`); deleting `irc.key` and restarting chatd
//! changes every password.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::identity::{Identity, IdentityError};
use crate::people::Who;

/// The key file, relative to the data directory.
const KEY_FILE: &str = "irc.key";
/// What the MAC covers before the tag.
const CONTEXT: &[u8] = b"chatd irc password ";

/// The node's IRC password key.
pub struct Secret {
    key: [u8; 32],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Loads `irc.key` from `data_dir`, creating it (0600) if missing.
    pub fn open(data_dir: &Path) -> Result<Secret, IdentityError> {
        // The key file is an ed25519 seed file like the node's: the same careful creation
        // (0600, written atomically) and checks; only its 32 bytes are used here.
        let (id, _) = Identity::load_or_create_file(data_dir, KEY_FILE)?;
        Ok(Secret {
            key: id.signing_key().to_bytes(),
        })
    }

    /// A key for tests.
    #[cfg(test)]
    pub fn fixed(key: [u8; 32]) -> Secret {
        Secret { key }
    }

    /// The password of `who`'s account; `None` for the TCP guest (it logs in with the token).
    pub fn password(&self, who: Who) -> Option<String> {
        let tag = tag(who)?;
        Some(format!("{tag}-{}", self.mac(&tag)))
    }

    /// The account a password opens, if it is one of ours.
    pub fn check(&self, password: &str) -> Option<Who> {
        let (tag, mac) = password.trim().rsplit_once('-')?;
        let who = match tag {
            "op" => Who::Operator,
            t => Who::Unix(t.strip_prefix("uid")?.parse().ok()?),
        };
        if self::tag(who)? != tag {
            return None;
        }
        constant_time_eq(self.mac(tag).as_bytes(), mac.as_bytes()).then_some(who)
    }

    fn mac(&self, tag: &str) -> String {
        let mut input = CONTEXT.to_vec();
        input.extend_from_slice(tag.as_bytes());
        let h = blake3::keyed_hash(&self.key, &input);
        hex::encode(&h.as_bytes()[..16])
    }
}

/// What `NodeService.GetIrcPassword` and `GetStatus` need of the IRC front door: where it
/// listens, the passwords, and how many clients are connected. The node holds it; this file
/// depends on nothing else of the IRC service, so the gRPC code does not either.
pub struct IrcLink {
    /// Where the IRC listener listens.
    pub addr: SocketAddr,
    secret: Secret,
    clients: Arc<AtomicU64>,
}

impl std::fmt::Debug for IrcLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrcLink").field("addr", &self.addr).finish()
    }
}

impl crate::ops::IrcFront for IrcLink {
    fn password(&self, who: Who) -> Option<String> {
        IrcLink::password(self, who)
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl IrcLink {
    /// The link for a listener on `addr` counting its clients in `clients`.
    pub fn new(addr: SocketAddr, secret: Secret, clients: Arc<AtomicU64>) -> IrcLink {
        IrcLink {
            addr,
            secret,
            clients,
        }
    }

    /// The IRC password of `who`'s account (`None` for the TCP guest: it uses the token).
    pub fn password(&self, who: Who) -> Option<String> {
        self.secret.password(who)
    }

    /// IRC clients connected now.
    pub fn clients(&self) -> u64 {
        self.clients.load(Ordering::Relaxed)
    }
}

fn tag(who: Who) -> Option<String> {
    match who {
        Who::Operator => Some("op".into()),
        Who::Unix(uid) => Some(format!("uid{uid}")),
        Who::Token => None,
    }
}

/// Equality of secrets without an early exit.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_opens_its_own_account_only() {
        let s = Secret::fixed([7; 32]);
        let op = s.password(Who::Operator).expect("op");
        let bob = s.password(Who::Unix(1000)).expect("bob");
        assert!(
            op.starts_with("op-") && bob.starts_with("uid1000-"),
            "{op} {bob}"
        );
        assert_eq!(s.check(&op), Some(Who::Operator));
        assert_eq!(s.check(&bob), Some(Who::Unix(1000)));
        assert_eq!(s.password(Who::Token), None);
        // Another account's tag with this MAC, a changed digit, another key: refused.
        let (_, mac) = bob.split_once('-').expect("mac");
        assert_eq!(s.check(&format!("uid1001-{mac}")), None);
        assert_eq!(s.check(&format!("op-{mac}")), None);
        assert_eq!(s.check(&format!("uid01000-{mac}")), None);
        let mut wrong = bob.clone();
        wrong.pop();
        wrong.push(if bob.ends_with('0') { '1' } else { '0' });
        assert_eq!(s.check(&wrong), None);
        assert_eq!(Secret::fixed([8; 32]).check(&bob), None);
        for junk in ["", "-", "op", "op-", "uid-x", "token-abc"] {
            assert_eq!(s.check(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = Secret::open(dir.path()).expect("made");
        let b = Secret::open(dir.path()).expect("loaded");
        assert_eq!(a.password(Who::Operator), b.password(Who::Operator));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("file")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
