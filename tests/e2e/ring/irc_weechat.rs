//! A real IRC client on the IRC front door: Debian's `weechat-headless`, scripted from its
//! command line, logs in to alice's account on one node of a 5-node ring (SASL PLAIN with
//! `chatctl irc-password`'s password), joins `#lobby` and exchanges public and private
//! messages with `chatctl` users on the other nodes. Its logs (written with the time weechat
//! shows for each line, which is the `server-time` tag's) must show each message at the time
//! the network gave it: a message sent seconds before weechat connected shows at its own
//! time, not at the join's. Without `weechat-headless` the test skips (fails under
//! `CHATD_TEST_STRICT=1`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{ARRIVE, free_addr, irc_ring, password, tail_ts};
use crate::cluster::{Cluster, poll};
use crate::support::skip_or_fail;

/// weechat-headless, killed on drop.
struct Weechat(Child);

impl Drop for Weechat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of weechat's log of `buffer` (e.g. `irc.chatd.#lobby`): (time, nick, text).
fn log(dir: &Path, buffer: &str) -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(dir.join(format!("logs/{buffer}.weechatlog"))).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((
                f.next()?.to_owned(),
                f.next()?.to_owned(),
                f.next()?.to_owned(),
            ))
        })
        .collect()
}

/// The time weechat logged for the line from `nick` with `text`.
fn logged(dir: &Path, buffer: &str, nick: &str, text: &str) -> Option<String> {
    log(dir, buffer)
        .into_iter()
        .find(|(_, n, t)| n == nick && t == text)
        .map(|(time, _, _)| time)
}

/// `chatctl tail`'s time of the message with `text` (member `i`), to the second as weechat
/// logs it, and its author.
fn network_time(c: &Cluster, i: usize, text: &str) -> Option<(String, String)> {
    let ts = tail_ts(c, i, text)?;
    let (time, from) = ts.split_once(' ')?;
    Some((time.get(..19)?.to_owned(), from.to_owned()))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn weechat_talks_with_chatctl_users_across_a_ring() {
    if Command::new("weechat-headless")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        skip_or_fail(
            "weechat-headless is not installed (Debian: apt-get install weechat-headless)",
        );
        return;
    }
    let irc = free_addr("127.0.93.10");
    let names = ["alice", "bob", "carol", "dave", "erin"];
    let c = irc_ring(93, &names, irc);
    let pass = password(&c, 0);

    // carol speaks before weechat connects; weechat must show it at carol's time.
    let early = "carol-before-weechat-41d";
    super::ctl(&c, 2, &["send", early]);
    let (early_time, early_from) = poll(ARRIVE, Duration::from_millis(200), || {
        network_time(&c, 0, early)
    })
    .expect("alice's node has carol's message");
    assert_eq!(early_from, "carol");
    // Let the clock pass that second (and one more) so a join-time stamp could not match.
    let sent_at = now_secs();
    assert!(
        poll(Duration::from_secs(5), Duration::from_millis(100), || {
            (now_secs() >= sent_at + 2).then_some(())
        })
        .is_some()
    );

    let dir: PathBuf = c.sandbox.path().join("weechat");
    std::fs::create_dir_all(&dir).expect("weechat dir");
    let public = "weechat-public-9e3";
    let private = "weechat-private-c07";
    let script = [
        "/set logger.file.flush_delay 0".to_owned(),
        "/set logger.file.time_format \"%Y-%m-%dT%H:%M:%S\"".to_owned(),
        format!(
            "/server add chatd {}/{} -notls -sasl_mechanism=plain -sasl_username=alice \
             -sasl_password={pass} -autojoin=#lobby",
            irc.ip(),
            irc.port()
        ),
        // Run once registered: the public message, then the private one.
        format!(
            "/set irc.server.chatd.command \"/wait 2 /msg #lobby {public}\\;/wait 3 /msg bob {private}\""
        ),
        "/connect chatd".to_owned(),
    ]
    .join(";");
    let child = Command::new("weechat-headless")
        .arg("--dir")
        .arg(&dir)
        .arg("-r")
        .arg(&script)
        .env_clear()
        .env("HOME", c.sandbox.home())
        .env("TZ", "UTC")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weechat-headless starts");
    let _weechat = Weechat(child);
    let lobby = "irc.chatd.#lobby";
    let why = || {
        format!(
            "weechat's #lobby log: {:?}\nserver log: {:?}",
            log(&dir, lobby),
            log(&dir, "irc.server.chatd")
        )
    };

    // 1. The earlier message, replayed at JOIN, at its own time (server-time).
    let shown = poll(ARRIVE, Duration::from_millis(200), || {
        logged(&dir, lobby, "carol", early)
    });
    assert_eq!(shown, Some(early_time), "{}", why());

    // 2. Live public messages from chatctl users on two other nodes, at their times.
    for (i, text) in [
        (1, "bob-live-to-weechat-2a"),
        (3, "dave-live-to-weechat-7f"),
    ] {
        super::ctl(&c, i, &["send", text]);
        let (time, from) = poll(ARRIVE, Duration::from_millis(200), || {
            network_time(&c, i, text)
        })
        .expect("sent");
        let shown = poll(ARRIVE, Duration::from_millis(200), || {
            logged(&dir, lobby, &from, text)
        });
        assert_eq!(shown, Some(time), "{}", why());
    }

    // 3. weechat's public message reaches erin's node from alice. (weechat 3.8 does not ask
    // for echo-message, so it shows its own line at its own clock's time: not compared.)
    let (_, from) = poll(ARRIVE, Duration::from_millis(300), || {
        network_time(&c, 4, public)
    })
    .unwrap_or_else(|| panic!("erin's node has weechat's message; {}", why()));
    assert_eq!(from, "alice");
    assert!(logged(&dir, lobby, "alice", public).is_some(), "{}", why());

    // 4. Private messages: weechat → bob, and erin → alice (weechat's query buffer).
    let arrived = poll(ARRIVE, Duration::from_millis(300), || {
        c.received(1).contains(&private.to_owned()).then_some(())
    });
    assert!(
        arrived.is_some(),
        "bob received weechat's private message; {}",
        why()
    );
    let dm = "erin-private-to-weechat-5b";
    super::ctl(&c, 4, &["dm", "alice", dm]);
    let shown = poll(ARRIVE, Duration::from_millis(200), || {
        logged(&dir, "irc.chatd.erin", "erin", dm)
    });
    assert!(
        shown.is_some(),
        "weechat shows erin's private message; erin's buffer: {:?}",
        log(&dir, "irc.chatd.erin")
    );
}
