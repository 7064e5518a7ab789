//! `chat.v1.NodeService`: status of the node serving the API, its peers, its ring state,
//! leaving the ring, and its event log (`ReadLog`, for the node's operator only).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::node_service_server::NodeService;
use chat_proto::v1::{
    DiscoveredPeer, GetIrcPasswordRequest, GetIrcPasswordResponse, GetRingRequest, GetRingResponse,
    GetStatusRequest, GetStatusResponse, GetWebLinkRequest, GetWebLinkResponse, LeaveRequest,
    LeaveResponse, ListDiscoveredRequest, ListDiscoveredResponse, ListPeersRequest,
    ListPeersResponse, PeerInfo, ReadLogRequest, ReadLogResponse,
};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::ApiError;
use super::access::{ClientInfo, require_operator};
use crate::node::Node;
use crate::ops::{IrcFront, WebFront};
use crate::people::People;
use crate::status::NodeStatus;

/// How long `Leave` waits for the leave to be announced.
const LEAVE_DEADLINE: Duration = Duration::from_millis(1500);

type LogStream = Pin<Box<dyn Stream<Item = Result<ReadLogResponse, Status>> + Send>>;

/// The `NodeService` implementation.
#[derive(Debug, Clone)]
pub struct NodeApi {
    node: Arc<Node>,
    people: Arc<People>,
    status: NodeStatus,
    web: Option<Arc<dyn WebFront>>,
    irc: Option<Arc<dyn IrcFront>>,
}

impl NodeApi {
    /// A service reporting on `node` (and its user, from `people`), with neither the web view
    /// nor the IRC front door.
    pub fn new(node: Arc<Node>, people: Arc<People>) -> NodeApi {
        NodeApi {
            status: NodeStatus::new(node.clone(), people.clone()),
            node,
            people,
            web: None,
            irc: None,
        }
    }

    /// Reports through `status` (which counts the web pages) and answers `GetWebLink` and
    /// `GetIrcPassword` through the fronts that run.
    pub fn with_fronts(
        mut self,
        status: NodeStatus,
        web: Option<Arc<dyn WebFront>>,
        irc: Option<Arc<dyn IrcFront>>,
    ) -> NodeApi {
        self.status = status;
        self.web = web;
        self.irc = irc;
        self
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let client = request.extensions().get::<ClientInfo>();
        Ok(Response::new(self.status.report(client).await))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn get_web_link(
        &self,
        request: Request<GetWebLinkRequest>,
    ) -> Result<Response<GetWebLinkResponse>, Status> {
        let who = self.people.who(request.extensions().get::<ClientInfo>());
        let Some(web) = self.web.as_ref() else {
            return Err(ApiError::FailedPrecondition(
                "the web view is off (web.listen is empty, or its default address was taken)"
                    .into(),
            )
            .into());
        };
        let (url, expires_at_unix_ms) = web.login_link(who);
        Ok(Response::new(GetWebLinkResponse {
            url,
            expires_at_unix_ms,
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn get_irc_password(
        &self,
        request: Request<GetIrcPasswordRequest>,
    ) -> Result<Response<GetIrcPasswordResponse>, Status> {
        let who = self.people.who(request.extensions().get::<ClientInfo>());
        let Some(irc) = self.irc.as_ref() else {
            return Err(ApiError::FailedPrecondition(
                "the IRC front door is off (irc.listen is empty, or its default address was taken)"
                    .into(),
            )
            .into());
        };
        let Some(password) = irc.password(who) else {
            return Err(ApiError::PermissionDenied(
                "a TCP guest logs in to IRC with the TCP token itself (PASS TOKEN), as its guest"
                    .into(),
            )
            .into());
        };
        Ok(Response::new(GetIrcPasswordResponse {
            password,
            address: irc.addr().to_string(),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn list_peers(
        &self,
        _request: Request<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        let peers = self
            .node
            .overlay()
            .map(|r| r.peers())
            .unwrap_or_default()
            .into_iter()
            .map(|p| PeerInfo {
                node_id: p.id.to_hex(),
                address: p.addr.to_string(),
                rtt_micros: u64::try_from(p.rtt.as_micros()).unwrap_or(u64::MAX),
            })
            .collect();
        Ok(Response::new(ListPeersResponse { peers }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn list_discovered(
        &self,
        _request: Request<ListDiscoveredRequest>,
    ) -> Result<Response<ListDiscoveredResponse>, Status> {
        let Some(lan) = self.node.lan() else {
            return Ok(Response::new(ListDiscoveredResponse::default()));
        };
        let connected: Vec<chat_overlay::NodeId> = self
            .node
            .overlay()
            .map(|r| r.peers().into_iter().map(|p| p.id).collect())
            .unwrap_or_default();
        let (ignored, dropped) = lan.counters();
        let peers = lan
            .seen()
            .into_iter()
            .map(|s| DiscoveredPeer {
                node_id: s.id.to_hex(),
                addresses: s.addrs.iter().map(|a| a.to_string()).collect(),
                instance: s.instance,
                first_seen_unix_ms: s.first_seen_ms,
                last_seen_unix_ms: s.last_seen_ms,
                connected: connected.contains(&s.id),
            })
            .collect();
        Ok(Response::new(ListDiscoveredResponse {
            enabled: true,
            peers,
            ignored_announcements: ignored,
            dropped_announcements: dropped,
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn get_ring(
        &self,
        _request: Request<GetRingRequest>,
    ) -> Result<Response<GetRingResponse>, Status> {
        let ring = crate::ops::ring::ring_map(&self.node, &self.people).await?;
        Ok(Response::new(ring))
    }

    type ReadLogStream = LogStream;

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn read_log(
        &self,
        request: Request<ReadLogRequest>,
    ) -> Result<Response<LogStream>, Status> {
        require_operator(
            request.extensions().get::<ClientInfo>(),
            "reading the event log",
        )?;
        let Some(log) = self.node.event_log() else {
            return Err(ApiError::FailedPrecondition(
                "the event log is off (log.events = false in chatd's configuration)".into(),
            )
            .into());
        };
        let r = request.into_inner();
        let snapshot = log
            .snapshot()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let chunks = crate::eventlog::read(snapshot, r.last as usize, r.follow);
        let stream = ReceiverStream::new(chunks).map(|c| {
            Ok(ReadLogResponse {
                lines: c.lines,
                missed: c.missed,
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn leave(
        &self,
        request: Request<LeaveRequest>,
    ) -> Result<Response<LeaveResponse>, Status> {
        // Stopping the node stops it for every account it hosts (and a clean stop is not
        // restarted by systemd): the operator's alone.
        require_operator(
            request.extensions().get::<ClientInfo>(),
            "stopping the node (Leave)",
        )?;
        if let Some(ring) = self.node.overlay()
            && !ring.leave(LEAVE_DEADLINE).await
        {
            tracing::warn!("leave not confirmed within {LEAVE_DEADLINE:?}; stopping anyway");
        }
        self.node.request_stop();
        Ok(Response::new(LeaveResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::testkit::{fixture, from, guest, local_account, operator};

    #[tokio::test]
    async fn get_status_fills_every_field() {
        let f = fixture();
        let (node, people) = (f.node.clone(), f.people.clone());
        let api = NodeApi::new(node.clone(), people.clone());
        let resp = api
            .get_status(Request::new(GetStatusRequest {}))
            .await
            .expect("ok")
            .into_inner();
        assert_eq!(resp.node_id, node.id().to_hex());
        assert_eq!(resp.node_id.len(), 64);
        assert_eq!(resp.nickname, "");
        let operator = people
            .account_of(crate::people::Who::Operator)
            .expect("account");
        assert_eq!(resp.user_id, hex::encode(operator));
        assert_eq!(resp.presence, "online");
        assert_eq!(resp.listen_addr, "127.0.0.1:9");
        assert_eq!(resp.version, crate::node::VERSION);
        assert_eq!(resp.uptime_seconds, 0);
        assert!(!resp.joined);
        assert!(resp.successor.is_empty() && resp.predecessor.is_empty());
        let ring = api
            .get_ring(Request::new(GetRingRequest {}))
            .await
            .expect("ok")
            .into_inner();
        assert_eq!(ring.node_id, node.id().to_hex());
        assert!(ring.successors.is_empty());
    }

    #[tokio::test]
    async fn only_the_operator_stops_the_node() {
        let f = fixture();
        let api = NodeApi::new(f.node.clone(), f.people.clone());
        for caller in [local_account(), guest()] {
            let err = api
                .leave(from(caller.clone(), LeaveRequest {}))
                .await
                .expect_err("refused");
            assert_eq!(err.code(), tonic::Code::PermissionDenied, "{caller:?}");
            assert!(err.message().contains("operator"), "{}", err.message());
            assert!(!f.node.is_stop_requested(), "{caller:?} stopped the node");
        }
        let err = api
            .leave(Request::new(LeaveRequest {}))
            .await
            .expect_err("no connection info: not the operator");
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(!f.node.is_stop_requested());
        api.leave(from(operator(), LeaveRequest {}))
            .await
            .expect("the operator may");
        assert!(f.node.is_stop_requested());
    }

    #[tokio::test]
    async fn only_the_operator_reads_the_event_log() {
        let f = fixture();
        let api = NodeApi::new(f.node.clone(), f.people.clone());
        for caller in [local_account(), guest()] {
            let err = api
                .read_log(from(caller.clone(), ReadLogRequest::default()))
                .await
                .err()
                .expect("refused");
            assert_eq!(err.code(), tonic::Code::PermissionDenied, "{caller:?}");
        }
        // The operator passes the check (and learns the log is off here).
        let err = api
            .read_log(from(operator(), ReadLogRequest::default()))
            .await
            .err()
            .expect("no log in the fixture");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    }

    #[tokio::test]
    async fn private_counts_are_the_operators() {
        let f = fixture();
        f.node.activity().private_message(true);
        let api = NodeApi::new(f.node.clone(), f.people.clone());
        let status = |c| api.get_status(from(c, GetStatusRequest {}));
        let mine = status(operator()).await.expect("ok").into_inner();
        assert_eq!(mine.private_sent, 1);
        for caller in [local_account(), guest()] {
            let theirs = status(caller.clone()).await.expect("ok").into_inner();
            assert_eq!(theirs.private_sent, 0, "{caller:?}");
        }
    }
}
