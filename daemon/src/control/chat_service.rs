//! `chat.v1.ChatService`: send, subscribe, history and rooms — a thin adapter over the chat
//! service's client operations ([`ChatOps`], which the web view calls too): it takes the
//! caller from the connection, calls the operation, and turns its error into a status
//! (`error.rs`).

use std::pin::Pin;
use std::sync::Arc;

use chat_proto::v1::chat_service_server::ChatService;
use chat_proto::v1::{
    DeleteRequest, DeleteResponse, EditRequest, EditResponse, HistoryRequest, HistoryResponse,
    ListRoomsRequest, ListRoomsResponse, SearchRequest, SearchResponse, SendRequest, SendResponse,
    SubscribeRequest, SubscribeResponse, TraceRequest, TraceResponse, TranscribeRequest,
    TranscribeResponse,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::access::ClientInfo;
use crate::chat::Chat;
use crate::chat::ratelimit::Rate;
use crate::node::Node;
use crate::offload::Offload;
use crate::ops::ChatOps;
use crate::people::People;

/// The `ChatService` implementation.
#[derive(Clone)]
pub struct ChatApi {
    ops: ChatOps,
}

impl ChatApi {
    /// The service over `ops` (shared with the web view: one send limit per client).
    pub fn over(ops: ChatOps) -> ChatApi {
        ChatApi { ops }
    }

    /// The service over `chat`, naming authors through `people`, limiting each client's
    /// sends to `rate`.
    pub fn new(chat: Chat, node: Arc<Node>, people: Arc<People>, rate: Rate) -> ChatApi {
        ChatApi::over(ChatOps::new(chat, node, people, rate))
    }

    /// Runs its store reads through `offload` instead of the process's gate (tests).
    pub fn with_offload(self, offload: Offload) -> ChatApi {
        ChatApi::over(self.ops.with_offload(offload))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ChatService for ChatApi {
    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendResponse>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let req = request.into_inner();
        let message = match req.attachment_hash.as_str() {
            "" => self.ops.send(info.as_ref(), &req.room, req.text).await?,
            hash if req.voice => {
                self.ops
                    .send_voice(info.as_ref(), &req.room, hash, &req.attachment_name)
                    .await?
            }
            hash => {
                let (room, name) = (&req.room, &req.attachment_name);
                self.ops
                    .send_with_file(info.as_ref(), room, req.text, hash, name)
                    .await?
            }
        };
        Ok(Response::new(SendResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn transcribe(
        &self,
        request: Request<TranscribeRequest>,
    ) -> Result<Response<TranscribeResponse>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let id = request.into_inner().id;
        let message = self.ops.transcribe(info.as_ref(), &id).await?;
        Ok(Response::new(TranscribeResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn edit(&self, request: Request<EditRequest>) -> Result<Response<EditResponse>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let req = request.into_inner();
        let edit = self.ops.edit(info.as_ref(), &req.id, req.text).await?;
        Ok(Response::new(EditResponse { edit: Some(edit) }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let delete = self
            .ops
            .delete(info.as_ref(), &request.into_inner().id)
            .await?;
        Ok(Response::new(DeleteResponse {
            delete: Some(delete),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn trace(
        &self,
        request: Request<TraceRequest>,
    ) -> Result<Response<TraceResponse>, Status> {
        let traced = self.ops.trace(&request.into_inner().id).await?;
        Ok(Response::new(super::trace::response(&traced)))
    }

    type SubscribeStream = EventStream;

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let feed = self
            .ops
            .subscribe(info.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(Box::pin(feed.map(Ok))))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let page = self
            .ops
            .history(info.as_ref(), request.into_inner())
            .await?;
        Ok(Response::new(page))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        let info = request.extensions().get::<ClientInfo>().cloned();
        let found = self.ops.search(info.as_ref(), request.into_inner()).await?;
        Ok(Response::new(found))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn list_rooms(
        &self,
        _request: Request<ListRoomsRequest>,
    ) -> Result<Response<ListRoomsResponse>, Status> {
        Ok(Response::new(self.ops.list_rooms().await?))
    }
}
