//! `chatctl export [--room R] [--since T] [--format jsonl|csv] [--anonymize] [--coarsen D]
//! [--include-private] [-o FILE]`: the stored history of public rooms, oldest first, for
//! analysis; with `--include-private`, then the caller's own private messages (`"private":
//! true`, `to` or `group`; in CSV the room column is `@nick` or `+group`), anonymised alike.
//!
//! With `--anonymize` every user id, node id and nickname — the authors', and every nickname
//! of the network's user list or of an author appearing inside a text — becomes a pseudonym
//! `user-…`/`node-…` from a keyed BLAKE3 hash whose 32-byte key is drawn at random for this
//! export and never stored or shown: the same person is the same pseudonym within one export,
//! and two exports cannot be linked. `--coarsen 1h` rounds timestamps down. Message ids are
//! left out (they are hashes of the signed envelope, which names its node). What can still
//! identify someone — what they wrote — is listed in docs/security.md.
//!
//! Reads History pages of 1,000; writes to standard output or `-o FILE` (created new, mode
//! 0600; an existing file is not overwritten).

use std::collections::BTreeSet;
use std::io::Write;

use chat_proto::v1::{ChatMessage, HistoryRequest, ListUsersRequest, MessageKind};
use serde_json::json;

use crate::Error;
use crate::cli::ExportArgs;
use crate::client::{self, Target};

/// Pseudonyms from a key that lives only as long as this export.
struct Pseudonyms {
    key: [u8; 32],
}

impl Pseudonyms {
    fn new() -> Result<Pseudonyms, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| Error::Runtime(std::io::Error::other(e.to_string())))?;
        Ok(Pseudonyms { key })
    }

    fn of(&self, kind: &str, value: &str) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(kind.as_bytes());
        h.update(b"\0");
        h.update(value.to_lowercase().as_bytes());
        format!("{kind}-{}", &h.finalize().to_hex()[..12])
    }

    /// `text` with every word that is one of `nicks` (any case) replaced by its pseudonym.
    fn text(&self, text: &str, nicks: &BTreeSet<String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if word.is_empty() {
                return;
            }
            // `@bob`, `*guest`, and `bob.` at the end of a sentence are bob too.
            let bare = word.trim_start_matches(['*', '@']);
            let lead = &word[..word.len() - bare.len()];
            let core = bare.trim_end_matches(['.', '-']);
            if nicks.contains(&bare.to_lowercase()) {
                out.push_str(lead);
                out.push_str(&self.of("user", bare));
            } else if !core.is_empty() && nicks.contains(&core.to_lowercase()) {
                out.push_str(lead);
                out.push_str(&self.of("user", core));
                out.push_str(&bare[core.len()..]);
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for c in text.chars() {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '@') {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }
}

fn scrub(d: &Pseudonyms, m: &ChatMessage, nicks: &BTreeSet<String>) -> (String, String, String) {
    (
        if m.from.is_empty() {
            String::new()
        } else {
            d.of("user", m.from.trim_start_matches('*'))
        },
        d.of("node", &m.from_id),
        d.text(&m.text, nicks),
    )
}

/// Runs `export`.
pub async fn run(socket: &Target, args: ExportArgs) -> Result<(), Error> {
    let now = crate::time::now_ms();
    let since = crate::time::since_flag(args.since.as_deref(), now)?;
    let coarsen = match &args.coarsen {
        Some(s) => {
            let ms = now
                - crate::time::parse(s, now).map_err(|e| Error::Usage(format!("--coarsen {e}")))?;
            if ms <= 0 || !s.trim().ends_with(['s', 'm', 'h', 'd']) {
                return Err(Error::Usage(
                    "--coarsen takes a duration: 1m, 1h, 1d".into(),
                ));
            }
            ms
        }
        None => 1,
    };
    let csv = match args.format.as_str() {
        "jsonl" => false,
        "csv" => true,
        f => return Err(Error::Usage(format!("--format {f:?}: jsonl or csv"))),
    };
    let mut out: Box<dyn Write> = match &args.output {
        None => Box::new(std::io::stdout().lock()),
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::Usage(format!("-o {}: {e}", path.display())))?;
            Box::new(std::io::BufWriter::new(f))
        }
    };
    let mut api = client::chat_service(socket).await?;
    let pseudo = if args.anonymize {
        Some(Pseudonyms::new()?)
    } else {
        None
    };
    let mut nicks: BTreeSet<String> = BTreeSet::new();
    if pseudo.is_some() {
        let mut people = client::user_service(socket).await?;
        let users = people
            .list_users(ListUsersRequest {})
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner()
            .users;
        nicks.extend(
            users
                .iter()
                .map(|u| u.nickname.trim_start_matches('*').to_lowercase()),
        );
    }
    if csv {
        writeln!(out, "time,room,from,from_id,text").map_err(Error::Output)?;
    }
    let mut after = String::new();
    loop {
        let page = api
            .history(HistoryRequest {
                room: args.room.clone().unwrap_or_default(),
                after_id: after.clone(),
                limit: 1000,
                ..HistoryRequest::default()
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner();
        if pseudo.is_some() {
            // Authors are nicknames too, wherever they appear.
            nicks.extend(
                page.messages
                    .iter()
                    .filter(|m| !m.from.is_empty())
                    .map(|m| m.from.trim_start_matches('*').to_lowercase()),
            );
        }
        for m in &page.messages {
            if m.kind != MessageKind::Text as i32 || m.deleted || m.sent_at_unix_ms < since {
                continue;
            }
            let at = m.sent_at_unix_ms - m.sent_at_unix_ms.rem_euclid(coarsen);
            let (from, from_id, text) = match &pseudo {
                Some(d) => scrub(d, m, &nicks),
                None => (m.from.clone(), m.from_id.clone(), m.text.clone()),
            };
            let id = if pseudo.is_some() {
                String::new()
            } else {
                m.id.clone()
            };
            let time = crate::time::rfc3339(at);
            let line = if csv {
                [time, m.room.clone(), from, from_id, text]
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                let mut v = json!({"ts": time, "room": m.room, "from": from, "from_id": from_id, "text": text});
                if !id.is_empty() {
                    v["id"] = json!(id);
                }
                v.to_string()
            };
            writeln!(out, "{line}").map_err(Error::Output)?;
        }
        match page.messages.last() {
            Some(last) if page.more => after = last.id.clone(),
            _ => break,
        }
    }
    if args.include_private {
        let private = crate::cmd::private::all_history(socket).await?;
        if pseudo.is_some() {
            nicks.extend(
                private
                    .iter()
                    .flat_map(|m| [&m.from, &m.to])
                    .filter(|n| !n.is_empty())
                    .map(|n| n.trim_start_matches('*').to_lowercase()),
            );
        }
        for m in private.iter().filter(|m| m.sent_unix_ms >= since) {
            let at = m.sent_unix_ms - m.sent_unix_ms.rem_euclid(coarsen);
            let user = |name: &str| match &pseudo {
                Some(d) if !name.is_empty() => d.of("user", name.trim_start_matches('*')),
                _ => name.to_owned(),
            };
            let (from, to, text) = (
                user(&m.from),
                user(&m.to),
                match &pseudo {
                    Some(d) => d.text(&m.text, &nicks),
                    None => m.text.clone(),
                },
            );
            let group = match &pseudo {
                Some(d) if !m.group.is_empty() => d.of("group", &m.group_id),
                _ => m.group.clone(),
            };
            let time = crate::time::rfc3339(at);
            let line = if csv {
                let room = if group.is_empty() {
                    format!("@{to}")
                } else {
                    format!("+{group}")
                };
                [time, room, from, String::new(), text]
                    .iter()
                    .map(|f| csv_field(f))
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                let mut v = json!({"ts": time, "private": true, "from": from, "text": text});
                if group.is_empty() {
                    v["to"] = json!(to);
                } else {
                    v["group"] = json!(group);
                }
                if pseudo.is_none() {
                    v["id"] = json!(m.id);
                }
                v.to_string()
            };
            writeln!(out, "{line}").map_err(Error::Output)?;
        }
    }
    out.flush().map_err(Error::Output)
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. A field a
/// spreadsheet would take for a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return) gets a leading `'` first, as OWASP's guidance on CSV injection asks, so that a
/// message like `=HYPERLINK(…)` is shown as text and never evaluated.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{f}")
    } else {
        f.to_owned()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_within_an_export_and_differ_between_exports() {
        let a = Pseudonyms::new().expect("key");
        let b = Pseudonyms::new().expect("key");
        assert_eq!(a.of("user", "Alice"), a.of("user", "alice"));
        assert_ne!(a.of("user", "alice"), b.of("user", "alice"));
        let nicks: BTreeSet<String> = ["alice".to_owned(), "bob".to_owned()].into();
        let t = a.text("hi @Alice, bob: malice is not alice.", &nicks);
        assert!(
            !t.to_lowercase().contains("alice,") && !t.contains("bob:"),
            "{t}"
        );
        assert!(t.contains("malice"), "{t}");
        assert!(t.contains(&a.of("user", "bob")), "{t}");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn csv_fields_a_spreadsheet_would_evaluate_are_neutralised() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://evil.example\",\"click\")"),
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\""
        );
        assert_eq!(csv_field("=1+2"), "'=1+2");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\t=1"), "'\t=1");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        // Only the first character counts.
        assert_eq!(csv_field("a=b"), "a=b");
        assert_eq!(csv_field("2026-12-06T19:00:00Z"), "2026-12-06T19:00:00Z");
    }
}
