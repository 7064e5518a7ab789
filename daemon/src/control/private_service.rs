//! `chat.v1.PrivateService`: the caller's private messages and groups (`crate::dm`). The
//! caller's account is the one the control connection maps to (the operator's, a local Unix
//! user's, the TCP token's guest); nobody reads or sends as another account.
//!
//! Every call's work on the service (its engine calls, `dm.sqlite3` reads and commits) runs on
//! the blocking pool ([`PrivateApi::off`]: kind `Private`, `Search` for SearchPrivate), never
//! on an async worker; past the kind's bound the call fails with RESOURCE_EXHAUSTED.

use std::pin::Pin;
use std::sync::Arc;

use chat_dm::group::GroupState;
use chat_proto::v1::private_service_server::PrivateService;
use chat_proto::v1::{
    BlockRequest, BlockResponse, BlockedUser, ChangeGroupRequest, ChangeGroupResponse,
    CreateGroupRequest, CreateGroupResponse, DeletePrivateRequest, DeletePrivateResponse,
    DeliveryStatus, EditPrivateRequest, EditPrivateResponse, Group, LeaveGroupRequest,
    LeaveGroupResponse, ListBlocksRequest, ListBlocksResponse, ListGroupsRequest,
    ListGroupsResponse, PrivateHistoryRequest, PrivateHistoryResponse, PrivateMessage,
    SearchPrivateRequest, SearchPrivateResponse, SendPrivateRequest, SendPrivateResponse,
    StatusChange, UnblockRequest, UnblockResponse, VerifyRequest, VerifyResponse,
    WatchPrivateRequest, WatchPrivateResponse, watch_private_response,
};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::ApiError;
use super::access::ClientInfo;
use crate::dm::contacts::{Contacts, Marks};
use crate::dm::{Dm, DmEvent, Message};
use crate::node::Node;
use crate::offload::{Offload, Work};
use crate::people::{People, PeopleError, Who};

/// Most messages one history call returns.
const MAX_HISTORY: u32 = 1000;

/// The `PrivateService` implementation.
#[derive(Clone, Debug)]
pub struct PrivateApi {
    dm: Arc<Dm>,
    people: Arc<People>,
    node: Arc<Node>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WatchPrivateResponse, Status>> + Send>>;

/// The API's form of a delivery status.
pub fn delivery(code: u8) -> DeliveryStatus {
    match code {
        1 => DeliveryStatus::Queued,
        2 => DeliveryStatus::Sent,
        3 => DeliveryStatus::Stored,
        4 => DeliveryStatus::Delivered,
        5 => DeliveryStatus::Expired,
        _ => DeliveryStatus::Unspecified,
    }
}

impl PrivateApi {
    /// The service over `dm`.
    pub fn new(dm: Arc<Dm>, people: Arc<People>, node: Arc<Node>) -> PrivateApi {
        PrivateApi { dm, people, node }
    }

    /// Runs `f` with this service on the blocking pool (bounded by `work`'s limit).
    async fn off<T: Send + 'static>(
        &self,
        work: Work,
        f: impl FnOnce(PrivateApi) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let api = self.clone();
        Offload::shared().run(work, move || f(api)).await?
    }

    fn caller<T>(&self, r: &Request<T>) -> Result<Who, ApiError> {
        if !self.node.is_joined() {
            return Err(PeopleError::NotJoined.into());
        }
        Ok(self.people.who(r.extensions().get::<ClientInfo>()))
    }

    /// A message as the API shows it (group names from `groups`).
    pub fn message(&self, m: &Message, groups: &[GroupState]) -> PrivateMessage {
        self.message_marked(m, groups, &self.dm.contacts(&m.account))
    }

    /// [`PrivateApi::message`] with the marks of the account's bindings `contacts`.
    fn message_marked(
        &self,
        m: &Message,
        groups: &[GroupState],
        contacts: &Contacts,
    ) -> PrivateMessage {
        let r = &m.row;
        let marks = match (r.group, r.peer) {
            (None, Some(p)) => self.dm.marks(contacts, &p),
            _ => Marks::default(),
        };
        let (to, to_id) = match (r.group, r.outgoing, r.peer) {
            (None, true, Some(p)) => (self.people.display_account(&p), hex::encode(p)),
            (None, false, _) => (
                self.people.display_account(&m.account),
                hex::encode(m.account),
            ),
            _ => (String::new(), String::new()),
        };
        let group = r
            .group
            .and_then(|g| groups.iter().find(|s| s.id == g))
            .map(|s| s.name.clone())
            .unwrap_or_default();
        PrivateMessage {
            id: hex::encode(r.id),
            from: self.people.display_account(&r.from),
            from_id: hex::encode(r.from),
            to,
            to_id,
            group_id: r.group.map(hex::encode).unwrap_or_default(),
            group,
            text: r.text.clone(),
            sent_unix_ms: i64::try_from(r.sent_ms).unwrap_or(i64::MAX),
            outgoing: r.outgoing,
            status: delivery(r.status) as i32,
            edited_unix_ms: i64::try_from(r.edited_ms).unwrap_or(i64::MAX),
            deleted: r.deleted,
            peer_verified: marks.verified,
            key_changed: marks.key_changed,
        }
    }

    /// The bindings of `who`'s account.
    fn contacts_of(&self, who: Who) -> Result<Contacts, ApiError> {
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        Ok(self.dm.contacts(&me))
    }

    fn group(&self, g: &GroupState, me: &[u8; 32]) -> Group {
        Group {
            id: hex::encode(g.id),
            name: g.name.clone(),
            creator: self.people.display_account(&g.creator),
            creator_id: hex::encode(g.creator),
            members: g
                .member_keys()
                .iter()
                .map(|m| self.people.display_account(m))
                .collect(),
            version: g.version,
            left: !g.has(me),
        }
    }
}

#[tonic::async_trait]
impl PrivateService for PrivateApi {
    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn send_private(
        &self,
        request: Request<SendPrivateRequest>,
    ) -> Result<Response<SendPrivateResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        let m = match (r.to.trim().is_empty(), r.group_id.trim().is_empty()) {
            // Resolves the name on the network, then runs on the blocking pool itself.
            (false, true) => self
                .dm
                .send_to(who, &r.to, &r.text, r.accept_new_key)
                .await
                .map_err(ApiError::from)?,
            (true, false) => {
                self.off(Work::Private, move |api| {
                    Ok(api.dm.send_group(who, &r.group_id, &r.text)?)
                })
                .await?
            }
            _ => {
                return Err(
                    ApiError::field("to", "give exactly one of `to` and `group_id`").into(),
                );
            }
        };
        self.people.touch(who);
        let message = self
            .off(Work::Private, move |api| {
                let groups = api.dm.groups(who)?;
                Ok(api.message(&m, &groups))
            })
            .await?;
        Ok(Response::new(SendPrivateResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn private_history(
        &self,
        request: Request<PrivateHistoryRequest>,
    ) -> Result<Response<PrivateHistoryResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        let limit = match r.limit {
            0 => 100,
            n => n.min(MAX_HISTORY),
        };
        let before: Option<[u8; 16]> = match r.before_id.trim() {
            "" => None,
            id => Some(
                hex::decode(id)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| ApiError::field("before_id", "a message id is 32 hex digits"))?,
            ),
        };
        let page = self
            .off(Work::Private, move |api| {
                // One more than asked tells whether there are more.
                let mut rows = api.dm.history(who, &r.with, before.as_ref(), limit + 1)?;
                let more = rows.len() > limit as usize;
                if more {
                    rows.remove(0);
                }
                let groups = api.dm.groups(who)?;
                let contacts = api.contacts_of(who)?;
                Ok(PrivateHistoryResponse {
                    messages: rows
                        .iter()
                        .map(|m| api.message_marked(m, &groups, &contacts))
                        .collect(),
                    more,
                })
            })
            .await?;
        Ok(Response::new(page))
    }

    type WatchPrivateStream = EventStream;

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn watch_private(
        &self,
        request: Request<WatchPrivateRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let who = self.caller(&request)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        let mut rx = self.dm.watch();
        let api = self.clone();
        let stream = async_stream(move |tx| async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "this watcher fell {n} events behind; watch again and read \
                                 the history"
                            ))))
                            .await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                };
                let event = match ev {
                    DmEvent::Message(m) if m.account == me => {
                        // The groups and bindings are read on the blocking pool.
                        let shown = Offload::shared()
                            .run_owed(Work::Private, {
                                let api = api.clone();
                                move || {
                                    let groups = api.dm.groups(who).unwrap_or_default();
                                    api.message(&m, &groups)
                                }
                            })
                            .await;
                        match shown {
                            Ok(m) => watch_private_response::Event::Message(m),
                            Err(e) => {
                                let _ = tx.send(Err(ApiError::from(e).into())).await;
                                return;
                            }
                        }
                    }
                    DmEvent::Status {
                        account,
                        id,
                        to,
                        status,
                    } if account == me => watch_private_response::Event::Status(StatusChange {
                        id: hex::encode(id),
                        to: api.people.display_account(&to),
                        to_id: hex::encode(to),
                        status: delivery(crate::dm::status_code(status)) as i32,
                    }),
                    DmEvent::Group { account, state } if account == me => {
                        watch_private_response::Event::Group(api.group(&state, &me))
                    }
                    _ => continue,
                };
                if tx
                    .send(Ok(WatchPrivateResponse { event: Some(event) }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn edit_private(
        &self,
        request: Request<EditPrivateRequest>,
    ) -> Result<Response<EditPrivateResponse>, Status> {
        let who = self.caller(&request)?;
        let req = request.into_inner();
        let message = self
            .off(Work::Private, move |api| {
                let m = api.dm.change(who, &req.id, Some(&req.text))?;
                Ok(api.message(&m, &api.dm.groups(who)?))
            })
            .await?;
        Ok(Response::new(EditPrivateResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn delete_private(
        &self,
        request: Request<DeletePrivateRequest>,
    ) -> Result<Response<DeletePrivateResponse>, Status> {
        let who = self.caller(&request)?;
        let req = request.into_inner();
        let message = self
            .off(Work::Private, move |api| {
                let m = api.dm.change(who, &req.id, None)?;
                Ok(api.message(&m, &api.dm.groups(who)?))
            })
            .await?;
        Ok(Response::new(DeletePrivateResponse {
            message: Some(message),
        }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn search_private(
        &self,
        request: Request<SearchPrivateRequest>,
    ) -> Result<Response<SearchPrivateResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        let expression =
            crate::chat::search::expression(&r.query).map_err(|e| ApiError::field("query", e))?;
        if r.since_unix_ms < 0 {
            return Err(ApiError::field("since_unix_ms", "must not be negative").into());
        }
        let limit = match r.limit {
            0 => 50,
            n => n.min(MAX_HISTORY),
        };
        let messages = self
            .off(Work::Search, move |api| {
                let rows =
                    api.dm
                        .search(who, &expression, &r.from, r.since_unix_ms as u64, limit)?;
                let groups = api.dm.groups(who)?;
                let contacts = api.contacts_of(who)?;
                Ok(rows
                    .iter()
                    .map(|m| api.message_marked(m, &groups, &contacts))
                    .collect())
            })
            .await?;
        Ok(Response::new(SearchPrivateResponse { messages }))
    }

    async fn create_group(
        &self,
        request: Request<CreateGroupRequest>,
    ) -> Result<Response<CreateGroupResponse>, Status> {
        let who = self.caller(&request)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        let r = request.into_inner();
        let group = self
            .off(Work::Private, move |api| {
                let g = api.dm.create_group(who, &r.name, &r.members)?;
                Ok(api.group(&g, &me))
            })
            .await?;
        Ok(Response::new(CreateGroupResponse { group: Some(group) }))
    }

    async fn change_group(
        &self,
        request: Request<ChangeGroupRequest>,
    ) -> Result<Response<ChangeGroupResponse>, Status> {
        let who = self.caller(&request)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        let r = request.into_inner();
        let group = self
            .off(Work::Private, move |api| {
                let g = api.dm.change_group(who, &r.group_id, &r.add, &r.remove)?;
                Ok(api.group(&g, &me))
            })
            .await?;
        Ok(Response::new(ChangeGroupResponse { group: Some(group) }))
    }

    async fn leave_group(
        &self,
        request: Request<LeaveGroupRequest>,
    ) -> Result<Response<LeaveGroupResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        self.off(Work::Private, move |api| {
            Ok(api.dm.leave_group(who, &r.group_id)?)
        })
        .await?;
        Ok(Response::new(LeaveGroupResponse {}))
    }

    async fn list_groups(
        &self,
        request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        let who = self.caller(&request)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        let groups = self
            .off(Work::Private, move |api| {
                let groups = api.dm.groups(who)?;
                Ok(groups.iter().map(|g| api.group(g, &me)).collect())
            })
            .await?;
        Ok(Response::new(ListGroupsResponse { groups }))
    }

    async fn block(
        &self,
        request: Request<BlockRequest>,
    ) -> Result<Response<BlockResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        let changed = self
            .off(Work::Private, move |api| {
                Ok(api.dm.set_blocked(who, &r.nickname, true)?)
            })
            .await?;
        Ok(Response::new(BlockResponse { changed }))
    }

    async fn unblock(
        &self,
        request: Request<UnblockRequest>,
    ) -> Result<Response<UnblockResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        let changed = self
            .off(Work::Private, move |api| {
                Ok(api.dm.set_blocked(who, &r.nickname, false)?)
            })
            .await?;
        Ok(Response::new(UnblockResponse { changed }))
    }

    #[tracing::instrument(skip_all, fields(node = %self.node.id().short()))]
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let who = self.caller(&request)?;
        let r = request.into_inner();
        let v = self
            .dm
            .verify(who, &r.nickname, r.confirm)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(VerifyResponse {
            nickname: v.shown.clone(),
            user_id: hex::encode(v.account),
            own_user_id: hex::encode(v.own),
            safety_number: v.number.clone(),
            verified: v.verified,
            key_changed: v.key_changed(),
            bound_user_id: v.bound.map(hex::encode).unwrap_or_default(),
        }))
    }

    async fn list_blocks(
        &self,
        request: Request<ListBlocksRequest>,
    ) -> Result<Response<ListBlocksResponse>, Status> {
        let who = self.caller(&request)?;
        let blocked = self
            .off(Work::Private, move |api| Ok(api.dm.blocked(who)?))
            .await?;
        Ok(Response::new(ListBlocksResponse {
            users: blocked
                .iter()
                .map(|b| BlockedUser {
                    nickname: self.people.display_account(b),
                    user_id: hex::encode(b),
                })
                .collect(),
        }))
    }
}

/// A stream fed by `f` through a bounded channel.
fn async_stream<F, Fut>(f: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<WatchPrivateResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
