//! A gRPC client for the tests: over the Unix socket or TCP (with an optional bearer token),
//! with a small HTTP/2 window so that a client that stops reading is noticed quickly.

use std::path::Path;
use std::time::Duration;

use chat_proto::v1::chat_service_client::ChatServiceClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

fn endpoint(uri: &str) -> Endpoint {
    Endpoint::try_from(uri.to_owned())
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
}

/// A channel over chatd's Unix socket.
pub async fn unix(socket: &Path) -> Channel {
    let path = socket.to_owned();
    endpoint("http://chatd.sock")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .expect("connects over the socket")
}

/// A channel over TCP.
pub async fn tcp(addr: std::net::SocketAddr) -> Channel {
    endpoint(&format!("http://{addr}"))
        .connect()
        .await
        .expect("connects over TCP")
}

/// Adds `authorization: Bearer TOKEN` when `token` is given.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            let value = format!("Bearer {t}").parse().expect("ascii token");
            r.metadata_mut().insert("authorization", value);
        }
        Ok(r)
    }
}

/// A ChatService client with a bearer token.
pub fn chat_with(
    channel: Channel,
    token: Option<&str>,
) -> ChatServiceClient<InterceptedService<Channel, Bearer>> {
    ChatServiceClient::with_interceptor(channel, Bearer(token.map(str::to_owned)))
}

/// A ChatService client.
pub fn chat(channel: Channel) -> ChatServiceClient<Channel> {
    ChatServiceClient::new(channel)
}
