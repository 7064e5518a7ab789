//! The web live view, `/metrics` and `/healthz`, served by chatd itself on `web.listen`
//! (default `127.0.0.1:7480`) with axum.
//!
//! - `/`: one page (HTML, CSS and JS embedded in the binary, `assets/`) with the rooms' live
//!   timeline, a room switcher, the users with their presence, the event log, the ring's status
//!   and a box to send, and a Network view drawing the ring as this node sees it ([`map`]);
//!   it talks to `/ws` ([`ws`]).
//! - `/metrics`: Prometheus (OpenMetrics) text, with `prometheus-client` ([`metrics`]).
//! - `/healthz`: 200 once the node has joined a ring, 503 before.
//! - `/files/{hash}`: a file from this node's blob store, fetched first if not held, with
//!   headers that keep untrusted bytes harmless ([`files`]); `POST /files`: an upload from the
//!   page, sent to a room as a message with the file, or (`voice=1`) a recording from the
//!   page's record button sent as a voice message ([`upload`]; the page's player and recorder
//!   are `assets/voice.js`).
//! - `/private-files/{id}`: the decrypted file of the logged-in account's private message
//!   `id`, for that account's session only ([`private_files`]).
//!
//! Who may read and send is [`auth`]'s business. The web view is a front door beside the gRPC
//! API, over the same services' client operations (`crate::ops`: the same bounded
//! subscriptions, the same per-client send limits — one [`ChatOps`] shared with the API), so a
//! web client can no more slow the ring than an API client can; it never calls a gRPC handler,
//! and maps the operations' errors to what a page sees in one place ([`error`]). Connections are
//! bounded ([`MAX_CONNECTIONS`], more are closed at once; headers must come within
//! [`listener::HEADER_TIMEOUT`]), and so are WebSocket clients ([`MAX_CLIENTS`]) and their
//! frames ([`MAX_FRAME`]). On loopback a request must name a loopback host (`Host`), so a web
//! site cannot read the view through DNS rebinding. Every response carries a strict
//! Content-Security-Policy; the page writes what it receives as text, never as HTML.

pub mod auth;
mod error;
pub mod files;
pub mod frames;
mod listener;
mod map;
mod metrics;
mod private_files;
mod upload;
mod ws;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::chat::Chat;
use crate::config::{Access, Web};
use crate::node::Node;
use crate::ops::{ChatOps, PrivateOps, UserOps};
use crate::people::People;
use crate::shutdown::Shutdown;
use auth::{Auth, Proof};
use listener::Client;

/// Open HTTP connections at most; more are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 128;
/// WebSocket clients at most; more get 503.
pub const MAX_CLIENTS: usize = 64;
/// Largest WebSocket message or frame a client may send.
pub const MAX_FRAME: usize = 16 * 1024;

/// The policy every response carries: nothing but this origin's own files and WebSocket.
/// Images also from `data:` (the thumbnails a message carries, checked JPEGs) and `blob:` (a
/// file fetched with the page's session off loopback); audio (voice messages' players) from
/// this origin's `/files/` and `blob:` alike.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// Why the web view cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// An address given in the configuration cannot be bound.
    #[error("web.listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The session key cannot be read or written.
    #[error("web view: {0}")]
    Key(std::io::Error),
}

/// A bound web listener, ready to serve.
pub struct WebListener {
    listener: TcpListener,
    auth: Arc<Auth>,
    addr: SocketAddr,
    clients: Arc<Semaphore>,
}

/// What `GetWebLink` needs: where the web view listens and how to sign a login ticket; and
/// how many pages are connected, for `GetStatus`.
pub struct WebLink {
    auth: Arc<Auth>,
    addr: SocketAddr,
    clients: Arc<Semaphore>,
}

impl std::fmt::Debug for WebLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebLink").field("addr", &self.addr).finish()
    }
}

impl crate::ops::WebFront for WebLink {
    fn login_link(&self, who: crate::people::Who) -> (String, u64) {
        self.link(who)
    }
}

impl WebLink {
    /// A login link for `who`, and when it expires (Unix milliseconds).
    pub fn link(&self, who: crate::people::Who) -> (String, u64) {
        let (ticket, exp) = self.auth.ticket(who);
        let mut host = self.addr;
        if host.ip().is_unspecified() {
            host.set_ip(match host {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        (format!("http://{host}/#login={ticket}"), exp)
    }

    /// Pages connected over `/ws`.
    pub fn pages(&self) -> usize {
        MAX_CLIENTS - self.clients.available_permits()
    }
}

impl WebListener {
    /// Binds `web.listen`. A default address that is taken (another chatd on this machine)
    /// logs one warning and gives `None`; an address given explicitly is an error.
    pub async fn bind(
        web: &Web,
        access: &Access,
        data_dir: &Path,
    ) -> Result<Option<WebListener>, WebError> {
        let Some(addr) = web.listen else {
            return Ok(None);
        };
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) if !web.explicit => {
                warn!(
                    "web.listen: the default address {addr} is not available ({e}); running without the web view"
                );
                return Ok(None);
            }
            Err(source) => return Err(WebError::Bind { addr, source }),
        };
        let addr = listener.local_addr().unwrap_or(addr);
        let closed = !addr.ip().is_loopback();
        let token = access.token.as_ref().map(|t| t.1.clone());
        let auth = Arc::new(Auth::open(data_dir, addr, token, closed).map_err(WebError::Key)?);
        Ok(Some(WebListener {
            listener,
            auth,
            addr,
            clients: Arc::new(Semaphore::new(MAX_CLIENTS)),
        }))
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `GetWebLink` uses.
    pub fn link(&self) -> WebLink {
        WebLink {
            auth: self.auth.clone(),
            addr: self.addr,
            clients: self.clients.clone(),
        }
    }

    /// Serves until `shutdown` fires (or the round-trip sampler ends, which the app's
    /// supervision sees as this task ending). `status` is the node's status (it counts this
    /// view's pages: [`WebLink::pages`]).
    pub async fn serve(
        self,
        node: Arc<Node>,
        status: crate::status::NodeStatus,
        chat: Chat,
        people: Arc<People>,
        chat_ops: ChatOps,
        shutdown: Shutdown,
    ) {
        let refused = Arc::new(AtomicU64::new(0));
        let state = Arc::new(Shared {
            status,
            users: UserOps::new(people.clone(), node.clone()),
            chat_ops,
            private: node
                .private()
                .map(|dm| PrivateOps::new(dm, people.clone(), node.clone())),
            node: node.clone(),
            chat: chat.clone(),
            people,
            auth: self.auth.clone(),
            clients: self.clients.clone(),
            refused: refused.clone(),
            port: self.addr.port(),
            files: files::FileRoutes::default(),
        });
        let sampler = metrics::sample_rtt(node, chat);
        info!(web = %self.addr, "web view on http://{}/ (metrics on /metrics)", self.addr);
        let app = Router::new()
            .route("/", get(page))
            .route("/app.js", get(script))
            .route("/map.js", get(map_script))
            .route("/voice.js", get(voice_script))
            .route("/style.css", get(style))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics::metrics))
            .route("/ws", get(ws::upgrade))
            .route("/files", axum::routing::post(upload::upload))
            .route("/files/{hash}", get(files::download))
            .route("/private-files/{id}", get(private_files::download))
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                local_host,
            ))
            .layer(axum::middleware::map_response(secure))
            .with_state(state);
        // The sampler runs as long as the view: never alone, so its end is this task's.
        tokio::select! {
            () = listener::serve(self.listener, app, MAX_CONNECTIONS, refused, shutdown) => {}
            () = sampler => {}
        }
    }
}

/// What every handler shares.
pub(crate) struct Shared {
    /// The node's status (`/metrics`, the status frames).
    status: crate::status::NodeStatus,
    /// The people service's operations (the user list and its changes).
    users: UserOps,
    /// The chat service's operations (the feed, sends), shared with the gRPC API.
    chat_ops: ChatOps,
    /// Private conversations, for pages logged in as an account.
    private: Option<PrivateOps>,
    node: Arc<Node>,
    chat: Chat,
    people: Arc<People>,
    auth: Arc<Auth>,
    clients: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
    /// The port the web view listens on (allowed `Host` headers on loopback).
    port: u16,
    /// The file routes' bounds and remembered verdicts ([`files`], [`upload`]).
    files: files::FileRoutes,
}

type AppState = State<Arc<Shared>>;

impl Shared {
    /// Whether `/metrics` may be read: freely on loopback, with the bearer token elsewhere;
    /// `Ok(true)` when the request presented the bearer token (it then sees the private
    /// message counters too).
    fn admit_metrics(&self, headers: &HeaderMap, from: &Client) -> Result<bool, Refusal> {
        if !self.auth.closed {
            return Ok(self.auth.bearer(headers) == Proof::Token);
        }
        let ip = from.0.ip();
        if !self.auth.may_try(ip) {
            return Err(Refusal::LockedOut);
        }
        match self.auth.bearer(headers) {
            Proof::Token => Ok(true),
            Proof::None => Err(Refusal::Missing),
            _ => {
                self.auth.failed(ip);
                Err(Refusal::Wrong)
            }
        }
    }

    /// Whether `host` (a `Host` header) names this web view on loopback.
    fn is_local_host(&self, host: &str) -> bool {
        let p = self.port;
        host == format!("127.0.0.1:{p}")
            || host == format!("localhost:{p}")
            || host == format!("[::1]:{p}")
    }

    /// Connections refused for being over [`MAX_CONNECTIONS`].
    fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A wrong or expired token or session where one is required.
    Wrong,
    /// No proof where one is required.
    Missing,
    /// Too many wrong ones from this address lately.
    LockedOut,
    /// A `Host` that is not this loopback web view (DNS rebinding).
    Host,
}

pub(crate) fn refusal(r: Refusal) -> Response {
    let (code, text) = match r {
        Refusal::Wrong => (
            StatusCode::UNAUTHORIZED,
            "wrong or expired token or session; run `chatctl web` for a new link\n",
        ),
        Refusal::Missing => (
            StatusCode::UNAUTHORIZED,
            "this needs the bearer token of control.token_file (Authorization: Bearer …)\n",
        ),
        Refusal::Host => (
            StatusCode::MISDIRECTED_REQUEST,
            "this web view answers only to 127.0.0.1, localhost or [::1] on its own port\n",
        ),
        Refusal::LockedOut => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed authentication attempts from this address; wait and retry\n",
        ),
    };
    (code, text).into_response()
}

/// On loopback, refuses requests for another host name: a web site whose name the attacker
/// points at 127.0.0.1 (DNS rebinding) gets nothing.
async fn local_host(State(s): AppState, req: Request, next: Next) -> Response {
    if !s.auth.closed {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !s.is_local_host(host) {
            return refusal(Refusal::Host);
        }
    }
    next.run(req).await
}

async fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    // A blob response brings its own, stricter policy (`files`): it is kept.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn page() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    )
}

async fn map_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/map.js"),
    )
}

async fn voice_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/voice.js"),
    )
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/style.css"))
}

async fn healthz(State(s): AppState) -> Response {
    if s.node.is_joined() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not joined to a ring yet\n",
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(listen: SocketAddr, explicit: bool) -> Web {
        Web {
            listen: Some(listen),
            explicit,
        }
    }

    #[test]
    fn refusals_say_why_with_the_right_status() {
        assert_eq!(refusal(Refusal::Missing).status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refusal(Refusal::Wrong).status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            refusal(Refusal::LockedOut).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            refusal(Refusal::Host).status(),
            StatusCode::MISDIRECTED_REQUEST
        );
    }

    #[tokio::test]
    async fn a_taken_default_address_is_skipped_a_taken_given_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let access = Access::default();
        let skipped = WebListener::bind(&web(addr, false), &access, dir.path())
            .await
            .expect("no error");
        assert!(skipped.is_none());
        let err = WebListener::bind(&web(addr, true), &access, dir.path())
            .await
            .err()
            .expect("an error");
        assert!(matches!(err, WebError::Bind { .. }));
        assert!(
            err.to_string().starts_with("web.listen: cannot listen on"),
            "{err}"
        );
        let off = Web {
            listen: None,
            explicit: true,
        };
        assert!(
            WebListener::bind(&off, &access, dir.path())
                .await
                .expect("ok")
                .is_none()
        );
        // A free address binds, creates the session key (0600) and says where it listens.
        let free = WebListener::bind(
            &web("127.0.0.1:0".parse().expect("a"), true),
            &access,
            dir.path(),
        )
        .await
        .expect("binds")
        .expect("serves");
        assert_ne!(free.addr().port(), 0);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("web.key"))
                .expect("key")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let (url, _) = free.link().link(crate::people::Who::Operator);
        assert!(
            url.starts_with(&format!("http://{}/#login=login.op.", free.addr())),
            "{url}"
        );
    }
}
