//! `chatctl dm NICK TEXT…`, `dms [WITH]`, `group …`, `block`, `unblock`, `blocks`: private
//! conversations (`chat.v1.PrivateService`). Messages are end-to-end encrypted by the caller's
//! chatd; `dms` shows where each sent one stands (queued, sent, stored for later, delivered,
//! expired). Sending waits and retries (bounded) when chatd says the rate is exceeded, so
//! piping lines in works.

use std::io::{BufRead, Write};
use std::time::Duration;

use chat_proto::v1::private_service_client::PrivateServiceClient;
use chat_proto::v1::{
    BlockRequest, ChangeGroupRequest, CreateGroupRequest, DeliveryStatus, Group, LeaveGroupRequest,
    ListBlocksRequest, ListGroupsRequest, PrivateHistoryRequest, PrivateMessage,
    SendPrivateRequest, UnblockRequest,
};
use serde_json::json;

use crate::Error;
use crate::cli::GroupCommand;
use crate::client::{self, Conn, Target};
use crate::output::Printer;
use crate::tui::text::sanitize;

/// Retries of one message refused with RESOURCE_EXHAUSTED (the per-recipient rate is 30 a
/// minute: a long paste waits).
const MAX_RETRIES: u32 = 240;
const RETRY_WAIT: Duration = Duration::from_millis(500);

/// Whom a message goes to.
pub enum To {
    Nick(String),
    /// A person whose name may now stand for another key than the conversation is bound
    /// to: send anyway and bind the new key (`dm --accept-new-key`).
    NickNewKey(String),
    Group(String),
}

/// Sends `text` (or each line of standard input) privately.
pub async fn dm(socket: &Target, printer: Printer, to: To, text: Vec<String>) -> Result<(), Error> {
    let mut api = client::private_service(socket, false).await?;
    if !text.is_empty() {
        return send_one(&mut api, socket, printer, &to, text.join(" ")).await;
    }
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(Error::Input)?;
        if !line.trim().is_empty() {
            send_one(&mut api, socket, printer, &to, line).await?;
        }
    }
    Ok(())
}

async fn send_one(
    api: &mut PrivateServiceClient<Conn>,
    socket: &Target,
    printer: Printer,
    to: &To,
    text: String,
) -> Result<(), Error> {
    let request = match to {
        To::Nick(n) | To::NickNewKey(n) => SendPrivateRequest {
            to: n.clone(),
            group_id: String::new(),
            text,
            accept_new_key: matches!(to, To::NickNewKey(_)),
            ..Default::default()
        },
        To::Group(g) => SendPrivateRequest {
            to: String::new(),
            group_id: g.clone(),
            text,
            accept_new_key: false,
            ..Default::default()
        },
    };
    let response = client::retry_exhausted(MAX_RETRIES, RETRY_WAIT, || {
        let (mut api, request) = (api.clone(), request.clone());
        async move { api.send_private(request).await }
    })
    .await
    .map_err(|s| client::call_error(socket, s))?
    .into_inner();
    if let (true, Some(m)) = (printer.is_json(), &response.message) {
        printer.json_line(&message_json(m)).map_err(Error::Output)?;
    }
    Ok(())
}

/// The name of a delivery status.
pub fn status_name(code: i32) -> &'static str {
    match DeliveryStatus::try_from(code) {
        Ok(DeliveryStatus::Queued) => "queued",
        Ok(DeliveryStatus::Sent) => "sent",
        Ok(DeliveryStatus::Stored) => "stored",
        Ok(DeliveryStatus::Delivered) => "delivered",
        Ok(DeliveryStatus::Expired) => "expired",
        _ => "",
    }
}

/// The JSON form of a private message (`kind` is `private`; `to` or `group` say where it
/// went).
pub fn message_json(m: &PrivateMessage) -> serde_json::Value {
    let mut v = json!({
        "kind": "private",
        "id": m.id,
        "from": m.from,
        "from_id": m.from_id,
        "text": m.text,
        "ts": crate::time::rfc3339(m.sent_unix_ms),
        "outgoing": m.outgoing,
    });
    if m.group_id.is_empty() {
        v["to"] = json!(m.to);
        v["to_id"] = json!(m.to_id);
    } else {
        v["group"] = json!(m.group);
        v["group_id"] = json!(m.group_id);
    }
    if m.outgoing {
        v["status"] = json!(status_name(m.status));
    }
    if m.edited_unix_ms != 0 {
        v["edited"] = json!(crate::time::rfc3339(m.edited_unix_ms));
    }
    if m.deleted {
        v["deleted"] = json!(true);
    }
    if m.peer_verified {
        v["verified"] = json!(true);
    }
    if m.key_changed {
        v["key_changed"] = json!(true);
    }
    if let Some(t) = &m.voice {
        v["voice"] = crate::cmd::voice::voice_json(t);
    }
    if let Some(a) = &m.attachment {
        v["file"] = json!({
            "hash": a.hash,
            "name": a.name,
            "size": a.size,
            "media_type": a.media_type,
        });
    }
    v
}

/// The mark after the other person's name of a one-to-one message: ` ✓` (safety number
/// confirmed), ` ⚠` (their name is bound to another key), or nothing.
pub fn mark(m: &PrivateMessage) -> &'static str {
    if m.key_changed {
        " ⚠"
    } else if m.peer_verified {
        " ✓"
    } else {
        ""
    }
}

/// Prints one private message: `12:00  [alice → you] text` (made harmless for the terminal),
/// or a JSON object.
pub fn print(printer: Printer, m: &PrivateMessage) -> Result<(), Error> {
    if printer.is_json() {
        return printer.json_line(&message_json(m)).map_err(Error::Output);
    }
    let from = if m.outgoing {
        "you".to_owned()
    } else {
        format!("{}{}", sanitize(&m.from), mark(m))
    };
    let to = if !m.group_id.is_empty() {
        format!("#{}", sanitize(&m.group))
    } else if m.outgoing {
        format!("{}{}", sanitize(&m.to), mark(m))
    } else {
        "you".to_owned()
    };
    let head = format!("[{from} → {to}]");
    let head = if printer.colour() {
        format!("\x1b[1;35m{head}\x1b[0m")
    } else {
        head
    };
    let status = match (m.outgoing, status_name(m.status)) {
        (true, s) if !s.is_empty() => format!("  ({s})"),
        _ => String::new(),
    };
    let dim = |s: &str| {
        if printer.colour() {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let text = if m.deleted {
        dim("(deleted)")
    } else if m.edited_unix_ms != 0 {
        format!("{} {}", sanitize(&m.text), dim("(edited)"))
    } else {
        sanitize(&m.text)
    };
    let text = match (&m.attachment, m.deleted) {
        // A voice message's text is `🎤 0:07 "…"` already; where a search's words are.
        (Some(_), false) if m.voice.is_some() => format!(
            "{text}  (chatctl get {}){}",
            m.id,
            m.voice
                .as_ref()
                .map(crate::cmd::voice::matches_line)
                .unwrap_or_default()
        ),
        (Some(a), false) => format!(
            "{text}  📎 {} ({} bytes; chatctl get {})",
            sanitize(&a.name),
            a.size,
            m.id
        ),
        _ => text,
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}  {head} {text}{status}",
        crate::time::short(m.sent_unix_ms),
    )
    .and_then(|()| out.flush())
    .map_err(Error::Output)
}

/// `chatctl dms [WITH]`.
pub async fn history(
    socket: &Target,
    printer: Printer,
    with: String,
    lines: u32,
) -> Result<(), Error> {
    for m in fetch_history(socket, with, lines).await? {
        print(printer, &m)?;
    }
    Ok(())
}

/// Every private message of the caller's, oldest first (pages of 1,000 back from the newest).
pub async fn all_history(socket: &Target) -> Result<Vec<PrivateMessage>, Error> {
    let mut api = client::private_service(socket, false).await?;
    let mut all: Vec<PrivateMessage> = Vec::new();
    let mut before = String::new();
    loop {
        let page = api
            .private_history(PrivateHistoryRequest {
                with: String::new(),
                limit: 1000,
                before_id: before.clone(),
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner();
        let first = page.messages.first().map(|m| m.id.clone());
        let mut older = page.messages;
        older.append(&mut all);
        all = older;
        match first {
            Some(id) if page.more => before = id,
            _ => return Ok(all),
        }
    }
}

/// The caller's newest `limit` private messages (oldest first).
pub async fn fetch_history(
    socket: &Target,
    with: String,
    limit: u32,
) -> Result<Vec<PrivateMessage>, Error> {
    let mut api = client::private_service(socket, false).await?;
    Ok(api
        .private_history(PrivateHistoryRequest {
            with,
            limit: limit.max(1),
            before_id: String::new(),
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner()
        .messages)
}

fn group_json(g: &Group) -> serde_json::Value {
    json!({
        "id": g.id,
        "name": g.name,
        "creator": g.creator,
        "creator_id": g.creator_id,
        "members": g.members,
        "version": g.version,
    })
}

fn print_group(printer: Printer, g: &Group) -> Result<(), Error> {
    if printer.is_json() {
        return printer.json_line(&group_json(g)).map_err(Error::Output);
    }
    let members: Vec<String> = g.members.iter().map(|m| sanitize(m)).collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "#{}  {}  created by {}  members: {}",
        sanitize(&g.name),
        g.id,
        sanitize(&g.creator),
        members.join(", ")
    )
    .and_then(|()| out.flush())
    .map_err(Error::Output)
}

enum Change {
    Add,
    Other,
}

/// `chatctl group …`.
pub async fn group(socket: &Target, printer: Printer, cmd: GroupCommand) -> Result<(), Error> {
    if let GroupCommand::Send {
        group,
        text,
        file,
        voice,
    } = cmd
    {
        if let Some(path) = voice {
            return crate::cmd::voice::private(socket, printer, To::Group(group), &path).await;
        }
        if let Some(path) = file {
            let caption = text.join(" ");
            return crate::cmd::send_file::private(
                socket,
                printer,
                To::Group(group),
                &path,
                caption,
                false,
            )
            .await;
        }
        return dm(socket, printer, To::Group(group), text).await;
    }
    let cmd_kind = match &cmd {
        GroupCommand::Add { .. } => Change::Add,
        _ => Change::Other,
    };
    let mut api = client::private_service(socket, false).await?;
    let err = |s| client::call_error(socket, s);
    match cmd {
        GroupCommand::Create { name, members } => {
            let g = api
                .create_group(CreateGroupRequest { name, members })
                .await
                .map_err(err)?
                .into_inner();
            if let Some(g) = g.group {
                print_group(printer, &g)?;
            }
        }
        GroupCommand::Add { group, members } | GroupCommand::Remove { group, members } => {
            let adding = matches!(cmd_kind, Change::Add);
            let request = ChangeGroupRequest {
                group_id: group,
                add: if adding { members.clone() } else { Vec::new() },
                remove: if adding { Vec::new() } else { members },
            };
            let g = api.change_group(request).await.map_err(err)?.into_inner();
            if let Some(g) = g.group {
                print_group(printer, &g)?;
            }
        }
        GroupCommand::Leave { group } => {
            api.leave_group(LeaveGroupRequest { group_id: group })
                .await
                .map_err(err)?;
        }
        GroupCommand::List => {
            let list = api
                .list_groups(ListGroupsRequest {})
                .await
                .map_err(err)?
                .into_inner();
            if printer.is_json() {
                let all: Vec<serde_json::Value> = list.groups.iter().map(group_json).collect();
                return printer
                    .json_line(&json!({ "groups": all }))
                    .map_err(Error::Output);
            }
            for g in &list.groups {
                print_group(printer, g)?;
            }
        }
        GroupCommand::Send { .. } => {}
    }
    Ok(())
}

/// `chatctl block` / `unblock`.
pub async fn block(socket: &Target, printer: Printer, nick: String, on: bool) -> Result<(), Error> {
    let mut api = client::private_service(socket, false).await?;
    let changed = if on {
        api.block(BlockRequest {
            nickname: nick.clone(),
        })
        .await
        .map(|r| r.into_inner().changed)
    } else {
        api.unblock(UnblockRequest {
            nickname: nick.clone(),
        })
        .await
        .map(|r| r.into_inner().changed)
    }
    .map_err(|s| client::call_error(socket, s))?;
    if printer.is_json() {
        return printer
            .json_line(&json!({ "nickname": nick, "blocked": on, "changed": changed }))
            .map_err(Error::Output);
    }
    let what = match (on, changed) {
        (true, true) => "blocked",
        (true, false) => "was already blocked",
        (false, true) => "unblocked",
        (false, false) => "was not blocked",
    };
    println!("{} {what}", sanitize(&nick));
    Ok(())
}

/// `chatctl blocks`.
pub async fn blocks(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::private_service(socket, false).await?;
    let list = api
        .list_blocks(ListBlocksRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if printer.is_json() {
        let users: Vec<serde_json::Value> = list
            .users
            .iter()
            .map(|u| json!({ "nickname": u.nickname, "user_id": u.user_id }))
            .collect();
        return printer
            .json_line(&json!({ "blocked": users }))
            .map_err(Error::Output);
    }
    for u in &list.users {
        println!("{}  {}", sanitize(&u.nickname), u.user_id);
    }
    Ok(())
}
