//! Connecting to chatd's control API: over its Unix socket, or over TCP with the bearer
//! token (`--remote ADDR --token-file FILE`; chatd's `control.tcp_listen`).
//!
//! tonic speaks HTTP/2 over any stream; for the socket the URI given to the endpoint is a
//! placeholder (it only sets the `:authority` header) and the connector dials the socket.
//! Other gRPC clients need the same trick, e.g. grpc-python's `unix:PATH` target with the
//! `grpc.default_authority` option. Over TCP every call carries `authorization: Bearer TOKEN`
//! ([`Conn`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};
use std::time::Duration;

use chat_proto::v1::chat_service_client::ChatServiceClient;
use chat_proto::v1::node_service_client::NodeServiceClient;
use chat_proto::v1::private_service_client::PrivateServiceClient;
use chat_proto::v1::record_service_client::RecordServiceClient;
use chat_proto::v1::user_service_client::UserServiceClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint};

/// How long to wait for chatd to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a single call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a record call may take (chatd gives up after 120 s).
const RECORD_CALL_TIMEOUT: Duration = Duration::from_secs(130);

/// Where chatd is.
#[derive(Clone)]
pub enum Target {
    /// Its control socket.
    Unix(PathBuf),
    /// Its TCP listener (`control.tcp_listen`), and the bearer token.
    Tcp {
        /// `HOST:PORT`.
        addr: String,
        /// The token (`control.token_file`'s first line).
        token: String,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Tcp { addr, .. } => write!(f, "{addr} (TCP)"),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        write!(f, "Target({self})")
    }
}

impl Target {
    /// The socket at `path`.
    pub fn unix(path: &Path) -> Target {
        Target::Unix(path.to_owned())
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody answers there.
    #[error("cannot reach chatd at {0} — is it running?")]
    Unreachable(String),
    /// The socket exists but we may not connect to it.
    #[error("permission denied on chatd's socket {0} (is your user in the socket's group?)")]
    PermissionDenied(String),
    /// chatd answered with an error.
    #[error("chatd: {}", .0.message())]
    Remote(tonic::Status),
    /// The socket's directory is the shared `/tmp/chatd-UID` fallback, and somebody else could
    /// have put the socket there.
    #[error(
        "refusing chatd's socket directory {dir}: it is {problem}; it must be owned by you (uid {uid}) and not writable by group or others, or another user could stand in for chatd (remove it, or pass --socket)"
    )]
    UntrustedSocketDir {
        dir: String,
        problem: String,
        uid: u32,
    },
}

/// Checks the directory of the socket at `path` before chatctl talks to what is there: the
/// shared fallback `/tmp/chatd-UID` (which anyone could create first) must be a directory, not
/// a symbolic link, owned by the current user and not writable by group or others — the
/// checks chatd makes before it puts its socket there (`daemon/src/paths.rs`). Other
/// directories are the operator's choice and are not checked. A missing directory is left to
/// the connection, which reports chatd as unreachable.
pub fn check_socket_dir(path: &Path) -> Result<(), ClientError> {
    let uid = chat_proto::paths::current_uid();
    check_socket_dir_with(path, &chat_proto::paths::shared_tmp_dir(uid), uid)
}

/// [`check_socket_dir`] with the shared directory `shared` of user `uid`.
fn check_socket_dir_with(path: &Path, shared: &Path, uid: u32) -> Result<(), ClientError> {
    match path.parent() {
        Some(dir) if dir == shared => untrusted(dir, uid).map_or(Ok(()), |problem| {
            Err(ClientError::UntrustedSocketDir {
                dir: dir.display().to_string(),
                problem,
                uid,
            })
        }),
        _ => Ok(()),
    }
}

/// What is wrong with `dir` as a private directory of `uid`, if anything.
fn untrusted(dir: &Path, uid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("unreadable ({e})")),
    };
    if meta.file_type().is_symlink() {
        Some("a symbolic link".to_owned())
    } else if !meta.is_dir() {
        Some("not a directory".to_owned())
    } else if meta.uid() != uid {
        Some(format!("owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "writable by group or others (mode {:04o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    }
}

/// A connection to chatd: the channel, and the bearer token every call carries over TCP
/// (marked sensitive: HTTP/2 never indexes it, and `Debug` never prints it).
#[derive(Clone)]
pub struct Conn {
    channel: Channel,
    token: Option<http::HeaderValue>,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Conn {
    type Response = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Response;
    type Error = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Error;
    type Future = <Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(t) = &self.token {
            req.headers_mut().insert("authorization", t.clone());
        }
        self.channel.call(req)
    }
}

/// A connection to chatd at `target`, made eagerly so that "not running" shows at once.
pub async fn connect(target: &Target) -> Result<Conn, ClientError> {
    connect_with(target, Some(CALL_TIMEOUT)).await
}

async fn connect_with(target: &Target, timeout: Option<Duration>) -> Result<Conn, ClientError> {
    let unreachable = || ClientError::Unreachable(target.to_string());
    let uri = match target {
        Target::Unix(_) => "http://chatd.sock".to_owned(),
        Target::Tcp { addr, .. } => format!("http://{addr}"),
    };
    let mut endpoint = Endpoint::try_from(uri)
        .map_err(|_| unreachable())?
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(t) = timeout {
        endpoint = endpoint.timeout(t);
    }
    let (channel, token) = match target {
        Target::Unix(path) => {
            check_socket_dir(path)?;
            let path = path.clone();
            let channel = endpoint
                .connect_with_connector(tower::service_fn(move |_| {
                    let path = path.clone();
                    async move { UnixStream::connect(path).await.map(TokioIo::new) }
                }))
                .await;
            (channel, None)
        }
        Target::Tcp { token, .. } => {
            let mut value =
                http::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    ClientError::Remote(tonic::Status::invalid_argument(
                        "the token holds characters a header cannot carry",
                    ))
                })?;
            value.set_sensitive(true);
            (endpoint.connect().await, Some(value))
        }
    };
    let channel = channel.map_err(|e| match io_error_kind(&e) {
        Some(std::io::ErrorKind::PermissionDenied) => {
            ClientError::PermissionDenied(target.to_string())
        }
        _ => unreachable(),
    })?;
    Ok(Conn { channel, token })
}

/// The kind of the first `std::io::Error` in `err`'s chain of sources.
fn io_error_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// A `chat.v1.NodeService` client.
pub async fn node_service(socket: &Target) -> Result<NodeServiceClient<Conn>, ClientError> {
    Ok(NodeServiceClient::new(connect(socket).await?))
}

/// A `chat.v1.NodeService` client without a per-call deadline (for `ReadLog` with follow).
pub async fn node_stream(socket: &Target) -> Result<NodeServiceClient<Conn>, ClientError> {
    Ok(NodeServiceClient::new(connect_with(socket, None).await?))
}

/// A `chat.v1.ChatService` client.
pub async fn chat_service(socket: &Target) -> Result<ChatServiceClient<Conn>, ClientError> {
    Ok(ChatServiceClient::new(connect(socket).await?))
}

/// A `chat.v1.FileService` client, without a whole-call deadline (an upload or download
/// takes as long as the file needs; a dead daemon still ends it with an error).
pub async fn file_service(
    socket: &Target,
) -> Result<chat_proto::v1::file_service_client::FileServiceClient<Conn>, ClientError> {
    Ok(chat_proto::v1::file_service_client::FileServiceClient::new(
        connect_with(socket, None).await?,
    ))
}

/// A `chat.v1.RecordService` client; a record operation may take as long as chatd's own
/// bound (lookups retried around failed holders), so its deadline is longer.
pub async fn record_service(socket: &Target) -> Result<RecordServiceClient<Conn>, ClientError> {
    Ok(RecordServiceClient::new(
        connect_with(socket, Some(RECORD_CALL_TIMEOUT)).await?,
    ))
}

/// A `chat.v1.UserService` client; claiming a nickname is a DHT operation, so its deadline
/// is the records one.
pub async fn user_service(socket: &Target) -> Result<UserServiceClient<Conn>, ClientError> {
    Ok(UserServiceClient::new(
        connect_with(socket, Some(RECORD_CALL_TIMEOUT)).await?,
    ))
}

/// A `chat.v1.PrivateService` client (with `stream`: no per-call deadline, for the watch).
pub async fn private_service(
    socket: &Target,
    stream: bool,
) -> Result<PrivateServiceClient<Conn>, ClientError> {
    let deadline = if stream {
        None
    } else {
        Some(RECORD_CALL_TIMEOUT)
    };
    Ok(PrivateServiceClient::new(
        connect_with(socket, deadline).await?,
    ))
}

/// A `chat.v1.ChatService` client without a per-call deadline (for endless streams).
pub async fn chat_stream(socket: &Target) -> Result<ChatServiceClient<Conn>, ClientError> {
    Ok(ChatServiceClient::new(connect_with(socket, None).await?))
}

/// Makes `call` until it succeeds or fails other than with RESOURCE_EXHAUSTED (chatd's "too
/// fast"), at most `retries` more times, `wait` apart; the last answer.
pub async fn retry_exhausted<T, F, Fut>(
    retries: u32,
    wait: std::time::Duration,
    mut call: F,
) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut left = retries;
    loop {
        match call().await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted && left > 0 => {
                left -= 1;
                tokio::time::sleep(wait).await;
            }
            answer => return answer,
        }
    }
}

/// Turns a failed call into a [`ClientError`]: transport failures mean chatd went away.
pub fn call_error(socket: &Target, status: tonic::Status) -> ClientError {
    // A status chatd sent carries its response headers (content-type at least); one the
    // client made up because the connection failed carries none.
    let from_chatd = status.metadata().get("content-type").is_some();
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled if !from_chatd => {
            ClientError::Unreachable(socket.to_string())
        }
        _ => ClientError::Remote(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn finds_the_io_error_in_a_chain() {
        let err = Wrapper(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(
            io_error_kind(&err),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        let plain = std::fmt::Error;
        assert_eq!(io_error_kind(&plain), None);
    }

    #[test]
    fn a_socket_directory_another_user_could_control_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let uid = chat_proto::paths::current_uid();
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("chatd");
        std::fs::create_dir(&dir).expect("mkdir");
        let mode = |m: u32| {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).expect("chmod")
        };
        mode(0o700);
        assert_eq!(untrusted(&dir, uid), None);
        mode(0o755);
        assert_eq!(untrusted(&dir, uid), None, "readable is fine");
        mode(0o770);
        assert!(untrusted(&dir, uid).is_some_and(|p| p.contains("mode 0770")));
        mode(0o1777);
        assert!(untrusted(&dir, uid).is_some_and(|p| p.contains("writable")));
        mode(0o700);
        // Owned by somebody else (as seen by another uid).
        assert!(untrusted(&dir, uid.wrapping_add(1)).is_some_and(|p| p.contains("owned by uid")));
        // A symbolic link to our own directory is refused too.
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        assert_eq!(untrusted(&link, uid).as_deref(), Some("a symbolic link"));
        // Nothing there: left to the connection.
        assert_eq!(untrusted(&base.path().join("none"), uid), None);
    }

    #[test]
    fn only_the_shared_fallback_directory_is_checked_and_the_error_says_why() {
        use std::os::unix::fs::PermissionsExt;
        let uid = chat_proto::paths::current_uid();
        let base = tempfile::tempdir().expect("tempdir");
        let shared = base.path().join("chatd-shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let socket = shared.join(chat_proto::paths::SOCKET_FILE);
        let err = check_socket_dir_with(&socket, &shared, uid).expect_err("refused");
        assert!(
            matches!(err, ClientError::UntrustedSocketDir { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("writable by group or others") && msg.contains("--socket"),
            "{msg}"
        );
        // The same directory chosen by the operator (not the shared fallback) is not checked.
        let elsewhere = base.path().join("other");
        assert!(check_socket_dir_with(&socket, &elsewhere, uid).is_ok());
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(check_socket_dir_with(&socket, &shared, uid).is_ok());
        // Somebody else's.
        assert!(check_socket_dir_with(&socket, &shared, uid.wrapping_add(1)).is_err());
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = connect(&Target::unix(&dir.path().join("none.sock")))
            .await
            .expect_err("nobody there");
        assert!(matches!(err, ClientError::Unreachable(_)), "{err}");
    }
}
