//! `chatctl status`: the node's id, nickname, listen address, version and uptime.

use std::path::Path;
use std::time::Duration;

use chat_proto::v1::{GetStatusRequest, GetStatusResponse};

use crate::Error;
use crate::client::{self, ClientError};
use crate::output::{Printer, human_duration};

/// Asks chatd at `socket` for its status and prints it.
pub async fn run(socket: &Path, printer: Printer) -> Result<(), Error> {
    let mut api = client::node_service(socket).await?;
    let status = api
        .get_status(GetStatusRequest {})
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    printer
        .record(&status, &fields(&status))
        .map_err(Error::Output)
}

/// The human-readable lines.
pub fn fields(s: &GetStatusResponse) -> Vec<(&'static str, String)> {
    let nickname = if s.nickname.is_empty() {
        "(none)".to_owned()
    } else {
        s.nickname.clone()
    };
    vec![
        ("node id", s.node_id.clone()),
        ("nickname", nickname),
        ("listening on", s.listen_addr.clone()),
        ("version", s.version.clone()),
        (
            "uptime",
            human_duration(Duration::from_secs(s.uptime_seconds)),
        ),
    ]
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Error {
        Error::Client(e)
    }
}
