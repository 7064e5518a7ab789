//! Who may call the control API.
//!
//! - Unix socket: the connecting process's credentials (`SO_PEERCRED`, and its supplementary
//!   groups from `SO_PEERGROUPS`) are read when the connection is accepted — both as the
//!   kernel recorded them at `connect()`, so no later change of the process (or reuse of its
//!   PID) matters. Root, chatd's own user and members (primary or supplementary) of
//!   `control.group` are admitted; the socket's file mode is only a
//!   first fence. Anyone else gets PERMISSION_DENIED on every call.
//! - TCP (`control.tcp_listen`): every call must carry `authorization: Bearer TOKEN`; a missing
//!   or wrong token gets UNAUTHENTICATED. Failures are counted per source address (token
//!   bucket: [`FAILURE_BURST`] at once, then one per [`FAILURE_REFILL`], the limit the IRC
//!   bridge shares, `ops::access`); past that the address
//!   gets RESOURCE_EXHAUSTED, even with the right token, until the bucket refills.
//!
//! [`Conn`] carries a [`ClientInfo`] into every request's extensions; [`Gate`] is the
//! interceptor applied to every service, health and reflection included.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tonic::transport::server::Connected;
use tonic::{Request, Status};

use super::ApiError;
use crate::chat::ratelimit::Keyed;
use crate::config::Token;
use crate::eventlog::stats::Connection;
use crate::ops::access::failed_logins;

pub use crate::ops::access::{FAILURE_BURST, FAILURE_REFILL};
/// Addresses remembered by the failure limiter.
const FAILURE_KEYS: usize = 4096;

pub use crate::client::{ClientInfo, is_operator, this_process};

/// Decides whether a Unix peer is admitted.
#[derive(Clone, Debug)]
pub struct UnixPolicy {
    /// chatd's own user.
    pub own_uid: u32,
    /// `control.group`.
    pub group: Option<u32>,
}

impl UnixPolicy {
    /// Whether the process (uid, primary gid, `supplementary` groups, asked only if needed)
    /// may use the API.
    pub fn admits(&self, uid: u32, gid: u32, supplementary: impl FnOnce() -> Vec<u32>) -> bool {
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some(group) = self.group else {
            return false;
        };
        gid == group || supplementary().contains(&group)
    }

    /// Reads the credentials of a newly accepted connection.
    pub fn classify(&self, stream: &UnixStream) -> ClientInfo {
        match stream.peer_cred() {
            Ok(cred) => ClientInfo::Unix {
                uid: cred.uid(),
                admitted: self.admits(cred.uid(), cred.gid(), || {
                    peer_groups(stream).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "control socket: cannot read the peer's groups (SO_PEERGROUPS)");
                        Vec::new()
                    })
                }),
            },
            Err(_) => ClientInfo::Unix {
                uid: u32::MAX,
                admitted: false,
            },
        }
    }
}

/// Most supplementary groups read for a peer (Linux's `NGROUPS_MAX`).
const MAX_GROUPS: usize = 65_536;

/// The supplementary groups of a Unix socket's peer, as the kernel recorded them when it
/// connected (`SO_PEERGROUPS`, Linux 4.13 and later).
pub fn peer_groups(socket: &impl std::os::fd::AsRawFd) -> io::Result<Vec<u32>> {
    const GID: usize = std::mem::size_of::<libc::gid_t>();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(groups.len() * GID).unwrap_or(libc::socklen_t::MAX);
        // SAFETY: `groups` is valid for writes of `len` bytes; the kernel writes at most `len`
        // bytes into it and stores the length it needs (or wrote) in `len`.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / GID;
        if r == 0 {
            groups.truncate(needed.min(groups.len()));
            return Ok(groups);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && needed > groups.len() && needed <= MAX_GROUPS
        {
            groups.resize(needed, 0);
            continue;
        }
        return Err(err);
    }
}

/// The interceptor in front of every service.
#[derive(Clone)]
pub struct Gate {
    token: Option<Arc<Token>>,
    failures: Arc<Keyed<IpAddr>>,
}

impl Gate {
    /// A gate checking TCP clients against `token`.
    pub fn new(token: Option<Token>) -> Gate {
        Gate {
            token: token.map(Arc::new),
            failures: Arc::new(Keyed::new(failed_logins(), FAILURE_KEYS)),
        }
    }

    /// Admits or refuses one call.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.extensions().get::<ClientInfo>() {
            Some(ClientInfo::Unix { admitted: true, .. }) => Ok(request),
            Some(ClientInfo::Unix { uid, .. }) => Err(ApiError::PermissionDenied(format!(
                "uid {uid} may not use chatd's control API (not root, not chatd's user, not in control.group)"
            ))
            .into()),
            Some(ClientInfo::Tcp { addr }) => {
                let ip = addr.ip();
                if !self.failures.allows(&ip) {
                    return Err(ApiError::ResourceExhausted(
                        "too many failed authentication attempts from this address; wait and retry".into(),
                    )
                    .into());
                }
                let presented = request
                    .metadata()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                let ok = match (&self.token, presented) {
                    (Some(token), Some(given)) => constant_time_eq(token.0.as_bytes(), given.as_bytes()),
                    _ => false,
                };
                if ok {
                    return Ok(request);
                }
                let _ = self.failures.take(&ip);
                tracing::warn!(client = %addr, "control API: missing or wrong bearer token");
                Err(ApiError::Unauthenticated(match presented {
                    None => "missing bearer token (send the header \"authorization: Bearer TOKEN\")".into(),
                    Some(_) => "wrong bearer token".into(),
                })
                .into())
            }
            None => Err(ApiError::Internal("connection without client info".into()).into()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An accepted control connection, who is on the other end, and its place in the count of
/// open connections (`control_connections` in the status).
pub enum Conn {
    /// Unix socket.
    Unix(super::quiet::QuietUnix, ClientInfo, Connection),
    /// TCP, under the listener's caps and timeouts.
    Tcp(super::tcp::Guarded, ClientInfo, Connection),
}

/// [`is_operator`] for this process's user: `Ok` for the operator, else PERMISSION_DENIED
/// saying that `what` is the operator's (how the operator-only calls refuse everyone else).
pub fn require_operator(client: Option<&ClientInfo>, what: &str) -> Result<(), ApiError> {
    if is_operator(client, rustix::process::geteuid().as_raw()) {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "{what} is the node operator's: only root and chatd's own user on the Unix socket may \
         do it (not control.group members, not TCP clients; try sudo)"
    )))
}

impl Connected for Conn {
    type ConnectInfo = ClientInfo;

    fn connect_info(&self) -> ClientInfo {
        match self {
            Conn::Unix(_, info, _) | Conn::Tcp(_, info, _) => info.clone(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s, ..) => Pin::new(s).poll_read(cx, buf),
            Conn::Tcp(s, ..) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Unix(s, ..) => Pin::new(s).poll_write(cx, buf),
            Conn::Tcp(s, ..) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s, ..) => Pin::new(s).poll_flush(cx),
            Conn::Tcp(s, ..) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Unix(s, ..) => Pin::new(s).poll_shutdown(cx),
            Conn::Tcp(s, ..) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(info: ClientInfo, auth: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        r.extensions_mut().insert(info);
        if let Some(a) = auth {
            r.metadata_mut()
                .insert("authorization", a.parse().expect("ascii"));
        }
        r
    }

    #[test]
    fn unix_policy_admits_root_self_and_group() {
        let policy = UnixPolicy {
            own_uid: 1000,
            group: Some(50),
        };
        let none = Vec::new;
        assert!(policy.admits(0, 0, none));
        assert!(policy.admits(1000, 1000, none));
        assert!(policy.admits(2000, 50, none));
        assert!(!policy.admits(2000, 2000, none));
        assert!(policy.admits(2000, 2000, || vec![7, 50]), "supplementary");
        assert!(!policy.admits(2000, 2000, || vec![7, 51]));
        let closed = UnixPolicy {
            own_uid: 1000,
            group: None,
        };
        assert!(!closed.admits(2000, 50, || vec![50]));
    }

    #[test]
    fn peer_groups_are_the_connecting_processs_supplementary_groups() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut got = peer_groups(&ours).expect("SO_PEERGROUPS");
        let mut own: Vec<u32> = rustix::process::getgroups()
            .expect("getgroups")
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        got.sort_unstable();
        own.sort_unstable();
        assert_eq!(got, own);
        // Not a socket: an error, not an empty list.
        let file = std::fs::File::open("/dev/null").expect("open");
        assert!(peer_groups(&file).is_err());
        drop(theirs);
    }

    #[test]
    fn only_root_and_chatds_user_are_the_operator() {
        let unix = |uid, admitted| ClientInfo::Unix { uid, admitted };
        assert!(is_operator(Some(&unix(0, true)), 1000));
        assert!(is_operator(Some(&unix(1000, true)), 1000));
        assert!(!is_operator(Some(&unix(2000, true)), 1000), "control.group");
        assert!(!is_operator(Some(&unix(1000, false)), 1000));
        let tcp = ClientInfo::Tcp {
            addr: "127.0.0.1:5".parse().expect("addr"),
        };
        assert!(!is_operator(Some(&tcp), 1000));
        assert!(!is_operator(None, 1000));
    }

    #[test]
    fn gate_codes() {
        let gate = Gate::new(Some(Token(zeroize::Zeroizing::new(
            "s3cret-token-0123".into(),
        ))));
        let unix_ok = ClientInfo::Unix {
            uid: 1,
            admitted: true,
        };
        assert!(gate.check(with(unix_ok, None)).is_ok());
        let unix_no = ClientInfo::Unix {
            uid: 7,
            admitted: false,
        };
        assert_eq!(
            gate.check(with(unix_no, None)).expect_err("denied").code(),
            tonic::Code::PermissionDenied
        );
        let tcp = ClientInfo::Tcp {
            addr: "127.0.0.9:5".parse().expect("addr"),
        };
        assert!(
            gate.check(with(tcp.clone(), Some("Bearer s3cret-token-0123")))
                .is_ok()
        );
        let missing = gate.check(with(tcp.clone(), None)).expect_err("missing");
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("missing"));
        for _ in 1..FAILURE_BURST as usize {
            let wrong = gate
                .check(with(tcp.clone(), Some("Bearer nope")))
                .expect_err("wrong");
            assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        }
        let limited = gate
            .check(with(tcp.clone(), Some("Bearer s3cret-token-0123")))
            .expect_err("limited even with the right token");
        assert_eq!(limited.code(), tonic::Code::ResourceExhausted);
        let other = ClientInfo::Tcp {
            addr: "127.0.0.10:5".parse().expect("addr"),
        };
        assert!(
            gate.check(with(other, Some("Bearer s3cret-token-0123")))
                .is_ok(),
            "per address"
        );
    }
}
