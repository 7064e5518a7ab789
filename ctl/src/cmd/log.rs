//! `chatctl log [-f] [-n N] [--json]`: the node's event log (`NodeService.ReadLog`) — the
//! newest N records, then with `-f` each new one as chatd writes it, until chatd stops.
//!
//! Only the node's operator may read it (root and chatd's own user: under systemd,
//! `sudo chatctl --socket /run/chatd/control.sock log`). `--json` prints each record as the
//! JSON object it is in `events.log`; for people, one line per record: the time (UTC), the
//! kind, and what happened, everything that came from the network made harmless for the
//! terminal. A private message shows who wrote to whom and when, never its text — the log
//! does not hold it.

use std::io::Write;

use chat_proto::v1::ReadLogRequest;
use serde_json::Value;

use crate::Error;
use crate::cli::LogArgs;
use crate::client::{self, Target};
use crate::output::Printer;
use crate::tui::text::sanitize;

/// Runs `log`.
pub async fn run(socket: &Target, printer: Printer, args: LogArgs) -> Result<(), Error> {
    let mut api = if args.follow {
        client::node_stream(socket).await?
    } else {
        client::node_service(socket).await?
    };
    let mut stream = api
        .read_log(ReadLogRequest {
            last: args.lines,
            follow: args.follow,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    loop {
        let chunk = match stream.message().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(s) => return Err(client::call_error(socket, s).into()),
        };
        if chunk.missed > 0 {
            eprintln!(
                "chatctl: fell behind; {} records not shown (they are in events.log)",
                chunk.missed
            );
        }
        for line in &chunk.lines {
            print(printer, line)?;
        }
    }
    if args.follow {
        eprintln!("chatctl: chatd closed the event log (it is stopping)");
    }
    Ok(())
}

/// Prints one record: as JSON, or as a line for people.
fn print(printer: Printer, line: &str) -> Result<(), Error> {
    let Ok(record) = serde_json::from_str::<Value>(line) else {
        // Not a record (a damaged file): said, not printed as one.
        eprintln!("chatctl: skipped a line of the event log that is not a record");
        return Ok(());
    };
    if printer.is_json() {
        return printer.json_line(&record).map_err(Error::Output);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", human(&record))
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

/// `2026-12-01 10:00:00  message   [lobby] alice: hello`.
pub fn human(r: &Value) -> String {
    let field = |name: &str| sanitize(r[name].as_str().unwrap_or(""));
    let ts = r["ts_ms"].as_i64().unwrap_or(0);
    let kind = field("kind");
    let body = match kind.as_str() {
        "message" => format!(
            "[{}] {}: {}",
            field("room"),
            name(&field("from"), &field("from_id")),
            field("text")
        ),
        "edit" | "delete" => {
            let did = if kind == "edit" { "edited" } else { "deleted" };
            let text = field("text");
            format!(
                "[{}] {} {did} {}{}{text}",
                field("room"),
                name(&field("from"), &field("from_id")),
                short(&field("target")),
                if text.is_empty() { "" } else { ": " },
            )
        }
        "private" | "private_edit" | "private_delete" => {
            let group = field("group_id");
            let to = match (field("to_id").is_empty(), group.is_empty()) {
                (true, false) => format!("group {}", short(&group)),
                (false, false) => format!(
                    "{} in group {}",
                    name(&field("to"), &field("to_id")),
                    short(&group)
                ),
                _ => name(&field("to"), &field("to_id")),
            };
            format!(
                "{} → {to}, sent {} (id {}; {})",
                name(&field("from"), &field("from_id")),
                crate::time::short(r["sent_ms"].as_i64().unwrap_or(0)),
                short(&field("id")),
                field("direction"),
            )
        }
        _ => field("text"),
    };
    format!("{}  {kind:<9} {body}", crate::time::short(ts))
}

/// A shown name, or the id's first digits when there is none.
fn name(shown: &str, id: &str) -> String {
    if shown.is_empty() {
        format!("{}…", short(id))
    } else {
        shown.to_owned()
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_as_one_harmless_line_each() {
        let m: Value = serde_json::from_str(
            r#"{"ts_ms":0,"kind":"message","room":"lobby","from":"eve","from_id":"ab","text":"hi\n\u001b[2Jthere"}"#,
        )
        .expect("json");
        let line = human(&m);
        assert_eq!(
            line,
            "1970-01-01 00:00:00  message   [lobby] eve: hi ␛[2Jthere"
        );
        let p: Value = serde_json::from_str(
            r#"{"ts_ms":0,"kind":"private","from":"alice","from_id":"aa","to":"","to_id":"0123456789ab","id":"cdef0123456789","sent_ms":0,"direction":"received"}"#,
        )
        .expect("json");
        assert_eq!(
            human(&p),
            "1970-01-01 00:00:00  private   alice → 01234567…, sent 1970-01-01 00:00:00 (id cdef0123; received)"
        );
        let j: Value = serde_json::from_str(r#"{"ts_ms":0,"kind":"join","text":"→ bob joined"}"#)
            .expect("json");
        assert_eq!(human(&j), "1970-01-01 00:00:00  join      → bob joined");
    }

    #[test]
    fn group_messages_name_the_group_and_missing_names_show_the_id() {
        let g: Value = serde_json::from_str(
            r#"{"ts_ms":0,"kind":"private","from_id":"aabbccddeeff","group_id":"0011223344556677","id":"ff","sent_ms":0,"direction":"sent"}"#,
        )
        .expect("json");
        assert_eq!(
            human(&g),
            "1970-01-01 00:00:00  private   aabbccdd… → group 00112233, sent 1970-01-01 00:00:00 (id ff; sent)"
        );
        let e: Value = serde_json::from_str(
            r#"{"ts_ms":0,"kind":"edit","room":"lobby","from":"al","target":"0123456789","text":"new"}"#,
        )
        .expect("json");
        assert!(human(&e).ends_with("edit      [lobby] al edited 01234567: new"));
        let d: Value = serde_json::from_str(
            r#"{"ts_ms":0,"kind":"delete","room":"lobby","from":"al","target":"0123456789"}"#,
        )
        .expect("json");
        assert!(human(&d).ends_with("delete    [lobby] al deleted 01234567"));
        let mut g = g;
        g["to"] = "bob".into();
        g["to_id"] = "bb".into();
        assert!(
            human(&g).contains(" → bob in group 00112233, "),
            "{}",
            human(&g)
        );
        let odd: Value =
            serde_json::from_str(r#"{"ts_ms":0,"kind":"future\u001b","text":"x"}"#).expect("json");
        assert_eq!(human(&odd), "1970-01-01 00:00:00  future␛   x");
    }
}
