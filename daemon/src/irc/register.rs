//! Connection registration (RFC 1459/2812, Modern IRC): `CAP` negotiation (`CAP LS 302`,
//! `REQ`, `END`), `PASS`, `NICK`, `USER`, and SASL `PLAIN` (`AUTHENTICATE`), without I/O:
//! [`Registration::on`] takes one message and returns the replies and what comes next.
//!
//! Registration ends when NICK and USER have come and CAP negotiation (if begun) has ended.
//! Only then is the password looked at (SASL's, else PASS's): an account's IRC password, or
//! the TCP token as its guest. Without a valid one the client gets `464` and is closed —
//! an IRC client always acts as exactly the account its password names.

use crate::people::Who;

use super::caps::{Caps, LS};
use super::line::Message;
use super::reply::{self, server};

/// Longest SASL payload accepted (PLAIN with a password fits in far less).
const MAX_SASL: usize = 1200;

/// What the connection does after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for more.
    More,
    /// Registered as `who`, with the nick the client asked for; `guest`: without a
    /// password, as the node's guest (`irc.guests`).
    Done { who: Who, nick: String, guest: bool },
    /// Close after the replies (the reason goes in an ERROR line).
    Close(String),
}

/// SASL's progress.
#[derive(Debug, Default, PartialEq, Eq)]
enum Sasl {
    #[default]
    Idle,
    /// `AUTHENTICATE PLAIN` taken; collecting the base64 payload.
    Plain(String),
}

/// A connection's registration state.
#[derive(Debug, Default)]
pub struct Registration {
    nick: Option<String>,
    user: bool,
    /// The USER command's user name and real name.
    pub username: String,
    pub realname: String,
    /// `irc.guests`: a client without a password registers as the node's guest.
    pub guests: bool,
    negotiating: bool,
    pass: Option<String>,
    sasl: Sasl,
    /// The account SASL logged in to.
    sasl_who: Option<Who>,
    /// Capabilities enabled.
    pub caps: Caps,
}

/// Checks a password: the account it opens, if any.
pub trait Login {
    fn login(&self, password: &str) -> Option<Who>;
}

impl Login for super::bridge::Bridge {
    fn login(&self, password: &str) -> Option<Who> {
        super::bridge::Bridge::login(self, password)
    }
}

impl Registration {
    /// A new registration; `guests`: a client without a password registers as a guest.
    pub fn new(guests: bool) -> Registration {
        Registration {
            guests,
            ..Registration::default()
        }
    }

    /// The nick given was refused (another client's or a network name): wait for another.
    pub fn nick_refused(&mut self) {
        self.nick = None;
    }

    fn target(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    /// Handles one message before registration.
    pub fn on(&mut self, m: &Message, login: &impl Login) -> (Vec<Message>, Next) {
        let mut out = Vec::new();
        let t = self.target().to_owned();
        match m.command.as_str() {
            "CAP" => self.cap(m, &mut out),
            "PASS" => match m.params.first() {
                Some(p) => self.pass = Some(p.clone()),
                None => out.push(reply::numeric(
                    "461",
                    &t,
                    &["PASS", "Not enough parameters"],
                )),
            },
            "NICK" => match m.params.first().filter(|n| !n.is_empty()) {
                Some(n) if valid_nick(n) => self.nick = Some(n.clone()),
                Some(n) => out.push(reply::numeric("432", &t, &[n, "Erroneous nickname"])),
                None => out.push(reply::numeric("431", &t, &["No nickname given"])),
            },
            "USER" => {
                if m.params.len() < 4 || m.param(3).is_empty() {
                    out.push(reply::numeric(
                        "461",
                        &t,
                        &["USER", "Not enough parameters"],
                    ));
                } else {
                    self.user = true;
                    self.username = m.param(0).chars().take(16).collect();
                    self.realname = m.param(3).chars().take(64).collect();
                }
            }
            "AUTHENTICATE" => {
                if let Some(close) = self.authenticate(m, login, &mut out) {
                    return (out, close);
                }
            }
            "PING" if m.params.is_empty() => out.push(reply::numeric(
                "461",
                &t,
                &["PING", "Not enough parameters"],
            )),
            "PING" => out.push(Message::new(
                Some(server()),
                "PONG",
                &[server(), m.param(0)],
            )),
            "QUIT" => return (out, Next::Close("Client quit".into())),
            "PONG" => {}
            other => out.push(reply::numeric(
                "451",
                &t,
                &[other, "You have not registered"],
            )),
        }
        let next = self.finish(login, &mut out);
        (out, next)
    }

    fn cap(&mut self, m: &Message, out: &mut Vec<Message>) {
        let t = self.target().to_owned();
        match m.param(0).to_ascii_uppercase().as_str() {
            "LS" => {
                self.negotiating = true;
                let v302 = m.param(1).parse::<u32>().is_ok_and(|v| v >= 302);
                if v302 {
                    self.caps.cap_notify = true;
                }
                let list: Vec<String> = LS
                    .iter()
                    .map(|(name, value)| match value {
                        Some(v) if v302 => format!("{name}={v}"),
                        _ => (*name).to_owned(),
                    })
                    .collect();
                out.push(Message::new(
                    Some(server()),
                    "CAP",
                    &[&t, "LS", &list.join(" ")],
                ));
            }
            "LIST" => out.push(Message::new(
                Some(server()),
                "CAP",
                &[&t, "LIST", &self.caps.names().join(" ")],
            )),
            "REQ" => {
                self.negotiating = true;
                let asked = m.param(1).to_owned();
                let verb = if self.caps.request(&asked) {
                    "ACK"
                } else {
                    "NAK"
                };
                out.push(Message::new(Some(server()), "CAP", &[&t, verb, &asked]));
            }
            "END" => self.negotiating = false,
            sub => out.push(reply::numeric("410", &t, &[sub, "Invalid CAP command"])),
        }
    }

    /// SASL PLAIN; `Some` when the connection must close.
    fn authenticate(
        &mut self,
        m: &Message,
        login: &impl Login,
        out: &mut Vec<Message>,
    ) -> Option<Next> {
        let t = self.target().to_owned();
        let arg = m.param(0);
        if arg == "*" {
            self.sasl = Sasl::Idle;
            out.push(reply::numeric("906", &t, &["SASL authentication aborted"]));
            return None;
        }
        if self.sasl_who.is_some() {
            out.push(reply::numeric(
                "907",
                &t,
                &["You have already authenticated using SASL"],
            ));
            return None;
        }
        match &mut self.sasl {
            Sasl::Idle => {
                if arg.eq_ignore_ascii_case("PLAIN") {
                    self.sasl = Sasl::Plain(String::new());
                    out.push(Message::new(None, "AUTHENTICATE", &["+"]));
                } else {
                    out.push(reply::numeric(
                        "908",
                        &t,
                        &["PLAIN", "are available SASL mechanisms"],
                    ));
                    out.push(reply::numeric("904", &t, &["SASL authentication failed"]));
                }
                None
            }
            Sasl::Plain(buf) => {
                if arg != "+" {
                    buf.push_str(arg);
                }
                if buf.len() > MAX_SASL {
                    self.sasl = Sasl::Idle;
                    out.push(reply::numeric("905", &t, &["SASL message too long"]));
                    return None;
                }
                if arg.len() == 400 {
                    return None; // more chunks follow
                }
                let payload = std::mem::take(buf);
                self.sasl = Sasl::Idle;
                let who = decode_base64(&payload)
                    .and_then(|raw| plain_password(&raw))
                    .and_then(|p| login.login(&p));
                match who {
                    Some(who) => {
                        self.sasl_who = Some(who);
                        out.push(reply::numeric(
                            "900",
                            &t,
                            &[
                                &format!("{t}!{t}@{}", server()),
                                &t,
                                "You are now logged in",
                            ],
                        ));
                        out.push(reply::numeric(
                            "903",
                            &t,
                            &["SASL authentication successful"],
                        ));
                    }
                    None => out.push(reply::numeric("904", &t, &["SASL authentication failed"])),
                }
                None
            }
        }
    }

    fn finish(&mut self, login: &impl Login, out: &mut Vec<Message>) -> Next {
        let (Some(nick), true, false) = (&self.nick, self.user, self.negotiating) else {
            return Next::More;
        };
        let who = self
            .sasl_who
            .or_else(|| self.pass.as_deref().and_then(|p| login.login(p)));
        match who {
            Some(who) => Next::Done {
                who,
                nick: nick.clone(),
                guest: false,
            },
            // No password at all: a guest of this node, when the operator allows guests.
            None if self.guests && self.pass.is_none() => Next::Done {
                who: Who::Token,
                nick: nick.clone(),
                guest: true,
            },
            None => {
                let why = if self.pass.is_some() {
                    "Password incorrect"
                } else {
                    "Password required: log in with the password `chatctl irc-password` prints (PASS or SASL PLAIN)"
                };
                out.push(reply::numeric("464", nick, &[why]));
                Next::Close(why.into())
            }
        }
    }
}

/// A nick an IRC client may ask for (chatd's own rules are checked when it is claimed).
pub fn valid_nick(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with(['#', '&', ':', '$', '+', '~', '@', '%'])
        && !n.contains([' ', ',', '*', '?', '!', '@'])
        && !n.chars().any(char::is_control)
}

/// The password of a SASL PLAIN message (`authzid NUL authcid NUL password`). An authzid
/// naming another account than the authcid is refused: nobody logs in as somebody else.
fn plain_password(raw: &[u8]) -> Option<String> {
    let mut parts = raw.split(|b| *b == 0);
    let (authzid, authcid, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || (!authzid.is_empty() && authzid != authcid) {
        return None;
    }
    String::from_utf8(pass.to_vec()).ok()
}

/// Standard base64 with padding (SASL payloads), `None` if malformed.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { val(*c)? };
            n = (n << 6) | v;
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Login for Fixed {
        fn login(&self, p: &str) -> Option<Who> {
            match p {
                "op-secret" => Some(Who::Operator),
                "bob-secret" => Some(Who::Unix(1000)),
                "token" => Some(Who::Token),
                _ => None,
            }
        }
    }

    fn feed(r: &mut Registration, lines: &[&str]) -> (Vec<String>, Next) {
        let mut all = Vec::new();
        let mut next = Next::More;
        for l in lines {
            let (out, n) = r.on(&Message::parse(l.as_bytes()).expect("parses"), &Fixed);
            all.extend(out.iter().map(Message::to_line));
            next = n;
            if next != Next::More {
                break;
            }
        }
        (all, next)
    }

    #[test]
    fn pass_nick_user_registers_as_the_password_s_account() {
        let mut r = Registration::default();
        let (_, next) = feed(&mut r, &["PASS bob-secret", "NICK bob", "USER b 0 * :Bob"]);
        assert_eq!(
            next,
            Next::Done {
                who: Who::Unix(1000),
                nick: "bob".into(),
                guest: false,
            }
        );
        let mut r = Registration::default();
        let (_, next) = feed(&mut r, &["PASS token", "NICK g", "USER g 0 * :G"]);
        assert!(matches!(
            next,
            Next::Done {
                who: Who::Token,
                ..
            }
        ));
    }

    #[test]
    fn with_guests_no_password_registers_a_guest_but_a_wrong_one_is_still_refused() {
        let mut r = Registration::new(true);
        let (_, next) = feed(&mut r, &["NICK visitor", "USER v 0 * :A visitor"]);
        assert_eq!(
            next,
            Next::Done {
                who: Who::Token,
                nick: "visitor".into(),
                guest: true
            }
        );
        assert_eq!(
            (r.username.as_str(), r.realname.as_str()),
            ("v", "A visitor")
        );
        let mut r = Registration::new(true);
        let (out, next) = feed(&mut r, &["PASS nope", "NICK a", "USER a 0 * :A"]);
        assert!(
            matches!(next, Next::Close(_)),
            "a wrong password is no guest pass"
        );
        assert!(out.iter().any(|l| l.contains(" 464 ")), "{out:?}");
        // A password still logs in to its account, not as a guest.
        let mut r = Registration::new(true);
        let (_, next) = feed(&mut r, &["PASS bob-secret", "NICK b", "USER b 0 * :B"]);
        assert!(matches!(
            next,
            Next::Done {
                who: Who::Unix(1000),
                guest: false,
                ..
            }
        ));
    }

    #[test]
    fn a_refused_nick_waits_for_another_and_empty_realnames_or_pings_get_461() {
        let mut r = Registration::new(true);
        let (out, next) = feed(&mut r, &["PING", "NICK a", "USER a 0 * :"]);
        assert_eq!(next, Next::More);
        assert_eq!(
            out.iter().filter(|l| l.contains(" 461 ")).count(),
            2,
            "{out:?}"
        );
        let (_, next) = feed(&mut r, &["USER a 0 * :A"]);
        assert!(matches!(next, Next::Done { .. }));
        r.nick_refused();
        let (_, next) = feed(&mut r, &["USER a 0 * :A"]);
        assert_eq!(next, Next::More, "no nick: no registration");
        let (_, next) = feed(&mut r, &["NICK b"]);
        assert!(matches!(next, Next::Done { nick, .. } if nick == "b"));
    }

    #[test]
    fn no_or_a_wrong_password_is_refused_with_464() {
        for lines in [
            &["NICK a", "USER a 0 * :A"][..],
            &["PASS nope", "NICK a", "USER a 0 * :A"][..],
        ] {
            let mut r = Registration::default();
            let (out, next) = feed(&mut r, lines);
            assert!(matches!(next, Next::Close(_)), "{lines:?}");
            assert!(out.iter().any(|l| l.contains(" 464 ")), "{out:?}");
        }
    }

    #[test]
    fn cap_negotiation_holds_registration_and_sasl_plain_logs_in() {
        let mut r = Registration::default();
        let (out, next) = feed(&mut r, &["CAP LS 302", "NICK bob", "USER b 0 * :B"]);
        assert_eq!(next, Next::More, "CAP LS holds registration");
        assert!(
            out[0].contains("sasl=PLAIN") && out[0].contains("server-time"),
            "{out:?}"
        );
        let (out, _) = feed(&mut r, &["CAP REQ :sasl server-time echo-message"]);
        assert!(out[0].contains("ACK"), "{out:?}");
        let (out, _) = feed(&mut r, &["CAP REQ :sasl bogus"]);
        assert!(out[0].contains("NAK"), "{out:?}");
        let (out, _) = feed(&mut r, &["AUTHENTICATE PLAIN"]);
        assert_eq!(out, vec!["AUTHENTICATE +\r\n"]);
        // "\0bob\0bob-secret"
        let (out, _) = feed(&mut r, &["AUTHENTICATE AGJvYgBib2Itc2VjcmV0"]);
        assert!(out.iter().any(|l| l.contains(" 903 ")), "{out:?}");
        let (_, next) = feed(&mut r, &["CAP END"]);
        assert_eq!(
            next,
            Next::Done {
                who: Who::Unix(1000),
                nick: "bob".into(),
                guest: false,
            }
        );
        assert!(r.caps.server_time && r.caps.echo_message);
    }

    #[test]
    fn sasl_refuses_wrong_passwords_and_another_authzid() {
        let mut r = Registration::default();
        feed(&mut r, &["CAP LS 302", "AUTHENTICATE PLAIN"]);
        // "\0bob\0wrong"
        let (out, _) = feed(&mut r, &["AUTHENTICATE AGJvYgB3cm9uZw=="]);
        assert!(out.iter().any(|l| l.contains(" 904 ")), "{out:?}");
        // "alice\0bob\0bob-secret": authorise as another account
        feed(&mut r, &["AUTHENTICATE PLAIN"]);
        let (out, _) = feed(&mut r, &["AUTHENTICATE YWxpY2UAYm9iAGJvYi1zZWNyZXQ="]);
        assert!(out.iter().any(|l| l.contains(" 904 ")), "{out:?}");
        let (out, _) = feed(&mut r, &["AUTHENTICATE SCRAM-SHA-256"]);
        assert!(out.iter().any(|l| l.contains(" 908 ")), "{out:?}");
        let (_, next) = feed(&mut r, &["NICK b", "USER b 0 * :B", "CAP END"]);
        assert!(matches!(next, Next::Close(_)));
    }

    #[test]
    fn commands_before_registration_get_451_and_base64_decodes() {
        let mut r = Registration::default();
        let (out, next) = feed(&mut r, &["JOIN #lobby"]);
        assert_eq!(next, Next::More);
        assert!(out[0].contains(" 451 "), "{out:?}");
        assert_eq!(decode_base64("aGk="), Some(b"hi".to_vec()));
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGk"), None);
        assert_eq!(decode_base64("a!=="), None);
        assert!(!valid_nick("#x") && !valid_nick("a b") && valid_nick("bob"));
    }
}
