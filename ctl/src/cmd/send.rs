//! `chatctl send [--room R] TEXT…`: send one message (with `--file PATH`: a file, the text its
//! caption, `send_file.rs`), or with no TEXT one message per line of
//! standard input (blank lines skipped). A text `@nick words…` goes privately to nick
//! (`chatctl dm`), unless `--room` names a room. Prints nothing on success, or with `--json` the sent
//! message. When chatd says the client sends too fast, waits and retries (bounded), so piping a
//! file in works.

use crate::client::Target;
use std::io::BufRead;
use std::time::Duration;

use crate::client::Conn;
use chat_proto::v1::SendRequest;
use chat_proto::v1::chat_service_client::ChatServiceClient;

use crate::Error;
use crate::cli::SendArgs;
use crate::client;
use crate::output::Printer;

/// Retries of one message refused with RESOURCE_EXHAUSTED.
const MAX_RETRIES: u32 = 120;
/// Wait between those retries.
const RETRY_WAIT: Duration = Duration::from_millis(250);

/// Sends the message(s).
pub async fn run(socket: &Target, printer: Printer, args: SendArgs) -> Result<(), Error> {
    let mut api = client::chat_service(socket).await?;
    let explicit_room = args.room.is_some();
    let room = args.room.unwrap_or_default();
    if let Some(path) = &args.file {
        let caption = args.text.join(" ");
        return crate::cmd::send_file::run(socket, printer, &room, path, caption).await;
    }
    if !args.text.is_empty() {
        let text = args.text.join(" ");
        // The seeds' syntax: `@nick text` is a private message (unless a room is named).
        if let (false, Some((nick, rest))) = (explicit_room, private_target(&text)) {
            return crate::cmd::private::dm(
                socket,
                printer,
                crate::cmd::private::To::Nick(nick),
                vec![rest],
            )
            .await;
        }
        return send_one(&mut api, socket, printer, &room, text).await;
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(Error::Input)?;
        if line.trim().is_empty() {
            continue;
        }
        if let (false, Some((nick, rest))) = (explicit_room, private_target(&line)) {
            crate::cmd::private::dm(
                socket,
                printer,
                crate::cmd::private::To::Nick(nick),
                vec![rest],
            )
            .await?;
            continue;
        }
        send_one(&mut api, socket, printer, &room, line).await?;
    }
    Ok(())
}

/// `@nick text` → (`nick`, `text`).
pub fn private_target(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('@')?;
    let (nick, body) = rest.split_once(char::is_whitespace)?;
    let body = body.trim();
    (!nick.is_empty() && !body.is_empty()).then(|| (nick.to_owned(), body.to_owned()))
}

async fn send_one(
    api: &mut ChatServiceClient<Conn>,
    socket: &Target,
    printer: Printer,
    room: &str,
    text: String,
) -> Result<(), Error> {
    let request = SendRequest {
        room: room.to_owned(),
        text,
        ..Default::default()
    };
    let response = client::retry_exhausted(MAX_RETRIES, RETRY_WAIT, || {
        let (mut api, request) = (api.clone(), request.clone());
        async move { api.send(request).await }
    })
    .await
    .map_err(|s| client::call_error(socket, s))?
    .into_inner();
    if let (true, Some(message)) = (printer.is_json(), &response.message) {
        printer
            .json_line(&crate::cmd::tail::message_json(message))
            .map_err(Error::Output)?;
    }
    Ok(())
}
