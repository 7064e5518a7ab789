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

    #[tokio::test]
    async fn a_missing_socket_is_unreachable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = connect(&Target::unix(&dir.path().join("none.sock")))
            .await
            .expect_err("nobody there");
        assert!(matches!(err, ClientError::Unreachable(_)), "{err}");
    }
}
