//! Who a web client is, and what it may do.
//!
//! On a loopback address anyone who can connect may read (public rooms, the user list, the
//! ring's status, `/metrics`): the same people can read the ring's traffic anyway. Sending
//! speaks for an account, so it needs a *session*. A browser gets one from the link
//! `chatctl web` prints (`GetWebLink`): `http://ADDR/#login=TICKET`, a ticket valid for two
//! minutes and bound to the caller's account exactly as the control socket knows it (the
//! operator, a local Unix user, or the token's holder). The ticket travels in the fragment (no
//! server or proxy log sees it); the page trades it over `/ws` for a session (7 days), which it
//! keeps in its origin's `localStorage` and presents as the first WebSocket frame. No cookie
//! is used: a cookie for `127.0.0.1` would go to every port of the host, i.e. to any other local
//! user's server the browser visits. On any other address `/ws` needs a session (or the bearer
//! token) and `/metrics` the bearer token of `control.token_file`.
//!
//! A ticket works once: the first session made from it spends it (this process remembers
//! spent tickets until they expire), so a login link that leaked after use — or one an
//! attacker used himself before planting it — logs nobody in.
//!
//! Tickets and sessions are `kind.who.expiry.mac`; the MAC is a keyed BLAKE3 hash under a key
//! derived from a 32-byte secret in the data directory (`web.key`, mode 0600), the web view's
//! address and the bearer token: nothing to store, they survive a restart, a session of one
//! chatd is worthless at another, and rotating the token or deleting `web.key` ends them all.
//! MACs are compared through `blake3::Hash`'s constant-time equality.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;
use zeroize::Zeroizing;

use crate::chat::ratelimit::{Keyed, Rate};
use crate::config::Token;
use crate::people::Who;
use crate::records::unix_ms;

/// How long a login link works.
pub const TICKET_TTL: Duration = Duration::from_secs(120);
/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed token or session checks allowed per address: a burst, then one per 10 s.
const FAILURE_BURST: f64 = 10.0;
const FAILURE_REFILL: Duration = Duration::from_secs(10);
/// Spent tickets remembered at most (each only until it expires); past that, no ticket is
/// accepted until some expire.
const MAX_SPENT: usize = 65_536;

/// The web view's keys and rules.
pub struct Auth {
    key: Zeroizing<[u8; 32]>,
    token: Option<Token>,
    /// Reading needs a session or the token too (the web view is not on loopback).
    pub closed: bool,
    failures: Keyed<IpAddr>,
    /// Tickets already traded for a session (their hash), with their expiry.
    spent: Mutex<HashMap<blake3::Hash, u64>>,
}

/// What a request proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// Nothing: it may read only where reading is open.
    None,
    /// A session of this account: it may read and send as the account.
    Session(Who),
    /// The bearer token: it may read and send as the token's holder.
    Token,
    /// A session of ours that has expired: as `None`, and the page is told.
    Expired,
    /// A wrong token, or a session or ticket that is not ours.
    Wrong,
}

impl Auth {
    /// Loads (or creates) `web.key` in `data_dir`, for the web view on `addr`.
    pub fn open(
        data_dir: &Path,
        addr: SocketAddr,
        token: Option<Token>,
        closed: bool,
    ) -> std::io::Result<Auth> {
        let path = data_dir.join("web.key");
        let secret = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut k = Zeroizing::new([0u8; 32]);
                k.copy_from_slice(&bytes);
                k
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a 32-byte key; remove it to make a new one (open web sessions end)",
                        path.display()
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = Zeroizing::new([0u8; 32]);
                getrandom::fill(&mut k[..]).map_err(std::io::Error::other)?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                f.write_all(&k[..])?;
                f.sync_all()?;
                k
            }
            Err(e) => return Err(e),
        };
        let mut h = blake3::Hasher::new_keyed(&secret);
        h.update(b"chatd web session key\0");
        h.update(addr.to_string().as_bytes());
        h.update(b"\0");
        if let Some(t) = &token {
            h.update(t.0.as_bytes());
        }
        let key = Zeroizing::new(*h.finalize().as_bytes());
        let rate = Rate {
            per_second: 1.0 / FAILURE_REFILL.as_secs_f64(),
            burst: FAILURE_BURST,
        };
        Ok(Auth {
            key,
            token,
            closed,
            failures: Keyed::new(rate, 1024),
            spent: Mutex::new(HashMap::new()),
        })
    }

    /// A login ticket for `who`, and when it expires (Unix milliseconds).
    pub fn ticket(&self, who: Who) -> (String, u64) {
        let exp = unix_ms() + TICKET_TTL.as_millis() as u64;
        (self.sign("login", who, exp), exp)
    }

    /// A session for the account of a valid ticket not used before (a spent one is
    /// `Expired`: the page is told to ask for a new link).
    pub fn session_from_ticket(&self, ticket: &str) -> Result<(Who, String), Proof> {
        let (who, ticket_exp) = self.verify_until("login", ticket)?;
        if !self.spend(ticket, ticket_exp) {
            return Err(Proof::Expired);
        }
        let exp = unix_ms() + SESSION_TTL.as_millis() as u64;
        Ok((who, self.sign("session", who, exp)))
    }

    /// What a session string proves.
    pub fn session(&self, s: &str) -> Proof {
        match self.verify("session", s) {
            Ok(who) => Proof::Session(who),
            Err(p) => p,
        }
    }

    /// What the request's `Authorization: Bearer` header proves (`None` without one).
    pub fn bearer(&self, headers: &HeaderMap) -> Proof {
        let Some(given) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Proof::None;
        };
        let ok = self
            .token
            .as_ref()
            .is_some_and(|t| blake3::hash(t.0.as_bytes()) == blake3::hash(given.as_bytes()));
        if ok { Proof::Token } else { Proof::Wrong }
    }

    /// Whether `from` may try again (too many wrong tokens or sessions lock it out a while).
    pub fn may_try(&self, from: IpAddr) -> bool {
        self.failures.allows(&from)
    }

    /// Counts a wrong proof from `from`.
    pub fn failed(&self, from: IpAddr) {
        let _ = self.failures.take(&from);
    }

    fn sign(&self, kind: &str, who: Who, exp: u64) -> String {
        let body = format!("{kind}.{}.{exp}", who_str(who));
        let mac = blake3::keyed_hash(&self.key, body.as_bytes());
        format!("{body}.{}", mac.to_hex())
    }

    /// Marks `ticket` (valid until `exp`) spent; false if it was already, or if too many
    /// unexpired tickets are spent to remember one more.
    fn spend(&self, ticket: &str, exp: u64) -> bool {
        let now = unix_ms();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.retain(|_, e| *e >= now);
        if spent.len() >= MAX_SPENT {
            return false;
        }
        spent.insert(blake3::hash(ticket.as_bytes()), exp).is_none()
    }

    /// The account of a valid token of `kind`; `Expired` for one of ours past its expiry,
    /// `Wrong` for anything else.
    fn verify(&self, kind: &str, s: &str) -> Result<Who, Proof> {
        self.verify_until(kind, s).map(|(who, _)| who)
    }

    /// [`Auth::verify`], with the token's expiry.
    fn verify_until(&self, kind: &str, s: &str) -> Result<(Who, u64), Proof> {
        let (body, mac) = s.rsplit_once('.').ok_or(Proof::Wrong)?;
        let mac = blake3::Hash::from_hex(mac).map_err(|_| Proof::Wrong)?;
        if blake3::keyed_hash(&self.key, body.as_bytes()) != mac {
            return Err(Proof::Wrong);
        }
        let mut parts = body.split('.');
        let (k, who, exp) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(k), Some(w), Some(e), None) => (k, w, e),
            _ => return Err(Proof::Wrong),
        };
        let who = parse_who(who).ok_or(Proof::Wrong)?;
        let exp: u64 = exp.parse().map_err(|_| Proof::Wrong)?;
        if k != kind {
            return Err(Proof::Wrong);
        }
        if exp < unix_ms() {
            return Err(Proof::Expired);
        }
        Ok((who, exp))
    }
}

fn who_str(who: Who) -> String {
    match who {
        Who::Operator => "op".into(),
        Who::Unix(uid) => format!("u{uid}"),
        Who::Token => "tok".into(),
    }
}

fn parse_who(s: &str) -> Option<Who> {
    match s {
        "op" => Some(Who::Operator),
        "tok" => Some(Who::Token),
        _ => s.strip_prefix('u')?.parse().ok().map(Who::Unix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn addr() -> SocketAddr {
        "127.0.0.1:7480".parse().expect("addr")
    }

    fn auth(dir: &Path) -> Auth {
        Auth::open(
            dir,
            addr(),
            Some(Token(Zeroizing::new("s3cret".into()))),
            false,
        )
        .expect("auth")
    }

    #[test]
    fn a_ticket_becomes_a_session_for_the_same_account_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let (ticket, _) = a.ticket(Who::Unix(1001));
        let (who, session) = a.session_from_ticket(&ticket).expect("session");
        assert_eq!(who, Who::Unix(1001));
        assert_eq!(a.session(&session), Proof::Session(Who::Unix(1001)));
        // The key is kept: a new process accepts the same session.
        let b = auth(dir.path());
        assert_eq!(b.session(&session), Proof::Session(Who::Unix(1001)));
        // A session is not a ticket, nor the other way round.
        assert_eq!(a.session_from_ticket(&session).err(), Some(Proof::Wrong));
        assert_eq!(a.session(&ticket), Proof::Wrong);
    }

    #[test]
    fn a_ticket_works_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let (ticket, _) = a.ticket(Who::Operator);
        let (who, _) = a.session_from_ticket(&ticket).expect("first use");
        assert_eq!(who, Who::Operator);
        assert_eq!(
            a.session_from_ticket(&ticket).err(),
            Some(Proof::Expired),
            "a second use"
        );
        // Another account's ticket is another ticket.
        let (other, _) = a.ticket(Who::Unix(1001));
        assert!(a.session_from_ticket(&other).is_ok());
        // A wrong ticket spends nothing and stays wrong.
        let forged = other.replacen(".u1001.", ".op.", 1);
        assert_eq!(a.session_from_ticket(&forged).err(), Some(Proof::Wrong));
        // Expired tickets are forgotten: the memory holds unexpired ones only.
        a.spent
            .lock()
            .expect("lock")
            .insert(blake3::hash(b"old"), unix_ms() - 1);
        let (third, _) = a.ticket(Who::Token);
        assert!(a.session_from_ticket(&third).is_ok());
        assert_eq!(a.spent.lock().expect("lock").len(), 3);
    }

    #[test]
    fn forged_changed_foreign_or_expired_sessions_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let (t, _) = a.ticket(Who::Unix(1001));
        let (_, s) = a.session_from_ticket(&t).expect("session");
        let raised = s.replacen(".u1001.", ".op.", 1);
        assert_eq!(a.session(&raised), Proof::Wrong);
        // Another data directory, another address, another token: not ours.
        let other = tempfile::tempdir().expect("tmp");
        assert_eq!(auth(other.path()).session(&s), Proof::Wrong);
        let port = Auth::open(
            dir.path(),
            "127.0.0.1:7481".parse().expect("a"),
            Some(Token(Zeroizing::new("s3cret".into()))),
            false,
        )
        .expect("auth");
        assert_eq!(port.session(&s), Proof::Wrong);
        let rotated = Auth::open(
            dir.path(),
            addr(),
            Some(Token(Zeroizing::new("n3w-s3cret".into()))),
            false,
        )
        .expect("auth");
        assert_eq!(rotated.session(&s), Proof::Wrong);
        for junk in ["", "x", "session.op.1.zz", "....", "session.op.1.2.3"] {
            assert_eq!(a.session(junk), Proof::Wrong, "{junk:?}");
        }
        let old = a.sign("session", Who::Operator, unix_ms() - 1);
        assert_eq!(a.session(&old), Proof::Expired);
    }

    #[test]
    fn bearer_tokens_are_checked_and_failures_lock_an_address_out() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let ip: IpAddr = "10.0.0.9".parse().expect("ip");
        let mut h = HeaderMap::new();
        assert_eq!(a.bearer(&h), Proof::None);
        h.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(a.bearer(&h), Proof::Token);
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        for _ in 0..20 {
            assert_eq!(a.bearer(&h), Proof::Wrong);
            a.failed(ip);
        }
        assert!(!a.may_try(ip));
        assert!(a.may_try("10.0.0.10".parse().expect("ip")));
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("web.key"), b"short").expect("write");
        let err = Auth::open(dir.path(), addr(), None, false)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("32-byte"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("web.key")).expect("read"),
            b"short"
        );
    }
}
