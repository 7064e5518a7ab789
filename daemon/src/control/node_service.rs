//! `chat.v1.NodeService`: status of the node serving the API.

use std::sync::Arc;

use chat_proto::v1::node_service_server::NodeService;
use chat_proto::v1::{GetStatusRequest, GetStatusResponse};
use tonic::{Request, Response, Status};

use crate::node::Node;

/// The `NodeService` implementation.
#[derive(Debug, Clone)]
pub struct NodeApi {
    node: Arc<Node>,
}

impl NodeApi {
    /// A service reporting on `node`.
    pub fn new(node: Arc<Node>) -> NodeApi {
        NodeApi { node }
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let status = self.node.status();
        Ok(Response::new(GetStatusResponse {
            node_id: status.id.to_hex(),
            nickname: status.nickname.map(|n| n.to_string()).unwrap_or_default(),
            listen_addr: status.listen_addr.to_string(),
            version: status.version.to_owned(),
            uptime_seconds: status.uptime.as_secs(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn get_status_fills_every_field() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key();
        let node = Arc::new(Node::new(
            key,
            "bob".parse().ok(),
            "127.0.0.1:9".parse().expect("addr"),
            vec![],
        ));
        let api = NodeApi::new(node.clone());
        let resp = api
            .get_status(Request::new(GetStatusRequest {}))
            .await
            .expect("ok")
            .into_inner();
        assert_eq!(resp.node_id, node.id().to_hex());
        assert_eq!(resp.node_id.len(), 64);
        assert_eq!(resp.nickname, "bob");
        assert_eq!(resp.listen_addr, "127.0.0.1:9");
        assert_eq!(resp.version, crate::node::VERSION);
        assert_eq!(resp.uptime_seconds, 0);
    }
}
