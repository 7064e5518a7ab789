//! `chatctl edit ID TEXT` and `chatctl delete ID`: change one of your own messages, public
//! (a 64-digit id, as `tail --json` shows it) or private (a 32-digit id, as `dms --json`
//! shows it). A unique prefix of at least 6 digits names a message among the newest 1,000 of
//! either kind. The daemon checks that the message is the caller's; the change reaches every
//! node (or every recipient) that holds the message.

use chat_proto::v1::{
    DeletePrivateRequest, DeleteRequest, EditPrivateRequest, EditRequest, HistoryRequest,
    PrivateHistoryRequest,
};
use serde_json::json;

use crate::Error;
use crate::client::{self, Target};
use crate::output::Printer;

/// Shortest id prefix taken.
const MIN_PREFIX: usize = 6;
/// Messages searched for a prefix, of each kind.
const SEARCHED: u32 = 1000;

/// Which message an id names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    Public(String),
    Private(String),
}

/// Runs `edit` (`text` given) or `delete` (`text` `None`).
pub async fn run(
    socket: &Target,
    printer: Printer,
    id: String,
    text: Option<String>,
) -> Result<(), Error> {
    if let Some(t) = &text
        && t.trim().is_empty()
    {
        return Err(Error::Usage("the new text is empty".into()));
    }
    let named = resolve(socket, &id.to_ascii_lowercase()).await?;
    let (kind, id, shown) = match &named {
        Named::Public(id) => {
            let mut api = client::chat_service(socket).await?;
            let m = match &text {
                Some(t) => api
                    .edit(EditRequest {
                        id: id.clone(),
                        text: t.clone(),
                    })
                    .await
                    .map(|r| r.into_inner().edit),
                None => api
                    .delete(DeleteRequest { id: id.clone() })
                    .await
                    .map(|r| r.into_inner().delete),
            }
            .map_err(|s| client::call_error(socket, s))?;
            ("public", id, m.map(|m| m.text).unwrap_or_default())
        }
        Named::Private(id) => {
            let mut api = client::private_service(socket, false).await?;
            let m = match &text {
                Some(t) => api
                    .edit_private(EditPrivateRequest {
                        id: id.clone(),
                        text: t.clone(),
                    })
                    .await
                    .map(|r| r.into_inner().message),
                None => api
                    .delete_private(DeletePrivateRequest { id: id.clone() })
                    .await
                    .map(|r| r.into_inner().message),
            }
            .map_err(|s| client::call_error(socket, s))?;
            ("private", id, m.map(|m| m.text).unwrap_or_default())
        }
    };
    let what = if text.is_some() { "edited" } else { "deleted" };
    if printer.is_json() {
        return printer
            .json_line(&json!({ "id": id, "kind": kind, what: true, "text": shown }))
            .map_err(Error::Output);
    }
    println!("{what} {}", &id[..12.min(id.len())]);
    Ok(())
}

/// The full id of the public message `given` names (a whole id or a unique prefix), for
/// commands that take only public messages (`chatctl trace`).
pub async fn public_id(socket: &Target, given: &str) -> Result<String, Error> {
    match resolve(socket, &given.to_ascii_lowercase()).await? {
        Named::Public(id) => Ok(id),
        Named::Private(_) => Err(Error::Usage(
            "that is a private message: only public messages can be traced".into(),
        )),
    }
}

/// The full id `given` names: itself when it has 64 (public) or 32 (private) hex digits,
/// else the one message among the newest whose id starts with it.
async fn resolve(socket: &Target, given: &str) -> Result<Named, Error> {
    if !given.chars().all(|c| c.is_ascii_hexdigit()) || given.len() > 64 {
        return Err(Error::Usage(format!(
            "{given:?} is not a message id (hex digits, as `chatctl tail --json` or `chatctl dms --json` show them)"
        )));
    }
    match given.len() {
        64 => return Ok(Named::Public(given.to_owned())),
        32 => return Ok(Named::Private(given.to_owned())),
        n if n < MIN_PREFIX => {
            return Err(Error::Usage(format!(
                "give at least {MIN_PREFIX} digits of the message id"
            )));
        }
        _ => {}
    }
    let mut found: Vec<Named> = Vec::new();
    let mut api = client::chat_service(socket).await?;
    let public = api
        .history(HistoryRequest {
            limit: SEARCHED,
            ..Default::default()
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner()
        .messages;
    found.extend(
        public
            .into_iter()
            .filter(|m| m.id.starts_with(given))
            .map(|m| Named::Public(m.id)),
    );
    if given.len() <= 32 {
        let mut dm = client::private_service(socket, false).await?;
        let private = dm
            .private_history(PrivateHistoryRequest {
                limit: SEARCHED,
                ..Default::default()
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner()
            .messages;
        found.extend(
            private
                .into_iter()
                .filter(|m| m.id.starts_with(given))
                .map(|m| Named::Private(m.id)),
        );
    }
    found.dedup();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Usage(format!(
            "no message id starts with {given} among the newest {SEARCHED}; give the whole id"
        ))),
        n => Err(Error::Usage(format!(
            "{n} messages' ids start with {given}; give more digits"
        ))),
    }
}
