//! `chatctl irc-password`: the password an IRC client logs in to your account with.

use chat_proto::v1::GetIrcPasswordRequest;

use crate::Error;
use crate::client;
use crate::client::Target;
use crate::output::Printer;

/// Asks chatd at `socket` for the caller's IRC password and prints it with the address.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let resp = api
        .get_irc_password(GetIrcPasswordRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    let text = format!(
        "{}\nserver {} — give it as the server password (PASS) or with SASL PLAIN (any user name); keep it to yourself\n",
        resp.password, resp.address
    );
    printer.table(&resp, &text).map_err(Error::Output)
}
