//! `chatctl chat`: the interactive terminal chat (ratatui + crossterm).
//!
//! - `app.rs`: the window's state and what keys and chatd's events do to it (no I/O);
//! - `commands.rs`: what Enter does with the input line (messages, `/commands`);
//! - `files.rs`: `/file` and `/get` (upload and send, download into the current directory);
//! - `voice.rs`: `/voice PATH` (a voice message to the room, person or group shown);
//! - `users.rs`: the users pane as a chooser of whom to write to privately;
//! - `view.rs`: drawing it — conversations | timeline | users, status and input lines;
//! - `net.rs`: the task that talks to chatd and reconnects when it goes away;
//! - `input.rs`: the input line (editing, history, Tab completion);
//! - `text.rs`: making network text safe for a terminal, wrapping, nickname colours.
//!
//! The loop redraws only when something happened — a key, a resize, news from chatd — and at
//! most every [`FRAME`]: news arriving meanwhile is applied and drawn together, so a busy
//! room costs one frame per batch and an idle window no CPU. The terminal is restored on `/quit`, Ctrl-C, an error and a
//! panic (ratatui's `init` installs the panic hook).

mod app;
mod commands;
mod files;
mod input;
#[cfg(test)]
mod kit;
mod net;
pub(crate) mod text;
mod users;
mod view;
mod voice;

use crate::client::Target;

use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::Error;
use app::App;
use view::Theme;

/// News from chatd buffered for the window.
const NEWS: usize = 4096;
/// News applied before a frame is drawn, at most (a flood still lets keys through).
const BATCH: usize = 2048;
/// Shortest time between two frames.
const FRAME: std::time::Duration = std::time::Duration::from_millis(33);

/// Runs the chat window on `socket`, showing `room` first.
pub async fn run(socket: &Target, room: &str) -> Result<(), Error> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "chatctl chat needs a terminal; use `chatctl tail -f` and `chatctl send` in scripts"
                .into(),
        ));
    }
    let theme = Theme {
        colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let (news_tx, mut news) = mpsc::channel(NEWS);
    let (act_tx, act_rx) = mpsc::channel(64);
    let link = tokio::spawn(net::run(socket.clone(), news_tx, act_rx));
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // It may have got as far as raw mode.
            let _ = ratatui::try_restore();
            link.abort();
            return Err(Error::Output(e));
        }
    };
    let mut app = App::new(room);
    let mut keys = EventStream::new();
    let mut dirty = true;
    let mut drawn = tokio::time::Instant::now() - FRAME;
    let result = loop {
        if dirty && drawn.elapsed() >= FRAME {
            if let Err(e) = terminal.draw(|f| view::draw(f, &app, theme)) {
                break Err(Error::Output(e));
            }
            dirty = false;
            drawn = tokio::time::Instant::now();
        }
        tokio::select! {
            () = tokio::time::sleep_until(drawn + FRAME), if dirty => {}
            ev = keys.next() => match ev {
                Some(Ok(Event::Key(k))) => {
                    // Never wait for the link here: keys (Ctrl-C too) must always work.
                    for a in app.on_key(k) {
                        if let Err(e) = act_tx.try_send(a) {
                            let a = match e {
                                mpsc::error::TrySendError::Full(a) | mpsc::error::TrySendError::Closed(a) => a,
                            };
                            app.not_sent(a);
                        }
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(Error::Input(e)),
                None => break Ok(()),
            },
            n = news.recv() => match n {
                Some(n) => {
                    app.on_net(n);
                    let mut more = 0;
                    while more < BATCH {
                        match news.try_recv() {
                            Ok(n) => app.on_net(n),
                            Err(_) => break,
                        }
                        more += 1;
                    }
                    dirty = true;
                }
                None => break Ok(()),
            },
        }
        if app.quit {
            break Ok(());
        }
    };
    let restored = ratatui::try_restore();
    if link.is_finished() {
        if let Err(e) = link.await
            && e.is_panic()
        {
            return Err(Error::Runtime(std::io::Error::other(
                "the link to chatd failed unexpectedly (a bug: please report it)",
            )));
        }
    } else {
        link.abort();
    }
    result?;
    restored.map_err(Error::Output)
}
