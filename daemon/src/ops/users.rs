//! The people service's client operations: the user list as a caller sees it (with its own
//! verified and changed-key marks), the stream of user events, and setting the caller's
//! nickname and presence — as the gRPC `UserService` and the web view both call them.

use std::pin::Pin;
use std::sync::Arc;

use chat_proto::v1::{Presence as ApiPresence, User, WatchUserEventsResponse};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;

use super::ApiError;
use crate::client::ClientInfo;
use crate::node::Node;
use crate::overlay::OverlayHandle;
use crate::people::event::Presence;
use crate::people::{People, PeopleError};

/// User events as they come (`missed` says how many a slow reader lost); ends with the service.
pub type UserEvents = Pin<Box<dyn Stream<Item = WatchUserEventsResponse> + Send>>;

/// The people service as clients use it.
#[derive(Clone, Debug)]
pub struct UserOps {
    people: Arc<People>,
    node: Arc<Node>,
}

/// The API's form of a presence.
pub fn presence(p: Presence) -> ApiPresence {
    match p {
        Presence::Online => ApiPresence::Online,
        Presence::Away => ApiPresence::Away,
        Presence::Offline => ApiPresence::Offline,
    }
}

impl UserOps {
    /// The operations over `people`.
    pub fn new(people: Arc<People>, node: Arc<Node>) -> UserOps {
        UserOps { people, node }
    }

    /// The node these operations run on.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    fn ring(&self) -> Result<&OverlayHandle, ApiError> {
        if !self.node.is_joined() {
            return Err(PeopleError::NotJoined.into());
        }
        self.node
            .overlay()
            .ok_or_else(|| PeopleError::NotJoined.into())
    }

    /// Every user known, marked as `client`'s account sees them (itself, the keys its
    /// conversations are bound to).
    pub fn list(&self, client: Option<&ClientInfo>) -> Result<Vec<User>, ApiError> {
        let who = self.people.who(client);
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        // The caller's conversations bound to keys: verified and changed-key marks.
        let dm = self.node.private();
        let contacts = dm.as_ref().map(|d| d.contacts(&me)).unwrap_or_default();
        Ok(self
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
            .collect())
    }

    /// The user events from now on.
    pub fn watch(&self) -> UserEvents {
        let mut rx = self.people.watch();
        let (tx, out) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
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
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(out))
    }

    /// Claims `wish` as `client`'s nickname; the name it got and a note on it.
    pub async fn set_nickname(
        &self,
        client: Option<&ClientInfo>,
        wish: &str,
    ) -> Result<(String, String), ApiError> {
        let who = self.people.who(client);
        // Checked before anything else: a bad name is the caller's error even off the ring.
        wish.parse::<crate::nickname::Nickname>()
            .map_err(|e| ApiError::from(PeopleError::from(e)))?;
        let ring = self.ring()?;
        Ok(self.people.set_nick(ring, who, wish).await?)
    }

    /// Marks `client` away with `message`, or back (`None`).
    pub async fn set_presence(
        &self,
        client: Option<&ClientInfo>,
        message: Option<String>,
    ) -> Result<(), ApiError> {
        let who = self.people.who(client);
        let ring = self.ring()?;
        Ok(self.people.set_away(ring, who, message).await?)
    }
}
