//! `chatctl files [--room R]`: the stored public messages that reference a file, oldest first
//! (from the chat store through `History`, newest [`MAX_SCANNED`] messages): one line each
//! (`time  [room] from: 📎 name size  hash…`), or with `--json` the message objects of
//! `tail --json` (their `attachment` included).

use std::io::Write;

use chat_proto::v1::{ChatMessage, HistoryRequest};

use crate::Error;
use crate::cli::FilesArgs;
use crate::client::{self, Target};
use crate::output::Printer;
use crate::tui::text::sanitize;

/// Messages looked at, newest first.
pub const MAX_SCANNED: usize = 20_000;
/// Messages per History page.
const PAGE: u32 = 1000;

/// Lists the messages with files.
pub async fn run(socket: &Target, printer: Printer, args: FilesArgs) -> Result<(), Error> {
    let found = with_files(socket, &args.room.unwrap_or_default()).await?;
    let mut out = std::io::stdout().lock();
    for m in &found {
        if printer.is_json() {
            printer
                .json_line(&crate::cmd::tail::message_json(m))
                .map_err(Error::Output)?;
            continue;
        }
        let Some(a) = &m.attachment else { continue };
        writeln!(
            out,
            "{}  [{}] {}: {}  {}…",
            crate::time::short(m.sent_at_unix_ms),
            sanitize(&m.room),
            sanitize(&m.from),
            crate::cmd::tail::file_line(a),
            a.hash.get(..12).unwrap_or(&a.hash),
        )
        .map_err(Error::Output)?;
    }
    out.flush().map_err(Error::Output)
}

/// The stored messages of `room` (empty: every room) with a file, oldest first.
pub async fn with_files(socket: &Target, room: &str) -> Result<Vec<ChatMessage>, Error> {
    let mut api = client::chat_service(socket).await?;
    let mut found = Vec::new();
    let mut before = String::new();
    let mut scanned = 0;
    loop {
        let page = api
            .history(HistoryRequest {
                room: room.to_owned(),
                before_id: before.clone(),
                after_id: String::new(),
                limit: PAGE,
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner();
        scanned += page.messages.len();
        let first = page.messages.first().map(|m| m.id.clone());
        found.extend(
            page.messages
                .into_iter()
                .rev()
                .filter(|m| m.attachment.is_some() && !m.deleted),
        );
        match first {
            Some(id) if page.more && scanned < MAX_SCANNED => before = id,
            _ => break,
        }
    }
    found.reverse();
    Ok(found)
}
