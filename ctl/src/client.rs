//! Connecting to chatd's control API over its Unix socket.
//!
//! tonic speaks HTTP/2 over any stream; the URI given to the endpoint is a placeholder (it only
//! sets the `:authority` header), the connector dials the socket. Other gRPC clients need the
//! same trick, e.g. grpc-python's `unix:PATH` target with the `grpc.default_authority` option.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_proto::v1::chat_service_client::ChatServiceClient;
use chat_proto::v1::node_service_client::NodeServiceClient;
use chat_proto::v1::record_service_client::RecordServiceClient;
use chat_proto::v1::user_service_client::UserServiceClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// How long to wait for chatd to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a single call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a record call may take (chatd gives up after 120 s).
const RECORD_CALL_TIMEOUT: Duration = Duration::from_secs(130);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody answers on the socket.
    #[error("cannot reach chatd at {} — is it running?", .0.display())]
    Unreachable(PathBuf),
    /// The socket exists but we may not connect to it.
    #[error("permission denied on chatd's socket {} (is your user in the socket's group?)", .0.display())]
    PermissionDenied(PathBuf),
    /// chatd answered with an error.
    #[error("chatd: {}", .0.message())]
    Remote(tonic::Status),
}

/// A channel to chatd at `socket`, connected eagerly so that "not running" shows at once.
pub async fn connect(socket: &Path) -> Result<Channel, ClientError> {
    connect_with(socket, Some(CALL_TIMEOUT)).await
}

async fn connect_with(socket: &Path, timeout: Option<Duration>) -> Result<Channel, ClientError> {
    let unreachable = || ClientError::Unreachable(socket.to_owned());
    let mut endpoint = Endpoint::try_from("http://chatd.sock")
        .map_err(|_| unreachable())?
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(t) = timeout {
        endpoint = endpoint.timeout(t);
    }
    let path = socket.to_owned();
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| match io_error_kind(&e) {
            Some(std::io::ErrorKind::PermissionDenied) => {
                ClientError::PermissionDenied(socket.to_owned())
            }
            _ => unreachable(),
        })
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
pub async fn node_service(socket: &Path) -> Result<NodeServiceClient<Channel>, ClientError> {
    Ok(NodeServiceClient::new(connect(socket).await?))
}

/// A `chat.v1.ChatService` client.
pub async fn chat_service(socket: &Path) -> Result<ChatServiceClient<Channel>, ClientError> {
    Ok(ChatServiceClient::new(connect(socket).await?))
}

/// A `chat.v1.RecordService` client; a record operation may take as long as chatd's own
/// bound (lookups retried around failed holders), so its deadline is longer.
pub async fn record_service(socket: &Path) -> Result<RecordServiceClient<Channel>, ClientError> {
    Ok(RecordServiceClient::new(
        connect_with(socket, Some(RECORD_CALL_TIMEOUT)).await?,
    ))
}

/// A `chat.v1.UserService` client; claiming a nickname is a DHT operation, so its deadline
/// is the records one.
pub async fn user_service(socket: &Path) -> Result<UserServiceClient<Channel>, ClientError> {
    Ok(UserServiceClient::new(
        connect_with(socket, Some(RECORD_CALL_TIMEOUT)).await?,
    ))
}

/// A `chat.v1.ChatService` client without a per-call deadline (for endless streams).
pub async fn chat_stream(socket: &Path) -> Result<ChatServiceClient<Channel>, ClientError> {
    Ok(ChatServiceClient::new(connect_with(socket, None).await?))
}

/// Turns a failed call into a [`ClientError`]: transport failures mean chatd went away.
pub fn call_error(socket: &Path, status: tonic::Status) -> ClientError {
    // A status chatd sent carries its response headers (content-type at least); one the
    // client made up because the connection failed carries none.
    let from_chatd = status.metadata().get("content-type").is_some();
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled if !from_chatd => {
            ClientError::Unreachable(socket.to_owned())
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
        let err = connect(&dir.path().join("none.sock"))
            .await
            .expect_err("nobody there");
        assert!(matches!(err, ClientError::Unreachable(_)), "{err}");
    }
}
