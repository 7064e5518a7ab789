//! One record of the event log and its JSON-lines form.
//!
//! A record is one JSON object on one line of `events.log`: `ts_ms` (when this node logged it,
//! Unix milliseconds), `kind`, and the fields that kind has — `room`, `from`/`from_id`,
//! `to`/`to_id`, `group_id`, `id`, `target` (the message an edit or delete changes), `sent_ms`
//! (the sender's timestamp), `direction`, `text`, `counts`. Empty fields are left out.
//!
//! Whatever a hostile peer puts in a nickname, room or text, the line stays one line:
//! serde_json escapes every control character (`\n`, `\r`, `\u0000`, …) and quote, so a
//! record can neither end early nor forge another. A record of kind `private` never carries
//! text: [`Record::private`] takes none, and [`Record::line`] leaves `text` out of a private
//! record even if some caller set it. When a message is deleted, the writer blanks the text of
//! its record and of its edits' records in place (`file.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest line [`Record::line`] produces, newline included; a longer text is cut to fit
/// (which only a change of the text limits could cause: a 4 KiB text with every byte
/// escaped is about 25 KiB). The smallest `log.events_max_bytes` holds two of them.
pub const MAX_LINE: usize = 32 * 1024;

/// What a record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// chatd started.
    Start,
    /// chatd stopped gracefully.
    Stop,
    /// A public message, with its text.
    Message,
    /// A new text for a public message (`target`), with the text.
    Edit,
    /// A public message (`target`) deleted by its author: its text and its edits' texts are
    /// blanked in the log.
    Delete,
    /// A private message of an account this node hosts: sender, recipient, time, id — never
    /// its text.
    Private,
    /// A private message (`id`) edited by its sender; no text.
    PrivateEdit,
    /// A private message (`id`) deleted by its sender.
    PrivateDelete,
    /// Somebody came online.
    Join,
    /// Somebody went offline.
    Leave,
    /// Somebody went away or came back.
    Presence,
    /// Somebody changed nickname.
    Nick,
    /// A node stopped answering and its users were shown offline.
    NodeDown,
    /// The periodic summary (`log.stats_interval_secs`).
    Stats,
}

impl Kind {
    /// The name in the JSON lines, e.g. `node_down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Start => "start",
            Kind::Stop => "stop",
            Kind::Message => "message",
            Kind::Edit => "edit",
            Kind::Delete => "delete",
            Kind::Private => "private",
            Kind::PrivateEdit => "private_edit",
            Kind::PrivateDelete => "private_delete",
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Presence => "presence",
            Kind::Nick => "nick",
            Kind::NodeDown => "node_down",
            Kind::Stats => "stats",
        }
    }

    /// Whether it is about a private message (then it never carries text).
    pub fn is_private(self) -> bool {
        matches!(
            self,
            Kind::Private | Kind::PrivateEdit | Kind::PrivateDelete
        )
    }
}

/// One record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When this node logged it (Unix milliseconds).
    pub ts_ms: u64,
    /// What it reports.
    pub kind: Kind,
    /// The room of a public message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub room: String,
    /// The sender's (or the person's) shown name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// The sender's id: the signing node of a public message, the account of a private one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from_id: String,
    /// The recipient's shown name (a private message to a person).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// The recipient's account.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub to_id: String,
    /// The group of a private group message (its id; the name stays private).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_id: String,
    /// The message's id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The message an edit or delete changes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// The sender's timestamp of a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ms: Option<u64>,
    /// `sent` or `received`, for a private message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub direction: String,
    /// A public message's text, or the line shown for an event; never a private text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// The numbers of a `stats` record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
}

/// The private-message facts a record may hold: who, to whom, when, which message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrivateFacts {
    /// The sender's shown name and account.
    pub from: (String, String),
    /// The recipient's shown name and account (empty for a group message sent).
    pub to: (String, String),
    /// The group's id (empty for a message to a person).
    pub group_id: String,
    /// The message id.
    pub id: String,
    /// The sender's timestamp.
    pub sent_ms: u64,
    /// Sent by an account of this node (else received by one).
    pub outgoing: bool,
}

impl Record {
    /// A record of `kind` logged at `ts_ms`, with no other field set.
    pub fn new(kind: Kind, ts_ms: u64) -> Record {
        Record {
            ts_ms,
            kind,
            room: String::new(),
            from: String::new(),
            from_id: String::new(),
            to: String::new(),
            to_id: String::new(),
            group_id: String::new(),
            id: String::new(),
            target: String::new(),
            sent_ms: None,
            direction: String::new(),
            text: String::new(),
            counts: BTreeMap::new(),
        }
    }

    /// A record of kind `kind` whose only content is `text` (start, stop, people events,
    /// stats).
    pub fn line_of(kind: Kind, ts_ms: u64, text: impl Into<String>) -> Record {
        let mut r = Record::new(kind, ts_ms);
        r.text = text.into();
        r
    }

    /// A private message's record (`kind` one of the private kinds): metadata only, there is
    /// no way to give it the text.
    pub fn private(kind: Kind, ts_ms: u64, p: PrivateFacts) -> Record {
        debug_assert!(kind.is_private());
        let mut r = Record::new(kind, ts_ms);
        (r.from, r.from_id) = p.from;
        (r.to, r.to_id) = p.to;
        r.group_id = p.group_id;
        r.id = p.id;
        r.sent_ms = Some(p.sent_ms);
        r.direction = if p.outgoing { "sent" } else { "received" }.to_owned();
        r
    }

    /// The record as one line of JSON, newline included, at most [`MAX_LINE`] bytes.
    pub fn line(&self) -> String {
        if !self.kind.is_private() {
            let out = self.encode();
            if out.len() <= MAX_LINE {
                return out;
            }
        }
        let mut cut = self.clone();
        if cut.kind.is_private() {
            // The constructor takes no text; this guards against a caller that set it anyway.
            cut.text.clear();
        }
        let mut out = cut.encode();
        while out.len() > MAX_LINE && !cut.text.is_empty() {
            let mut keep = cut.text.len() / 2;
            while !cut.text.is_char_boundary(keep) {
                keep -= 1;
            }
            cut.text.truncate(keep);
            out = cut.encode();
        }
        out
    }

    fn encode(&self) -> String {
        // Serialising strings, numbers and a string map cannot fail.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }

    /// A line read back (`None` if it is not a record).
    pub fn parse(line: &str) -> Option<Record> {
        serde_json::from_str(line.trim_end_matches('\n')).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PrivateFacts {
        PrivateFacts {
            from: ("alice".into(), "aa".repeat(32)),
            to: ("bob".into(), "bb".repeat(32)),
            group_id: String::new(),
            id: "cc".repeat(16),
            sent_ms: 1_700_000_000_000,
            outgoing: false,
        }
    }

    #[test]
    fn hostile_text_and_names_stay_on_one_line_and_read_back_the_same() {
        let hostile = "hi\n{\"ts_ms\":1,\"kind\":\"private\",\"text\":\"forged\"}\r\n\u{0}\u{1b}[31m\u{7f}\u{85}\u{2028}\"\\ end";
        let mut r = Record::new(Kind::Message, 42);
        r.room = "lobby\nroom".into();
        r.from = "eve\n\"x\":1".into();
        r.text = hostile.into();
        let line = r.line();
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'));
        assert!(!line.contains('\r') && !line.contains('\u{0}') && !line.contains('\u{1b}'));
        assert_eq!(Record::parse(&line), Some(r));
    }

    #[test]
    fn a_private_record_never_holds_text() {
        let r = Record::private(Kind::Private, 5, facts());
        let line = r.line();
        assert!(!line.contains("\"text\""), "{line}");
        let back = Record::parse(&line).expect("parses");
        assert_eq!(back.kind, Kind::Private);
        assert_eq!(back.from, "alice");
        assert_eq!(back.to, "bob");
        assert_eq!(back.direction, "received");
        assert_eq!(back.sent_ms, Some(1_700_000_000_000));
        // Even set by hand, the text is not written.
        let mut leaky = r.clone();
        leaky.text = "the secret".into();
        assert!(!leaky.line().contains("the secret"));
        for kind in [Kind::PrivateEdit, Kind::PrivateDelete] {
            let mut r = Record::private(kind, 5, facts());
            r.text = "the secret".into();
            assert!(!r.line().contains("the secret"), "{kind:?}");
        }
    }

    #[test]
    fn empty_fields_are_left_out_and_kinds_have_their_names() {
        let line = Record::line_of(Kind::NodeDown, 9, "← bob left").line();
        assert_eq!(
            line,
            "{\"ts_ms\":9,\"kind\":\"node_down\",\"text\":\"← bob left\"}\n"
        );
        for k in [
            Kind::Start,
            Kind::Stats,
            Kind::Presence,
            Kind::PrivateDelete,
        ] {
            let l = Record::new(k, 1).line();
            assert!(l.contains(&format!("\"kind\":\"{}\"", k.as_str())), "{l}");
        }
    }

    #[test]
    fn an_overlong_text_is_cut_at_a_character_boundary() {
        let mut r = Record::new(Kind::Message, 1);
        r.text = "\u{1}é".repeat(MAX_LINE);
        let line = r.line();
        assert!(line.len() <= MAX_LINE, "{}", line.len());
        let back = Record::parse(&line).expect("still a record");
        assert!(!back.text.is_empty() && r.text.starts_with(&back.text));
        assert!(Record::parse("not json").is_none());
    }
}
