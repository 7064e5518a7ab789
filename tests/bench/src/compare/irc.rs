//! The IRC anchor: a tree of ngircd servers and raw IRC clients over tokio TCP.
//!
//! Server `i` listens on 127.0.`net`.(10+i):[`PORT`] and links to its parent `(i-1)/2` (a
//! binary tree: at 20 or 30 servers the deepest is 4 hops from the root). Each server's
//! configuration is generated into the run's temporary directory: one `[Server]` block, with
//! passwords, for its parent (which it connects to) and one for each child (passive: the child
//! connects). ngircd runs in the foreground (`-n -f FILE`); the servers start root first, each
//! once its parent listens. Clients speak RFC 2812 as far as needed: `NICK`/`USER` until the
//! welcome (001), `JOIN #bench` until the end of the names list (366), `PRIVMSG` to publish,
//! and `PONG` for every `PING`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::procs::Procs;
use super::{CLIENT_DEADLINE, Publisher, Seen, Tasks};
use crate::StepReport;
use crate::load;

/// The port every server listens on (for clients and servers), each on its own address.
pub const PORT: u16 = 16667;
/// The channel every message goes to.
const CHANNEL: &str = "#bench";
/// The longest line accepted from a server.
const MAX_LINE: usize = 64 * 1024;

/// Server `i`'s address.
fn addr(net: u8, i: usize) -> SocketAddr {
    let host = u8::try_from(10 + i).unwrap_or(u8::MAX);
    SocketAddr::from((Ipv4Addr::new(127, 0, net, host), PORT))
}

/// The addresses the tree of `n` servers listens on.
pub fn addrs(n: usize, net: u8) -> Vec<SocketAddr> {
    (0..n).map(|i| addr(net, i)).collect()
}

fn parent(i: usize) -> usize {
    (i - 1) / 2
}

/// Hops from the root to the deepest of `n` servers.
pub fn depth(n: usize) -> usize {
    let mut i = n.saturating_sub(1);
    let mut hops = 0;
    while i > 0 {
        i = parent(i);
        hops += 1;
    }
    hops
}

/// The link password between server `child` and its parent.
fn password(child: usize) -> String {
    format!("link-{child}-bench")
}

/// ngircd's configuration for server `i` of `n`. Penalties (flood throttling) are off so that
/// the publisher is not slowed down; no DNS, ident or PAM look-ups for clients.
fn config(i: usize, n: usize, net: u8) -> String {
    let ip = |j: usize| addr(net, j).ip();
    let mut c = format!(
        "[Global]\n\tName = s{i}.bench\n\tInfo = chat-bench anchor\n\tListen = {}\n\
         \tPorts = {PORT}\n\tMotdPhrase = \"bench\"\n\
         [Limits]\n\tMaxConnectionsIP = 0\n\tMaxPenaltyTime = 0\n\tConnectRetry = 5\n\
         \tPingTimeout = 120\n\
         [Options]\n\tDNS = no\n\tIdent = no\n\tPAM = no\n",
        ip(i)
    );
    if i > 0 {
        let p = parent(i);
        let pw = password(i);
        c += &format!(
            "[Server]\n\tName = s{p}.bench\n\tHost = {}\n\tBind = {}\n\tPort = {PORT}\n\
             \tMyPassword = {pw}\n\tPeerPassword = {pw}\n\tPassive = no\n",
            ip(p),
            ip(i)
        );
    }
    for child in [2 * i + 1, 2 * i + 2].into_iter().filter(|&c| c < n) {
        let pw = password(child);
        c += &format!(
            "[Server]\n\tName = s{child}.bench\n\tHost = {}\n\tPort = {PORT}\n\
             \tMyPassword = {pw}\n\tPeerPassword = {pw}\n\tPassive = yes\n",
            ip(child)
        );
    }
    c
}

/// One parsed IRC line: `[:prefix] COMMAND params… [:trailing]`.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub prefix: Option<&'a str>,
    pub command: &'a str,
    /// The parameters, the trailing one (after " :") last.
    pub params: Vec<&'a str>,
}

/// Parses one line (its CR LF may be there or not); `None` if it has no command.
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (prefix, rest) = match line.strip_prefix(':') {
        Some(r) => {
            let (p, r) = r.split_once(' ')?;
            (Some(p), r)
        }
        None => (None, line),
    };
    let rest = rest.trim_start_matches(' ');
    if rest.starts_with(':') {
        return None;
    }
    let (head, trailing) = match rest.split_once(" :") {
        Some((h, t)) => (h, Some(t)),
        None => (rest, None),
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    let command = words.next()?;
    let mut params: Vec<&str> = words.collect();
    params.extend(trailing);
    Some(Line {
        prefix,
        command,
        params,
    })
}

/// A message of the benchmark in `line`: its step and sequence number.
fn bench_message(line: &Line<'_>) -> Option<(u32, u64)> {
    match (line.command, line.params.as_slice()) {
        ("PRIVMSG", [target, text]) if target.eq_ignore_ascii_case(CHANNEL) => {
            load::parse_text(text)
        }
        _ => None,
    }
}

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// Reads the next line; answers a `PING` itself (and reads on).
async fn next_line(reader: &mut BufReader<OwnedReadHalf>, writer: &Writer) -> Result<String> {
    loop {
        let mut buf = Vec::new();
        let n = reader.read_until(b'\n', &mut buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        if buf.len() > MAX_LINE {
            bail!("a line of {} bytes from the server", buf.len());
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        match parse_line(&text) {
            Some(l) if l.command == "PING" => {
                let token = l.params.first().copied().unwrap_or_default();
                let pong = format!("PONG :{token}\r\n");
                writer.lock().await.write_all(pong.as_bytes()).await?;
            }
            Some(l) if l.command == "ERROR" => bail!("the server said {}", text.trim_end()),
            _ => return Ok(text),
        }
    }
}

/// Connects as `nick`, registers and joins the channel.
async fn client(server: SocketAddr, nick: &str) -> Result<(BufReader<OwnedReadHalf>, Writer)> {
    let stream = super::connect(server, CLIENT_DEADLINE).await?;
    let (r, w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(w));
    tokio::time::timeout(CLIENT_DEADLINE, register(&mut reader, &writer, nick))
        .await
        .with_context(|| {
            format!("{nick} at {server}: no welcome or JOIN within {CLIENT_DEADLINE:?}")
        })??;
    Ok((reader, writer))
}

/// `NICK` and `USER` until the welcome (001), then `JOIN` until the end of the names (366).
async fn register(
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &Writer,
    nick: &str,
) -> Result<()> {
    let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :chat-bench\r\n");
    writer.lock().await.write_all(hello.as_bytes()).await?;
    let mut joined = false;
    loop {
        let text = next_line(reader, writer).await?;
        let Some(line) = parse_line(&text) else {
            continue;
        };
        match line.command {
            "001" => {
                let join = format!("JOIN {CHANNEL}\r\n");
                writer.lock().await.write_all(join.as_bytes()).await?;
                joined = true;
            }
            "366" if joined => return Ok(()),
            c if c.starts_with('4') || c.starts_with('5') => {
                bail!("{nick} refused: {}", text.trim_end())
            }
            _ => {}
        }
    }
}

/// Reads a client's connection until it fails, recording the benchmark's messages in `seen`.
async fn follow(mut reader: BufReader<OwnedReadHalf>, writer: Writer, seen: Option<Seen>) {
    while let Ok(text) = next_line(&mut reader, &writer).await {
        let at = std::time::Instant::now();
        if let (Some(seen), Some((step, seq))) =
            (&seen, parse_line(&text).as_ref().and_then(bench_message))
        {
            super::lock(seen).push((step, seq, at));
        }
    }
}

fn privmsg(text: &str) -> String {
    format!("PRIVMSG {CHANNEL} :{text}\r\n")
}

/// Starts the tree of `n` servers of `ngircd`, one subscriber on each and the publisher on the
/// root, and measures the step; stops every server before returning.
pub async fn measure(
    ngircd: &Path,
    n: usize,
    net: u8,
    rate: f64,
    seconds: u64,
) -> Result<StepReport> {
    let mut procs = Procs::new()?;
    for i in 0..n {
        let conf = procs.dir().join(format!("ngircd{i}.conf"));
        std::fs::write(&conf, config(i, n, net)).context("writing ngircd's configuration")?;
        let mut cmd = Command::new(ngircd);
        cmd.arg("-n").arg("-f").arg(&conf);
        procs.spawn(&format!("ngircd{i}"), cmd)?;
        procs
            .await_listening(addr(net, i), Duration::from_secs(10))
            .await?;
    }
    let mut tasks = Tasks::default();
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let (reader, writer) = client(addr(net, i), &format!("sub{i}")).await?;
        let seen = Seen::default();
        tasks
            .0
            .push(tokio::spawn(follow(reader, writer, Some(seen.clone()))));
        subs.push(seen);
    }
    let (reader, writer) = client(addr(net, 0), "pub").await?;
    let publisher = Publisher {
        writer: writer.clone(),
        frame: privmsg,
        reader: tokio::spawn(follow(reader, writer, None)),
    };
    procs.check_running()?;
    let step = super::anchor_step(&publisher, &subs, &procs.pids(), rate, seconds).await;
    procs.check_running()?;
    drop(publisher);
    drop(tasks);
    drop(procs);
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefix_command_params_and_trailing() {
        let l = parse_line(":sub1!~sub1@127.0.91.11 PRIVMSG #bench :bench 1 42\r\n").expect("line");
        assert_eq!(l.prefix, Some("sub1!~sub1@127.0.91.11"));
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params, vec!["#bench", "bench 1 42"]);
        assert_eq!(bench_message(&l), Some((1, 42)));

        let ping = parse_line("PING :s0.bench").expect("ping");
        assert_eq!(
            (ping.prefix, ping.command, ping.params),
            (None, "PING", vec!["s0.bench"])
        );

        let num = parse_line(":s0.bench 366 sub0 #bench :End of NAMES list").expect("366");
        assert_eq!(num.command, "366");
        assert_eq!(num.params, vec!["sub0", "#bench", "End of NAMES list"]);

        let spaced = parse_line("PRIVMSG  #Bench  :a :b").expect("spaced");
        assert_eq!(spaced.params, vec!["#Bench", "a :b"]);
    }

    #[test]
    fn rejects_lines_without_a_command_and_foreign_messages() {
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line(":prefix-only"), None);
        assert_eq!(parse_line(":p :trailing"), None);
        let other = parse_line(":a PRIVMSG #other :bench 1 2").expect("line");
        assert_eq!(bench_message(&other), None);
        let text = parse_line(":a PRIVMSG #bench :hello").expect("line");
        assert_eq!(bench_message(&text), None);
    }

    #[test]
    fn the_tree_is_binary_and_every_link_is_configured_at_both_ends() {
        assert_eq!(
            (depth(1), depth(2), depth(20), depth(30), depth(31)),
            (0, 1, 4, 4, 4)
        );
        assert_eq!(depth(32), 5);
        let n = 20;
        for i in 1..n {
            let name = format!("Name = s{i}.bench");
            let child_side = config(i, n, 91);
            let parent_side = config(parent(i), n, 91);
            assert!(parent_side.contains(&name) && parent_side.contains(&password(i)));
            assert!(child_side.contains(&format!("Name = s{}.bench", parent(i))));
            assert!(child_side.contains("Passive = no"));
        }
        assert!(
            !config(0, n, 91).contains("Passive = no"),
            "the root connects to no one"
        );
    }
}
