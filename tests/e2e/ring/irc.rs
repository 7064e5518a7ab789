//! The IRC front door over a real ring, with a raw IRC client written here (plain TCP, one
//! line at a time): it logs in with `chatctl irc-password`'s password, joins `#lobby`, and
//! exchanges public and private messages with `chatctl` users on other nodes — their
//! messages arrive with `server-time` tags equal to the messages' own times — sees away
//! changes, a taken nickname's `433` and suffix, a person leaving the network as QUIT and
//! coming back as JOIN.
//! Hostile clients are in `irc_hostile.rs`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, poll};

// Beside this file: tests/e2e/ring/irc_hostile.rs.
#[path = "irc_hostile.rs"]
mod hostile;
// And tests/e2e/ring/irc_weechat.rs, irc_tls.rs.
#[path = "irc_tls.rs"]
mod tls;
#[path = "irc_weechat.rs"]
mod weechat;

/// How long the ring and the names may take to form.
pub const FORM: Duration = Duration::from_secs(60);
/// How long a message or event may take to show.
pub const ARRIVE: Duration = Duration::from_secs(30);

/// A free TCP port on `ip` (bound and released).
pub fn free_addr(ip: &str) -> SocketAddr {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A raw IRC client: every line received is kept in `lines`; PINGs are answered.
pub struct IrcClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    partial: Vec<u8>,
    pub lines: Vec<String>,
    closed: bool,
}

impl IrcClient {
    pub fn connect(addr: SocketAddr) -> IrcClient {
        let s = TcpStream::connect(addr).expect("connect to the IRC listener");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        IrcClient {
            writer: s.try_clone().expect("clone"),
            reader: BufReader::new(s),
            partial: Vec::new(),
            lines: Vec::new(),
            closed: false,
        }
    }

    /// Connects, negotiates `caps`, logs in with `password` (PASS) and waits for 001.
    pub fn login(addr: SocketAddr, password: &str, caps: &str) -> IrcClient {
        let mut c = IrcClient::connect(addr);
        c.send("CAP LS 302");
        c.send(&format!("PASS {password}"));
        c.send("NICK someone");
        c.send("USER u 0 * :A test client");
        if !caps.is_empty() {
            c.send(&format!("CAP REQ :{caps}"));
            c.expect(" ACK ", Duration::from_secs(10));
        }
        c.send("CAP END");
        c.expect(" 001 ", Duration::from_secs(10));
        c
    }

    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
    }

    /// Reads what has come (for up to 100 ms); `false` once the server closed.
    fn pump(&mut self) -> bool {
        if self.closed {
            return false;
        }
        match self.reader.read_until(b'\n', &mut self.partial) {
            Ok(0) => self.closed = true,
            Ok(_) if self.partial.ends_with(b"\n") => {
                let line = String::from_utf8_lossy(&self.partial).trim_end().to_owned();
                self.partial.clear();
                if let Some(token) = line.strip_prefix("PING ") {
                    self.send(&format!("PONG {token}"));
                }
                self.lines.push(line);
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => self.closed = true,
        }
        !self.closed
    }

    /// The first line received from now on for which `pred` holds, within `deadline`.
    pub fn wait(&mut self, deadline: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let start = self.lines.len();
        let end = Instant::now() + deadline;
        let mut seen = start;
        loop {
            while seen < self.lines.len() {
                if pred(&self.lines[seen]) {
                    return Some(self.lines[seen].clone());
                }
                seen += 1;
            }
            if Instant::now() >= end || (!self.pump() && seen == self.lines.len()) {
                return None;
            }
        }
    }

    /// [`IrcClient::wait`] for a line containing `needle`; panics with what came otherwise.
    pub fn expect(&mut self, needle: &str, deadline: Duration) -> String {
        match self.wait(deadline, |l| l.contains(needle)) {
            Some(l) => l,
            None => panic!(
                "no line containing {needle:?} within {deadline:?}; received:\n{}",
                self.lines.join("\n")
            ),
        }
    }

    /// Whether the server closes the connection within `deadline`.
    pub fn closes(&mut self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while Instant::now() < end {
            if !self.pump() {
                return true;
            }
        }
        false
    }

    /// Whether the connection still answers a PING.
    pub fn alive(&mut self) -> bool {
        let token = format!("alive{}", self.lines.len());
        self.send(&format!("PING {token}"));
        self.wait(Duration::from_secs(10), |l| {
            l.contains("PONG") && l.contains(&token)
        })
        .is_some()
    }
}

/// The `time` tag of a line.
pub fn time_tag(line: &str) -> Option<String> {
    let tags = line.strip_prefix('@')?.split(' ').next()?;
    tags.split(';')
        .find_map(|t| t.strip_prefix("time="))
        .map(str::to_owned)
}

/// `chatctl irc-password --json`'s password on member `i`.
pub fn password(c: &Cluster, i: usize) -> String {
    let v = c
        .json(&c.members[i].dir, &["irc-password", "--json"])
        .expect("chatctl irc-password");
    v["password"].as_str().expect("password").to_owned()
}

/// `chatctl ARGS` on member `i`, which must succeed.
pub fn ctl(c: &Cluster, i: usize, args: &[&str]) {
    let out = c
        .sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), args);
    assert!(
        out.status.success(),
        "chatctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `ts` of the message with `text` in member `i`'s `chatctl tail --json`.
pub fn tail_ts(c: &Cluster, i: usize, text: &str) -> Option<String> {
    let out = c.sandbox.chatctl_at(
        &c.members[i].dir.join("run/control.sock"),
        &["tail", "-n", "1000", "--json"],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["text"] == text)
        .map(|v| {
            let (ts, from) = (
                v["ts"].as_str().unwrap_or(""),
                v["from"].as_str().unwrap_or(""),
            );
            format!("{ts} {from}")
        })
}

/// The id of the message with `text` in member `i`'s `chatctl tail --json`.
pub fn tail_id(c: &Cluster, i: usize, text: &str) -> Option<String> {
    let out = c.sandbox.chatctl_at(
        &c.members[i].dir.join("run/control.sock"),
        &["tail", "-n", "1000", "--json"],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["text"] == text)
        .and_then(|v| v["id"].as_str().map(str::to_owned))
}

/// A ring of `names` where only node 0 listens for IRC, on `irc`.
pub fn irc_ring(net: u8, names: &[&str], irc: SocketAddr) -> Cluster {
    Cluster::named_with_env(net, names, FORM, |i| {
        let listen = if i == 0 {
            irc.to_string()
        } else {
            String::new()
        };
        vec![("CHATD_IRC__LISTEN".into(), listen)]
    })
}

#[test]
fn an_irc_client_talks_with_chatctl_users_on_other_nodes() {
    let irc = free_addr("127.0.91.10");
    let mut c = irc_ring(91, &["alice", "bob", "carol"], irc);
    let mut a = IrcClient::login(
        irc,
        &password(&c, 0),
        "server-time echo-message message-tags away-notify batch draft/chathistory",
    );
    // The client is the operator's account: its nickname, whatever it asked for.
    assert!(
        a.lines.iter().any(|l| l.contains(" 001 alice ")),
        "{:?}",
        a.lines
    );
    a.send("JOIN #lobby");
    a.expect(" 366 alice #lobby ", ARRIVE);
    let names = a.lines.iter().rev().find(|l| l.contains(" 353 ")).cloned();
    assert!(
        names
            .as_deref()
            .is_some_and(|l| l.contains("bob") && l.contains("carol")),
        "NAMES lists the people online: {names:?}"
    );

    // A public message of bob's (another node), with the message's own time.
    let hello = "hello-from-bob-5c1e";
    ctl(&c, 1, &["send", hello]);
    let line = a.expect(&format!("PRIVMSG #lobby :{hello}"), ARRIVE);
    assert!(line.contains(" :bob!"), "{line}");
    let ts = tail_ts(&c, 1, hello).expect("bob's node lists it");
    assert_eq!(
        format!("{} bob", time_tag(&line).expect("a time tag")),
        ts,
        "server-time is the message's time"
    );

    // bob edits and then deletes it: NOTICEs in the room naming the message.
    let id = tail_id(&c, 1, hello).expect("the message's id");
    ctl(&c, 1, &["edit", &id, "hello-edited-5c1e"]);
    let edit = a.expect("hello-edited-5c1e", ARRIVE);
    assert!(
        edit.contains(" :bob!")
            && edit.contains(&format!("NOTICE #lobby :(edited message {}", &id[..8])),
        "{edit}"
    );
    ctl(&c, 1, &["delete", &id]);
    let gone = a.expect(&format!("(deleted message {}", &id[..8]), ARRIVE);
    assert!(
        gone.contains(" :bob!") && gone.contains("NOTICE #lobby"),
        "{gone}"
    );

    // The client's public message reaches carol's node, from alice; echo-message echoes it.
    let hi = "hi-from-irc-8a2d";
    a.send(&format!("PRIVMSG #lobby :{hi}"));
    let echo = a.expect(&format!("PRIVMSG #lobby :{hi}"), ARRIVE);
    assert!(
        echo.contains(":alice!") && time_tag(&echo).is_some(),
        "{echo}"
    );
    let got = poll(ARRIVE, Duration::from_millis(200), || tail_ts(&c, 2, hi));
    let got = got.expect("carol's node shows the IRC message");
    assert!(got.ends_with(" alice"), "{got}");
    assert_eq!(
        got,
        format!("{} alice", time_tag(&echo).expect("time")),
        "the echo carries the message's time"
    );

    // CHATHISTORY (draft/chathistory): the room's newest messages, in a batch, at their times.
    a.send("CHATHISTORY LATEST #lobby * 10");
    let open = a.expect("BATCH +", ARRIVE);
    assert!(open.contains("chathistory"), "{open}");
    let again = a.expect(&format!("PRIVMSG #lobby :{hi}"), ARRIVE);
    assert!(
        again.contains(";batch=") || again.contains("@batch="),
        "{again}"
    );
    assert_eq!(time_tag(&again), time_tag(&echo));
    a.expect("BATCH -", ARRIVE);
    a.send("CHATHISTORY LATEST #lobby nonsense 10");
    a.expect("FAIL CHATHISTORY INVALID_PARAMS", ARRIVE);

    // Private messages both ways, end to end.
    let secret = "irc-private-3f9b";
    a.send(&format!("PRIVMSG bob :{secret}"));
    let arrived = poll(ARRIVE, Duration::from_millis(300), || {
        c.received(1).contains(&secret.to_owned()).then_some(())
    });
    assert!(arrived.is_some(), "bob received the IRC private message");
    let back = "bob-private-77c0";
    ctl(&c, 1, &["dm", "alice", back]);
    let line = a.expect(&format!("PRIVMSG alice :{back}"), ARRIVE);
    assert!(line.starts_with('@') && line.contains(" :bob!"), "{line}");

    // Presence: bob goes away (away-notify), WHO shows him G.
    ctl(&c, 1, &["away", "lunch"]);
    let away = a.expect(" AWAY :lunch", ARRIVE);
    assert!(away.contains(":bob!"), "{away}");
    a.send("WHO #lobby");
    let who = a.expect(" bob G ", ARRIVE);
    assert!(who.contains(" 352 "), "{who}");
    a.send("WHOIS bob");
    a.expect(" 301 alice bob :lunch", ARRIVE);

    // A taken nickname: 433 and the suffixed name claimed instead.
    a.send("NICK carol");
    let taken = a.expect(" 433 ", ARRIVE);
    assert!(taken.contains("carol"), "{taken}");
    let renamed = a.expect(" NICK ", ARRIVE);
    assert!(
        renamed.starts_with(":alice!") && renamed.contains("NICK carol"),
        "{renamed}"
    );

    // carol leaves the network: a QUIT.
    if let Some(d) = c.members[2].daemon.as_ref() {
        d.signal(rustix::process::Signal::TERM);
    }
    let quit = a.expect(" QUIT ", ARRIVE);
    assert!(quit.contains(" :carol!"), "{quit}");
    if let Some(mut d) = c.members[2].daemon.take() {
        d.wait_exit(Duration::from_secs(10));
    }
    // carol comes back: a JOIN in the channel.
    let boot = [c.addr(0)];
    c.restart(2, &boot);
    let join = a.expect(" JOIN #lobby", ARRIVE);
    assert!(join.contains(" :carol!"), "{join}");

    a.send("QUIT :bye");
    a.expect("ERROR :Closing link", ARRIVE);
    assert!(a.closes(Duration::from_secs(5)));
}
