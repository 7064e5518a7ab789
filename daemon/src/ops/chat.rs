//! The chat service's client operations: send, edit, delete, subscribe, history, search, rooms
//! and trace, as the gRPC `ChatService` and the web view both call them.
//!
//! Requests are checked field by field (an invalid argument names the field); sends are limited
//! per client (a Unix user or a TCP address) by `control.send_rate`/`control.send_burst` — one
//! [`ChatOps`] is shared by every front door, so a client's limit holds across all of them —
//! and refused while the node is not a ring member. Every store read (History, Search,
//! ListRooms, the positions a request names, a subscription's backlog) runs on the blocking
//! pool through [`Offload`], bounded per kind (refused as busy past the bound), never on an
//! async worker.

use std::pin::Pin;
use std::sync::Arc;

use chat_proto::v1::{
    ChatMessage, FileAttachment, HistoryRequest, HistoryResponse, Lagged, ListRoomsResponse,
    MessageKind, RoomInfo, SearchRequest, SearchResponse, SubscribeRequest, SubscribeResponse,
    subscribe_response,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use super::ApiError;
use crate::chat::envelope::Kind;
use crate::chat::hlc::Timestamp;
use crate::chat::ratelimit::{Keyed, Rate};
use crate::chat::search;
use crate::chat::trace::Traced;
use crate::chat::{Chat, FeedEvent, MessageId, Room, Start, Stored};
use crate::client::ClientInfo;
use crate::config::Access;
use crate::node::Node;
use crate::offload::{Offload, Work};
use crate::people::People;

#[path = "chat_voice.rs"]
mod voice;
pub use voice::{fill_match, fill_matches, voice_text, voice_text_within, voice_to_proto};

/// Largest `limit` of History and `backlog` of Subscribe.
pub const MAX_PAGE: u32 = 1000;
/// `limit` when the client gives 0.
pub const DEFAULT_PAGE: u32 = 100;
/// Clients remembered by the send rate limiter.
const RATE_KEYS: usize = 4096;

/// A subscription's events, in order (it ends when the chat core drops it).
pub type Feed = Pin<Box<dyn Stream<Item = SubscribeResponse> + Send>>;

/// The chat service as clients use it.
#[derive(Clone)]
pub struct ChatOps {
    chat: Chat,
    node: Arc<Node>,
    people: Arc<People>,
    limiter: Arc<Keyed<String>>,
    /// Whom each account blocked (their public messages are hidden from it).
    dm: Option<Arc<crate::dm::Dm>>,
    /// The bounded way to the blocking pool for every store read.
    offload: Offload,
}

impl ChatOps {
    /// The operations over `chat`, naming authors through `people`, limiting each client's
    /// sends to `rate`.
    pub fn new(chat: Chat, node: Arc<Node>, people: Arc<People>, rate: Rate) -> ChatOps {
        ChatOps {
            chat,
            node,
            people,
            limiter: Arc::new(Keyed::new(rate, RATE_KEYS)),
            dm: None,
            offload: Offload::shared(),
        }
    }

    /// The operations with `access`'s send limits (`control.send_rate`/`send_burst`).
    pub fn with_access(
        chat: Chat,
        node: Arc<Node>,
        people: Arc<People>,
        access: &Access,
    ) -> ChatOps {
        let rate = Rate {
            per_second: access.send_rate,
            burst: f64::from(access.send_burst),
        };
        ChatOps::new(chat, node, people, rate)
    }

    /// Runs its store reads through `offload` instead of the process's gate (tests).
    pub fn with_offload(mut self, offload: Offload) -> ChatOps {
        self.offload = offload;
        self
    }

    /// Hides from each account the public messages of the people it blocked.
    pub fn with_private(mut self, dm: Arc<crate::dm::Dm>) -> ChatOps {
        self.dm = Some(dm);
        self
    }

    /// The node these operations run on.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Whether the caller (`client`) blocked a message's author.
    fn hider(&self, client: Option<&ClientInfo>) -> impl Fn(&Stored) -> bool + Send + 'static {
        let dm = self.dm.clone();
        let people = self.people.clone();
        let me = people.account_of(people.who(client)).ok();
        move |s: &Stored| {
            let (Some(dm), Some(me)) = (&dm, me) else {
                return false;
            };
            let m = &s.message;
            m.kind != Kind::People
                && people
                    .author_of(m.author.as_ref(), &m.from_id())
                    .is_some_and(|a| dm.blocks(&me, &a))
        }
    }
}

/// What a send needs once it is allowed: the ring, a place in the queue, the author.
struct Sending {
    ring: crate::overlay::OverlayHandle,
    _waiting: tokio::sync::OwnedSemaphorePermit,
    author: [u8; 32],
}

impl ChatOps {
    /// Checks that the caller may send now (the node is joined, the client within its rate,
    /// the queue not full) and names its account.
    fn sending(&self, info: Option<&ClientInfo>) -> Result<Sending, ApiError> {
        let client = info.map(ClientInfo::rate_key).unwrap_or_default();
        let who = self.people.who(info);
        if !self.node.is_joined() {
            return Err(ApiError::Unavailable(
                "this node has not joined a ring yet; messages cannot be sent".into(),
            ));
        }
        if let Err(wait) = self.limiter.take(&client) {
            return Err(ApiError::ResourceExhausted(format!(
                "sending too fast (control.send_rate); retry in {} ms",
                wait.as_millis().max(1)
            )));
        }
        let ring = self.node.overlay().ok_or_else(|| {
            ApiError::Unavailable("the ring is not running; messages cannot be sent".into())
        })?;
        // Bounded: at most `chat.outbound_queue` sends wait for the driver at once.
        let waiting = self.chat.sending_permit().map_err(ApiError::from)?;
        let author = self.people.account_of(who).map_err(ApiError::from)?;
        self.people.touch(who);
        Ok(Sending {
            ring: ring.clone(),
            _waiting: waiting,
            author,
        })
    }

    /// Signs, stores and broadcasts an edit (`text`) or delete (`None`) of `target`.
    async fn change(
        &self,
        info: Option<&ClientInfo>,
        target: MessageId,
        text: Option<String>,
    ) -> Result<ChatMessage, ApiError> {
        // Answered before the rate is charged: a wrong id costs the client nothing.
        let chat = self.chat.clone();
        match self
            .offload
            .run(Work::Read, move || chat.find(&target))
            .await??
        {
            None => return Err(crate::chat::ChangeError::NotFound(target).into()),
            Some(s) if s.message.kind == Kind::Deleted => {
                return Err(crate::chat::ChangeError::Deleted(target).into());
            }
            Some(_) => {}
        }
        let go = self.sending(info)?;
        self.originate(go, move |chat, author| {
            chat.change_as(target, text.as_deref(), Some(author))
        })
        .await
    }

    /// The tail every send shares: `store` numbers, signs and stores the message as `go`'s
    /// author on the overlay's driver, only once the overlay admits its broadcast (so the
    /// answer, the message as stored, means the overlay has taken it).
    async fn originate<E>(
        &self,
        go: Sending,
        store: impl FnOnce(&Chat, [u8; 32]) -> Result<crate::chat::Local, E> + Send + 'static,
    ) -> Result<ChatMessage, ApiError>
    where
        E: Into<ApiError> + Send + 'static,
    {
        let chat = self.chat.clone();
        let author = go.author;
        let stored = go
            .ring
            .originate(move |floor| {
                chat.number_above(floor);
                store(&chat, author).map(|l| (l.seq, l.wire, l.stored))
            })
            .await?;
        Ok(to_proto(&stored, &self.people))
    }

    /// Sends `text` to `room` (empty: the lobby) as `client`'s account: numbered, signed and
    /// stored on the driver only once the overlay admits the broadcast, so the answer means
    /// the overlay has taken it (`ring/originate.rs`).
    pub async fn send(
        &self,
        client: Option<&ClientInfo>,
        room: &str,
        text: String,
    ) -> Result<ChatMessage, ApiError> {
        let room = match room {
            "" => Room::lobby(),
            r => r.parse().map_err(|e| ApiError::field("room", e))?,
        };
        crate::chat::envelope::check_text(&text).map_err(|e| ApiError::field("text", e))?;
        let go = self.sending(client)?;
        // The message is signed by this node for the caller's account (its author).
        self.originate(go, move |chat, author| {
            chat.send_as(&room, &text, Some(author))
        })
        .await
    }

    /// Sends `text` (the caption; empty: `📎 NAME SIZE`) with a reference to the blob
    /// `hash` this node holds complete, named `name` (empty: from the hash and its type).
    pub async fn send_with_file(
        &self,
        client: Option<&ClientInfo>,
        room: &str,
        text: String,
        hash: &str,
        name: &str,
    ) -> Result<ChatMessage, ApiError> {
        let room = match room {
            "" => Room::lobby(),
            r => r.parse().map_err(|e| ApiError::field("room", e))?,
        };
        let attachment = self.reference(hash, name).await?;
        let hash_bytes = attachment.hash;
        let text = match text.trim().is_empty() {
            true => format!(
                "📎 {} {}",
                attachment.name,
                crate::chat::attachment::human_size(attachment.size)
            ),
            false => text,
        };
        crate::chat::envelope::check_text(&text).map_err(|e| ApiError::field("text", e))?;
        let go = self.sending(client)?;
        let sent = self
            .originate(go, move |chat, author| {
                chat.send_attached(&room, &text, Some(author), Some(&attachment))
            })
            .await?;
        // This node's own sent file stays while its message does (released with it).
        if let Some(files) = self.node.files()
            && let Err(e) = files.pin(chat_blobs::Hash(hash_bytes)).await
        {
            tracing::warn!(error = %e, "could not pin a sent file");
        }
        Ok(sent)
    }

    /// The reference to the blob `hash` this node holds: its size and checked type from the
    /// store, for an image its dimensions and thumbnail.
    async fn reference(
        &self,
        hash: &str,
        name: &str,
    ) -> Result<crate::chat::attachment::Attachment, ApiError> {
        use crate::chat::attachment::{Attachment, MAX_NAME_BYTES};
        let files = self
            .node
            .files()
            .ok_or_else(|| ApiError::field("attachment_hash", "this node has no files service"))?;
        let parsed: chat_blobs::Hash = hash
            .parse()
            .map_err(|_| ApiError::field("attachment_hash", "expected 64 hex digits"))?;
        let info = files.info(parsed).await?.ok_or_else(|| {
            ApiError::field(
                "attachment_hash",
                "this node does not hold that file (upload it with FileService.Upload first)",
            )
        })?;
        let media = files.media_type(parsed).await?;
        let name = match name {
            "" => {
                let ext = media
                    .extension()
                    .map(|e| format!(".{e}"))
                    .unwrap_or_default();
                format!("{}{ext}", &hash[..16])
            }
            n if n.len() > MAX_NAME_BYTES || n.chars().any(char::is_control) => {
                return Err(ApiError::field(
                    "attachment_name",
                    format!("at most {MAX_NAME_BYTES} bytes without control characters"),
                ));
            }
            n => n.to_owned(),
        };
        let mut a = Attachment {
            hash: parsed.0,
            name,
            size: info.size,
            media,
            width: 0,
            height: 0,
            thumbnail: Vec::new(),
            thumbnail_refused: false,
        };
        if media.is_raster_image() && info.size <= MAX_THUMBNAIL_SOURCE {
            let bytes = files.read_to_vec(parsed).await?;
            let made = tokio::task::spawn_blocking(move || {
                chat_blobs::thumb::make(
                    &bytes,
                    &chat_blobs::DecodeLimits::default(),
                    chat_blobs::thumb::THUMB_BUDGET,
                )
            })
            .await
            .ok()
            .and_then(Result::ok);
            if let Some(made) = made {
                a.width = made.image.width();
                a.height = made.image.height();
                if let Ok(t) = made.thumbnail {
                    a.thumbnail = t.jpeg;
                }
            }
        }
        Ok(a)
    }

    /// Replaces the text of the caller's message `id` with `text`; the edit as sent.
    pub async fn edit(
        &self,
        client: Option<&ClientInfo>,
        id: &str,
        text: String,
    ) -> Result<ChatMessage, ApiError> {
        let target: MessageId = id.parse().map_err(|e| ApiError::field("id", e))?;
        crate::chat::envelope::check_text(&text).map_err(|e| ApiError::field("text", e))?;
        self.change(client, target, Some(text)).await
    }

    /// Deletes the caller's message `id`; the delete as sent.
    pub async fn delete(
        &self,
        client: Option<&ClientInfo>,
        id: &str,
    ) -> Result<ChatMessage, ApiError> {
        let target: MessageId = id.parse().map_err(|e| ApiError::field("id", e))?;
        self.change(client, target, None).await
    }

    /// Traces public message `id` through the ring.
    pub async fn trace(&self, id: &str) -> Result<Traced, ApiError> {
        if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ApiError::field(
                "id",
                "a private message's id: only public messages can be traced",
            ));
        }
        let id: MessageId = id.parse().map_err(|e| ApiError::field("id", e))?;
        Ok(crate::chat::trace::trace_message(&self.chat, self.node.overlay(), id).await?)
    }

    /// Opens a subscription for `client` (the messages of the people it blocked left out).
    /// The position and the backlog are read before this returns (a message stored after it
    /// is never taken for backlog), on the blocking pool. An unknown `resume_after_id` is
    /// [`ApiError::NotFound`].
    pub async fn subscribe(
        &self,
        client: Option<&ClientInfo>,
        req: SubscribeRequest,
    ) -> Result<Feed, ApiError> {
        let hidden = self.hider(client);
        let room = room_filter("room", &req.room)?;
        let backlog = match req.backlog {
            0 => 0,
            n => page("backlog", n, 0)?,
        };
        let chat = self.chat.clone();
        let opened = self
            .offload
            .run(Work::Read, move || -> Result<_, ApiError> {
                let start = match position(&chat, "resume_after_id", &req.resume_after_id)? {
                    Some((id, pos)) => Start::After { id, pos },
                    None => Start::Backlog(backlog),
                };
                Ok(chat.subscribe(room, start)?)
            })
            .await??;
        let Some(events) = opened else {
            return Err(ApiError::ResourceExhausted(
                "too many open subscriptions (chat.max_subscribers)".into(),
            ));
        };
        let people = self.people.clone();
        let stream = ReceiverStream::new(events)
            .filter(move |event| !matches!(event, FeedEvent::Message(s) if hidden(s)))
            .map(move |event| SubscribeResponse {
                event: Some(match event {
                    FeedEvent::Message(stored) => {
                        subscribe_response::Event::Message(to_proto(&stored, &people))
                    }
                    FeedEvent::Lagged {
                        missed,
                        resume_after,
                    } => subscribe_response::Event::Lagged(Lagged {
                        missed,
                        resume_after_id: resume_after.map(|id| id.to_hex()).unwrap_or_default(),
                    }),
                }),
            });
        Ok(Box::pin(stream))
    }

    /// One page of the history as `client` may read it.
    pub async fn history(
        &self,
        client: Option<&ClientInfo>,
        req: HistoryRequest,
    ) -> Result<HistoryResponse, ApiError> {
        let hidden = self.hider(client);
        let room = room_filter("room", &req.room)?;
        let limit = page("limit", req.limit, DEFAULT_PAGE)?;
        let (chat, people) = (self.chat.clone(), self.people.clone());
        self.offload
            .run(Work::Read, move || {
                history_page(&chat, &people, &req, room.as_ref(), limit, &hidden)
            })
            .await?
    }

    /// One page of a search of the history as `client` may read it.
    pub async fn search(
        &self,
        client: Option<&ClientInfo>,
        req: SearchRequest,
    ) -> Result<SearchResponse, ApiError> {
        let hidden = self.hider(client);
        let expression = search::expression(&req.query).map_err(|e| ApiError::field("query", e))?;
        let room = room_filter("room", &req.room)?;
        let limit = page("limit", req.limit, 50)?;
        let since = match req.since_unix_ms {
            0 => 0,
            ms if ms > 0 => Timestamp::new(ms as u64, 0).0 as i64,
            _ => return Err(ApiError::field("since_unix_ms", "must not be negative")),
        };
        let (chat, people) = (self.chat.clone(), self.people.clone());
        self.offload
            .run(Work::Search, move || {
                let q = Query {
                    expression,
                    room,
                    since,
                    limit,
                    before_id: req.before_id,
                    from: req.from.trim().to_lowercase(),
                };
                let query = req.query;
                search_page(&chat, &people, &q, &hidden).map(|mut page| {
                    fill_matches(&mut page.messages, &query);
                    page
                })
            })
            .await?
    }

    /// The rooms this node holds messages of.
    pub async fn list_rooms(&self) -> Result<ListRoomsResponse, ApiError> {
        let chat = self.chat.clone();
        let rooms = self
            .offload
            .run(Work::Read, move || chat.rooms())
            .await?
            .map_err(ApiError::from)?;
        Ok(ListRoomsResponse {
            rooms: rooms
                .into_iter()
                .map(|r| RoomInfo {
                    name: r.name,
                    message_count: r.count,
                    last_message_id: r.last_id.to_hex(),
                    last_sent_at_unix_ms: i64::try_from(r.last_hlc.millis()).unwrap_or(i64::MAX),
                })
                .collect(),
        })
    }
}

/// A room filter: empty means every room.
fn room_filter(field: &str, room: &str) -> Result<Option<Room>, ApiError> {
    match room {
        "" => Ok(None),
        r => r.parse().map(Some).map_err(|e| ApiError::field(field, e)),
    }
}

/// A message id field: empty means none; unknown ids are NOT_FOUND.
fn position(chat: &Chat, field: &str, id: &str) -> Result<Option<(MessageId, i64)>, ApiError> {
    if id.is_empty() {
        return Ok(None);
    }
    let id: MessageId = id.parse().map_err(|e| ApiError::field(field, e))?;
    match chat.position(&id)? {
        Some(pos) => Ok(Some((id, pos))),
        None => Err(ApiError::NotFound(format!(
            "{field}: no message {id} in this node's history (never seen, or expired)"
        ))),
    }
}

fn page(field: &str, n: u32, default: u32) -> Result<usize, ApiError> {
    match n {
        0 => Ok(default as usize),
        n if n <= MAX_PAGE => Ok(n as usize),
        n => Err(ApiError::field(
            field,
            format!("{n} is more than the maximum {MAX_PAGE}"),
        )),
    }
}

/// Largest image a thumbnail is made of when it is sent (larger ones are sent without).
const MAX_THUMBNAIL_SOURCE: u64 = 64 * 1024 * 1024;

/// The API form of a stored message. Its author is named by what `people` verified (the
/// nickname of the account the signing node hosts), never by the name inside the envelope.
pub fn to_proto(stored: &Stored, people: &People) -> ChatMessage {
    let m = &stored.message;
    let millis = |t: Timestamp| i64::try_from(t.millis()).unwrap_or(i64::MAX);
    ChatMessage {
        id: m.id.to_hex(),
        room: m.room.to_string(),
        from: match m.kind {
            Kind::People => String::new(),
            _ => people.name_for(m.author.as_ref(), &m.from_id()),
        },
        from_id: m.from_id().to_hex(),
        text: m.text.clone(),
        sent_at_unix_ms: millis(m.hlc),
        hlc: m.hlc.0,
        sequence: m.seq,
        kind: match m.kind {
            Kind::Text | Kind::Deleted => MessageKind::Text as i32,
            Kind::People => MessageKind::Event as i32,
            Kind::Edit => MessageKind::Edit as i32,
            Kind::Delete => MessageKind::Delete as i32,
        },
        target_id: m.target.map(|t| t.to_hex()).unwrap_or_default(),
        edited_at_unix_ms: m.edited.map_or(0, millis),
        deleted: m.kind == Kind::Deleted,
        attachment: m.attachment.as_ref().map(attachment_to_proto),
        voice: m.transcript.as_ref().map(voice_to_proto),
    }
}

/// The API form of a file reference.
pub fn attachment_to_proto(a: &crate::chat::attachment::Attachment) -> FileAttachment {
    FileAttachment {
        hash: a.hash_hex(),
        name: a.name.clone(),
        size: a.size,
        media_type: a.media.mime().to_owned(),
        width: a.width,
        height: a.height,
        thumbnail: a.thumbnail.clone(),
        thumbnail_refused: a.thumbnail_refused,
    }
}

/// One page of History (blocking: runs on the blocking pool).
fn history_page(
    chat: &Chat,
    people: &People,
    req: &HistoryRequest,
    room: Option<&Room>,
    limit: usize,
    hidden: &dyn Fn(&Stored) -> bool,
) -> Result<HistoryResponse, ApiError> {
    let before = position(chat, "before_id", &req.before_id)?.map(|(_, p)| p);
    let after = position(chat, "after_id", &req.after_id)?.map(|(_, p)| p);
    let mut rows = match after {
        Some(after) => chat.after(after, room, limit + 1)?,
        None => chat.before(before.unwrap_or(i64::MAX), room, limit + 1)?,
    };
    if let (Some(_), Some(before)) = (after, before) {
        rows.retain(|s| s.pos < before);
    }
    let more = rows.len() > limit;
    if more {
        if after.is_some() {
            rows.truncate(limit);
        } else {
            rows.remove(0);
        }
    }
    Ok(HistoryResponse {
        messages: rows
            .iter()
            .filter(|s| !hidden(s))
            .map(|s| to_proto(s, people))
            .collect(),
        more,
    })
}

/// A checked Search request.
struct Query {
    expression: String,
    room: Option<Room>,
    since: i64,
    limit: usize,
    before_id: String,
    /// The author's shown name, lowercase; empty for anyone.
    from: String,
}

/// One page of Search (blocking: runs on the blocking pool).
fn search_page(
    chat: &Chat,
    people: &People,
    q: &Query,
    hidden: &dyn Fn(&Stored) -> bool,
) -> Result<SearchResponse, ApiError> {
    /// Candidates examined at most for one page (an author filter drops some).
    const MAX_SCAN: usize = 20_000;
    let limit = q.limit;
    let mut before = position(chat, "before_id", &q.before_id)?.map_or(i64::MAX, |(_, p)| p);
    let chunk = if q.from.is_empty() {
        limit + 1
    } else {
        (limit * 4).max(200)
    };
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut exhausted;
    loop {
        let s = search::Search {
            expression: q.expression.clone(),
            room: q.room.as_ref().map(Room::as_str),
            since_hlc: q.since,
            before_pos: before,
            limit: chunk,
        };
        let Some(rows) = chat.search(&s)? else {
            return Err(ApiError::FailedPrecondition(
                "this node keeps its history in memory, without a search index".into(),
            ));
        };
        let n = rows.len();
        scanned += n;
        for s in &rows {
            before = s.pos;
            if hidden(s) {
                continue;
            }
            let m = to_proto(s, people);
            if q.from.is_empty() || m.from.to_lowercase() == q.from {
                found.push(m);
            }
        }
        exhausted = n < chunk;
        if found.len() > limit || exhausted || scanned >= MAX_SCAN {
            break;
        }
    }
    let more = found.len() > limit || !exhausted;
    found.truncate(limit);
    Ok(SearchResponse {
        messages: found,
        more,
    })
}
