//! `chat.v1.PrivateService`: the caller's private messages and groups — a thin adapter over
//! the private-conversation service's client operations ([`PrivateOps`], which the web view
//! calls too): it takes the caller from the connection, calls the operation, and turns its
//! error into a status (`error.rs`).

use std::pin::Pin;
use std::sync::Arc;

use chat_proto::v1::private_service_server::PrivateService;
use chat_proto::v1::{
    BlockRequest, BlockResponse, ChangeGroupRequest, ChangeGroupResponse, CreateGroupRequest,
    CreateGroupResponse, DeletePrivateRequest, DeletePrivateResponse, EditPrivateRequest,
    EditPrivateResponse, LeaveGroupRequest, LeaveGroupResponse, ListBlocksRequest,
    ListBlocksResponse, ListGroupsRequest, ListGroupsResponse, PrivateHistoryRequest,
    PrivateHistoryResponse, SearchPrivateRequest, SearchPrivateResponse, SendPrivateRequest,
    SendPrivateResponse, TranscribePrivateRequest, TranscribePrivateResponse, UnblockRequest,
    UnblockResponse, VerifyRequest, VerifyResponse, WatchPrivateRequest, WatchPrivateResponse,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::access::ClientInfo;
use crate::dm::Dm;
use crate::node::Node;
use crate::ops::PrivateOps;
use crate::people::People;

/// The `PrivateService` implementation.
#[derive(Clone, Debug)]
pub struct PrivateApi {
    ops: PrivateOps,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchPrivateResponse, Status>> + Send>>;

impl PrivateApi {
    /// The service over `dm`.
    pub fn new(dm: Arc<Dm>, people: Arc<People>, node: Arc<Node>) -> PrivateApi {
        PrivateApi {
            ops: PrivateOps::new(dm, people, node),
        }
    }
}

/// The caller, as the connection told.
fn caller<T>(r: &Request<T>) -> Option<ClientInfo> {
    r.extensions().get::<ClientInfo>().cloned()
}

#[tonic::async_trait]
impl PrivateService for PrivateApi {
    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn send_private(
        &self,
        request: Request<SendPrivateRequest>,
    ) -> Result<Response<SendPrivateResponse>, Status> {
        let who = caller(&request);
        let (message, file_holders) = self
            .ops
            .send_counted(who.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(SendPrivateResponse {
            message: Some(message),
            file_holders,
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn private_history(
        &self,
        request: Request<PrivateHistoryRequest>,
    ) -> Result<Response<PrivateHistoryResponse>, Status> {
        let who = caller(&request);
        let page = self.ops.history(who.as_ref(), request.into_inner()).await?;
        Ok(Response::new(page))
    }

    type WatchPrivateStream = EventStream;

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn watch_private(
        &self,
        request: Request<WatchPrivateRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let events = self.ops.watch(caller(&request).as_ref())?;
        Ok(Response::new(Box::pin(
            events.map(|e| e.map_err(Status::from)),
        )))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn edit_private(
        &self,
        request: Request<EditPrivateRequest>,
    ) -> Result<Response<EditPrivateResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let message = self
            .ops
            .change(who.as_ref(), req.id, Some(req.text))
            .await?;
        Ok(Response::new(EditPrivateResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn delete_private(
        &self,
        request: Request<DeletePrivateRequest>,
    ) -> Result<Response<DeletePrivateResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let message = self.ops.change(who.as_ref(), req.id, None).await?;
        Ok(Response::new(DeletePrivateResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn transcribe_private(
        &self,
        request: Request<TranscribePrivateRequest>,
    ) -> Result<Response<TranscribePrivateResponse>, Status> {
        let who = caller(&request);
        let id = request.into_inner().id;
        let (message, shared) = self.ops.transcribe(who.as_ref(), &id).await?;
        Ok(Response::new(TranscribePrivateResponse {
            message: Some(message),
            shared: Some(shared),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn search_private(
        &self,
        request: Request<SearchPrivateRequest>,
    ) -> Result<Response<SearchPrivateResponse>, Status> {
        let who = caller(&request);
        let messages = self.ops.search(who.as_ref(), request.into_inner()).await?;
        Ok(Response::new(SearchPrivateResponse { messages }))
    }

    async fn create_group(
        &self,
        request: Request<CreateGroupRequest>,
    ) -> Result<Response<CreateGroupResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let group = self
            .ops
            .create_group(who.as_ref(), r.name, r.members)
            .await?;
        Ok(Response::new(CreateGroupResponse { group: Some(group) }))
    }

    async fn change_group(
        &self,
        request: Request<ChangeGroupRequest>,
    ) -> Result<Response<ChangeGroupResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let group = self
            .ops
            .change_group(who.as_ref(), r.group_id, r.add, r.remove)
            .await?;
        Ok(Response::new(ChangeGroupResponse { group: Some(group) }))
    }

    async fn leave_group(
        &self,
        request: Request<LeaveGroupRequest>,
    ) -> Result<Response<LeaveGroupResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        self.ops.leave_group(who.as_ref(), r.group_id).await?;
        Ok(Response::new(LeaveGroupResponse {}))
    }

    async fn list_groups(
        &self,
        request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        let groups = self.ops.groups(caller(&request).as_ref()).await?;
        Ok(Response::new(ListGroupsResponse { groups }))
    }

    async fn block(
        &self,
        request: Request<BlockRequest>,
    ) -> Result<Response<BlockResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let changed = self.ops.set_blocked(who.as_ref(), r.nickname, true).await?;
        Ok(Response::new(BlockResponse { changed }))
    }

    async fn unblock(
        &self,
        request: Request<UnblockRequest>,
    ) -> Result<Response<UnblockResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let changed = self
            .ops
            .set_blocked(who.as_ref(), r.nickname, false)
            .await?;
        Ok(Response::new(UnblockResponse { changed }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let v = self
            .ops
            .verify(who.as_ref(), &r.nickname, r.confirm)
            .await?;
        Ok(Response::new(v))
    }

    async fn list_blocks(
        &self,
        request: Request<ListBlocksRequest>,
    ) -> Result<Response<ListBlocksResponse>, Status> {
        let users = self.ops.blocked(caller(&request).as_ref()).await?;
        Ok(Response::new(ListBlocksResponse { users }))
    }
}
