//! `/ws`: one page's live feed, and its sends.
//!
//! Page → server first: `{"t":"auth"}`, with `"ticket": T` (from a `chatctl web` link) or
//! `"session": S` (kept from an earlier `hello`) to send as an account; within [`AUTH_WAIT`].
//! Server → page, one JSON object per text frame, by `t`:
//! `hello` (`can_send`, `nickname`, `session` when a ticket was traded, `expired` when the
//! session presented is over, `voice`: `null` when this node takes no voice messages, else
//! `max_seconds` and `transcribe`, for the record button), `msg` (`id`, `room`, `from`, `from_id`, `text`, `at`,
//! `kind`: `text`, `event`, `edit` — the message `target` now reads `text` — or `delete` — the
//! message `target` is gone; a `text` message also says `edited`, when its shown text was
//! written (Unix ms, 0: never edited), and `deleted`, and `file` when it references one
//! (`hash`, `name`, `size`, `media_type`, `width`, `height`, `image`, `thumb`: the checked
//! JPEG thumbnail in base64; the bytes are at `/files/{hash}`, `super::files`), and `voice`
//! on a voice message or a later transcript of one (`duration_ms`, `pending`, `language`,
//! `text`, `words` with their offsets, `of`); a kind newer than the page is `other`),
//! `users` (the whole list), `status` (node, ring size — `ring_exact` says whether it is the
//! exact count or an estimate —, peers…, every 2 s), `ring` (the Network view's map: this
//! node, the ring size, every node met with its roles, connection, RTT, failure and nicknames,
//! at most 256; [`super::map`]; looked at every 2 s, sent when it changed), `sent`/`error` (the answer to a send, by `ref`), `lagged` (`resume`: reconnect
//! after this id), `reset` (the id to resume after is gone: start over).
//! A page logged in as an account also gets `pmsg` (`id`, `from`, `to`, `group`, `text`,
//! `at`, `outgoing`, `edited`, `deleted`, and `file` and `voice` as a `msg` has them, the
//! file's decrypted bytes at its `url`, `/private-files/{id}`, for this account's session
//! only: `super::private_files`): that account's private messages, the recent ones
//! first; a `pmsg` with an id already shown is that message edited or deleted (it replaces
//! the line).
//! Page → server then: `{"t":"send","ref":N,"room":R,"text":T}`, or
//! `{"t":"psend","ref":N,"to":NICK,"text":T}` (or `"group":G`) for a private message.
//! Any page may also ask `{"t":"trace","id":ID}` (a public message's id): the node traces it
//! through the ring ([`crate::chat::trace`]) while the feed goes on, and answers with a
//! `trace` frame (`edges` of `from`, `to`, `ms`; `answered`, `silent`, `depth`,
//! `slowest_ms`; or `error`), one trace per page at a time.
//!
//! The feed is a subscription of the chat service's operations (`crate::ops::ChatOps`, the
//! same the gRPC `Subscribe` runs): `?after=ID` resumes right after the last message the page
//! saw, so a reconnect neither loses nor repeats one; a page that reads too slowly gets
//! `lagged` and reconnects, as an API client does. Sends go through the same operations' send
//! with the session's account, under the same per-client limit.
//! A binary frame, a frame over [`super::MAX_FRAME`], a write the page does not take within
//! [`WRITE_TIMEOUT`], or no frame at all from the page (not even the pong to our ping every
//! [`PING_EVERY`]) for [`SILENCE`] ends the connection. Off loopback a page without a valid
//! session (or the bearer token) is closed with code 4401.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_proto::v1::{
    ChatMessage, MessageKind, Presence as ApiPresence, PrivateHistoryRequest, PrivateMessage,
    SendPrivateRequest, SubscribeRequest, WatchPrivateResponse, subscribe_response,
    watch_private_response,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::MissedTickBehavior;
use tokio_stream::StreamExt;

use super::auth::Proof;
use super::frames::Refused;
use super::listener::Client;
use super::{AppState, MAX_FRAME, Shared};
use crate::client::ClientInfo;
use crate::ops::ApiError;
use crate::people::Who;

/// Messages replayed to a page that connects without `after`.
const BACKLOG: u32 = 200;
/// How often the page gets the ring's status.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How often the ring's map is looked at (and sent if it changed).
const RING_EVERY: Duration = Duration::from_secs(2);
/// Longest wait for a page to take a frame.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Least time between two user lists sent on changes.
const USERS_EVERY: Duration = Duration::from_millis(300);
/// How long a page has to send its `auth` frame.
pub const AUTH_WAIT: Duration = Duration::from_secs(5);
/// How often the page is pinged.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// How long a page may send nothing (no pong either) before it is taken for gone.
pub const SILENCE: Duration = Duration::from_secs(45);
/// Close code: authentication required or refused.
const UNAUTHORIZED: u16 = 4401;

#[derive(Deserialize)]
pub(super) struct WsQuery {
    #[serde(default)]
    after: String,
}

pub(super) async fn upgrade(
    State(s): AppState,
    ConnectInfo(from): ConnectInfo<Client>,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, QueryRejection>,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket refused: the Origin must be this web view's own address\n",
        )
            .into_response();
    }
    let ip = from.0.ip();
    if s.auth.closed && !s.auth.may_try(ip) {
        return super::refusal(super::Refusal::LockedOut);
    }
    let bearer = match s.auth.bearer(&headers) {
        Proof::Wrong if s.auth.closed => {
            s.auth.failed(ip);
            return super::refusal(super::Refusal::Wrong);
        }
        p => p == Proof::Token,
    };
    let Ok(Query(q)) = query else {
        return (StatusCode::BAD_REQUEST, "after: not a message id\n").into_response();
    };
    if !q.after.is_empty()
        && (q.after.len() != 64 || !q.after.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return (
            StatusCode::BAD_REQUEST,
            "after: not a message id (64 hex digits)\n",
        )
            .into_response();
    }
    let Ok(permit) = s.clients.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many web clients; retry later\n",
        )
            .into_response();
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| async move {
            let mut page = Page {
                s,
                from,
                sender: bearer.then_some(Some(ClientInfo::Tcp { addr: from.0 })),
                _permit: permit,
            };
            page.run(socket, q.after).await;
        })
}

/// The gRPC client identity a web session sends as (`None`: the operator).
pub(super) fn client_info(who: Who, from: Client) -> Option<ClientInfo> {
    match who {
        Who::Operator => None,
        Who::Unix(uid) => Some(ClientInfo::Unix {
            uid,
            admitted: true,
        }),
        Who::Token => Some(ClientInfo::Tcp { addr: from.0 }),
    }
}

/// Whether the request's `Origin` (sent by every browser) is the host it was sent to. A
/// request without one comes from a program, not a page another site could have opened.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.to_str().ok(), host) {
        (Some(o), Some(h)) => o == format!("http://{h}") || o == format!("https://{h}"),
        _ => false,
    }
}

struct Page {
    s: Arc<Shared>,
    from: Client,
    /// Who sends from this page (`Some(None)`: the operator); `None`: read only.
    sender: Option<Option<ClientInfo>>,
    _permit: OwnedSemaphorePermit,
}

/// Why a page's connection ends.
enum End {
    Gone,
    Close(u16, &'static str),
}

impl Page {
    async fn run(&mut self, mut socket: WebSocket, after: String) {
        let end = match self.authenticate(&mut socket).await {
            Ok(hello) => self.feed(&mut socket, after, hello).await,
            Err(e) => e,
        };
        if let End::Close(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ =
                tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Who sends from this page, if it logged in.
    fn client(&self) -> Option<&crate::client::ClientInfo> {
        self.sender.as_ref().and_then(Option::as_ref)
    }

    /// Reads the `auth` frame; sets who sends from this page; returns the `hello` extras.
    async fn authenticate(&mut self, socket: &mut WebSocket) -> Result<Value, End> {
        let first = match tokio::time::timeout(AUTH_WAIT, socket.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Close(_))) | None) => return Err(End::Gone),
            Ok(_) => return Err(End::Close(close_code::POLICY, "expected an auth frame")),
            Err(_) => return Err(End::Close(close_code::POLICY, "no auth frame in time")),
        };
        let Some(frame) = super::frames::parse_auth(first.as_str()) else {
            return Err(End::Close(close_code::POLICY, "expected an auth frame"));
        };
        let auth = &self.s.auth;
        let (proof, session) = match (&frame.ticket, &frame.session) {
            (Some(t), _) => match auth.session_from_ticket(t) {
                Ok((who, session)) => (Proof::Session(who), Some(session)),
                Err(p) => (p, None),
            },
            (None, Some(s)) => (auth.session(s), None),
            (None, None) => (Proof::None, None),
        };
        let mut extra = json!({});
        match proof {
            Proof::Session(who) => self.sender = Some(client_info(who, self.from)),
            Proof::Expired => extra["expired"] = json!(true),
            Proof::Wrong if auth.closed => {
                auth.failed(self.from.0.ip());
                return Err(End::Close(UNAUTHORIZED, "wrong session or login link"));
            }
            // Not ours (another chatd's, or from before `web.key` changed): the page forgets it.
            Proof::Wrong => extra["expired"] = json!(true),
            Proof::None | Proof::Token => {}
        }
        if auth.closed && self.sender.is_none() {
            return Err(End::Close(
                UNAUTHORIZED,
                "this web view needs a login link (chatctl web)",
            ));
        }
        if let Some(s) = session {
            extra["session"] = json!(s);
        }
        Ok(extra)
    }

    async fn feed(&self, socket: &mut WebSocket, mut after: String, extra: Value) -> End {
        let nickname = self.s.status.report(self.client()).await.nickname;
        let mut hello = json!({"t": "hello", "can_send": self.sender.is_some(),
            "nickname": nickname, "voice": voice_settings(&self.s)});
        if let (Some(h), Some(x)) = (hello.as_object_mut(), extra.as_object()) {
            h.extend(x.clone());
        }
        if let Err(e) = send(socket, &hello).await {
            return e;
        }
        let mut feed = loop {
            let req = SubscribeRequest {
                room: String::new(),
                backlog: if after.is_empty() { BACKLOG } else { 0 },
                resume_after_id: after.clone(),
            };
            // The feed is opened without the page's client, as it always was: it hides what
            // the node's operator blocked, not what the page's account did.
            match self.s.chat_ops.subscribe(None, req).await {
                Ok(feed) => break feed,
                Err(e) if super::error::is_not_found(&e) && !after.is_empty() => {
                    // The message is no longer stored here: start over with the backlog.
                    after.clear();
                    if let Err(e) = send(socket, &json!({"t": "reset"})).await {
                        return e;
                    }
                }
                Err(_) => return End::Close(close_code::AGAIN, "too many subscribers; retry"),
            }
        };
        let mut users = self.s.users.watch();
        // A page logged in as an account also gets that account's private messages: the
        // recent ones, then as they come. A read-only page gets none.
        let mut private: PrivateStream = Box::pin(tokio_stream::pending());
        if let (Some(_), Some(ops)) = (&self.sender, &self.s.private) {
            if let Ok(w) = ops.watch(self.client()) {
                private = w;
            }
            let recent = ops
                .history(
                    self.client(),
                    PrivateHistoryRequest {
                        with: String::new(),
                        limit: BACKLOG,
                        before_id: String::new(),
                    },
                )
                .await
                .map(|r| r.messages)
                .unwrap_or_default();
            for m in &recent {
                if let Err(e) = send(socket, &private_frame(m)).await {
                    return e;
                }
            }
        }
        let mut status = tokio::time::interval(STATUS_EVERY);
        status.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut users_due = true;
        let mut users_tick = tokio::time::interval(USERS_EVERY);
        users_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        let mut ring = tokio::time::interval(RING_EVERY);
        ring.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_ring = String::new();
        // The page's trace in progress (one at a time): its answer frame.
        let mut tracing: Option<std::pin::Pin<Box<dyn Future<Output = Value> + Send>>> = None;
        loop {
            tokio::select! {
                frame = async { tracing.as_mut().expect("guarded").await }, if tracing.is_some() => {
                    tracing = None;
                    if let Err(e) = send(socket, &frame).await {
                        return e;
                    }
                }
                event = feed.next() => {
                    let frame = match event {
                        Some(r) => match r.event {
                            Some(subscribe_response::Event::Message(m)) => message_frame(&m),
                            Some(subscribe_response::Event::Lagged(l)) => {
                                let _ = send(socket, &json!({"t": "lagged", "resume": l.resume_after_id})).await;
                                return End::Close(close_code::AGAIN, "lagged; reconnect");
                            }
                            None => continue,
                        },
                        _ => return End::Close(close_code::AGAIN, "feed ended; reconnect"),
                    };
                    if let Err(e) = send(socket, &frame).await {
                        return e;
                    }
                }
                event = private.next() => match event {
                    Some(Ok(WatchPrivateResponse { event: Some(watch_private_response::Event::Message(m)) })) => {
                        if let Err(e) = send(socket, &private_frame(&m)).await {
                            return e;
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => return End::Close(close_code::AGAIN, "private messages ended; reconnect"),
                },
                event = users.next() => match event {
                    Some(_) => users_due = true,
                    _ => return End::Close(close_code::AGAIN, "user events ended; reconnect"),
                },
                _ = users_tick.tick(), if users_due => {
                    users_due = false;
                    if let Err(e) = self.send_users(socket).await {
                        return e;
                    }
                }
                _ = status.tick() => {
                    if let Err(e) = self.send_status(socket).await {
                        return e;
                    }
                }
                _ = ring.tick() => {
                    if let Err(e) = self.send_ring(socket, &mut last_ring).await {
                        return e;
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > SILENCE {
                        return End::Close(close_code::AWAY, "no answer to pings");
                    }
                    let sent = tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Ping(Vec::new().into()))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return End::Gone;
                    }
                }
                incoming = socket.recv() => match incoming.inspect(|_| heard = tokio::time::Instant::now()) {
                    Some(Ok(Message::Text(t))) => {
                        if let Some(ask) = super::map::trace_request(t.as_str()) {
                            let frame = match (ask, &tracing) {
                                (Err(why), _) => super::map::trace_error("", &why),
                                (Ok(id), Some(_)) => super::map::trace_error(&id.to_hex(), "a trace of this page is still running"),
                                (Ok(id), None) => {
                                    tracing = Some(Box::pin(self.trace(id)));
                                    continue;
                                }
                            };
                            if let Err(e) = send(socket, &frame).await {
                                return e;
                            }
                            continue;
                        }
                        let answer = self.on_text(t.as_str()).await;
                        if let Err(e) = send(socket, &answer).await {
                            return e;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        return End::Close(close_code::UNSUPPORTED, "binary frames are not accepted");
                    }
                    Some(Ok(Message::Close(_))) | None => return End::Gone,
                    Some(Ok(_)) => {} // ping/pong: answered by the library
                    Some(Err(_)) => return End::Close(close_code::POLICY, "malformed or oversized frame"),
                },
            }
        }
    }

    async fn send_users(&self, socket: &mut WebSocket) -> Result<(), End> {
        let Ok(list) = self.s.users.list(self.client()) else {
            return Ok(());
        };
        let users: Vec<Value> = list
            .into_iter()
            .map(|u| {
                let presence = match ApiPresence::try_from(u.presence) {
                    Ok(ApiPresence::Online) => "online",
                    Ok(ApiPresence::Away) => "away",
                    _ => "offline",
                };
                json!({"nickname": u.nickname, "user_id": u.user_id, "node_id": u.node_id,
                       "presence": presence, "away_message": u.away_message,
                       "since": u.since_unix_ms, "guest": u.guest, "self": u.is_self,
                       "verified": u.verified, "key_changed": u.key_changed})
            })
            .collect();
        send(socket, &json!({"t": "users", "users": users})).await
    }

    async fn send_status(&self, socket: &mut WebSocket) -> Result<(), End> {
        let st = self.s.status.report(self.client()).await;
        let frame = json!({"t": "status", "node_id": st.node_id, "nickname": st.nickname,
            "ring_size": if st.ring_size_exact > 0 { st.ring_size_exact } else { st.ring_size_estimate },
            "ring_exact": st.ring_size_exact > 0,
            "peers": st.peers_connected, "joined": st.joined,
            "version": st.version, "presence": st.presence});
        send(socket, &frame).await
    }

    /// Sends the `ring` frame if it differs from `last` (the text of the one sent before).
    async fn send_ring(&self, socket: &mut WebSocket, last: &mut String) -> Result<(), End> {
        let Ok(r) = crate::ops::ring::ring_map(&self.s.node, &self.s.people).await else {
            return Ok(());
        };
        let text = super::map::ring_frame(&r).to_string();
        if text == *last {
            return Ok(());
        }
        send_text(socket, &text).await?;
        *last = text;
        Ok(())
    }

    /// Traces public message `id` (any page may: it shows only public messages and the
    /// ring); the answer is the page's `trace` frame.
    fn trace(&self, id: crate::chat::MessageId) -> impl Future<Output = Value> + Send + 'static {
        let (chat, node) = (self.s.chat.clone(), self.s.node.clone());
        async move {
            match crate::chat::trace::trace_message(&chat, node.overlay(), id).await {
                Ok(t) => super::map::trace_frame(&t),
                Err(e) => super::map::trace_error(&id.to_hex(), &e.to_string()),
            }
        }
    }

    async fn on_text(&self, text: &str) -> Value {
        let req = match super::frames::parse_send(text) {
            Ok(r) => r,
            Err(Refused::NotARequest(e)) => {
                return json!({"t": "error", "ref": 0, "message": format!("not a request: {e}")});
            }
            Err(Refused::Unknown { r#ref, t }) => {
                return json!({"t": "error", "ref": r#ref, "message": format!("unknown request {t:?}")});
            }
        };
        if self.sender.is_none() {
            return json!({"t": "error", "ref": req.r#ref,
                "message": "this page may only read: run `chatctl web` and open the link it prints to send from it"});
        }
        if req.private() {
            let Some(ops) = &self.s.private else {
                return json!({"t": "error", "ref": req.r#ref, "message": "private messages are not available"});
            };
            let call = SendPrivateRequest {
                to: req.to,
                group_id: req.group,
                text: req.text,
                accept_new_key: false,
                ..Default::default()
            };
            let sent = ops.send(self.client(), call).await;
            return answer(req.r#ref, sent.map(|m| m.id));
        }
        let sent = self
            .s
            .chat_ops
            .send(self.client(), &req.room, req.text)
            .await;
        answer(req.r#ref, sent.map(|m| m.id))
    }
}

/// The answer to a send of the page's, by its `ref`: `sent` with the message id, or `error`.
fn answer(r: u64, sent: Result<String, ApiError>) -> Value {
    match sent {
        Ok(id) => json!({"t": "sent", "ref": r, "id": id}),
        Err(e) => json!({"t": "error", "ref": r, "message": super::error::shown(e)}),
    }
}

type PrivateStream = crate::ops::private::PrivateEvents;

/// The page's frame for a public message, a people event, or an edit or delete of a message.
fn message_frame(m: &ChatMessage) -> Value {
    let kind = match MessageKind::try_from(m.kind) {
        Ok(MessageKind::Text) => "text",
        Ok(MessageKind::Event) => "event",
        Ok(MessageKind::Edit) => "edit",
        Ok(MessageKind::Delete) => "delete",
        _ => "other",
    };
    let mut frame = json!({
        "t": "msg", "id": m.id, "room": m.room, "from": m.from, "from_id": m.from_id,
        "text": m.text, "at": m.sent_at_unix_ms, "kind": kind, "target": m.target_id,
        "edited": m.edited_at_unix_ms, "deleted": m.deleted,
    });
    if let Some(a) = &m.attachment {
        frame["file"] = file_frame(a);
    }
    if let Some(v) = &m.voice {
        frame["voice"] = voice_frame(v);
    }
    frame
}

/// What the page's record button needs to know of this node (`hello`'s `voice`): `null` when
/// voice messages are off here, else `max_seconds` (the hard cap of a recording) and
/// `transcribe` (whether this node has a model; without one a recording goes out with its
/// transcript pending).
fn voice_settings(s: &Shared) -> Value {
    match (s.node.voice(), s.node.files()) {
        (Some(v), Some(_)) => json!({"max_seconds": v.max_seconds(), "transcribe": v.has_model()}),
        _ => Value::Null,
    }
}

/// A voice message's transcript as the page gets it: `duration_ms`, `pending`, `language`,
/// `text`, `words` (`word`, `start_ms`, `end_ms`: the player seeks to a clicked word) and
/// `of` (the voice message a later transcript is of).
fn voice_frame(v: &chat_proto::v1::VoiceTranscript) -> Value {
    let words: Vec<Value> = v
        .words
        .iter()
        .map(|w| json!({"word": w.word, "start_ms": w.start_ms, "end_ms": w.end_ms}))
        .collect();
    json!({
        "duration_ms": v.duration_ms, "pending": v.pending, "language": v.language,
        "text": v.text, "words": words, "of": v.transcript_of,
    })
}

/// A message's file reference as the page gets it: `hash`, `name` (shown as text only),
/// `size`, `media_type`, `width`, `height`, `image` (a raster image type: shown inline) and
/// `thumb` (the checked JPEG thumbnail in base64, empty when none).
fn file_frame(a: &chat_proto::v1::FileAttachment) -> Value {
    use base64::Engine as _;
    let image = matches!(
        a.media_type.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    let thumb = if a.thumbnail.is_empty() {
        String::new()
    } else {
        base64::engine::general_purpose::STANDARD.encode(&a.thumbnail)
    };
    json!({
        "hash": a.hash, "name": a.name, "size": a.size, "media_type": a.media_type,
        "width": a.width, "height": a.height, "image": image, "thumb": thumb,
    })
}

/// The page's frame for a private message; with its file's reference (as [`file_frame`];
/// the hash is the ciphertext's, the bytes — decrypted, for this page's account only — at
/// `url`: `/private-files/{id}`, [`super::private_files`]) and a voice message's transcript.
fn private_frame(m: &PrivateMessage) -> Value {
    let mut frame = json!({
        "t": "pmsg", "id": m.id, "from": m.from, "to": m.to, "group": m.group,
        "text": m.text, "at": m.sent_unix_ms, "outgoing": m.outgoing,
        "edited": m.edited_unix_ms, "deleted": m.deleted,
        "verified": m.peer_verified, "key_changed": m.key_changed,
    });
    if let Some(a) = m.attachment.as_ref().filter(|_| !m.deleted) {
        frame["file"] = file_frame(a);
        frame["file"]["url"] = json!(format!("/private-files/{}", m.id));
    }
    if let Some(v) = m.voice.as_ref().filter(|_| !m.deleted) {
        frame["voice"] = voice_frame(v);
    }
    frame
}

async fn send(socket: &mut WebSocket, v: &Value) -> Result<(), End> {
    send_text(socket, &v.to_string()).await
}

async fn send_text(socket: &mut WebSocket, text: &str) -> Result<(), End> {
    match tokio::time::timeout(
        WRITE_TIMEOUT,
        socket.send(Message::Text(text.to_owned().into())),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(close_code::AGAIN, "the page is not reading")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_say_what_changed() {
        let edit = message_frame(&ChatMessage {
            id: "e".into(),
            kind: MessageKind::Edit as i32,
            target_id: "t".into(),
            text: "new".into(),
            ..ChatMessage::default()
        });
        assert_eq!(
            (&edit["kind"], &edit["target"], &edit["text"]),
            (&json!("edit"), &json!("t"), &json!("new"))
        );
        let delete = message_frame(&ChatMessage {
            kind: MessageKind::Delete as i32,
            target_id: "t".into(),
            ..ChatMessage::default()
        });
        assert_eq!(delete["kind"], "delete");
        let shown = message_frame(&ChatMessage {
            kind: MessageKind::Text as i32,
            edited_at_unix_ms: 5,
            ..ChatMessage::default()
        });
        assert_eq!(
            (&shown["kind"], &shown["edited"]),
            (&json!("text"), &json!(5))
        );
        let gone = message_frame(&ChatMessage {
            kind: MessageKind::Text as i32,
            deleted: true,
            ..ChatMessage::default()
        });
        assert_eq!(gone["deleted"], true);
        let newer = message_frame(&ChatMessage {
            kind: 99,
            ..ChatMessage::default()
        });
        assert_eq!(
            newer["kind"], "other",
            "a kind newer than the page is not shown as text"
        );
        let voice = message_frame(&ChatMessage {
            kind: MessageKind::Text as i32,
            voice: Some(chat_proto::v1::VoiceTranscript {
                duration_ms: 4_200,
                pending: false,
                text: "moved to tuesday".into(),
                words: vec![chat_proto::v1::VoiceWord {
                    word: "tuesday".into(),
                    start_ms: 1_200,
                    end_ms: 1_700,
                }],
                ..Default::default()
            }),
            ..ChatMessage::default()
        });
        assert_eq!(
            (&voice["voice"]["duration_ms"], &voice["voice"]["pending"]),
            (&json!(4_200), &json!(false))
        );
        assert_eq!(voice["voice"]["words"][0]["start_ms"], 1_200);
        assert!(
            shown.get("voice").is_none(),
            "a message without a recording has no voice"
        );
        let p = private_frame(&PrivateMessage {
            id: "p".into(),
            edited_unix_ms: 7,
            deleted: false,
            ..PrivateMessage::default()
        });
        assert_eq!((&p["edited"], &p["deleted"]), (&json!(7), &json!(false)));
        assert!(p.get("file").is_none(), "no file, no reference: {p}");
        // A private voice message: its reference points at the decrypting route, by id.
        let mut voice_dm = PrivateMessage {
            id: "0123456789abcdef0123456789abcdef".into(),
            attachment: Some(chat_proto::v1::FileAttachment {
                hash: "c".repeat(64),
                name: "meeting.ogg".into(),
                size: 9_000,
                media_type: "audio/ogg".into(),
                ..Default::default()
            }),
            voice: Some(chat_proto::v1::VoiceTranscript {
                duration_ms: 3_100,
                ..Default::default()
            }),
            ..PrivateMessage::default()
        };
        let p = private_frame(&voice_dm);
        assert_eq!(
            p["file"]["url"],
            "/private-files/0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            (&p["file"]["media_type"], &p["voice"]["duration_ms"]),
            (&json!("audio/ogg"), &json!(3_100))
        );
        voice_dm.deleted = true;
        let gone = private_frame(&voice_dm);
        assert!(
            gone.get("file").is_none() && gone.get("voice").is_none(),
            "{gone}"
        );
    }
}
