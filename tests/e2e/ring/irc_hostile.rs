//! Hostile IRC clients against a real node: no password, a wrong or forged one, SASL that
//! names another account, oversized lines, CR/LF/NUL injection, a send flood, a connection
//! flood, and the TCP token's guest trying to act as somebody else.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::{ARRIVE, FORM, IrcClient, free_addr, password, tail_ts};
use crate::cluster::Cluster;

const TOKEN: &str = "irc-test-token-0123456789abcdef";

#[test]
fn hostile_irc_clients_are_refused_and_bounded() {
    let irc = free_addr("127.0.92.10");
    let dir = tempfile::tempdir().expect("tmp");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let c = Cluster::named_with_env(92, &["alice", "bob"], FORM, |i| {
        if i > 0 {
            return vec![("CHATD_IRC__LISTEN".into(), String::new())];
        }
        vec![
            ("CHATD_IRC__LISTEN".into(), irc.to_string()),
            (
                "CHATD_CONTROL__TOKEN_FILE".into(),
                token_file.display().to_string(),
            ),
            // A small send limit, so the flood below is judged whatever the machine's speed.
            ("CHATD_CONTROL__SEND_RATE".into(), "1".into()),
            ("CHATD_CONTROL__SEND_BURST".into(), "5".into()),
        ]
    });
    let pass = password(&c, 0);

    // No password, a wrong one, and one whose tag names another account: 464, closed.
    let (tag, mac) = pass.split_once('-').expect("tag-mac");
    assert_eq!(tag, "op");
    for given in [None, Some("wrong".to_owned()), Some(format!("uid0-{mac}"))] {
        let mut x = IrcClient::connect(irc);
        if let Some(p) = &given {
            x.send(&format!("PASS {p}"));
        }
        x.send("NICK mallory");
        x.send("USER m 0 * :M");
        x.expect(" 464 ", ARRIVE);
        assert!(x.closes(ARRIVE), "closed after 464 ({given:?})");
    }

    // SASL PLAIN naming another account as authzid: refused.
    let mut x = IrcClient::connect(irc);
    x.send("CAP LS 302");
    x.send("CAP REQ :sasl");
    x.send("AUTHENTICATE PLAIN");
    x.expect("AUTHENTICATE +", ARRIVE);
    let payload = format!("bob\0alice\0{pass}");
    x.send(&format!("AUTHENTICATE {}", base64(payload.as_bytes())));
    x.expect(" 904 ", ARRIVE);
    // The same password without an authzid logs in.
    x.send("AUTHENTICATE PLAIN");
    x.expect("AUTHENTICATE +", ARRIVE);
    let payload = format!("\0alice\0{pass}");
    x.send(&format!("AUTHENTICATE {}", base64(payload.as_bytes())));
    x.expect(" 903 ", ARRIVE);
    x.send("NICK a");
    x.send("USER a 0 * :A");
    x.send("CAP END");
    x.expect(" 001 alice ", ARRIVE);
    drop(x);

    let mut a = IrcClient::login(irc, &pass, "");
    a.send("JOIN #lobby");
    a.expect(" 366 ", ARRIVE);

    // A source prefix naming somebody else changes nothing: the message is alice's.
    a.send(":bob!bob@elsewhere PRIVMSG #lobby :spoofed-source-marker");
    let from = crate::cluster::poll(ARRIVE, Duration::from_millis(200), || {
        tail_ts(&c, 1, "spoofed-source-marker")
    });
    assert!(
        from.as_deref().is_some_and(|f| f.ends_with(" alice")),
        "shown on bob's node as alice's: {from:?}"
    );

    // An oversized line is refused (417) and the connection goes on.
    a.send(&format!("PRIVMSG #lobby :{}", "x".repeat(600)));
    a.expect(" 417 ", ARRIVE);
    assert!(a.alive());

    // CR and NUL inside a line: the line is refused, nothing is sent, the client stays.
    a.send_raw(b"PRIVMSG #lobby :injected-cr\rQUIT :x\r\n");
    a.expect("FAIL", ARRIVE);
    a.send_raw(b"PRIVMSG #lobby :injected\0nul\r\n");
    a.expect("FAIL", ARRIVE);
    assert!(a.alive());
    a.send("PRIVMSG #lobby :after-injection-marker");
    let sent = crate::cluster::poll(ARRIVE, Duration::from_millis(200), || {
        tail_ts(&c, 0, "after-injection-marker")
    });
    assert!(sent.is_some(), "a good line after the bad ones is sent");
    assert!(tail_ts(&c, 0, "injected-cr").is_none());
    assert!(tail_ts(&c, 0, "injected").is_none());

    // A flood: the per-client limit (control.send_rate = 1, send_burst = 5 here) refuses the
    // excess; what passes is at most the burst plus one per second the flood took.
    let started = std::time::Instant::now();
    for i in 0..60 {
        a.send(&format!("PRIVMSG #lobby :flood-{i}"));
    }
    let refused = a.expect("sending too fast", ARRIVE);
    assert!(refused.contains(" 404 "), "{refused}");
    assert!(a.alive(), "the flooding client is refused, not dropped");
    let took = started.elapsed().as_secs() + 1;
    let stored = (0..60)
        .filter(|i| tail_ts(&c, 0, &format!("flood-{i}")).is_some())
        .count() as u64;
    assert!(
        stored >= 1 && stored <= 5 + took,
        "the burst passes and the excess is refused: {stored} of 60 stored in {took} s"
    );

    // A line longer than the reader's bound, without an end: the connection is closed.
    let mut b = IrcClient::login(irc, &pass, "");
    b.send_raw(&vec![b'x'; 10_000]);
    b.expect("ERROR", ARRIVE);
    assert!(b.closes(ARRIVE));

    // The TCP token logs in as the guest, shown *nick, which may not take another name.
    let mut g = IrcClient::login(irc, TOKEN, "");
    let welcome = g.lines.iter().find(|l| l.contains(" 001 ")).cloned();
    assert!(
        welcome.as_deref().is_some_and(|l| l.contains(" 001 *")),
        "{welcome:?}"
    );
    g.send("NICK alice");
    g.expect(" 484 ", ARRIVE);

    // A connection flood: past 64 open connections (a and g among them) a new one is told
    // and closed.
    let idle: Vec<IrcClient> = (0..62).map(|_| IrcClient::connect(irc)).collect();
    let mut extra = IrcClient::connect(irc);
    extra.expect("too many connections", ARRIVE);
    assert!(extra.closes(ARRIVE));
    drop(idle);
    // And the node still serves IRC once they are gone.
    assert!(a.alive());
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
