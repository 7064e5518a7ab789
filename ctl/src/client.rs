//! Connecting to chatd's control API over its Unix socket.
//!
//! tonic speaks HTTP/2 over any stream; the URI given to the endpoint is a placeholder (it only
//! sets the `:authority` header), the connector dials the socket. Other gRPC clients need the
//! same trick, e.g. grpc-python's `unix:PATH` target with the `grpc.default_authority` option.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_proto::v1::node_service_client::NodeServiceClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// How long to wait for chatd to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a single call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody answers on the socket.
    #[error("cannot reach chatd at {} — is it running?", .0.display())]
    Unreachable(PathBuf),
    /// chatd answered with an error.
    #[error("chatd: {}", .0.message())]
    Remote(tonic::Status),
}

/// A channel to chatd at `socket`, connected eagerly so that "not running" shows at once.
pub async fn connect(socket: &Path) -> Result<Channel, ClientError> {
    let unreachable = || ClientError::Unreachable(socket.to_owned());
    let endpoint = Endpoint::try_from("http://chatd.sock")
        .map_err(|_| unreachable())?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    let path = socket.to_owned();
    endpoint
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|_| unreachable())
}

/// A `chat.v1.NodeService` client.
pub async fn node_service(socket: &Path) -> Result<NodeServiceClient<Channel>, ClientError> {
    Ok(NodeServiceClient::new(connect(socket).await?))
}

/// Turns a failed call into a [`ClientError`]: transport failures mean chatd went away.
pub fn call_error(socket: &Path, status: tonic::Status) -> ClientError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled => {
            ClientError::Unreachable(socket.to_owned())
        }
        _ => ClientError::Remote(status),
    }
}
