//! gossip-node: one rust-libp2p gossipsub node, the third anchor of `chat-bench --compare`
//! (issue 33). chat-bench starts one process per node on loopback and talks to each through a
//! trivial line protocol on a local TCP port, as it talks IRC and NATS to the other anchors.
//!
//! The node: an ed25519 identity (derived from `--seed`, so runs are repeatable), QUIC on
//! `--listen` (UDP, loopback), gossipsub with `MessageAuthenticity::Signed` and
//! `ValidationMode::Strict` (every message signed by its origin and its signature checked on
//! every node) and otherwise the library's default parameters (mesh degree D = 6, heartbeat
//! 1 s, flood publishing), one topic. It dials every `--peer` (retrying a failed dial a few
//! times) so that the mesh forms.
//!
//! The line protocol on `--control` (TCP), one command or answer per line ending in `\n`:
//! - `SUB` → `OK`: from now on the client receives `MSG <payload>` for every message the node
//!   delivers on the topic, its own publishes included (as a NATS server delivers to its local
//!   subscribers);
//! - `PUB <payload>` → nothing on success (the node signs and publishes), `ERR <why>` if
//!   gossipsub refuses (e.g. no peer yet);
//! - `MESH` → `MESH <mesh peers> <peers subscribed to the topic>`;
//! - anything else → `ERR unknown command`.
//!
//! Bounded: lines of at most [`MAX_LINE`] bytes (a longer one closes the connection), at most
//! [`MAX_CLIENTS`] clients (more are told `ERR too many clients` and closed), at most
//! [`CLIENT_QUEUE`] lines queued per client (a client that falls that far behind is closed, as
//! NATS closes a slow consumer), the command channel to the swarm bounded too. Received
//! messages whose payload holds a line break are not shown (they could not be framed).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::multiaddr::{Multiaddr, Protocol};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Swarm, identity};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// The longest line a client may send (payload and command word included).
const MAX_LINE: usize = 4096;
/// The most clients connected at once.
const MAX_CLIENTS: usize = 64;
/// Lines queued for one client before it is closed as too slow.
const CLIENT_QUEUE: usize = 4096;
/// Commands queued from all clients to the swarm's task.
const COMMAND_QUEUE: usize = 4096;
/// How often a failed dial is tried again, and how long apart.
const DIAL_ATTEMPTS: u32 = 20;
const DIAL_RETRY: Duration = Duration::from_millis(250);
/// The topic every message goes to.
const TOPIC: &str = "bench";

/// A line to one client.
type Line = Arc<[u8]>;

/// What a client asks of the swarm's task.
enum Command {
    Sub(mpsc::Sender<Line>),
    Pub(Vec<u8>, mpsc::Sender<Line>),
    Mesh(mpsc::Sender<Line>),
}

struct Args {
    listen: SocketAddr,
    control: SocketAddr,
    seed: u64,
    peers: Vec<SocketAddr>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let (mut listen, mut control, mut seed, mut peers) = (None, None, None, Vec::new());
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().context("--listen IP:PORT")?),
            "--control" => control = Some(value.parse().context("--control IP:PORT")?),
            "--seed" => seed = Some(value.parse().context("--seed N")?),
            "--peer" => peers.push(value.parse().context("--peer IP:PORT")?),
            _ => bail!("unknown argument {flag}"),
        }
    }
    Ok(Args {
        listen: listen.context("--listen IP:PORT is required")?,
        control: control.context("--control IP:PORT is required")?,
        seed: seed.context("--seed N is required")?,
        peers,
    })
}

/// The QUIC multiaddress of a UDP socket address.
fn quic_addr(a: SocketAddr) -> Multiaddr {
    Multiaddr::from(a.ip())
        .with(Protocol::Udp(a.port()))
        .with(Protocol::QuicV1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let mut secret = [0u8; 32];
    secret[..8].copy_from_slice(&args.seed.to_le_bytes());
    secret[8..16].copy_from_slice(b"gossipnd");
    let keypair = identity::Keypair::ed25519_from_bytes(secret).context("identity")?;
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .build()
        .map_err(|e| anyhow::anyhow!("gossipsub configuration: {e}"))?;
    let behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), config)
        .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        .with_behaviour(|_| behaviour)
        .map_err(|e| anyhow::anyhow!("gossipsub: {e:?}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let topic = IdentTopic::new(TOPIC);
    swarm
        .behaviour_mut()
        .subscribe(&topic)
        .map_err(|e| anyhow::anyhow!("subscribing: {e:?}"))?;
    swarm
        .listen_on(quic_addr(args.listen))
        .context("listening on QUIC")?;
    let mut dials: HashMap<ConnectionId, (Multiaddr, u32)> = HashMap::new();
    for p in &args.peers {
        dial(&mut swarm, &mut dials, quic_addr(*p), 1);
    }
    // The control port last: chat-bench takes a listening control port for a started node.
    let listener = TcpListener::bind(args.control)
        .await
        .with_context(|| format!("binding the control port {}", args.control))?;
    let (commands, mut queue) = mpsc::channel(COMMAND_QUEUE);
    tokio::spawn(accept(listener, commands));
    let (retry_tx, mut retries) = mpsc::unbounded_channel::<(Multiaddr, u32)>();
    let mut subscribers: Vec<mpsc::Sender<Line>> = Vec::new();
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                    deliver(&mut subscribers, &message.data);
                }
                SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                    if let Some((addr, attempt)) = dials.remove(&connection_id) {
                        eprintln!("gossip-node: dialing {addr} (attempt {attempt}): {error}");
                        if attempt < DIAL_ATTEMPTS {
                            let tx = retry_tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(DIAL_RETRY).await;
                                let _ = tx.send((addr, attempt + 1));
                            });
                        }
                    }
                }
                SwarmEvent::ConnectionEstablished { connection_id, .. } => {
                    dials.remove(&connection_id);
                }
                _ => {}
            },
            Some((addr, attempt)) = retries.recv() => dial(&mut swarm, &mut dials, addr, attempt),
            Some(command) = queue.recv() => match command {
                Command::Sub(to) => {
                    if to.try_send(line(b"OK", b"")).is_ok() {
                        subscribers.push(to);
                    }
                }
                Command::Pub(data, from) => {
                    match swarm.behaviour_mut().publish(topic.clone(), data.clone()) {
                        Ok(_) => deliver(&mut subscribers, &data),
                        Err(e) => {
                            let _ = from.try_send(line(b"ERR ", format!("{e}").as_bytes()));
                        }
                    }
                }
                Command::Mesh(to) => {
                    let hash = topic.hash();
                    let mesh = swarm.behaviour().mesh_peers(&hash).count();
                    let peers = swarm
                        .behaviour()
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&hash))
                        .count();
                    let _ = to.try_send(line(b"MESH ", format!("{mesh} {peers}").as_bytes()));
                }
            },
        }
    }
}

fn dial(
    swarm: &mut Swarm<gossipsub::Behaviour>,
    dials: &mut HashMap<ConnectionId, (Multiaddr, u32)>,
    addr: Multiaddr,
    attempt: u32,
) {
    let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
    let id = opts.connection_id();
    match swarm.dial(opts) {
        Ok(()) => {
            dials.insert(id, (addr, attempt));
        }
        Err(e) => eprintln!("gossip-node: dialing {addr}: {e}"),
    }
}

/// `head` and `body` as one line.
fn line(head: &[u8], body: &[u8]) -> Line {
    let mut l = Vec::with_capacity(head.len() + body.len() + 1);
    l.extend_from_slice(head);
    l.extend_from_slice(body);
    l.push(b'\n');
    l.into()
}

/// Queues `MSG <data>` to every subscriber; one whose queue is full or gone is dropped (its
/// connection then closes).
fn deliver(subscribers: &mut Vec<mpsc::Sender<Line>>, data: &[u8]) {
    if data.contains(&b'\n') || subscribers.is_empty() {
        return;
    }
    let msg = line(b"MSG ", data);
    subscribers.retain(|s| match s.try_send(msg.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            eprintln!("gossip-node: a subscriber fell {CLIENT_QUEUE} lines behind: closed");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
}

async fn accept(listener: TcpListener, commands: mpsc::Sender<Command>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let commands = commands.clone();
                tokio::spawn(async move {
                    client(stream, commands).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let _ = stream.write_all(b"ERR too many clients\n").await;
                });
            }
        }
    }
}

/// Serves one client until it closes, sends a bad line, or falls behind.
async fn client(stream: TcpStream, commands: mpsc::Sender<Command>) {
    let (r, mut w) = stream.into_split();
    let (to_client, mut outbox) = mpsc::channel::<Line>(CLIENT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(l) = outbox.recv().await {
            if w.write_all(&l).await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(r);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
        match (&mut reader).take(limit).read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') {
            let _ = to_client.try_send(line(b"ERR ", b"line too long or cut"));
            break;
        }
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let command = match buf.as_slice() {
            b"SUB" => Command::Sub(to_client.clone()),
            b"MESH" => Command::Mesh(to_client.clone()),
            l if l.starts_with(b"PUB ") => Command::Pub(l[4..].to_vec(), to_client.clone()),
            _ => {
                let _ = to_client.try_send(line(b"ERR ", b"unknown command"));
                continue;
            }
        };
        if commands.send(command).await.is_err() {
            break;
        }
    }
    drop(to_client);
    // The writer flushes what is queued (an `ERR` last); the swarm's task may still hold a
    // sender (a subscription), so it is ended after a short while in any case.
    let abort = writer.abort_handle();
    let _ = tokio::time::timeout(Duration::from_millis(200), writer).await;
    abort.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args> {
        parse_args(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments_are_parsed_and_checked() {
        let a = args(&[
            "--listen",
            "127.0.93.10:19093",
            "--control",
            "127.0.93.10:14093",
            "--seed",
            "3",
            "--peer",
            "127.0.93.11:19093",
        ])
        .expect("valid");
        assert_eq!(a.seed, 3);
        assert_eq!(a.peers.len(), 1);
        assert_eq!(
            quic_addr(a.listen).to_string(),
            "/ip4/127.0.93.10/udp/19093/quic-v1"
        );
        assert!(args(&["--listen", "127.0.93.10:1"]).is_err());
        assert!(args(&["--seed"]).is_err());
        assert!(args(&["--bogus", "1"]).is_err());
    }

    #[test]
    fn deliveries_skip_unframable_payloads_and_drop_slow_subscribers() {
        let (fast, mut fast_rx) = mpsc::channel(4);
        let (slow, _slow_rx) = mpsc::channel(1);
        let mut subs = vec![fast, slow];
        deliver(&mut subs, b"a\nb");
        assert!(fast_rx.try_recv().is_err());
        deliver(&mut subs, b"one");
        deliver(&mut subs, b"two");
        assert_eq!(subs.len(), 1, "the slow one is dropped");
        assert_eq!(&*fast_rx.try_recv().expect("one"), b"MSG one\n");
        assert_eq!(&*fast_rx.try_recv().expect("two"), b"MSG two\n");
    }
}
