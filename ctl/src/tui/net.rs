//! The chat window's link to chatd: one task that follows every room (`Subscribe`), the
//! caller's private messages (`WatchPrivate`, with the recent `PrivateHistory` at each
//! connect), the user list (`WatchUserEvents`, `ListUsers`) and the status (`GetStatus`,
//! every 2 s), and carries out the window's actions (`Send`, `SendPrivate`, `Edit`, `Delete`,
//! `EditPrivate`, `DeletePrivate`, `Block`, `SetNickname`, `SetPresence`).
//!
//! When chatd goes away (restart, crash, lost connection) it says so, retries with a capped
//! backoff, and resumes the feed right after the last message it passed on — nothing skipped,
//! nothing twice. Actions that arrive meanwhile are answered `NotSent` at once, so the window
//! gives the text back to the user instead of waiting.

use std::time::Duration;

use chat_proto::v1::{
    ChatMessage, DeleteRequest, EditRequest, GetStatusRequest, HistoryRequest, ListUsersRequest,
    MessageKind, Presence, SearchRequest, SendRequest, SetNicknameRequest, SetPresenceRequest,
    SubscribeRequest, WatchUserEventsRequest, subscribe_response,
};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use chat_proto::v1::chat_service_client::ChatServiceClient;
use chat_proto::v1::private_service_client::PrivateServiceClient;
use chat_proto::v1::user_service_client::UserServiceClient;
use chat_proto::v1::{
    BlockRequest, DeletePrivateRequest, EditPrivateRequest, PrivateHistoryRequest, PrivateMessage,
    SendPrivateRequest, UnblockRequest, WatchPrivateRequest, watch_private_response,
};

use super::app::{Action, Body, NetEvent, Status, User};
use crate::client::{self, Conn, Target};

/// Messages replayed when the window opens.
pub const BACKLOG: u32 = 200;
/// How often the status line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Least time between two user-list refreshes.
const USERS_EVERY: Duration = Duration::from_millis(300);
/// Shortest and longest wait between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Runs until the window goes (its action channel closes).
pub async fn run(socket: Target, tx: mpsc::Sender<NetEvent>, mut actions: mpsc::Receiver<Action>) {
    let mut last_id = String::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let why = match session(&socket, &tx, &mut actions, &mut last_id, &mut backoff).await {
            Ok(()) => return,
            // Fell behind: subscribe again after the last message at once, no banner.
            Err(Gone::Lagged) => continue,
            Err(Gone::Down(why)) => why,
        };
        if tx.send(NetEvent::Down(why)).await.is_err() {
            return;
        }
        // Wait, answering actions at once: nothing can be sent now.
        let until = tokio::time::Instant::now() + backoff;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                a = actions.recv() => match a {
                    None => return,
                    Some(a) => refuse(&tx, a).await,
                },
            }
        }
        backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
    }
}

/// Why a session ended.
enum Gone {
    /// chatd went away (or refused): why.
    Down(String),
    /// The window read too slowly and missed messages: resume after the last one.
    Lagged,
}

impl From<String> for Gone {
    fn from(why: String) -> Gone {
        Gone::Down(why)
    }
}

async fn refuse(tx: &mpsc::Sender<NetEvent>, a: Action) {
    let ev = match a {
        Action::Send { reference, .. }
        | Action::SendPrivate { reference, .. }
        | Action::SendFile { reference, .. }
        | Action::SendVoice { reference, .. }
        | Action::Change { reference, .. } => {
            NetEvent::NotSent(reference, "chatd is not reachable".into())
        }
        Action::Older { room, .. } => NetEvent::Older {
            room,
            lines: Vec::new(),
            more: true,
        },
        _ => NetEvent::Notice("chatd is not reachable; try again once it is back".into()),
    };
    let _ = tx.send(ev).await;
}

fn presence_name(p: i32) -> &'static str {
    match Presence::try_from(p) {
        Ok(Presence::Online) => "online",
        Ok(Presence::Away) => "away",
        _ => "offline",
    }
}

/// One connection's life; `Ok` when the window closed, `Err` when chatd went away or the
/// feed lagged.
async fn session(
    socket: &Target,
    tx: &mpsc::Sender<NetEvent>,
    actions: &mut mpsc::Receiver<Action>,
    last_id: &mut String,
    backoff: &mut Duration,
) -> Result<(), Gone> {
    let gone = |e: client::ClientError| Gone::Down(e.to_string());
    let mut node = client::node_service(socket).await.map_err(gone)?;
    let chat = client::chat_service(socket).await.map_err(gone)?;
    let mut people = client::user_service(socket).await.map_err(gone)?;
    let mut stream = client::chat_stream(socket).await.map_err(gone)?;
    let call = |s: tonic::Status| Gone::Down(client::call_error(socket, s).to_string());

    let request = |after: &str| SubscribeRequest {
        room: String::new(),
        resume_after_id: after.to_owned(),
        backlog: if after.is_empty() { BACKLOG } else { 0 },
    };
    let mut feed = match stream.subscribe(request(last_id)).await {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => {
            // chatd no longer has the message we stopped at: start from its newest.
            let _ = tx
                .send(NetEvent::Notice(
                    "chatd restarted without the last message seen here; following from its newest"
                        .into(),
                ))
                .await;
            stream
                .subscribe(request(""))
                .await
                .map_err(call)?
                .into_inner()
        }
        Err(s) => return Err(call(s)),
    };
    let mut watch = people
        .watch_user_events(WatchUserEventsRequest {})
        .await
        .map_err(call)?
        .into_inner();
    // Private conversations: watch first, then the recent history (the window shows each
    // message once, whichever way it comes).
    let private = client::private_service(socket, false).await.map_err(gone)?;
    let mut dms = client::private_service(socket, true)
        .await
        .map_err(gone)?
        .watch_private(WatchPrivateRequest {})
        .await
        .map_err(call)?
        .into_inner();
    let recent = private
        .clone()
        .private_history(PrivateHistoryRequest {
            with: String::new(),
            limit: BACKLOG,
            before_id: String::new(),
        })
        .await
        .map_err(call)?
        .into_inner()
        .messages;
    if tx.send(NetEvent::Up).await.is_err() {
        return Ok(());
    }
    for m in recent {
        if tx.send(private_event(m)).await.is_err() {
            return Ok(());
        }
    }
    *backoff = MIN_BACKOFF;
    let mut status = tokio::time::interval(STATUS_EVERY);
    status.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut users_tick = tokio::time::interval(USERS_EVERY);
    users_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut users_due = true;
    loop {
        tokio::select! {
            m = feed.message() => match m.map_err(call)? {
                None => return Err(Gone::Down("the message stream ended".into())),
                Some(r) => match r.event {
                    Some(subscribe_response::Event::Message(m)) => {
                        *last_id = m.id.clone();
                        if let Some(ev) = feed_event(m)
                            && tx.send(ev).await.is_err()
                        {
                            return Ok(());
                        }
                    }
                    Some(subscribe_response::Event::Lagged(l)) => {
                        if !l.resume_after_id.is_empty() {
                            *last_id = l.resume_after_id;
                        }
                        return Err(Gone::Lagged);
                    }
                    None => {}
                },
            },
            d = dms.message() => match d.map_err(call)? {
                None => return Err(Gone::Down("the private messages ended".into())),
                Some(r) => {
                    if let Some(watch_private_response::Event::Message(m)) = r.event
                        && tx.send(private_event(m)).await.is_err()
                    {
                        return Ok(());
                    }
                }
            },
            e = watch.message() => match e.map_err(call)? {
                None => return Err(Gone::Down("the user events ended".into())),
                Some(_) => users_due = true,
            },
            _ = users_tick.tick(), if users_due => {
                users_due = false;
                let list = people.list_users(ListUsersRequest {}).await.map_err(call)?.into_inner();
                let users = list
                    .users
                    .into_iter()
                    .map(|u| User {
                        presence: presence_name(u.presence).to_owned(),
                        nickname: u.nickname,
                        away: u.away_message,
                        me: u.is_self,
                        verified: u.verified,
                        key_changed: u.key_changed,
                    })
                    .collect();
                if tx.send(NetEvent::Users(users)).await.is_err() {
                    return Ok(());
                }
            }
            _ = status.tick() => {
                let s = node.get_status(GetStatusRequest {}).await.map_err(call)?.into_inner();
                let ev = NetEvent::Status(Status {
                    node_id: s.node_id,
                    nickname: s.nickname,
                    ring_size: if s.ring_size_exact > 0 { s.ring_size_exact } else { s.ring_size_estimate },
                    ring_exact: s.ring_size_exact > 0,
                    peers: s.peers_connected,
                });
                if tx.send(ev).await.is_err() {
                    return Ok(());
                }
            }
            a = actions.recv() => {
                let Some(a) = a else { return Ok(()) };
                // Each action runs on its own, so a slow one never holds up the feed.
                let (chat, people, private, tx, socket) =
                    (chat.clone(), people.clone(), private.clone(), tx.clone(), socket.clone());
                tokio::spawn(async move {
                    let ev = match a {
                        Action::SendPrivate { .. }
                        | Action::Block(..)
                        | Action::Change { private: true, .. } => {
                            act_private(a, private, &socket).await
                        }
                        a @ (Action::SendFile { .. } | Action::GetFile { .. }) => {
                            super::files::act(a, &tx, &socket).await
                        }
                        a @ Action::SendVoice { .. } => super::voice::act(a, &tx, &socket).await,
                        a => act(a, chat, people, &tx, &socket).await,
                    };
                    let _ = tx.send(ev).await;
                });
            }
        }
    }
}

/// The window's form of a message of the feed (or of a history page): a message, an event,
/// or an edit or delete of one; `None` for a kind newer than this program.
fn feed_event(m: ChatMessage) -> Option<NetEvent> {
    let kind = MessageKind::try_from(m.kind).unwrap_or(MessageKind::Unspecified);
    Some(match kind {
        MessageKind::Text | MessageKind::Event => NetEvent::Message {
            room: m.room,
            event: kind == MessageKind::Event,
            body: Body {
                id: m.id,
                from: m.from,
                // A file shows as `📎 name 2.4 MB` after the caption (sanitised with the line);
                // a voice message as its text, `🎤 0:07 "transcript…"`.
                text: match &m.attachment {
                    Some(_) if m.voice.is_some() => m.text,
                    Some(a) if m.text.starts_with("📎 ") => file_text(a),
                    Some(a) => format!("{}  {}", m.text, file_text(a)),
                    None => m.text,
                },
                at_ms: m.sent_at_unix_ms,
                edited: m.edited_at_unix_ms != 0,
                deleted: m.deleted,
                file: m.attachment.as_ref().map(|a| super::app::FileRef {
                    hash: a.hash.clone(),
                    name: a.name.clone(),
                    size: a.size,
                }),
            },
        },
        MessageKind::Edit | MessageKind::Delete => NetEvent::Change {
            id: m.id,
            room: m.room,
            target: m.target_id,
            text: (kind == MessageKind::Edit).then_some(m.text),
        },
        MessageKind::Unspecified => return None,
    })
}

/// A file's line, unsanitised: `📎 name 2.4 MB`.
fn file_text(a: &chat_proto::v1::FileAttachment) -> String {
    format!("📎 {} {}", a.name, crate::cmd::tail::human_size(a.size))
}

/// The window's form of a private message.
fn private_event(m: PrivateMessage) -> NetEvent {
    let peer = if m.outgoing { m.to } else { m.from.clone() };
    // A received one-to-one message carries the sender's trust mark after the name: ⚠ (their
    // name is bound to another key), ✓ (safety number confirmed).
    let from = match (m.outgoing, m.key_changed, m.peer_verified) {
        (false, true, _) => format!("{} ⚠", m.from),
        (false, false, true) => format!("{} ✓", m.from),
        _ => m.from,
    };
    NetEvent::Private {
        peer,
        group: m.group,
        outgoing: m.outgoing,
        body: Body {
            id: m.id,
            from,
            text: m.text,
            at_ms: m.sent_unix_ms,
            edited: m.edited_unix_ms != 0,
            deleted: m.deleted,
            file: None,
        },
    }
}

/// Why chatd refused an edit or a delete, in words.
fn refusal(socket: &Target, s: tonic::Status, private: bool) -> String {
    let said = s.message().to_owned();
    match s.code() {
        tonic::Code::Unimplemented if private => {
            "this chatd cannot edit or delete private messages yet".into()
        }
        tonic::Code::Unimplemented => "this chatd cannot edit or delete messages".into(),
        tonic::Code::NotFound => {
            format!("that message is gone (deleted, or not stored on this node): {said}")
        }
        tonic::Code::PermissionDenied => {
            format!("only its author may change a message: {said}")
        }
        _ => client::call_error(socket, s).to_string(),
    }
}

/// Carries out a private-conversation action.
async fn act_private(
    a: Action,
    mut private: PrivateServiceClient<Conn>,
    socket: &Target,
) -> NetEvent {
    let why = |s: tonic::Status| client::call_error(socket, s).to_string();
    match a {
        Action::SendPrivate {
            reference,
            to,
            group,
            text,
        } => {
            let req = SendPrivateRequest {
                to,
                group_id: group,
                text,
                accept_new_key: false,
                ..Default::default()
            };
            match private.send_private(req).await {
                Ok(_) => NetEvent::Sent(reference),
                Err(s) => NetEvent::NotSent(reference, why(s)),
            }
        }
        Action::Change {
            reference,
            id,
            text,
            ..
        } => {
            let done = match text {
                Some(text) => private
                    .edit_private(EditPrivateRequest { id, text })
                    .await
                    .map(|_| ()),
                None => private
                    .delete_private(DeletePrivateRequest { id })
                    .await
                    .map(|_| ()),
            };
            match done {
                Ok(()) => NetEvent::Sent(reference),
                Err(s) => NetEvent::NotSent(reference, refusal(socket, s, true)),
            }
        }
        Action::Block(nick, on) => {
            let done = if on {
                private
                    .block(BlockRequest {
                        nickname: nick.clone(),
                    })
                    .await
                    .map(|_| ())
            } else {
                private
                    .unblock(UnblockRequest {
                        nickname: nick.clone(),
                    })
                    .await
                    .map(|_| ())
            };
            match done {
                Ok(()) if on => NetEvent::Notice(format!(
                    "{nick} is blocked: their private messages are refused, their public ones hidden"
                )),
                Ok(()) => NetEvent::Notice(format!("{nick} is unblocked")),
                Err(s) => NetEvent::Notice(why(s)),
            }
        }
        _ => NetEvent::Notice("internal: not a private action".into()),
    }
}

/// Carries out one action; its answer for the window.
async fn act(
    a: Action,
    mut chat: ChatServiceClient<Conn>,
    mut people: UserServiceClient<Conn>,
    tx: &mpsc::Sender<NetEvent>,
    socket: &Target,
) -> NetEvent {
    let why = |s: tonic::Status| client::call_error(socket, s).to_string();
    match a {
        Action::Send {
            reference,
            room,
            text,
        } => match chat
            .send(SendRequest {
                room,
                text,
                ..Default::default()
            })
            .await
        {
            Ok(_) => NetEvent::Sent(reference),
            Err(s) => NetEvent::NotSent(reference, why(s)),
        },
        Action::Nick(name) => match people
            .set_nickname(SetNicknameRequest { nickname: name })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                let note = if r.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.note)
                };
                NetEvent::Notice(format!("you are now {}{note}", r.nickname))
            }
            Err(s) => NetEvent::Notice(why(s)),
        },
        Action::Away(message) => {
            let req = SetPresenceRequest {
                away: true,
                away_message: message,
            };
            match people.set_presence(req).await {
                Ok(_) => NetEvent::Notice("you are away".into()),
                Err(s) => NetEvent::Notice(why(s)),
            }
        }
        Action::Back => {
            let req = SetPresenceRequest {
                away: false,
                away_message: String::new(),
            };
            match people.set_presence(req).await {
                Ok(_) => NetEvent::Notice("you are back".into()),
                Err(s) => NetEvent::Notice(why(s)),
            }
        }
        Action::Search(query) => {
            let req = SearchRequest {
                query: query.clone(),
                limit: 20,
                ..SearchRequest::default()
            };
            match chat.search(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    let mut lines = vec![format!(
                        "search {query:?}: {} found{}",
                        r.messages.len(),
                        if r.more {
                            " (the newest; more with chatctl search)"
                        } else {
                            ""
                        }
                    )];
                    for m in r.messages.iter().rev() {
                        // Each line is sanitised when shown; keep one message per line.
                        lines.push(format!(
                            "  {} #{} {}: {}",
                            crate::time::short(m.sent_at_unix_ms),
                            m.room,
                            m.from,
                            m.text.replace(['\n', '\r'], " ")
                        ));
                    }
                    NetEvent::Notice(lines.join("\n"))
                }
                Err(s) => NetEvent::Notice(format!("search: {}", why(s))),
            }
        }
        Action::Change {
            reference,
            id,
            text,
            ..
        } => {
            let done = match text {
                Some(text) => chat.edit(EditRequest { id, text }).await.map(|_| ()),
                None => chat.delete(DeleteRequest { id }).await.map(|_| ()),
            };
            match done {
                Ok(()) => NetEvent::Sent(reference),
                Err(s) => NetEvent::NotSent(reference, refusal(socket, s, false)),
            }
        }
        Action::SendPrivate { reference, .. } => {
            NetEvent::NotSent(reference, "internal: sent the wrong way".into())
        }
        Action::Block(..)
        | Action::SendFile { .. }
        | Action::SendVoice { .. }
        | Action::GetFile { .. } => NetEvent::Notice("internal: sent the wrong way".into()),
        Action::Older { room, before } => {
            let req = HistoryRequest {
                room: room.clone(),
                before_id: before,
                limit: BACKLOG,
                ..HistoryRequest::default()
            };
            match chat.history(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    let lines = r.messages.into_iter().filter_map(feed_event).collect();
                    NetEvent::Older {
                        room,
                        lines,
                        more: r.more,
                    }
                }
                Err(s) => {
                    let _ = tx
                        .send(NetEvent::Older {
                            room,
                            lines: Vec::new(),
                            more: true,
                        })
                        .await;
                    NetEvent::Notice(format!("older lines: {}", why(s)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_of(e: NetEvent) -> String {
        match e {
            NetEvent::Private { body, .. } => body.from,
            _ => String::new(),
        }
    }

    #[test]
    fn a_message_with_a_file_shows_its_file_line() {
        let text = |caption: &str| {
            let m = ChatMessage {
                kind: MessageKind::Text as i32,
                text: caption.into(),
                attachment: Some(chat_proto::v1::FileAttachment {
                    name: "report.pdf".into(),
                    size: 2_400_000,
                    ..Default::default()
                }),
                ..ChatMessage::default()
            };
            match feed_event(m) {
                Some(NetEvent::Message { body, .. }) => body.text,
                _ => String::new(),
            }
        };
        assert_eq!(text("the numbers"), "the numbers  📎 report.pdf 2.4 MB");
        // No caption: the text already is the file line (what older builds show).
        assert_eq!(text("📎 report.pdf 2.4 MB"), "📎 report.pdf 2.4 MB");
        // A voice message's line is its text; its file stays for /get.
        let voice = ChatMessage {
            kind: MessageKind::Text as i32,
            text: "🎤 0:07 \"the meeting is moved\"".into(),
            attachment: Some(chat_proto::v1::FileAttachment {
                name: "note.ogg".into(),
                size: 9000,
                ..Default::default()
            }),
            voice: Some(chat_proto::v1::VoiceTranscript::default()),
            ..ChatMessage::default()
        };
        match feed_event(voice) {
            Some(NetEvent::Message { body, .. }) => {
                assert_eq!(body.text, "🎤 0:07 \"the meeting is moved\"");
                assert!(body.file.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_received_message_carries_its_senders_trust_mark() {
        let m = |outgoing, key_changed, peer_verified| PrivateMessage {
            from: "alice".into(),
            to: "bob".into(),
            outgoing,
            key_changed,
            peer_verified,
            ..PrivateMessage::default()
        };
        assert_eq!(from_of(private_event(m(false, true, false))), "alice ⚠");
        assert_eq!(from_of(private_event(m(false, false, true))), "alice ✓");
        assert_eq!(from_of(private_event(m(false, false, false))), "alice");
        // The caller's own lines keep its name (it tells them apart by it).
        assert_eq!(from_of(private_event(m(true, true, false))), "alice");
    }
}
