//! `chatctl send [--room R] TEXT…`: send one message, or with no TEXT one message per line of
//! standard input (blank lines skipped). Prints nothing on success, or with `--json` the sent
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
    let room = args.room.unwrap_or_default();
    if !args.text.is_empty() {
        return send_one(&mut api, socket, printer, &room, args.text.join(" ")).await;
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(Error::Input)?;
        if line.trim().is_empty() {
            continue;
        }
        send_one(&mut api, socket, printer, &room, line).await?;
    }
    Ok(())
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
    };
    let mut retries = 0;
    let response = loop {
        match api.send(request.clone()).await {
            Ok(r) => break r.into_inner(),
            Err(s) if s.code() == tonic::Code::ResourceExhausted && retries < MAX_RETRIES => {
                retries += 1;
                tokio::time::sleep(RETRY_WAIT).await;
            }
            Err(s) => return Err(client::call_error(socket, s).into()),
        }
    };
    if let (true, Some(message)) = (printer.is_json(), &response.message) {
        printer
            .json_line(&crate::cmd::tail::message_json(message))
            .map_err(Error::Output)?;
    }
    Ok(())
}
