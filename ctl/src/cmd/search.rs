//! `chatctl search WORD… [--room R] [--from NICK] [--since TIME] [-n N]`: stored messages
//! holding every word, newest first (`--json`: one object per line, as `tail --json`); without
//! `--room`, the caller's private messages after the public ones.

use chat_proto::v1::{SearchPrivateRequest, SearchRequest};

use crate::Error;
use crate::cli::SearchArgs;
use crate::client::{self, Target};
use crate::output::Printer;

/// Runs `search`.
pub async fn run(socket: &Target, printer: Printer, args: SearchArgs) -> Result<(), Error> {
    let since = crate::time::since_flag(args.since.as_deref(), crate::time::now_ms())?;
    let mut api = client::chat_service(socket).await?;
    let room_given = args.room.is_some();
    let from = args.from.clone().unwrap_or_default();
    let resp = api
        .search(SearchRequest {
            query: args.words.join(" "),
            room: args.room.clone().unwrap_or_default(),
            from: from.clone(),
            since_unix_ms: since.max(0),
            before_id: String::new(),
            limit: args.limit,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    for m in &resp.messages {
        crate::cmd::tail::print(printer, m)?;
    }
    // Without --room, the caller's private messages too (searched on this node only).
    let mut private = Vec::new();
    if !room_given {
        let mut dm = client::private_service(socket, false).await?;
        private = dm
            .search_private(SearchPrivateRequest {
                query: args.words.join(" "),
                from: from.clone(),
                since_unix_ms: since.max(0),
                limit: args.limit,
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner()
            .messages;
        for m in &private {
            crate::cmd::private::print(printer, m)?;
        }
    }
    if !printer.is_json() && resp.messages.is_empty() && private.is_empty() {
        eprintln!("no message matches");
    }
    Ok(())
}
