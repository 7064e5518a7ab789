//! One IRC connection: the bounded reader and writer, registration within
//! [`REGISTER_WAIT`], then the session's loop over the client's commands and the node's
//! events (public messages, people, private messages), until QUIT, an error, silence or
//! chatd's shutdown.
//!
//! Bounds: a line is at most [`super::line::MAX_LINE`] bytes (longer: the connection is
//! closed; over 512 without tags: `417`, the line is ignored); the outgoing queue holds
//! [`OUT_QUEUE`] lines — a client that does not read is disconnected when it is full, or when
//! one write takes longer than [`WRITE_TIMEOUT`], before its backlog can grow; a client
//! silent for [`PING_AFTER`] is pinged, and one silent for [`IDLE`] is closed. Failed logins
//! are counted per address as on the TCP control listener.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tracing::debug;

use crate::chat::{FeedEvent, MessageId, Room};
use crate::people::Who;
use crate::shutdown::Shutdown;

use super::bridge::Bridge;
use super::caps::Caps;
use super::line::{LineError, Lines, Message};
use super::register::{Login, Next, Registration};
use super::reply::{self, server};

/// Lines waiting for a client to read them, at most.
pub const OUT_QUEUE: usize = 512;
/// Longest one write to the client may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to register from the connection's start.
pub const REGISTER_WAIT: Duration = Duration::from_secs(30);
/// Silence after which the client is pinged.
pub const PING_AFTER: Duration = Duration::from_secs(90);
/// Silence after which the client is taken for gone.
pub const IDLE: Duration = Duration::from_secs(180);
/// How long a guest's nick taken by another client here is waited for at registration.
const GHOST_WAIT: Duration = Duration::from_secs(2);
/// How long a new account's first nickname claim is waited for at login.
const NAME_WAIT: Duration = Duration::from_secs(5);
/// Ids remembered of what this session sent, and of private messages shown.
const REMEMBERED: usize = 1024;

/// Why a session ends.
#[derive(Debug)]
pub enum End {
    /// The client left or the connection broke.
    Gone,
    /// Close with an ERROR line giving this reason.
    Close(String),
}

/// The bounded outgoing queue.
#[derive(Clone, Debug)]
pub struct Out(mpsc::Sender<String>);

impl Out {
    /// A queue of `n` lines and its reading end.
    pub fn pair(n: usize) -> (Out, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(n);
        (Out(tx), rx)
    }

    /// Queues one message; `Err` when the client is not reading (queue full) or gone.
    pub fn send(&self, m: Message) -> Result<(), End> {
        match self.0.try_send(m.to_line()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(End::Close(
                "Slow reader: too many lines waiting for the client".into(),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(End::Gone),
        }
    }

    /// Queues several.
    pub fn all(&self, ms: impl IntoIterator<Item = Message>) -> Result<(), End> {
        ms.into_iter().try_for_each(|m| self.send(m))
    }
}

/// The client's side, read line by line (cancel-safe: what was read stays in `lines`).
struct Reader {
    rd: Box<dyn AsyncRead + Send + Unpin>,
    lines: Lines,
}

/// What the reader gives.
enum Read {
    Line(Message),
    /// A line refused as it stood (the connection goes on).
    Refused(LineError),
}

impl Reader {
    async fn next(&mut self) -> Result<Read, End> {
        loop {
            if let Some(line) = self.lines.next_line() {
                let line = line.map_err(|_| End::Close("Input line too long".into()))?;
                if line.iter().all(|b| *b == b' ') {
                    continue;
                }
                return Ok(match Message::parse(&line) {
                    Ok(m) => Read::Line(m),
                    Err(e) => Read::Refused(e),
                });
            }
            let mut buf = [0u8; 4096];
            let n = self.rd.read(&mut buf).await.map_err(|_| End::Gone)?;
            if n == 0 {
                return Err(End::Gone);
            }
            self.lines
                .push(&buf[..n])
                .map_err(|_| End::Close("Input line too long".into()))?;
        }
    }
}

async fn write_loop(mut wr: Box<dyn AsyncWrite + Send + Unpin>, mut rx: mpsc::Receiver<String>) {
    while let Some(line) = rx.recv().await {
        match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(line.as_bytes())).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, wr.shutdown()).await;
}

/// A password check that counts failures per address (and refuses an address past them).
struct Counted<'a> {
    bridge: &'a Bridge,
    ip: std::net::IpAddr,
}

impl Login for Counted<'_> {
    fn login(&self, password: &str) -> Option<Who> {
        if !self.bridge.may_try(self.ip) {
            return None;
        }
        let who = self.bridge.login(password);
        if who.is_none() {
            self.bridge.failed(self.ip);
        }
        who
    }
}

/// Serves one connection (plain TCP or TLS) until it ends.
pub async fn serve<S>(stream: S, addr: SocketAddr, bridge: Arc<Bridge>, shutdown: Shutdown)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(write_loop(Box::new(wr), rx));
    let out = Out(tx);
    let mut reader = Reader {
        rd: Box::new(rd),
        lines: Lines::default(),
    };
    let end = match run(&mut reader, &out, &bridge, addr, shutdown).await {
        Ok(()) => End::Gone,
        Err(e) => e,
    };
    if let End::Close(reason) = &end {
        debug!(%addr, reason, "irc: closing a connection");
        let _ = out.send(Message::new(
            None,
            "ERROR",
            &[&format!("Closing link: {reason}")],
        ));
    }
    drop(out);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, writer).await;
}

async fn run(
    reader: &mut Reader,
    out: &Out,
    bridge: &Arc<Bridge>,
    addr: SocketAddr,
    mut shutdown: Shutdown,
) -> Result<(), End> {
    // With guests allowed, a throttled address may still come in without a password (each
    // password it tries is still refused while throttled).
    if !bridge.guests && !bridge.may_try(addr.ip()) {
        return Err(End::Close(
            "too many failed logins from this address; wait and retry".into(),
        ));
    }
    let registered = tokio::time::timeout(REGISTER_WAIT, register(reader, out, bridge, addr)).await;
    let r = match registered {
        Ok(r) => r?,
        Err(_) => return Err(End::Close("Registration timed out".into())),
    };
    // A new account (the first login of a local user or of the guest) claims its name
    // in the background: wait for it a little, so the client starts with the right nick.
    // A guest without a password keeps the nick it registered with.
    let named = Instant::now() + NAME_WAIT;
    while !r.guest && bridge.people.nickname(r.who).0.is_none() && Instant::now() < named {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rooms = bridge.rooms().await.map_or(0, |r| r.len());
    let mut s = Session::start(bridge.clone(), &r, addr, out.clone(), rooms)?;
    let end = session_loop(&mut s, reader, out, bridge, &mut shutdown).await;
    let reason = match (&end, &s.quit) {
        (_, Some(q)) => q.clone(),
        (Err(End::Close(why)), None) => why.clone(),
        _ => "Connection closed".to_owned(),
    };
    bridge
        .local
        .remove(s.id, &Message::new(Some(&s.me()), "QUIT", &[&reason]));
    match (end, &s.quit) {
        (Err(e), None) => Err(e),
        (_, Some(_)) => Err(End::Close("Client quit".into())),
        (Ok(()), None) => Ok(()),
    }
}

async fn session_loop(
    s: &mut Session,
    reader: &mut Reader,
    out: &Out,
    bridge: &Arc<Bridge>,
    shutdown: &mut Shutdown,
) -> Result<(), End> {
    let mut feed = s.subscribe(None).await?;
    let mut users = bridge.people.watch();
    // A guest without a password sees none of the guest account's private messages.
    let mut private = bridge.dm.as_ref().filter(|_| !s.guest).map(|d| d.watch());
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let mut pinged = false;
    loop {
        // Biased: what the network already delivered goes out before the client's next
        // command is answered, so a client that synchronises with PING sees it first.
        tokio::select! {
            biased;
            () = shutdown.recv() => return Err(End::Close("chatd is shutting down".into())),
            event = feed.recv() => match event {
                Some(FeedEvent::Message(m)) => s.on_message(&m)?,
                Some(FeedEvent::Lagged { missed, resume_after }) => {
                    s.notice(&format!("fell behind: {missed} messages skipped"))?;
                    feed = s.subscribe(resume_after).await?;
                }
                None => return Err(End::Close("the message feed ended".into())),
            },
            event = users.recv() => match event {
                Ok(e) => s.on_user(&e)?,
                Err(broadcast::error::RecvError::Lagged(_)) => s.resync_users()?,
                Err(broadcast::error::RecvError::Closed) => return Err(End::Close("the people service ended".into())),
            },
            event = recv_private(&mut private) => match event {
                Ok(e) => s.on_private(&e)?,
                Err(broadcast::error::RecvError::Lagged(n)) => s.notice(&format!("fell behind: {n} private events skipped (chatctl dms shows them)"))?,
                Err(broadcast::error::RecvError::Closed) => private = None,
            },
            read = reader.next() => {
                heard = Instant::now();
                pinged = false;
                match read? {
                    Read::Line(m) => s.command(m).await?,
                    Read::Refused(e) => s.refused(&e)?,
                }
            }
            _ = tick.tick() => {
                let silent = heard.elapsed();
                if silent > IDLE {
                    return Err(End::Close("Ping timeout".into()));
                }
                if silent > PING_AFTER && !pinged {
                    pinged = true;
                    out.send(Message::new(None, "PING", &[server()]))?;
                }
            }
        }
        if s.quit.is_some() {
            return Ok(());
        }
    }
}

async fn recv_private(
    rx: &mut Option<broadcast::Receiver<crate::dm::DmEvent>>,
) -> Result<crate::dm::DmEvent, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A finished registration.
pub struct Registered {
    pub who: Who,
    /// The nick asked for.
    pub wish: String,
    pub caps: Caps,
    /// Without a password (`irc.guests`).
    pub guest: bool,
    pub username: String,
    pub realname: String,
}

/// Registration: the account, the nick asked for, the capabilities. A guest's nick must be
/// free among the node's IRC clients and not a network name (`433` otherwise; it may try
/// another).
async fn register(
    reader: &mut Reader,
    out: &Out,
    bridge: &Bridge,
    addr: SocketAddr,
) -> Result<Registered, End> {
    let mut reg = Registration::new(bridge.guests);
    let login = Counted {
        bridge,
        ip: addr.ip(),
    };
    loop {
        let m = match reader.next().await? {
            Read::Line(m) => m,
            Read::Refused(e) => {
                out.send(refusal("*", &e))?;
                continue;
            }
        };
        let (replies, next) = reg.on(&m, &login);
        out.all(replies)?;
        match next {
            Next::More => {}
            Next::Done { who, nick, guest } => {
                if guest && !nick_frees(bridge, &nick).await {
                    out.send(reply::numeric(
                        "433",
                        "*",
                        &[&nick, "Nickname is already in use"],
                    ))?;
                    reg.nick_refused();
                    continue;
                }
                return Ok(Registered {
                    who,
                    wish: nick,
                    caps: reg.caps.clone(),
                    guest,
                    username: reg.username.clone(),
                    realname: reg.realname.clone(),
                });
            }
            Next::Close(reason) => return Err(End::Close(reason)),
        }
    }
}

/// Whether a guest may take `nick`, waiting up to [`GHOST_WAIT`] for another client of the
/// node holding it to go (a client reconnecting at once often comes before the server has
/// seen its previous connection close).
async fn nick_frees(bridge: &Bridge, nick: &str) -> bool {
    let until = Instant::now() + GHOST_WAIT;
    loop {
        if bridge.guest_nick_free(nick, None) {
            return true;
        }
        if Instant::now() >= until || bridge.people.find(nick).is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reply to a refused line.
fn refusal(nick: &str, e: &LineError) -> Message {
    match e {
        LineError::TooLong | LineError::TagsTooLong => {
            reply::numeric("417", nick, &["Input line was too long"])
        }
        other => Message::new(
            Some(server()),
            "FAIL",
            &["*", "INVALID_LINE", &format!("line refused: {other}")],
        ),
    }
}

/// A registered client's state.
pub struct Session {
    pub bridge: Arc<Bridge>,
    /// This client's id among the node's IRC clients ([`super::local::Local`]).
    pub id: u64,
    /// Registered without a password: a guest of this node (`irc.guests`).
    pub guest: bool,
    /// The USER command's user name (a guest's mask shows it).
    pub username: String,
    pub who: Who,
    pub account: [u8; 32],
    /// The nick the client has now.
    pub nick: String,
    pub caps: Caps,
    /// The send limiter's key.
    pub key: String,
    pub joined: BTreeSet<Room>,
    pub out: Out,
    /// Shown names of people, by account (for NICK and QUIT lines).
    pub names: HashMap<[u8; 32], String>,
    /// Public messages this session sent (not echoed back without echo-message).
    pub sent: VecDeque<MessageId>,
    /// Private messages shown (or sent) and their last state (edit time, deleted).
    pub private_seen: HashMap<[u8; 16], (u64, bool)>,
    private_order: VecDeque<[u8; 16]>,
    /// The client sent QUIT (with this reason).
    pub quit: Option<String>,
}

impl Drop for Session {
    /// Whatever ended the session (an error while welcoming the client included), it leaves
    /// the node's IRC clients; after the QUIT `run` shows this changes nothing.
    fn drop(&mut self) {
        let line = Message::new(Some(&self.me()), "QUIT", &["Connection closed"]);
        self.bridge.local.remove(self.id, &line);
    }
}

impl Session {
    fn start(
        bridge: Arc<Bridge>,
        r: &Registered,
        addr: SocketAddr,
        out: Out,
        rooms: usize,
    ) -> Result<Session, End> {
        let (who, wish, caps) = (r.who, r.wish.as_str(), r.caps.clone());
        let account = bridge
            .people
            .account_of(who)
            .map_err(|e| End::Close(e.to_string()))?;
        let (held, _) = bridge.people.nickname(who);
        let nick = match held {
            _ if r.guest => wish.to_owned(),
            Some(n) if who == Who::Token => format!("*{n}"),
            Some(n) => n,
            None if who == Who::Token => "*guest".to_owned(),
            None => wish.to_owned(),
        };
        let node = bridge.node.id().0;
        let mask = if r.guest {
            super::members::guest_mask(&nick, &r.username, &node)
        } else {
            reply::mask(&nick, &account, &node)
        };
        let id = bridge
            .local
            .add(
                &nick,
                mask,
                &r.username,
                &r.realname,
                r.guest,
                account,
                caps.clone(),
                out.clone(),
                r.guest,
            )
            .ok_or_else(|| End::Close(format!("{nick}: nickname taken meanwhile")))?;
        let mut s = Session {
            key: format!("irc:{who:?}:{}", addr.ip()),
            id,
            guest: r.guest,
            username: r.username.clone(),
            bridge,
            who,
            account,
            nick,
            caps,
            joined: BTreeSet::new(),
            out,
            names: HashMap::new(),
            sent: VecDeque::new(),
            private_seen: HashMap::new(),
            private_order: VecDeque::new(),
            quit: None,
        };
        s.resync_users()?;
        s.welcome(wish, rooms)?;
        Ok(s)
    }

    /// The feed, after `resume_after` if this node still has it, else from now.
    async fn subscribe(
        &self,
        resume_after: Option<crate::chat::MessageId>,
    ) -> Result<mpsc::Receiver<FeedEvent>, End> {
        match self.bridge.subscribe(resume_after).await {
            Ok(Some(rx)) => Ok(rx),
            Ok(None) => Err(End::Close(
                "too many open subscriptions on this node (chat.max_subscribers)".into(),
            )),
            Err(e) => Err(End::Close(e.to_string())),
        }
    }

    /// A numeric to this client.
    pub fn num(&self, code: &str, params: &[&str]) -> Result<(), End> {
        self.out.send(reply::numeric(code, &self.nick, params))
    }

    /// A NOTICE from the server to this client.
    pub fn notice(&self, text: &str) -> Result<(), End> {
        self.out.send(Message::new(
            Some(server()),
            "NOTICE",
            &[&self.nick, &super::line::clean(text)],
        ))
    }

    /// This client's own `nick!user@host`.
    pub fn me(&self) -> String {
        let node = self.bridge.node.id().0;
        if self.guest {
            return super::members::guest_mask(&self.nick, &self.username, &node);
        }
        reply::mask(&self.nick, &self.account, &node)
    }

    fn refused(&self, e: &LineError) -> Result<(), End> {
        self.out.send(refusal(&self.nick, e))
    }

    fn welcome(&self, wish: &str, rooms: usize) -> Result<(), End> {
        let n = &self.nick;
        let node = self.bridge.node.id().short();
        self.num(
            "001",
            &[&format!("Welcome to the chatd network, {}", self.me())],
        )?;
        self.num(
            "002",
            &[&format!(
                "Your host is {} (node {node}), running chatd {}",
                server(),
                crate::node::VERSION
            )],
        )?;
        self.num("003", &["This server is a node of a decentralised network"])?;
        self.num("004", &[server(), crate::node::VERSION, "i", "n"])?;
        self.num(
            "005",
            &[
                "CASEMAPPING=ascii",
                "CHANTYPES=#",
                "CHANMODES=,,,n",
                "PREFIX=",
                "NICKLEN=32",
                &format!("CHANNELLEN={}", crate::chat::room::MAX_ROOM_LEN + 1),
                &format!("AWAYLEN={}", crate::people::event::MAX_AWAY_BYTES),
                "TARGMAX=PRIVMSG:1,NOTICE:1,JOIN:,PART:,WHOIS:1",
                "NETWORK=chatd",
                &format!("CHATHISTORY={}", super::history::MAX_HISTORY),
                "MSGREFTYPES=msgid,timestamp",
                "UTF8ONLY",
                "WHOX",
                "are supported by this server",
            ],
        )?;
        self.lusers(rooms)?;
        self.num("422", &["MOTD File is missing"])?;
        self.out
            .send(Message::new(Some(&self.me()), "MODE", &[n, "+i"]))?;
        if !self.guest && !wish.eq_ignore_ascii_case(n) {
            self.notice(&format!(
                "You are {n} on the network (your account's nickname); /nick NAME claims another"
            ))?;
        }
        Ok(())
    }

    /// Remembers `id` as sent by this session.
    pub fn remember_sent(&mut self, id: MessageId) {
        if self.sent.len() == REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back(id);
    }

    /// Records a private message's state; `None` if first seen, else the state before.
    pub fn private_state(&mut self, id: [u8; 16], state: (u64, bool)) -> Option<(u64, bool)> {
        let before = self.private_seen.insert(id, state);
        if before.is_none() {
            if self.private_order.len() == REMEMBERED
                && let Some(old) = self.private_order.pop_front()
            {
                self.private_seen.remove(&old);
            }
            self.private_order.push_back(id);
        }
        before
    }

    /// Re-reads every shown name (after missing user events).
    pub fn resync_users(&mut self) -> Result<(), End> {
        self.names = self
            .bridge
            .people
            .list()
            .into_iter()
            .map(|(name, u)| (u.account, name))
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_does_not_read_is_closed_when_its_queue_is_full() {
        let (tx, mut rx) = mpsc::channel(OUT_QUEUE);
        let out = Out(tx);
        for i in 0..OUT_QUEUE {
            out.send(Message::new(None, "PING", &[&i.to_string()]))
                .expect("room in the queue");
        }
        match out.send(Message::new(None, "PING", &["one more"])) {
            Err(End::Close(reason)) => assert!(reason.contains("Slow reader"), "{reason}"),
            other => panic!("expected a close, got {other:?}"),
        }
        assert_eq!(rx.try_recv().ok().as_deref(), Some("PING 0\r\n"));
        drop(rx);
        assert!(matches!(
            out.send(Message::new(None, "PING", &["x"])),
            Err(End::Gone)
        ));
    }

    #[test]
    fn refused_lines_say_why() {
        assert!(
            refusal("me", &LineError::TooLong)
                .to_line()
                .contains(" 417 me ")
        );
        assert!(
            refusal("me", &LineError::Control)
                .to_line()
                .starts_with(":chatd FAIL * INVALID_LINE")
        );
    }
}
