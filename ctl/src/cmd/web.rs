//! `chatctl web`: a link that opens chatd's web view able to send as you.

use crate::client::Target;

use chat_proto::v1::GetWebLinkRequest;

use crate::Error;
use crate::client;
use crate::output::Printer;

/// Asks chatd at `socket` for a login link to its web view and prints it.
pub async fn run(socket: &Target, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let resp = api
        .get_web_link(GetWebLinkRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    let text = format!(
        "{}\nopen it within 2 minutes: the page then keeps a session for 7 days (keep the link to yourself)\n",
        resp.url
    );
    printer.table(&resp, &text).map_err(Error::Output)
}
