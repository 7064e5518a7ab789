//! The NATS anchor: a cluster of nats-server processes and raw NATS clients over tokio TCP.
//!
//! Server `i` serves clients on 127.0.`net`.(10+i):[`CLIENT_PORT`] and routes on the same
//! address at [`ROUTE_PORT`]; each is given explicit routes to all the others, so the cluster
//! is a full mesh (a message crosses at most one route). Monitoring stays off. Clients speak
//! the NATS text protocol as far as needed: read `INFO`, send `CONNECT` (not verbose), `SUB`,
//! then `PING` and wait for the `PONG` (so the subscription is registered), `PUB` to publish,
//! `MSG` headers followed by their payload, and `PONG` for every `PING`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::procs::Procs;
use super::{CLIENT_DEADLINE, Publisher, Seen, Tasks};
use crate::StepReport;
use crate::load;

/// Client port of every server (each on its own address).
pub const CLIENT_PORT: u16 = 14222;
/// Route (cluster) port of every server.
pub const ROUTE_PORT: u16 = 16222;
/// The subject every message goes to.
const SUBJECT: &str = "bench";
/// The longest protocol line or payload accepted from a server.
const MAX_LINE: usize = 1024 * 1024;

fn ip(net: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, net, u8::try_from(10 + i).unwrap_or(u8::MAX))
}

/// The addresses the cluster of `n` servers listens on: client and route ports.
pub fn addrs(n: usize, net: u8) -> Vec<SocketAddr> {
    (0..n)
        .flat_map(|i| [(ip(net, i), CLIENT_PORT), (ip(net, i), ROUTE_PORT)])
        .map(SocketAddr::from)
        .collect()
}

/// The command line of server `i` of `n`.
fn command(nats_server: &Path, i: usize, n: usize, net: u8) -> Command {
    let mut cmd = Command::new(nats_server);
    let me = ip(net, i);
    cmd.arg("-a")
        .arg(me.to_string())
        .arg("-p")
        .arg(CLIENT_PORT.to_string())
        .arg("--server_name")
        .arg(format!("n{i}"))
        .arg("--cluster_name")
        .arg("bench")
        .arg("--cluster")
        .arg(format!("nats://{me}:{ROUTE_PORT}"));
    let routes: Vec<String> = (0..n)
        .filter(|&j| j != i)
        .map(|j| format!("nats://{}:{ROUTE_PORT}", ip(net, j)))
        .collect();
    if !routes.is_empty() {
        cmd.arg("--routes").arg(routes.join(","));
    }
    cmd
}

/// A protocol line from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `MSG <subject> <sid> [reply-to] <#bytes>`; the payload and CR LF follow.
    Msg {
        subject: &'a str,
        sid: &'a str,
        reply: Option<&'a str>,
        len: usize,
    },
    Ping,
    Pong,
    /// `+OK`, `INFO {…}` and anything else a client may ignore.
    Other,
    /// `-ERR '…'`.
    Err(&'a str),
}

/// Parses one line (its CR LF may be there or not); `None` if it is malformed.
pub fn parse_op(line: &str) -> Option<Op<'_>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, rest) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    match verb.to_ascii_uppercase().as_str() {
        "MSG" => {
            let w: Vec<&str> = rest.split_ascii_whitespace().collect();
            let (subject, sid, reply, len) = match w.as_slice() {
                [s, i, n] => (*s, *i, None, n),
                [s, i, r, n] => (*s, *i, Some(*r), n),
                _ => return None,
            };
            let len = len.parse().ok()?;
            Some(Op::Msg {
                subject,
                sid,
                reply,
                len,
            })
        }
        "PING" => Some(Op::Ping),
        "PONG" => Some(Op::Pong),
        "-ERR" => Some(Op::Err(rest.trim())),
        "" => None,
        _ => Some(Op::Other),
    }
}

/// What a client reads, PINGs answered.
enum Event {
    Msg(Vec<u8>),
    Pong,
    Other,
}

type Writer = Arc<tokio::sync::Mutex<OwnedWriteHalf>>;

/// Reads the next operation, with its payload for a `MSG`; answers a `PING` itself.
async fn next_event(reader: &mut BufReader<OwnedReadHalf>, writer: &Writer) -> Result<Event> {
    let mut buf = Vec::new();
    let n = reader.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        bail!("the server closed the connection");
    }
    if buf.len() > MAX_LINE {
        bail!("a line of {} bytes from the server", buf.len());
    }
    let text = String::from_utf8_lossy(&buf);
    match parse_op(&text) {
        Some(Op::Msg { len, .. }) if len <= MAX_LINE => {
            let mut payload = vec![0; len + 2];
            reader.read_exact(&mut payload).await?;
            payload.truncate(len);
            Ok(Event::Msg(payload))
        }
        Some(Op::Msg { len, .. }) => bail!("a payload of {len} bytes"),
        Some(Op::Ping) => {
            writer.lock().await.write_all(b"PONG\r\n").await?;
            Ok(Event::Other)
        }
        Some(Op::Pong) => Ok(Event::Pong),
        Some(Op::Err(e)) => bail!("the server said -ERR {e}"),
        Some(Op::Other) => Ok(Event::Other),
        None => bail!("unexpected line from the server: {:?}", text.trim_end()),
    }
}

/// Connects as `name`, subscribes to the subject when `subscribe`, and waits for the PONG that
/// confirms it.
async fn client(
    server: SocketAddr,
    name: &str,
    subscribe: bool,
) -> Result<(BufReader<OwnedReadHalf>, Writer)> {
    let stream = super::connect(server, CLIENT_DEADLINE).await?;
    let (r, w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let writer: Writer = Arc::new(tokio::sync::Mutex::new(w));
    tokio::time::timeout(
        CLIENT_DEADLINE,
        hello(&mut reader, &writer, name, subscribe),
    )
    .await
    .with_context(|| format!("{name} at {server}: no PONG within {CLIENT_DEADLINE:?}"))??;
    Ok((reader, writer))
}

/// `CONNECT`, `SUB` when `subscribe`, `PING`; then reads until the `PONG`.
async fn hello(
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &Writer,
    name: &str,
    subscribe: bool,
) -> Result<()> {
    let mut hello = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"{name}\",\
         \"lang\":\"rust\",\"version\":\"0\",\"protocol\":1}}\r\n"
    );
    if subscribe {
        hello += &format!("SUB {SUBJECT} 1\r\n");
    }
    hello += "PING\r\n";
    writer.lock().await.write_all(hello.as_bytes()).await?;
    while !matches!(next_event(reader, writer).await?, Event::Pong) {}
    Ok(())
}

/// Reads a client's connection until it fails, recording the benchmark's messages in `seen`.
async fn follow(mut reader: BufReader<OwnedReadHalf>, writer: Writer, seen: Option<Seen>) {
    while let Ok(event) = next_event(&mut reader, &writer).await {
        let at = Instant::now();
        if let (Event::Msg(payload), Some(seen)) = (event, &seen)
            && let Some((step, seq)) = std::str::from_utf8(&payload)
                .ok()
                .and_then(load::parse_text)
        {
            super::lock(seen).push((step, seq, at));
        }
    }
}

fn publish(text: &str) -> String {
    format!("PUB {SUBJECT} {}\r\n{text}\r\n", text.len())
}

/// Starts the cluster of `n` servers of `nats_server`, one subscriber on each and the
/// publisher on server 0, and measures the step; stops every server before returning.
pub async fn measure(
    nats_server: &Path,
    n: usize,
    net: u8,
    rate: f64,
    seconds: u64,
) -> Result<StepReport> {
    let mut procs = Procs::new()?;
    for i in 0..n {
        procs.spawn(&format!("nats{i}"), command(nats_server, i, n, net))?;
        let addr = SocketAddr::from((ip(net, i), CLIENT_PORT));
        procs.await_listening(addr, Duration::from_secs(10)).await?;
    }
    let mut tasks = Tasks::default();
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let addr = SocketAddr::from((ip(net, i), CLIENT_PORT));
        let (reader, writer) = client(addr, &format!("sub{i}"), true).await?;
        let seen = Seen::default();
        tasks
            .0
            .push(tokio::spawn(follow(reader, writer, Some(seen.clone()))));
        subs.push(seen);
    }
    let (reader, writer) =
        client(SocketAddr::from((ip(net, 0), CLIENT_PORT)), "pub", false).await?;
    let publisher = Publisher {
        writer: writer.clone(),
        frame: publish,
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
    fn parses_msg_headers_with_and_without_reply() {
        assert_eq!(
            parse_op("MSG bench 1 11\r\n"),
            Some(Op::Msg {
                subject: "bench",
                sid: "1",
                reply: None,
                len: 11
            })
        );
        assert_eq!(
            parse_op("msg bench 7 _INBOX.x 0"),
            Some(Op::Msg {
                subject: "bench",
                sid: "7",
                reply: Some("_INBOX.x"),
                len: 0
            })
        );
        assert_eq!(parse_op("MSG bench 1"), None);
        assert_eq!(parse_op("MSG bench 1 r 2 extra"), None);
        assert_eq!(parse_op("MSG bench 1 -3"), None);
    }

    #[test]
    fn parses_control_lines() {
        assert_eq!(parse_op("PING\r\n"), Some(Op::Ping));
        assert_eq!(parse_op("PONG"), Some(Op::Pong));
        assert_eq!(parse_op("+OK"), Some(Op::Other));
        assert_eq!(parse_op("INFO {\"server_id\":\"x\"}"), Some(Op::Other));
        assert_eq!(
            parse_op("-ERR 'Unknown Protocol Operation'"),
            Some(Op::Err("'Unknown Protocol Operation'"))
        );
        assert_eq!(parse_op("\r\n"), None);
    }

    #[test]
    fn the_publisher_frames_the_payload_length() {
        assert_eq!(publish("bench 1 2"), "PUB bench 9\r\nbench 1 2\r\n");
    }

    #[test]
    fn every_server_routes_to_all_others() {
        let cmd = command(Path::new("nats-server"), 1, 3, 92);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let routes = args
            .iter()
            .skip_while(|a| *a != "--routes")
            .nth(1)
            .expect("routes");
        assert_eq!(routes, "nats://127.0.92.10:16222,nats://127.0.92.12:16222");
        assert_eq!(addrs(2, 92).len(), 4);
    }
}
