//! Guest IRC clients (`irc.guests = true`) on a real node: two guests without a password and
//! one logged-in account share `#lobby` (JOIN shown to the others, public messages from each
//! guest under its own nick, QUIT shown), a guest writes privately to the other guest
//! (node-local) but not to the account, cannot take the account's network name (at
//! registration or with NICK) nor another guest's nick, and a guest's flood meets the send
//! limit. With `irc.guests` off (the default) a client without a password is refused.

use std::time::Duration;

use crate::cluster::{Cluster, poll};
use crate::irc::{ARRIVE, FORM, IrcClient, free_addr, password, tail_ts};

/// A guest: NICK and USER without a password; `None` if it did not get 001.
fn guest(irc: std::net::SocketAddr, nick: &str) -> (IrcClient, bool) {
    let mut g = IrcClient::connect(irc);
    g.send(&format!("NICK {nick}"));
    g.send("USER guestuser 0 * :A guest");
    let ok = g
        .wait(ARRIVE, |l| l.contains(" 001 ") || l.contains(" 433 "))
        .is_some_and(|l| l.contains(" 001 "));
    (g, ok)
}

#[test]
fn irc_guests_talk_in_channels_but_act_as_no_account() {
    let irc = free_addr("127.0.97.10");
    let c = Cluster::named_with_env(97, &["alice", "bob"], FORM, |i| {
        if i > 0 {
            return vec![("CHATD_IRC__LISTEN".into(), String::new())];
        }
        vec![
            ("CHATD_IRC__LISTEN".into(), irc.to_string()),
            ("CHATD_IRC__GUESTS".into(), "true".into()),
            // A small send limit, so the flood below is judged whatever the machine's speed.
            ("CHATD_CONTROL__SEND_RATE".into(), "1".into()),
            ("CHATD_CONTROL__SEND_BURST".into(), "5".into()),
        ]
    });
    let mut alice = IrcClient::login(irc, &password(&c, 0), "");
    assert!(
        alice.lines.iter().any(|l| l.contains(" 001 alice ")),
        "the account is alice: {:?}",
        alice.lines
    );

    // A guest cannot register as the account's network name, nor take it later.
    let (_, ok) = guest(irc, "alice");
    assert!(!ok, "a guest took the network name alice");
    let (mut g1, ok) = guest(irc, "g1");
    assert!(ok, "g1 registers: {:?}", g1.lines);
    g1.send("NICK Alice");
    g1.expect(" 433 g1 Alice ", ARRIVE);
    // Nor another guest's nick (case-insensitively).
    let (_, ok) = guest(irc, "G1");
    assert!(!ok, "a second guest took g1's nick");
    let (mut g2, ok) = guest(irc, "g2");
    assert!(ok, "g2 registers");

    // Membership per connection: each sees the others join.
    g1.send("JOIN #lobby");
    g1.expect(":g1!~guestuse", ARRIVE);
    g1.expect(" 366 g1 #lobby ", ARRIVE);
    g2.send("JOIN #lobby");
    g2.expect(" 366 g2 #lobby ", ARRIVE);
    g1.expect(":g2!~guestuse", ARRIVE);
    alice.send("JOIN #lobby");
    let names = alice.expect(" 353 alice = #lobby ", ARRIVE);
    assert!(
        names.contains(" g1") && names.contains(" g2"),
        "NAMES lists the guests: {names}"
    );
    g1.expect(":alice!", ARRIVE);

    // A guest's public message: the others see it from its own nick; the network has it.
    g1.send("PRIVMSG #lobby :hello from guest one");
    g2.expect(":g1!~guestuse", ARRIVE);
    let seen = alice.expect("hello from guest one", ARRIVE);
    assert!(seen.contains(":g1!"), "shown as g1's: {seen}");
    assert!(
        poll(ARRIVE, Duration::from_millis(200), || {
            tail_ts(&c, 0, "hello from guest one")
        })
        .is_some(),
        "the guest's message is on the network"
    );

    // Private: to another guest, delivered here; to the account, refused.
    g1.send("PRIVMSG g2 :psst guest two");
    let got = g2.expect("psst guest two", ARRIVE);
    assert!(
        got.starts_with(":g1!") && got.contains("PRIVMSG g2 "),
        "{got}"
    );
    g1.send("PRIVMSG alice :secret for alice");
    g1.expect("NOT SENT to alice", ARRIVE);
    assert!(
        alice
            .wait(Duration::from_secs(2), |l| l.contains("secret for alice"))
            .is_none(),
        "a guest's private message reached the account"
    );

    // A flood meets the send limit (burst 5, 1 per second), and the node keeps answering.
    for i in 0..30 {
        g1.send(&format!("PRIVMSG #lobby :flood {i}"));
    }
    g1.expect("sending too fast", ARRIVE);
    assert!(
        g1.alive() && alice.alive(),
        "the node answers after the flood"
    );
    let flood_seen = g2.lines.iter().filter(|l| l.contains(":flood ")).count();
    assert!(flood_seen <= 10, "{flood_seen} flood lines got through");

    // QUIT is shown to the channel's other clients.
    g2.send("QUIT :bye now");
    let quit = g1.expect(" QUIT ", ARRIVE);
    assert!(
        quit.starts_with(":g2!") && quit.contains("bye now"),
        "{quit}"
    );
}

#[test]
fn irc_clients_without_a_password_are_refused_when_guests_are_off() {
    let irc = free_addr("127.0.98.10");
    let c = Cluster::named_with_env(98, &["solo", "other"], FORM, |i| {
        let listen = if i == 0 {
            irc.to_string()
        } else {
            String::new()
        };
        vec![("CHATD_IRC__LISTEN".into(), listen)]
    });
    let mut x = IrcClient::connect(irc);
    x.send("NICK visitor");
    x.send("USER v 0 * :V");
    x.expect(" 464 ", ARRIVE);
    assert!(x.closes(ARRIVE), "closed after 464");
    // The account still logs in.
    let mut a = IrcClient::login(irc, &password(&c, 0), "");
    assert!(a.alive());
}
