//! The private-conversation service's client operations (`crate::dm`): the caller's private
//! messages, groups, blocks and verifications, as the gRPC `PrivateService` and the web view
//! both call them. The caller's account is the one its connection maps to (the operator's, a
//! local Unix user's, the TCP token's guest); nobody reads or sends as another account.
//!
//! Every operation's work on the service (its engine calls, `dm.sqlite3` reads and commits)
//! runs on the blocking pool ([`PrivateOps::off`]: kind `Private`, `Search` for a search),
//! never on an async worker; past the kind's bound the call is refused as busy.

use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use chat_dm::group::GroupState;
use chat_proto::v1::{
    BlockedUser, DeliveryStatus, FileAttachment, Group, PrivateHistoryRequest,
    PrivateHistoryResponse, PrivateMessage, SearchPrivateRequest, SendPrivateRequest, StatusChange,
    VerifyResponse, WatchPrivateResponse, watch_private_response,
};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;

use super::ApiError;
use crate::client::ClientInfo;
use crate::dm::contacts::{Contacts, Marks};
use crate::dm::{Dm, DmEvent, Message};
use crate::files::private::PrivateFile;
use crate::node::Node;
use crate::offload::{Offload, Work};
use crate::people::{People, PeopleError, Who};

#[path = "private_voice.rs"]
mod voice;

/// Most messages one history call returns.
const MAX_HISTORY: u32 = 1000;

/// The private-conversation service as clients use it.
#[derive(Clone, Debug)]
pub struct PrivateOps {
    dm: Arc<Dm>,
    people: Arc<People>,
    node: Arc<Node>,
}

/// The caller's private events as they come; an error (it fell behind) ends it.
pub type PrivateEvents = Pin<Box<dyn Stream<Item = Result<WatchPrivateResponse, ApiError>> + Send>>;

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

impl PrivateOps {
    /// The operations over `dm`.
    pub fn new(dm: Arc<Dm>, people: Arc<People>, node: Arc<Node>) -> PrivateOps {
        PrivateOps { dm, people, node }
    }

    /// Runs `f` with this service on the blocking pool (bounded by `work`'s limit).
    async fn off<T: Send + 'static>(
        &self,
        work: Work,
        f: impl FnOnce(PrivateOps) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let api = self.clone();
        Offload::shared().run(work, move || f(api)).await?
    }

    /// The caller's account, once the node is a ring member.
    fn caller(&self, client: Option<&ClientInfo>) -> Result<Who, ApiError> {
        if !self.node.is_joined() {
            return Err(PeopleError::NotJoined.into());
        }
        Ok(self.people.who(client))
    }

    /// The node these operations run on.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// A message as the API shows it (group names from `groups`).
    pub fn message(&self, m: &Message, groups: &[GroupState]) -> PrivateMessage {
        self.message_marked(m, groups, &self.dm.contacts(&m.account))
    }

    /// [`PrivateOps::message`] with the marks of the account's bindings `contacts`.
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
        let file = r
            .file
            .as_deref()
            .filter(|_| !r.deleted)
            .and_then(PrivateFile::decode);
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
            attachment: file.as_ref().map(|f| FileAttachment {
                hash: f.cipher_hash.to_hex(),
                name: f.name.clone(),
                size: f.size,
                media_type: f.media.mime().to_owned(),
                ..Default::default()
            }),
            voice: file.and_then(|f| f.voice).map(|t| {
                let mut v = super::chat::voice_to_proto(&t);
                // The text holds every word (the reference only those that fitted).
                if let Some(q) = voice::quoted(&r.text) {
                    v.text = q.to_owned();
                }
                v
            }),
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

    /// Sends a private message (`to` a nickname, or to group `group_id`: exactly one) as
    /// `client`; the message as sent.
    pub async fn send(
        &self,
        client: Option<&ClientInfo>,
        r: SendPrivateRequest,
    ) -> Result<PrivateMessage, ApiError> {
        Ok(self.send_counted(client, r).await?.0)
    }

    /// [`PrivateOps::send`], and for a message with a file how many other nodes hold its
    /// ciphertext for offline recipients.
    pub async fn send_counted(
        &self,
        client: Option<&ClientInfo>,
        mut r: SendPrivateRequest,
    ) -> Result<(PrivateMessage, u32), ApiError> {
        let who = self.caller(client)?;
        let (file, holders) = match r.attachment_hash.trim() {
            "" if r.voice => {
                return Err(ApiError::field(
                    "attachment_hash",
                    "a voice message needs the recording's encrypted upload",
                ));
            }
            "" => (None, 0),
            hash if r.voice => {
                let (reference, text, holders) =
                    self.prepare_voice(hash, &r.attachment_name).await?;
                r.text = text;
                (Some(reference), holders)
            }
            hash => {
                let (file, holders) = self.prepare_file(hash, &r.attachment_name).await?;
                if r.text.trim().is_empty() {
                    r.text = format!("📎 {}", file.name);
                }
                (Some(file.encode()), holders)
            }
        };
        let m = match (r.to.trim().is_empty(), r.group_id.trim().is_empty()) {
            // Resolves the name on the network, then runs on the blocking pool itself.
            (false, true) => self
                .dm
                .send_to_with(who, &r.to, &r.text, file, r.accept_new_key)
                .await
                .map_err(ApiError::from)?,
            (true, false) => {
                self.off(Work::Private, move |ops| {
                    Ok(ops.dm.send_group_with(who, &r.group_id, &r.text, file)?)
                })
                .await?
            }
            _ => {
                return Err(ApiError::field(
                    "to",
                    "give exactly one of `to` and `group_id`",
                ));
            }
        };
        self.people.touch(who);
        let shown = self
            .off(Work::Private, move |ops| {
                let groups = ops.dm.groups(who)?;
                Ok(ops.message(&m, &groups))
            })
            .await?;
        Ok((shown, holders))
    }

    /// The reference of the encrypted upload `hash` under `name`, its ciphertext kept here
    /// (pinned, announced) and, within `files.offline_max_mb`, by other nodes for offline
    /// recipients (how many: the second value).
    async fn prepare_file(&self, hash: &str, name: &str) -> Result<(PrivateFile, u32), ApiError> {
        let files = self
            .node
            .files()
            .cloned()
            .ok_or_else(|| ApiError::Unavailable("this node has no file store".into()))?;
        let hash = chat_blobs::Hash::from_str(hash)
            .map_err(|_| ApiError::field("attachment_hash", "64 hex digits"))?;
        let pending = files.pending(&hash).ok_or_else(|| {
            ApiError::field(
                "attachment_hash",
                "no encrypted upload of the last 10 minutes has this hash (upload it with \
                 `encrypt`)",
            )
        })?;
        let name = match name.trim() {
            "" => hash.to_hex()[..16].to_owned(),
            n => n.to_owned(),
        };
        if name.len() > crate::chat::attachment::MAX_NAME_BYTES
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::field(
                "attachment_name",
                "1 to 255 bytes without control characters",
            ));
        }
        let file = pending.reference(hash, name);
        let holders = self.hold(&files, &file).await?;
        Ok((file, holders))
    }

    /// Keeps the ciphertext of `file` here (pinned, announced) and, within
    /// `files.offline_max_mb`, has other nodes hold it for offline recipients (how many).
    async fn hold(&self, files: &crate::files::Files, file: &PrivateFile) -> Result<u32, ApiError> {
        let hash = file.cipher_hash;
        files.keep(hash).await?;
        let holders = files
            .place(hash, file.cipher_size, self.dm.mailbox_ttl())
            .await?;
        files.announce(hash, file.cipher_size).await;
        Ok(u32::try_from(holders).unwrap_or(u32::MAX))
    }

    /// The file of the caller's private message `id` (hex).
    pub async fn file_of(
        &self,
        client: Option<&ClientInfo>,
        id: &str,
    ) -> Result<PrivateFile, ApiError> {
        let who = self.caller(client)?;
        let id = id.trim().to_owned();
        self.off(Work::Private, move |ops| {
            let m = ops.dm.message_of(who, &id)?;
            m.row
                .file
                .as_deref()
                .and_then(PrivateFile::decode)
                .ok_or_else(|| ApiError::NotFound(format!("private message {id} carries no file")))
        })
        .await
    }

    /// One page of `client`'s private messages (with one peer or group, or all), the newest
    /// last.
    pub async fn history(
        &self,
        client: Option<&ClientInfo>,
        r: PrivateHistoryRequest,
    ) -> Result<PrivateHistoryResponse, ApiError> {
        let who = self.caller(client)?;
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
        self.off(Work::Private, move |ops| {
            // One more than asked tells whether there are more.
            let mut rows = ops.dm.history(who, &r.with, before.as_ref(), limit + 1)?;
            let more = rows.len() > limit as usize;
            if more {
                rows.remove(0);
            }
            let groups = ops.dm.groups(who)?;
            let contacts = ops.contacts_of(who)?;
            Ok(PrivateHistoryResponse {
                messages: rows
                    .iter()
                    .map(|m| ops.message_marked(m, &groups, &contacts))
                    .collect(),
                more,
            })
        })
        .await
    }

    /// `client`'s private messages, delivery changes and group changes from now on.
    pub fn watch(&self, client: Option<&ClientInfo>) -> Result<PrivateEvents, ApiError> {
        let who = self.caller(client)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        let mut rx = self.dm.watch();
        let ops = self.clone();
        let (tx, out) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let ev = match rx.recv().await {
                    Ok(ev) => ev,
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(ApiError::ResourceExhausted(format!(
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
                                let ops = ops.clone();
                                move || {
                                    let groups = ops.dm.groups(who).unwrap_or_default();
                                    ops.message(&m, &groups)
                                }
                            })
                            .await;
                        match shown {
                            Ok(m) => watch_private_response::Event::Message(m),
                            Err(e) => {
                                let _ = tx.send(Err(ApiError::from(e))).await;
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
                        to: ops.people.display_account(&to),
                        to_id: hex::encode(to),
                        status: delivery(crate::dm::status_code(status)) as i32,
                    }),
                    DmEvent::Group { account, state } if account == me => {
                        watch_private_response::Event::Group(ops.group(&state, &me))
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
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(out)))
    }

    /// Edits (`text`) or deletes (`None`) `client`'s private message `id`.
    pub async fn change(
        &self,
        client: Option<&ClientInfo>,
        id: String,
        text: Option<String>,
    ) -> Result<PrivateMessage, ApiError> {
        let who = self.caller(client)?;
        self.off(Work::Private, move |ops| {
            let m = ops.dm.change(who, &id, text.as_deref())?;
            Ok(ops.message(&m, &ops.dm.groups(who)?))
        })
        .await
    }

    /// `client`'s private messages matching a search.
    pub async fn search(
        &self,
        client: Option<&ClientInfo>,
        r: SearchPrivateRequest,
    ) -> Result<Vec<PrivateMessage>, ApiError> {
        let who = self.caller(client)?;
        let expression =
            crate::chat::search::expression(&r.query).map_err(|e| ApiError::field("query", e))?;
        if r.since_unix_ms < 0 {
            return Err(ApiError::field("since_unix_ms", "must not be negative"));
        }
        let limit = match r.limit {
            0 => 50,
            n => n.min(MAX_HISTORY),
        };
        self.off(Work::Search, move |ops| {
            let rows = ops
                .dm
                .search(who, &expression, &r.from, r.since_unix_ms as u64, limit)?;
            let groups = ops.dm.groups(who)?;
            let contacts = ops.contacts_of(who)?;
            let mut found: Vec<PrivateMessage> = rows
                .iter()
                .map(|m| ops.message_marked(m, &groups, &contacts))
                .collect();
            for v in found.iter_mut().filter_map(|m| m.voice.as_mut()) {
                super::chat::fill_match(v, &r.query);
            }
            Ok(found)
        })
        .await
    }

    /// Creates group `name` of `client` and `members`.
    pub async fn create_group(
        &self,
        client: Option<&ClientInfo>,
        name: String,
        members: Vec<String>,
    ) -> Result<Group, ApiError> {
        let who = self.caller(client)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        self.off(Work::Private, move |ops| {
            let g = ops.dm.create_group(who, &name, &members)?;
            Ok(ops.group(&g, &me))
        })
        .await
    }

    /// Adds and removes members of group `group_id`.
    pub async fn change_group(
        &self,
        client: Option<&ClientInfo>,
        group_id: String,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> Result<Group, ApiError> {
        let who = self.caller(client)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        self.off(Work::Private, move |ops| {
            let g = ops.dm.change_group(who, &group_id, &add, &remove)?;
            Ok(ops.group(&g, &me))
        })
        .await
    }

    /// Leaves group `group_id`.
    pub async fn leave_group(
        &self,
        client: Option<&ClientInfo>,
        group_id: String,
    ) -> Result<(), ApiError> {
        let who = self.caller(client)?;
        self.off(Work::Private, move |ops| {
            Ok(ops.dm.leave_group(who, &group_id)?)
        })
        .await
    }

    /// `client`'s groups.
    pub async fn groups(&self, client: Option<&ClientInfo>) -> Result<Vec<Group>, ApiError> {
        let who = self.caller(client)?;
        let me = self.people.account_of(who).map_err(ApiError::from)?;
        self.off(Work::Private, move |ops| {
            let groups = ops.dm.groups(who)?;
            Ok(groups.iter().map(|g| ops.group(g, &me)).collect())
        })
        .await
    }

    /// Blocks (or unblocks) `nickname` for `client`; whether that changed anything.
    pub async fn set_blocked(
        &self,
        client: Option<&ClientInfo>,
        nickname: String,
        blocked: bool,
    ) -> Result<bool, ApiError> {
        let who = self.caller(client)?;
        self.off(Work::Private, move |ops| {
            Ok(ops.dm.set_blocked(who, &nickname, blocked)?)
        })
        .await
    }

    /// The people `client` blocked.
    pub async fn blocked(&self, client: Option<&ClientInfo>) -> Result<Vec<BlockedUser>, ApiError> {
        let who = self.caller(client)?;
        let blocked = self
            .off(Work::Private, move |ops| Ok(ops.dm.blocked(who)?))
            .await?;
        Ok(blocked
            .iter()
            .map(|b| BlockedUser {
                nickname: self.people.display_account(b),
                user_id: hex::encode(b),
            })
            .collect())
    }

    /// The safety number of `client` and `nickname`, confirmed as verified if `confirm`.
    pub async fn verify(
        &self,
        client: Option<&ClientInfo>,
        nickname: &str,
        confirm: bool,
    ) -> Result<VerifyResponse, ApiError> {
        let who = self.caller(client)?;
        let v = self
            .dm
            .verify(who, nickname, confirm)
            .await
            .map_err(ApiError::from)?;
        Ok(VerifyResponse {
            nickname: v.shown.clone(),
            user_id: hex::encode(v.account),
            own_user_id: hex::encode(v.own),
            safety_number: v.number.clone(),
            verified: v.verified,
            key_changed: v.key_changed(),
            bound_user_id: v.bound.map(hex::encode).unwrap_or_default(),
        })
    }
}
