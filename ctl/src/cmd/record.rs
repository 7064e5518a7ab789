//! `chatctl record put|get|delete`: DHT records through chatd (what you put or delete is
//! signed by your account's key; only name claims may be written).
//!
//! KEY is a nickname for `nick`, `me` (this node's key) or 64 hex digits for `profile`,
//! `presence` and `keys`, and the recipient's key in hex for `mailbox`. VALUE `-` reads the
//! value from standard input.

use crate::client::Target;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_proto::v1::{DeleteRecordRequest, GetRecordRequest, PutRecordRequest, Record};

use crate::Error;
use crate::cli::{RecordArgs, RecordCommand};
use crate::client;
use crate::output::{Printer, human_duration};

/// Runs a `record` subcommand against chatd at `socket`.
pub async fn run(socket: &Target, printer: Printer, args: RecordArgs) -> Result<(), Error> {
    let mut api = client::record_service(socket).await?;
    let call = |s| Error::Client(client::call_error(socket, s));
    match args.command {
        RecordCommand::Put {
            kind,
            key,
            value,
            ttl,
        } => {
            let key = parse_key(&kind, &key)?;
            let value = if value == "-" {
                let mut v = Vec::new();
                std::io::stdin()
                    .take(64 * 1024)
                    .read_to_end(&mut v)
                    .map_err(|e| Error::Usage(format!("reading the value from stdin: {e}")))?;
                v
            } else {
                value.into_bytes()
            };
            let resp = api
                .put_record(PutRecordRequest {
                    kind,
                    key,
                    value,
                    ttl_seconds: ttl,
                })
                .await
                .map_err(call)?
                .into_inner();
            let mut fields = resp.record.as_ref().map(fields).unwrap_or_default();
            fields.push(("copies", resp.copies.to_string()));
            printer.record(&resp, &fields).map_err(Error::Output)
        }
        RecordCommand::Get { kind, key } => {
            let key = parse_key(&kind, &key)?;
            let resp = api
                .get_record(GetRecordRequest { kind, key })
                .await
                .map_err(call)?
                .into_inner();
            let text: String = resp
                .records
                .iter()
                .map(|r| crate::output::render_fields(&fields(r)))
                .collect::<Vec<_>>()
                .join("\n");
            printer.table(&resp, &text).map_err(Error::Output)
        }
        RecordCommand::Delete { kind, key } => {
            let key = parse_key(&kind, &key)?;
            let resp = api
                .delete_record(DeleteRecordRequest { kind, key })
                .await
                .map_err(call)?
                .into_inner();
            let fields = resp.record.as_ref().map(fields).unwrap_or_default();
            printer.record(&resp, &fields).map_err(Error::Output)
        }
    }
}

/// The key's bytes: the name for `nick`; empty for `me`; otherwise 64 hex digits.
pub fn parse_key(kind: &str, key: &str) -> Result<Vec<u8>, Error> {
    if kind == "nick" {
        return Ok(key.as_bytes().to_vec());
    }
    if key == "me" || key.is_empty() {
        return Ok(Vec::new());
    }
    match hex::decode(key) {
        Ok(k) if k.len() == 32 => Ok(k),
        _ => Err(Error::Usage(format!(
            "KEY must be `me` or 64 hex digits for kind {kind:?}, got {key:?}"
        ))),
    }
}

/// The human-readable lines of a record.
pub fn fields(r: &Record) -> Vec<(&'static str, String)> {
    let value = if r.deleted {
        "(deleted)".to_owned()
    } else {
        match std::str::from_utf8(&r.value) {
            Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
            _ => format!("{} bytes: {}", r.value.len(), hex::encode(&r.value)),
        }
    };
    let key = if r.kind == "nick" {
        String::from_utf8_lossy(&r.key).into_owned()
    } else {
        hex::encode(&r.key)
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let expires = if r.expires_unix_ms > now {
        format!(
            "in {}",
            human_duration(Duration::from_millis(r.expires_unix_ms - now))
        )
    } else {
        "expired".to_owned()
    };
    vec![
        ("kind", r.kind.clone()),
        ("key", key),
        ("value", value),
        ("owner", hex::encode(&r.owner)),
        ("version", r.version.to_string()),
        ("expires", expires),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_names_me_or_hex() {
        assert_eq!(parse_key("nick", "alice").ok(), Some(b"alice".to_vec()));
        assert_eq!(parse_key("profile", "me").ok(), Some(Vec::new()));
        assert_eq!(
            parse_key("mailbox", &"ab".repeat(32)).ok(),
            Some(vec![0xab; 32])
        );
        assert!(parse_key("mailbox", "abc").is_err());
        assert!(parse_key("keys", &"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_binary_value_is_shown_in_hex() {
        let r = Record {
            kind: "profile".into(),
            value: vec![0, 1, 2],
            ..Default::default()
        };
        let f = fields(&r);
        assert_eq!(f[2], ("value", "3 bytes: 000102".to_owned()));
        let r = Record {
            kind: "nick".into(),
            key: b"bob".to_vec(),
            value: b"hi".to_vec(),
            ..Default::default()
        };
        let f = fields(&r);
        assert_eq!((f[1].1.as_str(), f[2].1.as_str()), ("bob", "hi"));
    }
}
