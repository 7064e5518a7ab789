//! `chatctl verify NICK [--confirm]`: the safety number of the caller's account and the
//! account NICK stands for (the one the network's name holders name), which both people
//! compare out of band; `--confirm` marks NICK verified (`chat.v1.PrivateService.Verify`).

use chat_proto::v1::{VerifyRequest, VerifyResponse};
use serde_json::json;

use crate::Error;
use crate::client::{self, Target};
use crate::output::Printer;
use crate::tui::text::sanitize;

/// Shows (and with `confirm` marks verified) NICK's safety number.
pub async fn run(
    socket: &Target,
    printer: Printer,
    nick: String,
    confirm: bool,
) -> Result<(), Error> {
    let mut api = client::private_service(socket, false).await?;
    let v = api
        .verify(VerifyRequest {
            nickname: nick,
            confirm,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer
        .table(&verify_json(&v), &render(&v, confirm))
        .map_err(Error::Output)
}

/// The JSON form.
pub fn verify_json(v: &VerifyResponse) -> serde_json::Value {
    json!({
        "nickname": v.nickname,
        "user_id": v.user_id,
        "own_user_id": v.own_user_id,
        "safety_number": v.safety_number,
        "verified": v.verified,
        "key_changed": v.key_changed,
        "bound_user_id": v.bound_user_id,
    })
}

/// The text form: the number in three lines of four groups, and what it means.
pub fn render(v: &VerifyResponse, confirmed: bool) -> String {
    let name = sanitize(&v.nickname);
    let groups: Vec<&str> = v.safety_number.split(' ').collect();
    let mut out = format!(
        "safety number with {name} (user {}):\n\n",
        short(&v.user_id)
    );
    for line in groups.chunks(4) {
        out.push_str(&format!("    {}\n", line.join(" ")));
    }
    out.push('\n');
    if v.key_changed {
        out.push_str(&format!(
            "⚠ your conversation with {name} is bound to another key (user {}): {name}'s key \
             changed. Compare this number with {name} before you accept it (`chatctl verify \
             --confirm {name}` or `chatctl dm --accept-new-key {name} …`).\n",
            short(&v.bound_user_id)
        ));
    } else if v.verified && confirmed {
        out.push_str(&format!("✓ {name} is now verified.\n"));
    } else if v.verified {
        out.push_str(&format!("✓ {name} is verified.\n"));
    } else {
        out.push_str(&format!(
            "{name} sees the same number. If it matches, run `chatctl verify --confirm {name}`.\n"
        ));
    }
    out
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(verified: bool, key_changed: bool) -> VerifyResponse {
        VerifyResponse {
            nickname: "alice".into(),
            user_id: "ab".repeat(32),
            own_user_id: "cd".repeat(32),
            safety_number: (0..12)
                .map(|i| format!("{i:05}"))
                .collect::<Vec<_>>()
                .join(" "),
            verified,
            key_changed,
            bound_user_id: if key_changed {
                "ef".repeat(32)
            } else {
                String::new()
            },
        }
    }

    #[test]
    fn the_number_reads_in_three_lines_and_says_what_to_do() {
        let text = render(&response(false, false), false);
        assert!(text.contains("    00000 00001 00002 00003\n"), "{text}");
        assert!(text.contains("    00008 00009 00010 00011\n"), "{text}");
        assert!(text.contains("chatctl verify --confirm alice"), "{text}");
        assert!(render(&response(true, false), true).contains("✓ alice is now verified"));
        let changed = render(&response(false, true), false);
        assert!(
            changed.contains("⚠") && changed.contains("efefefefefef"),
            "{changed}"
        );
        let v = verify_json(&response(true, false));
        assert_eq!(
            (v["verified"].as_bool(), v["key_changed"].as_bool()),
            (Some(true), Some(false))
        );
    }
}
