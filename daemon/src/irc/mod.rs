//! The IRC front door: any IRC client pointed at `irc.listen` (default `127.0.0.1:6667`) gets
//! the whole network — rooms as channels, `/msg` as end-to-end encrypted private messages,
//! people's comings and goings as JOIN/QUIT/AWAY/NICK — through this node's services.
//!
//! - `line.rs`: the line codec and its bounds (512 bytes, 8 KiB of tags, no CR/LF/NUL);
//! - `caps.rs`: the IRCv3 capabilities offered and enabled;
//! - `reply.rs`: numerics, masks, `server-time` values;
//! - `register.rs`: registration, CAP negotiation, SASL PLAIN and PASS, without I/O;
//! - `secret.rs`: the per-account IRC passwords (`chatctl irc-password`);
//! - `bridge.rs`: the mapping onto the chat, people and private-conversation services;
//! - `session.rs`: one connection (bounded queues, timeouts) and its event loop;
//! - `commands.rs`: the client's commands; `events.rs`: the network's events as IRC lines;
//! - `history.rs`: `CHATHISTORY` (draft/chathistory) from this node's history;
//! - `local.rs`: the node's connected IRC clients (unique guest nicks, per-connection
//!   channel membership, which client sent which public message);
//! - `members.rs`: NAMES, LUSERS, KICK and what a guest without a password does
//!   (`irc.guests`); `who.rs`: WHO and WHOX;
//! - `tls.rs`: TLS from `irc.tls_cert`/`irc.tls_key` (required off loopback);
//! - this file: binding `irc.listen` and the bounded accept loop.
//!
//! The IRC service sits behind the other services: it uses them, nothing uses it (the gRPC
//! and web code do not depend on it). See docs/irc.md.

mod bridge;
mod caps;
mod commands;
mod events;
mod history;
pub mod line;
mod local;
mod members;
mod register;
mod reply;
pub mod secret;
mod session;
mod tls;
mod who;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::chat::Chat;
use crate::chat::ratelimit::Rate;
use crate::config::{Access, Irc};
use crate::node::Node;
use crate::people::People;
use crate::shutdown::Shutdown;

pub use bridge::Bridge;
pub use secret::{IrcLink, Secret};

/// Time for a TLS client to finish its handshake.
const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// Open IRC connections at most; more are told so and closed at once.
pub const MAX_CONNECTIONS: usize = 64;

/// Why the IRC listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum IrcError {
    /// An address given in the configuration cannot be bound.
    #[error("irc.listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("irc.tls_cert/irc.tls_key: {0}")]
    Tls(String),
    /// The password key cannot be read or written.
    #[error("irc: the password key irc.key: {0}")]
    Key(#[from] crate::identity::IdentityError),
}

/// A bound IRC listener, ready to serve.
pub struct IrcListener {
    listener: TcpListener,
    addr: SocketAddr,
    secret: Secret,
    tls: Option<tokio_rustls::TlsAcceptor>,
    guests: bool,
}

impl IrcListener {
    /// Binds `irc.listen`. A default address that is taken logs one warning and gives `None`;
    /// an address given explicitly is an error. With `irc.tls_cert`/`irc.tls_key` the
    /// certificate is loaded here (a bad one is an error) and the listener speaks TLS only;
    /// the configuration refuses an address off loopback without them.
    pub async fn bind(irc: &Irc, data_dir: &Path) -> Result<Option<IrcListener>, IrcError> {
        let Some(addr) = irc.listen else {
            return Ok(None);
        };
        let tls = match irc.tls() {
            Some((cert, key)) => Some(tls::acceptor(cert, key)?),
            None => None,
        };
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if !irc.explicit => {
                warn!(
                    "irc.listen: the default address {addr} is not available ({e}); running without the IRC front door"
                );
                return Ok(None);
            }
            Err(source) => return Err(IrcError::Bind { addr, source }),
        };
        let addr = listener.local_addr().unwrap_or(addr);
        let secret = Secret::open(data_dir)?;
        reply::set_server_name(&irc.server_name);
        Ok(Some(IrcListener {
            listener,
            addr,
            secret,
            tls,
            guests: irc.guests,
        }))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` fires; returns the link for `GetIrcPassword` at once.
    pub fn serve(
        self,
        data_dir: &Path,
        chat: Chat,
        people: Arc<People>,
        node: Arc<Node>,
        access: &Access,
        shutdown: Shutdown,
    ) -> Result<(IrcLink, impl Future<Output = ()> + Send + 'static), IrcError> {
        let rate = Rate {
            per_second: access.send_rate,
            burst: f64::from(access.send_burst),
        };
        let token = access.token.as_ref().map(|t| t.1.0.as_str().to_owned());
        let clients = Arc::new(AtomicU64::new(0));
        let guests = self.guests;
        let link = IrcLink::new(self.addr, Secret::open(data_dir)?, clients.clone());
        let bridge = Arc::new(Bridge::new(
            chat,
            people,
            node,
            self.secret,
            token,
            rate,
            guests,
        ));
        let addr = self.addr;
        let tls = self.tls;
        let fut = async move {
            let kind = if tls.is_some() { "TLS" } else { "plain text" };
            info!(irc = %addr, "IRC front door on {addr} ({kind})");
            accept_loop(self.listener, bridge, clients, tls, shutdown).await;
        };
        Ok((link, fut))
    }
}

async fn accept_loop(
    listener: TcpListener,
    bridge: Arc<Bridge>,
    clients: Arc<AtomicU64>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.recv() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (mut stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                debug!(error = %e, "irc: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%addr, "irc: too many connections; closing a new one");
            conns.spawn(async move {
                use tokio::io::AsyncWriteExt;
                let line = b"ERROR :Closing link: too many connections to this node\r\n";
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(line)).await;
            });
            continue;
        };
        let (bridge, clients, stop) = (bridge.clone(), clients.clone(), shutdown.clone());
        let tls = tls.clone();
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            clients.fetch_add(1, Ordering::Relaxed);
            match tls {
                None => session::serve(stream, addr, bridge, stop).await,
                Some(tls) => match tokio::time::timeout(HANDSHAKE_WAIT, tls.accept(stream)).await {
                    Ok(Ok(s)) => session::serve(s, addr, bridge, stop).await,
                    Ok(Err(e)) => debug!(%addr, error = %e, "irc: TLS handshake failed"),
                    Err(_) => debug!(%addr, "irc: no TLS handshake in time"),
                },
            }
            clients.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    conns.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_default_address_is_skipped_a_taken_given_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let irc = |explicit| Irc {
            listen: Some(addr),
            explicit,
            tls_cert: None,
            tls_key: None,
            guests: false,
            server_name: "chatd".into(),
        };
        assert!(
            IrcListener::bind(&irc(false), dir.path())
                .await
                .expect("no error")
                .is_none()
        );
        let err = IrcListener::bind(&irc(true), dir.path())
            .await
            .err()
            .expect("an error");
        assert!(
            err.to_string().starts_with("irc.listen: cannot listen on"),
            "{err}"
        );
        let off = Irc {
            listen: None,
            explicit: true,
            tls_cert: None,
            tls_key: None,
            guests: false,
            server_name: "chatd".into(),
        };
        assert!(
            IrcListener::bind(&off, dir.path())
                .await
                .expect("ok")
                .is_none()
        );
        let free = Irc {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            explicit: true,
            tls_cert: None,
            tls_key: None,
            guests: false,
            server_name: "chatd".into(),
        };
        let l = IrcListener::bind(&free, dir.path())
            .await
            .expect("binds")
            .expect("serves");
        assert_ne!(l.addr().port(), 0);
        assert!(dir.path().join("irc.key").exists());
    }
}
