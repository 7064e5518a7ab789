//! `chatctl users`: the people of the network — nickname, presence, away message, since
//! when, user and node ids — and `chatctl nick`, `away`, `back` for this node's user.

use crate::client::Target;

use chat_proto::v1::{
    ListUsersRequest, ListUsersResponse, Presence, SetNicknameRequest, SetPresenceRequest,
};
use serde_json::json;

use crate::Error;
use crate::client;
use crate::output::Printer;

/// Prints the user list.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::user_service(socket).await?;
    let resp = api
        .list_users(ListUsersRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if printer.is_json() {
        return printer.json_line(&users_json(&resp)).map_err(Error::Output);
    }
    printer.table(&resp, &render(&resp)).map_err(Error::Output)
}

fn presence_name(p: i32) -> &'static str {
    match Presence::try_from(p) {
        Ok(Presence::Online) => "online",
        Ok(Presence::Away) => "away",
        Ok(Presence::Offline) => "offline",
        _ => "unknown",
    }
}

/// The JSON form: `{"users": [...]}` with `presence` as `online`, `away` or `offline`.
pub fn users_json(resp: &ListUsersResponse) -> serde_json::Value {
    let users: Vec<serde_json::Value> = resp
        .users
        .iter()
        .map(|u| {
            json!({
                "nickname": u.nickname,
                "user_id": u.user_id,
                "node_id": u.node_id,
                "presence": presence_name(u.presence),
                "away_message": u.away_message,
                "since": crate::time::rfc3339(u.since_unix_ms),
                "since_unix_ms": u.since_unix_ms,
                "guest": u.guest,
                "self": u.is_self,
                "verified": u.verified,
                "key_changed": u.key_changed,
            })
        })
        .collect();
    json!({ "users": users })
}

/// One line per user: nickname, presence (and away message), since, user id, node id.
pub fn render(resp: &ListUsersResponse) -> String {
    if resp.users.is_empty() {
        return "no users known yet\n".to_owned();
    }
    let width = resp
        .users
        .iter()
        .map(|u| u.nickname.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for u in &resp.users {
        let me = if u.is_self { "  (you)" } else { "" };
        let mark = if u.key_changed {
            "  ⚠ key changed (chatctl verify)"
        } else if u.verified {
            "  ✓ verified"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<width$}  {:<8} since {}  user {}  node {}{}{me}{mark}\n",
            u.nickname,
            presence_name(u.presence),
            crate::time::short(u.since_unix_ms),
            u.user_id.get(..12).unwrap_or(&u.user_id),
            u.node_id.get(..12).unwrap_or(&u.node_id),
            if u.away_message.is_empty() {
                String::new()
            } else {
                format!("  away: {}", u.away_message.replace(['\n', '\r'], " "))
            },
        ));
    }
    out
}

/// `chatctl nick NEW`.
pub async fn nick(socket: &Target, printer: Printer, name: String) -> Result<(), Error> {
    let mut api = client::user_service(socket).await?;
    let resp = api
        .set_nickname(SetNicknameRequest { nickname: name })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if printer.is_json() {
        return printer
            .json_line(&json!({"nickname": resp.nickname, "note": resp.note}))
            .map_err(Error::Output);
    }
    let nick = crate::tui::text::sanitize(&resp.nickname);
    if resp.note.is_empty() {
        println!("you are now {nick}");
    } else {
        println!(
            "you are now {nick} ({})",
            crate::tui::text::sanitize(&resp.note)
        );
    }
    Ok(())
}

/// `chatctl away [MESSAGE]` (`message: None` with `away` false: `chatctl back`).
pub async fn presence(
    socket: &Target,
    printer: Printer,
    away: bool,
    message: String,
) -> Result<(), Error> {
    let mut api = client::user_service(socket).await?;
    api.set_presence(SetPresenceRequest {
        away,
        away_message: message,
    })
    .await
    .map_err(|s| client::call_error(socket, s))?;
    let state = if away { "away" } else { "online" };
    if printer.is_json() {
        return printer
            .json_line(&json!({"presence": state}))
            .map_err(Error::Output);
    }
    println!("you are {state}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::User;

    fn user(nick: &str, presence: Presence, away: &str) -> User {
        User {
            nickname: nick.into(),
            user_id: "ab".repeat(32),
            node_id: "cd".repeat(32),
            presence: presence as i32,
            away_message: away.into(),
            since_unix_ms: 1_700_000_000_000,
            guest: false,
            is_self: nick == "alice",
            verified: false,
            key_changed: false,
        }
    }

    #[test]
    fn verified_and_changed_keys_are_marked() {
        let mut bob = user("bob", Presence::Online, "");
        bob.verified = true;
        let mut carol = user("carol", Presence::Online, "");
        carol.key_changed = true;
        let resp = ListUsersResponse {
            users: vec![bob, carol, user("dave", Presence::Online, "")],
        };
        let text = render(&resp);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("✓ verified"), "{text}");
        assert!(lines[1].contains("⚠ key changed"), "{text}");
        assert!(!lines[2].contains('✓') && !lines[2].contains('⚠'), "{text}");
        let j = users_json(&resp);
        assert_eq!(
            (&j["users"][0]["verified"], &j["users"][1]["key_changed"]),
            (&json!(true), &json!(true))
        );
    }

    #[test]
    fn the_list_reads_by_name_with_presence() {
        let resp = ListUsersResponse {
            users: vec![
                user("alice", Presence::Online, ""),
                user("bob", Presence::Away, "lunch"),
            ],
        };
        let text = render(&resp);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("alice  online") && lines[0].ends_with("(you)"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("bob    away") && lines[1].contains("away: lunch"),
            "{text}"
        );
        let j = users_json(&resp);
        assert_eq!(j["users"][1]["presence"], "away");
        assert_eq!(j["users"][0]["nickname"], "alice");
        assert_eq!(
            render(&ListUsersResponse { users: vec![] }),
            "no users known yet\n"
        );
    }
}
