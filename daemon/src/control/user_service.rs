//! `chat.v1.UserService`: the user list, user events, and this node user's nickname and
//! presence (`crate::people`).

use std::pin::Pin;
use std::sync::Arc;

use chat_proto::v1::user_service_server::UserService;
use chat_proto::v1::{
    ListUsersRequest, ListUsersResponse, Presence as ApiPresence, SetNicknameRequest,
    SetNicknameResponse, SetPresenceRequest, SetPresenceResponse, User, WatchUserEventsRequest,
    WatchUserEventsResponse,
};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::ApiError;
use super::access::ClientInfo;
use crate::node::Node;
use crate::people::event::Presence;
use crate::people::{People, PeopleError};
use crate::ring::RingHandle;

/// The `UserService` implementation.
#[derive(Clone, Debug)]
pub struct UserApi {
    people: Arc<People>,
    node: Arc<Node>,
}

impl UserApi {
    /// The service over `people`.
    pub fn new(people: Arc<People>, node: Arc<Node>) -> UserApi {
        UserApi { people, node }
    }

    fn ring(&self) -> Result<&RingHandle, ApiError> {
        if !self.node.is_joined() {
            return Err(PeopleError::NotJoined.into());
        }
        self.node
            .ring()
            .ok_or_else(|| PeopleError::NotJoined.into())
    }
}

/// The API's form of a presence.
pub fn presence(p: Presence) -> ApiPresence {
    match p {
        Presence::Online => ApiPresence::Online,
        Presence::Away => ApiPresence::Away,
        Presence::Offline => ApiPresence::Offline,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchUserEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl UserService for UserApi {
    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let who = self.people.who(request.extensions().get::<ClientInfo>());
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        // The caller's conversations bound to keys: verified and changed-key marks.
        let dm = self.node.private();
        let contacts = dm.as_ref().map(|d| d.contacts(&me)).unwrap_or_default();
        let users = self
            .people
            .list()
            .into_iter()
            .map(|(name, u)| {
                let marks = dm
                    .as_ref()
                    .map(|d| d.marks(&contacts, &u.account))
                    .unwrap_or_default();
                (name, u, marks)
            })
            .map(|(name, u, marks)| User {
                verified: marks.verified,
                key_changed: marks.key_changed,
                nickname: name,
                user_id: hex::encode(u.account),
                node_id: hex::encode(u.node),
                presence: presence(u.presence) as i32,
                away_message: u.away,
                since_unix_ms: i64::try_from(u.since_ms).unwrap_or(i64::MAX),
                guest: u.guest,
                is_self: u.account == me,
            })
            .collect();
        Ok(Response::new(ListUsersResponse { users }))
    }

    type WatchUserEventsStream = EventStream;

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn watch_user_events(
        &self,
        _request: Request<WatchUserEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let mut rx = self.people.watch();
        let stream = async_stream(move |tx| async move {
            loop {
                let item = match rx.recv().await {
                    Ok(e) => WatchUserEventsResponse {
                        line: e.line,
                        user_id: if e.account == [0; 32] {
                            String::new()
                        } else {
                            hex::encode(e.account)
                        },
                        at_unix_ms: i64::try_from(e.at_ms).unwrap_or(i64::MAX),
                        missed: 0,
                    },
                    Err(RecvError::Lagged(n)) => WatchUserEventsResponse {
                        missed: n,
                        ..Default::default()
                    },
                    Err(RecvError::Closed) => return,
                };
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn set_nickname(
        &self,
        request: Request<SetNicknameRequest>,
    ) -> Result<Response<SetNicknameResponse>, Status> {
        let who = self.people.who(request.extensions().get::<ClientInfo>());
        let wish = request.into_inner().nickname;
        // Checked before anything else: a bad name is the caller's error even off the ring.
        wish.parse::<crate::nickname::Nickname>()
            .map_err(|e| ApiError::from(PeopleError::from(e)))?;
        let ring = self.ring()?;
        let (nickname, note) = self
            .people
            .set_nick(ring, who, &wish)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(SetNicknameResponse { nickname, note }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn set_presence(
        &self,
        request: Request<SetPresenceRequest>,
    ) -> Result<Response<SetPresenceResponse>, Status> {
        let who = self.people.who(request.extensions().get::<ClientInfo>());
        let req = request.into_inner();
        let ring = self.ring()?;
        let message = req.away.then_some(req.away_message);
        self.people
            .set_away(ring, who, message)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(SetPresenceResponse {}))
    }
}

/// A stream fed by a task through a bounded channel.
fn async_stream<F, Fut>(f: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<WatchUserEventsResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
