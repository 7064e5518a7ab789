//! `chatctl chat [--room R]`: the interactive terminal chat (`crate::tui`).

use crate::client::Target;

use crate::Error;

/// Opens the chat window on chatd at `socket`, showing `room` first.
pub async fn run(socket: &Target, room: String) -> Result<(), Error> {
    let room = room.trim().trim_start_matches('#').to_owned();
    if room.is_empty() {
        return Err(Error::Usage("--room: a room name is needed".into()));
    }
    crate::tui::run(socket, &room).await
}
