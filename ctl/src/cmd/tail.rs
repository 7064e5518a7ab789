//! `chatctl tail [-f] [-n N] [--room R]`: the latest messages, then (with `-f`) new ones.
//!
//! Without `-f` it reads History. With `-f` it subscribes with a backlog of N, remembers the
//! id of the last message printed, and whenever the stream ends — chatd restarted, or this
//! client lagged — subscribes again after that id, so nothing is printed twice or skipped.
//! While chatd is away it retries with a capped backoff (and says so once on a terminal).
//! If chatd came back without that message (it crashed before committing a message from the
//! ring; its neighbours send it again within seconds), it keeps asking for up to
//! [`RESUME_WAIT`], then says so and follows new messages.
//! `--json` prints one object per line: id, room, from, from_id, text, ts (RFC 3339), and more.
//! Without `--room`, the caller's private messages are shown too, marked `[alice → you]`
//! (in JSON: `"kind": "private"` with `to` or `group`).

use crate::client::Target;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chat_proto::v1::{
    ChatMessage, HistoryRequest, MessageKind, SubscribeRequest, subscribe_response,
};
use serde_json::json;

use crate::Error;
use crate::cli::TailArgs;
use crate::client::{self, ClientError};
use crate::output::Printer;
use crate::tui::text::sanitize;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long to wait for the message to resume after to come back to a restarted chatd.
const RESUME_WAIT: Duration = Duration::from_secs(30);

/// Runs `tail`.
pub async fn run(socket: &Target, printer: Printer, args: TailArgs) -> Result<(), Error> {
    let room = args.room.clone().unwrap_or_default();
    if !args.follow {
        let mut api = client::chat_service(socket).await?;
        let page = api
            .history(HistoryRequest {
                room,
                limit: args.lines.max(1),
                ..HistoryRequest::default()
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner();
        if args.lines == 0 {
            return Ok(());
        }
        // Without --room, the caller's private messages too, in time order.
        let private = if args.room.is_none() {
            crate::cmd::private::fetch_history(socket, String::new(), args.lines)
                .await
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut all: Vec<(i64, Line<'_>)> = page
            .messages
            .iter()
            .map(|m| (m.sent_at_unix_ms, Line::Public(m)))
            .chain(private.iter().map(|m| (m.sent_unix_ms, Line::Private(m))))
            .collect();
        all.sort_by_key(|(t, _)| *t);
        let skip = all.len().saturating_sub(args.lines as usize);
        for (_, line) in all.into_iter().skip(skip) {
            match line {
                Line::Public(m) => print(printer, m)?,
                Line::Private(m) => crate::cmd::private::print(printer, m)?,
            }
        }
        return Ok(());
    }
    if args.room.is_none() {
        tokio::spawn(follow_private(socket.clone(), printer));
    }
    follow(socket, printer, room, args.lines).await
}

enum Line<'a> {
    Public(&'a ChatMessage),
    Private(&'a chat_proto::v1::PrivateMessage),
}

/// Prints the caller's private messages as they come, watching again after chatd restarts.
async fn follow_private(socket: Target, printer: Printer) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let stream = async {
            let mut api = client::private_service(&socket, true).await.ok()?;
            api.watch_private(chat_proto::v1::WatchPrivateRequest {})
                .await
                .ok()
                .map(|r| r.into_inner())
        };
        let Some(mut stream) = stream.await else {
            back_off(&mut backoff).await;
            continue;
        };
        backoff = Duration::from_millis(100);
        while let Ok(Some(ev)) = stream.message().await {
            use chat_proto::v1::watch_private_response::Event;
            let done = match ev.event {
                // Messages this client sent show once sent; others' arrive here.
                Some(Event::Message(m)) => crate::cmd::private::print(printer, &m).is_err(),
                Some(Event::Status(st)) if printer.is_json() => printer
                    .json_line(&serde_json::json!({
                        "kind": "status",
                        "id": st.id,
                        "to": st.to,
                        "to_id": st.to_id,
                        "status": crate::cmd::private::status_name(st.status),
                    }))
                    .is_err(),
                _ => false,
            };
            if done {
                return;
            }
        }
        back_off(&mut backoff).await;
    }
}

async fn follow(
    socket: &Target,
    printer: Printer,
    room: String,
    backlog: u32,
) -> Result<(), Error> {
    let mut last_id = String::new();
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    let mut said_away = false;
    let mut lost_since: Option<Instant> = None;
    loop {
        let attempt = async {
            let mut api = client::chat_stream(socket).await?;
            let request = SubscribeRequest {
                room: room.clone(),
                resume_after_id: last_id.clone(),
                backlog: if first { backlog } else { 0 },
            };
            api.subscribe(request)
                .await
                .map_err(|s| client::call_error(socket, s))
                .map(|r| r.into_inner())
        };
        let mut stream = match attempt.await {
            Ok(stream) => stream,
            Err(ClientError::Unreachable(_)) if !first => {
                if !said_away && std::io::stderr().is_terminal() {
                    eprintln!("chatctl: chatd went away; reconnecting…");
                    said_away = true;
                }
                back_off(&mut backoff).await;
                continue;
            }
            Err(ClientError::Remote(s))
                if !first && !last_id.is_empty() && s.code() == tonic::Code::NotFound =>
            {
                let since = *lost_since.get_or_insert_with(Instant::now);
                if since.elapsed() < RESUME_WAIT {
                    back_off(&mut backoff).await;
                } else {
                    eprintln!(
                        "chatctl: chatd no longer has message {last_id} (it restarted after a \
                         crash); following new messages, some may have been missed"
                    );
                    last_id.clear();
                    lost_since = None;
                }
                continue;
            }
            // chatd restarting can also reset the call; only final errors end a follower.
            Err(ClientError::Remote(s)) if !first && !is_final(s.code()) => {
                back_off(&mut backoff).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        first = false;
        lost_since = None;
        said_away = false;
        backoff = Duration::from_millis(100);
        loop {
            match stream.message().await {
                Ok(Some(event)) => match event.event {
                    Some(subscribe_response::Event::Message(m)) => {
                        print(printer, &m)?;
                        last_id = m.id;
                    }
                    Some(subscribe_response::Event::Lagged(lag)) => {
                        if std::io::stderr().is_terminal() {
                            eprintln!(
                                "chatctl: fell behind by {} messages; catching up",
                                lag.missed
                            );
                        }
                        if !lag.resume_after_id.is_empty() {
                            last_id = lag.resume_after_id;
                        }
                        break;
                    }
                    None => {}
                },
                // The stream ended (chatd stopping) or broke: resubscribe after last_id.
                Ok(None) => break,
                Err(s) if is_final(s.code()) => return Err(client::call_error(socket, s).into()),
                Err(_) => break,
            }
        }
    }
}

/// Waits `backoff` before the next attempt and doubles it, up to [`MAX_BACKOFF`].
async fn back_off(backoff: &mut Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

/// Errors that reconnecting cannot fix. Anything else on an open stream (a reset connection
/// reads as UNKNOWN "h2 protocol error") means chatd went away.
fn is_final(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        InvalidArgument
            | NotFound
            | PermissionDenied
            | Unauthenticated
            | FailedPrecondition
            | Unimplemented
    )
}

/// The JSON form of a message: one object per line.
pub fn message_json(m: &ChatMessage) -> serde_json::Value {
    let kind = match MessageKind::try_from(m.kind) {
        Ok(MessageKind::Event) => "event",
        Ok(MessageKind::Edit) => "edit",
        Ok(MessageKind::Delete) => "delete",
        _ => "message",
    };
    let mut v = json!({
        "kind": kind,
        "id": m.id,
        "room": m.room,
        "from": m.from,
        "from_id": m.from_id,
        "text": m.text,
        "ts": crate::time::rfc3339(m.sent_at_unix_ms),
        "sequence": m.sequence,
        "hlc": m.hlc,
    });
    if !m.target_id.is_empty() {
        v["target"] = json!(m.target_id);
    }
    if m.edited_at_unix_ms != 0 {
        v["edited"] = json!(crate::time::rfc3339(m.edited_at_unix_ms));
    }
    if m.deleted {
        v["deleted"] = json!(true);
    }
    if let Some(a) = &m.attachment {
        use base64::Engine as _;
        v["attachment"] = json!({
            "hash": a.hash,
            "name": a.name,
            "size": a.size,
            "media_type": a.media_type,
            "width": a.width,
            "height": a.height,
            "thumbnail": base64::engine::general_purpose::STANDARD.encode(&a.thumbnail),
            "thumbnail_refused": a.thumbnail_refused,
        });
    }
    if let Some(t) = &m.voice {
        v["voice"] = crate::cmd::voice::voice_json(t);
    }
    v
}

/// The file line of a message with a file: `📎 name 2.4 MB` (the name made harmless).
pub fn file_line(a: &chat_proto::v1::FileAttachment) -> String {
    format!("📎 {} {}", sanitize(&a.name), human_size(a.size))
}

/// A human size: `2.4 MB`, `512 B`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Prints one message: a line for people (what came from the network made harmless for the
/// terminal: escapes and controls shown, never acted on), or a JSON object.
pub(crate) fn print(printer: Printer, m: &ChatMessage) -> Result<(), Error> {
    if printer.is_json() {
        return printer.json_line(&message_json(m)).map_err(Error::Output);
    }
    if m.kind == MessageKind::Event as i32 {
        // Joins, leaves, away/back and renames: one dimmed line, no author.
        let line = sanitize(&m.text);
        let line = if printer.colour() {
            format!("\x1b[2m{line}\x1b[0m")
        } else {
            line
        };
        let mut out = std::io::stdout().lock();
        return writeln!(out, "{}  {line}", crate::time::short(m.sent_at_unix_ms))
            .and_then(|()| out.flush())
            .map_err(Error::Output);
    }
    let from = if m.from.is_empty() {
        format!("{}…", sanitize(m.from_id.get(..8).unwrap_or(&m.from_id)))
    } else {
        sanitize(&m.from)
    };
    let from = if printer.colour() {
        format!("\x1b[1;36m{from}\x1b[0m")
    } else {
        from
    };
    let dim = |s: &str| {
        if printer.colour() {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let target = sanitize(m.target_id.get(..8).unwrap_or(&m.target_id));
    let text = match MessageKind::try_from(m.kind) {
        _ if m.deleted => dim("(deleted)"),
        Ok(MessageKind::Edit) => format!(
            "{} {}",
            dim(&format!("(edit of {target}…)")),
            sanitize(&m.text)
        ),
        Ok(MessageKind::Delete) => dim(&format!("(deleted {target}…)")),
        _ if m.edited_at_unix_ms != 0 => format!("{} {}", sanitize(&m.text), dim("(edited)")),
        _ => sanitize(&m.text),
    };
    let text = match (&m.attachment, &m.voice) {
        // A voice message's text is its `🎤 0:07 "…"` line; a search adds where words are.
        (_, Some(v)) if !m.deleted => format!("{text}{}", crate::cmd::voice::matches_line(v)),
        (Some(a), _) if !m.deleted => {
            let line = file_line(a);
            // Without a caption the text is that line already (what older builds show).
            if m.text.starts_with("📎 ") {
                line
            } else {
                format!("{text}  {line}")
            }
        }
        _ => text,
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}  [{}] {}: {}",
        crate::time::short(m.sent_at_unix_ms),
        sanitize(&m.room),
        from,
        text
    )
    .and_then(|()| out.flush())
    .map_err(Error::Output)
}
