//! The accounts a node hosts: who they belong to ([`Who`]), their keys (files of mode 0600
//! in the data directory, kept by the daemon), the nickname each wishes for and last held,
//! and each one's own state ([`Me`]).
//!
//! - the operator's account (`account.key`): the daemon's own Unix user on the control
//!   socket;
//! - one per other local Unix user that uses the control socket (`accounts/uid-N.key`),
//!   known from the socket's peer credentials; it wishes for its login name;
//! - one for the TCP token's holder (`accounts/token.key`): a guest, shown as `*nick`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use chat_people::Life;
use ed25519_dalek::SigningKey;
use tracing::warn;

use crate::chat::ratelimit::{Bucket, Rate};
use crate::client::ClientInfo;
use crate::identity::{Identity, IdentityError};
use crate::nickname::Nickname;
use crate::records::unix_ms;

/// Accounts one node hosts at most (the operator's included).
pub const MAX_HOSTED: usize = 256;

/// Name and presence changes an account may make: per second, and in a burst.
pub const CHANGES: Rate = Rate {
    per_second: 0.2,
    burst: 10.0,
};

/// Whose account a control client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Who {
    /// The daemon's own Unix user: the node's operator.
    Operator,
    /// Another local Unix user, by uid.
    Unix(u32),
    /// The holder of the TCP token: a guest.
    Token,
}

impl Who {
    /// The account of a control client; `own_uid` is the daemon's user.
    pub fn of(client: Option<&ClientInfo>, own_uid: u32) -> Who {
        match client {
            Some(ClientInfo::Unix { uid, .. }) if *uid != own_uid => Who::Unix(*uid),
            Some(ClientInfo::Tcp { .. }) => Who::Token,
            _ => Who::Operator,
        }
    }

    /// The key file's name, relative to the data directory.
    fn key_file(self) -> String {
        match self {
            Who::Operator => "account.key".into(),
            Who::Unix(uid) => format!("accounts/uid-{uid}.key"),
            Who::Token => "accounts/token.key".into(),
        }
    }
}

/// An account's own state.
#[derive(Debug)]
pub struct Me {
    /// Its name, presence and the decisions about them (claims, auto-away, announcements),
    /// made by the sans-IO [`Life`].
    pub life: Life,
    /// Name and presence changes.
    pub changes: Bucket,
}

/// One hosted account.
#[derive(Debug)]
pub struct Hosted {
    /// Whose it is.
    pub who: Who,
    /// Its signing key.
    pub key: SigningKey,
    /// Its public key.
    pub account: [u8; 32],
    /// A guest (shown as `*nick`).
    pub guest: bool,
    /// The nickname wished for.
    pub wish: Nickname,
    nick_file: PathBuf,
    me: Mutex<Me>,
}

impl Hosted {
    /// Loads or creates `who`'s key in `data_dir`.
    pub fn open(data_dir: &Path, who: Who, wish: Nickname) -> Result<Hosted, IdentityError> {
        let file = who.key_file();
        let path = data_dir.join(&file);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
                path: dir.into(),
                source,
            })?;
        }
        let (identity, _) = Identity::load_or_create_file(data_dir, &file)?;
        let key = identity.signing_key().clone();
        Ok(Hosted {
            who,
            account: key.verifying_key().to_bytes(),
            key,
            guest: who == Who::Token,
            wish,
            nick_file: path.with_extension("nick"),
            me: Mutex::new(Me {
                life: Life::new(unix_ms()),
                changes: Bucket::full(CHANGES, Instant::now()),
            }),
        })
    }

    /// Its state.
    pub fn me(&self) -> MutexGuard<'_, Me> {
        self.me.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The nickname held before a restart, if the wish is still the one it came from.
    pub fn remembered_nick(&self) -> Option<Nickname> {
        let text = std::fs::read_to_string(&self.nick_file).ok()?;
        let mut lines = text.lines();
        let (wish, held) = (lines.next()?, lines.next()?);
        if wish != self.wish.as_str() {
            return None;
        }
        held.parse().ok()
    }

    /// Remembers the nickname held now, so that a restart keeps it.
    pub fn remember_nick(&self, held: &str) {
        let tmp = self.nick_file.with_extension("nick.tmp");
        let result = std::fs::write(&tmp, format!("{}\n{held}\n", self.wish))
            .and_then(|()| std::fs::rename(&tmp, &self.nick_file));
        if let Err(e) = result {
            warn!(error = %e, file = %self.nick_file.display(), "could not remember the nickname");
        }
    }
}

/// The login name of `uid` from `/etc/passwd`, as a nickname if it is a valid one; else
/// `user` and the uid.
pub fn login_name(uid: u32) -> Nickname {
    let fallback = || {
        format!("user{uid}")
            .parse()
            .unwrap_or_else(|_| Nickname::user())
    };
    let Ok(passwd) = std::fs::read_to_string("/etc/passwd") else {
        return fallback();
    };
    passwd
        .lines()
        .find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.parse::<Nickname>().ok()).flatten()
        })
        .unwrap_or_else(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn clients_map_to_accounts() {
        let unix = |uid| ClientInfo::Unix {
            uid,
            admitted: true,
        };
        assert_eq!(Who::of(Some(&unix(1000)), 1000), Who::Operator);
        assert_eq!(Who::of(Some(&unix(0)), 1000), Who::Unix(0));
        let tcp = ClientInfo::Tcp {
            addr: "127.0.0.1:1".parse().expect("addr"),
        };
        assert_eq!(Who::of(Some(&tcp), 1000), Who::Token);
        assert_eq!(Who::of(None, 1000), Who::Operator);
    }

    #[test]
    fn keys_are_private_and_names_remembered_per_wish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h =
            Hosted::open(dir.path(), Who::Unix(42), "bob".parse().expect("nick")).expect("opens");
        let mode = std::fs::metadata(dir.path().join("accounts/uid-42.key"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(h.remembered_nick(), None);
        h.remember_nick("bob1234");
        assert_eq!(
            h.remembered_nick().map(|n| n.to_string()),
            Some("bob1234".into())
        );
        // The same key again; a new wish starts over.
        let again = Hosted::open(dir.path(), Who::Unix(42), "robert".parse().expect("nick"))
            .expect("opens");
        assert_eq!(again.account, h.account);
        assert_eq!(again.remembered_nick(), None);
        let guest =
            Hosted::open(dir.path(), Who::Token, "guest".parse().expect("nick")).expect("opens");
        assert!(guest.guest && guest.account != h.account);
        assert_eq!(login_name(0).as_str(), "root");
    }
}
