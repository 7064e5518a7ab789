//! Who a web client is, and what it may do.
//!
//! On a loopback address anyone who can connect may read (public rooms, the user list, the
//! ring's status, `/metrics`): the same people can read the ring's traffic anyway. Sending
//! speaks for an account, so it needs a *session*: a browser gets one by opening the link
//! `chatctl web` prints (`GetWebLink`), which carries a *ticket* valid for two minutes and bound
//! to the caller's account, exactly as the control socket knows it (the operator, a local Unix
//! user, or the token's holder). Opening it sets an HttpOnly, SameSite=Strict cookie holding
//! the session (30 days). On any other address every request but `/healthz` needs a session
//! or `Authorization: Bearer` with `control.token_file`'s token (Prometheus uses the latter).
//!
//! Tickets and sessions are `kind.who.expiry.mac`, the MAC a keyed BLAKE3 hash under a
//! 32-byte key kept in the data directory (`web.key`, mode 0600): nothing to store, and they
//! survive a restart. Comparing MACs goes through `blake3::Hash`'s constant-time equality.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use zeroize::Zeroizing;

use crate::chat::ratelimit::{Keyed, Rate};
use crate::config::Token;
use crate::people::Who;

/// How long a login link works.
pub const TICKET_TTL: Duration = Duration::from_secs(120);
/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "chatd_session";
/// Failed token checks allowed per address: a burst, then one per 10 s.
const FAILURE_BURST: f64 = 10.0;
const FAILURE_REFILL: Duration = Duration::from_secs(10);

/// The web view's keys and rules.
pub struct Auth {
    key: Zeroizing<[u8; 32]>,
    token: Option<Token>,
    /// Reading needs a session or the token too (the web view is not on loopback).
    pub closed: bool,
    failures: Keyed<IpAddr>,
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
    /// A wrong token or session was presented.
    Wrong,
}

impl Auth {
    /// Loads (or creates) `web.key` in `data_dir`.
    pub fn open(data_dir: &Path, token: Option<Token>, closed: bool) -> std::io::Result<Auth> {
        let path = data_dir.join("web.key");
        let key = match std::fs::read(&path) {
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
        let rate = Rate {
            per_second: 1.0 / FAILURE_REFILL.as_secs_f64(),
            burst: FAILURE_BURST,
        };
        Ok(Auth {
            key,
            token,
            closed,
            failures: Keyed::new(rate, 1024),
        })
    }

    /// A login ticket for `who` (the `ticket` query of `/login`).
    pub fn ticket(&self, who: Who) -> (String, u64) {
        let exp = unix_ms() + TICKET_TTL.as_millis() as u64;
        (self.sign("login", who, exp), exp)
    }

    /// A session for `who`, from a valid ticket.
    pub fn session_from_ticket(&self, ticket: &str) -> Option<String> {
        let who = self.verify("login", ticket)?;
        let exp = unix_ms() + SESSION_TTL.as_millis() as u64;
        Some(self.sign("session", who, exp))
    }

    /// What the request's cookie or `Authorization` header proves.
    pub fn proof(&self, headers: &HeaderMap) -> Proof {
        if let Some(given) = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            let ok = self
                .token
                .as_ref()
                .is_some_and(|t| blake3::hash(t.0.as_bytes()) == blake3::hash(given.as_bytes()));
            return if ok { Proof::Token } else { Proof::Wrong };
        }
        match cookie(headers, COOKIE) {
            None => Proof::None,
            Some(s) => match self.verify("session", s) {
                Some(who) => Proof::Session(who),
                None => Proof::Wrong,
            },
        }
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

    fn verify(&self, kind: &str, s: &str) -> Option<Who> {
        let (body, mac) = s.rsplit_once('.')?;
        let mac = blake3::Hash::from_hex(mac).ok()?;
        if blake3::keyed_hash(&self.key, body.as_bytes()) != mac {
            return None;
        }
        let mut parts = body.split('.');
        let (k, who, exp) = (parts.next()?, parts.next()?, parts.next()?);
        if k != kind || parts.next().is_some() || exp.parse::<u64>().ok()? < unix_ms() {
            return None;
        }
        parse_who(who)
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

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth(dir: &Path) -> Auth {
        Auth::open(dir, Some(Token(Zeroizing::new("s3cret".into()))), false).expect("auth")
    }

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("a=b; {COOKIE}={v}")).expect("hv"),
        );
        h
    }

    #[test]
    fn a_ticket_becomes_a_session_for_the_same_account_and_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let (ticket, _) = a.ticket(Who::Unix(1001));
        let session = a.session_from_ticket(&ticket).expect("session");
        assert_eq!(
            a.proof(&with_cookie(&session)),
            Proof::Session(Who::Unix(1001))
        );
        // The key is kept: a new process accepts the same session.
        let b = auth(dir.path());
        assert_eq!(
            b.proof(&with_cookie(&session)),
            Proof::Session(Who::Unix(1001))
        );
        // A session is not a ticket, nor the other way round.
        assert!(a.session_from_ticket(&session).is_none());
        assert_eq!(a.proof(&with_cookie(&ticket)), Proof::Wrong);
    }

    #[test]
    fn forged_changed_or_foreign_sessions_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let (t, _) = a.ticket(Who::Unix(1001));
        let s = a.session_from_ticket(&t).expect("session");
        let raised = s.replacen(".u1001.", ".op.", 1);
        assert_eq!(a.proof(&with_cookie(&raised)), Proof::Wrong);
        let other = tempfile::tempdir().expect("tmp");
        let b = auth(other.path());
        assert_eq!(b.proof(&with_cookie(&s)), Proof::Wrong);
        for junk in ["", "x", "session.op.1.zz", "...."] {
            assert_eq!(a.proof(&with_cookie(junk)), Proof::Wrong, "{junk:?}");
        }
        assert_eq!(a.proof(&HeaderMap::new()), Proof::None);
    }

    #[test]
    fn bearer_tokens_are_checked_and_failures_lock_an_address_out() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = auth(dir.path());
        let ip: IpAddr = "10.0.0.9".parse().expect("ip");
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer s3cret"));
        assert_eq!(a.proof(&h), Proof::Token);
        h.insert("authorization", HeaderValue::from_static("Bearer nope"));
        for _ in 0..20 {
            assert_eq!(a.proof(&h), Proof::Wrong);
            a.failed(ip);
        }
        assert!(!a.may_try(ip));
        assert!(a.may_try("10.0.0.10".parse().expect("ip")));
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("web.key"), b"short").expect("write");
        let err = Auth::open(dir.path(), None, false).err().expect("refused");
        assert!(err.to_string().contains("32-byte"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("web.key")).expect("read"),
            b"short"
        );
    }
}
