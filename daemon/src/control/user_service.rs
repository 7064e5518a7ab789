//! `chat.v1.UserService`: the user list, user events, and this node user's nickname and
//! presence — a thin adapter over the people service's client operations ([`UserOps`], which
//! the web view calls too).

use std::pin::Pin;

use chat_proto::v1::user_service_server::UserService;
use chat_proto::v1::{
    ListUsersRequest, ListUsersResponse, SetNicknameRequest, SetNicknameResponse,
    SetPresenceRequest, SetPresenceResponse, WatchUserEventsRequest, WatchUserEventsResponse,
};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::access::ClientInfo;
use crate::ops::UserOps;

/// The `UserService` implementation.
#[derive(Clone, Debug)]
pub struct UserApi {
    ops: UserOps,
}

impl UserApi {
    /// The service over `ops`.
    pub fn over(ops: UserOps) -> UserApi {
        UserApi { ops }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchUserEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl UserService for UserApi {
    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let users = self.ops.list(request.extensions().get::<ClientInfo>())?;
        Ok(Response::new(ListUsersResponse { users }))
    }

    type WatchUserEventsStream = EventStream;

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn watch_user_events(
        &self,
        _request: Request<WatchUserEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        Ok(Response::new(Box::pin(self.ops.watch().map(Ok))))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn set_nickname(
        &self,
        request: Request<SetNicknameRequest>,
    ) -> Result<Response<SetNicknameResponse>, Status> {
        let client = request.extensions().get::<ClientInfo>().cloned();
        let wish = request.into_inner().nickname;
        let (nickname, note) = self.ops.set_nickname(client.as_ref(), &wish).await?;
        Ok(Response::new(SetNicknameResponse { nickname, note }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.ops.node().id().short()))]
    async fn set_presence(
        &self,
        request: Request<SetPresenceRequest>,
    ) -> Result<Response<SetPresenceResponse>, Status> {
        let client = request.extensions().get::<ClientInfo>().cloned();
        let req = request.into_inner();
        let message = req.away.then_some(req.away_message);
        self.ops.set_presence(client.as_ref(), message).await?;
        Ok(Response::new(SetPresenceResponse {}))
    }
}
