//! `chatctl search WORD… [--room R] [--from NICK] [--since TIME] [-n N]`: stored messages
//! holding every word, newest first (`--json`: one object per line, as `tail --json`).

use chat_proto::v1::SearchRequest;

use crate::Error;
use crate::cli::SearchArgs;
use crate::client::{self, Target};
use crate::output::Printer;

/// Runs `search`.
pub async fn run(socket: &Target, printer: Printer, args: SearchArgs) -> Result<(), Error> {
    let since = crate::time::since_flag(args.since.as_deref(), crate::time::now_ms())?;
    let mut api = client::chat_service(socket).await?;
    let resp = api
        .search(SearchRequest {
            query: args.words.join(" "),
            room: args.room.unwrap_or_default(),
            from: args.from.unwrap_or_default(),
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
    if !printer.is_json() && resp.messages.is_empty() {
        eprintln!("no message matches");
    }
    Ok(())
}
