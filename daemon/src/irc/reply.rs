//! Building replies: numerics, the server's name, a person's `nick!user@host`, and the
//! `time` tag (IRCv3 server-time) from a Unix time.

use super::line::{Message, clean};

/// The server name chatd gives itself on IRC unless `irc.server_name` says otherwise.
pub const SERVER: &str = "chatd";

static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the server name (`irc.server_name`) once, at start; later calls change nothing.
pub fn set_server_name(name: &str) {
    let _ = NAME.set(name.to_owned());
}

/// The server name shown to IRC clients (the source of numerics, PONG, WHO's server field).
pub fn server() -> &'static str {
    NAME.get().map_or(SERVER, String::as_str)
}

/// A numeric reply to `target` (the client's nick, `*` before it has one).
pub fn numeric(code: &str, target: &str, params: &[&str]) -> Message {
    let mut all = Vec::with_capacity(params.len() + 1);
    all.push(target.to_owned());
    all.extend(params.iter().map(|p| clean(p)));
    Message {
        tags: Vec::new(),
        source: Some(server().to_owned()),
        command: code.to_owned(),
        params: all,
    }
}

/// `nick!user@host` for a person: the user part is the first 8 hex digits of the account,
/// the host the first 8 of its node (so a client can tell two `bob#…` apart).
pub fn mask(nick: &str, account: &[u8; 32], node: &[u8; 32]) -> String {
    format!(
        "{nick}!{}@{}.chatd",
        hex::encode(&account[..4]),
        hex::encode(&node[..4])
    )
}

/// An IRCv3 `time` value (`2024-01-31T12:34:56.789Z`) for Unix milliseconds.
pub fn time_tag(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let ms = unix_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(time_tag(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time_tag(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(time_tag(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn numerics_carry_no_line_breaks() {
        let m = numeric("401", "me", &["x\r\nQUIT", "No such nick"]);
        assert_eq!(m.to_line(), ":chatd 401 me x  QUIT :No such nick\r\n");
        let a = [0xab; 32];
        assert_eq!(mask("bob", &a, &[1; 32]), "bob!abababab@01010101.chatd");
    }
}
