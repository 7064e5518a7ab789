//! Voice messages in the window: `/voice PATH` uploads a recording and sends it as a voice
//! message to the window shown — a room (`chatctl voice`'s code), a person or a group
//! (`chatctl dm --voice`'s: an encrypted upload, the transcript inside the encrypted message).
//! chatd converts and transcribes it; the status line says so meanwhile, and the message
//! comes back as `🎤 0:07 "transcript…"` like any other.

use tokio::sync::mpsc;

use super::app::{Action, App, NetEvent};
use crate::client::Target;

/// Where a voice message goes: a room, or privately (`to` a nickname or a `group`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoiceTo {
    Room(String),
    Private { to: String, group: String },
}

impl VoiceTo {
    /// The destination of the window `room` (`@nick`, `+group` or a room's name).
    pub fn of(room: &str) -> VoiceTo {
        match (room.strip_prefix('@'), room.strip_prefix('+')) {
            (Some(nick), _) => VoiceTo::Private {
                to: nick.to_owned(),
                group: String::new(),
            },
            (_, Some(group)) => VoiceTo::Private {
                to: String::new(),
                group: group.to_owned(),
            },
            _ => VoiceTo::Room(room.to_owned()),
        }
    }
}

impl App {
    /// `/voice PATH`, typed as `line`. A path with spaces goes in double quotes.
    pub(super) fn send_voice(&mut self, rest: &str, line: &str) -> Vec<Action> {
        let rest = rest.trim();
        let path = match rest.strip_prefix('"') {
            Some(q) => q.strip_suffix('"').filter(|p| !p.contains('"')),
            None => Some(rest).filter(|p| !p.contains(char::is_whitespace)),
        };
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            return self.back(
                line,
                "/voice PATH: one recording (WAV, Ogg, WebM; \"quotes\" for spaces)",
            );
        };
        let to = VoiceTo::of(&self.shown().room);
        let reference = self.pend(line, "voice message not sent");
        self.scroll = 0;
        vec![Action::SendVoice {
            reference,
            to,
            path: path.to_owned(),
        }]
    }
}

/// Carries out a `/voice` (on its own task), reporting progress through `tx`; the outcome.
pub(super) async fn act(a: Action, tx: &mpsc::Sender<NetEvent>, socket: &Target) -> NetEvent {
    let Action::SendVoice {
        reference,
        to,
        path,
    } = a
    else {
        return NetEvent::Notice("internal: not a voice action".into());
    };
    let res = send(tx, socket, &to, &path).await;
    let _ = tx.send(NetEvent::Progress(String::new())).await;
    match res {
        Ok(()) => NetEvent::Sent(reference),
        Err(why) => NetEvent::NotSent(reference, why),
    }
}

async fn send(
    tx: &mpsc::Sender<NetEvent>,
    socket: &Target,
    to: &VoiceTo,
    path: &str,
) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot read {path}: {e}");
    let (file, size, name) =
        crate::cmd::send_file::open(std::path::Path::new(path)).map_err(|e| e.to_string())?;
    let private = matches!(to, VoiceTo::Private { .. });
    let progress = super::files::reporter(tx, format!("uploading {name}"), size);
    let hash = crate::cmd::send_file::upload(socket, file, &name, size, private, progress)
        .await
        .map_err(|e| match e {
            crate::cmd::send_file::UploadError::Read(e) => cannot(e),
            crate::cmd::send_file::UploadError::Call(e) => e.to_string(),
        })?;
    let _ = tx
        .send(NetEvent::Progress(format!(
            "🎤 converting and transcribing {name}…"
        )))
        .await;
    match to {
        VoiceTo::Room(room) => {
            let mut api = crate::client::chat_service(socket)
                .await
                .map_err(|e| e.to_string())?;
            api.send(chat_proto::v1::SendRequest {
                room: room.clone(),
                text: String::new(),
                attachment_hash: hash,
                attachment_name: name,
                voice: true,
            })
            .await
            .map_err(|s| crate::client::call_error(socket, s).to_string())?;
        }
        VoiceTo::Private { to, group } => {
            let mut api = crate::client::private_service(socket, false)
                .await
                .map_err(|e| e.to_string())?;
            api.send_private(chat_proto::v1::SendPrivateRequest {
                to: to.clone(),
                group_id: group.clone(),
                attachment_hash: hash,
                attachment_name: name,
                voice: true,
                ..Default::default()
            })
            .await
            .map_err(|s| crate::client::call_error(socket, s).to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::kit::*;
    use super::*;

    #[test]
    fn voice_takes_one_path_and_goes_where_the_window_is() {
        let mut app = as_alice();
        let got = |app: &mut App, line: &str| match typed(app, line).as_slice() {
            [Action::SendVoice { to, path, .. }] => Some((to.clone(), path.clone())),
            _ => None,
        };
        assert_eq!(
            got(&mut app, "/voice ./note.wav"),
            Some((VoiceTo::Room("lobby".into()), "./note.wav".into()))
        );
        assert_eq!(
            got(&mut app, "/voice \"my note.wav\""),
            Some((VoiceTo::Room("lobby".into()), "my note.wav".into()))
        );
        for bad in ["/voice", "/voice a.wav b.wav", "/voice \"unclosed"] {
            assert_eq!(got(&mut app, bad), None, "{bad}");
            assert_eq!(app.input.take(), bad, "the line comes back");
        }
        assert_eq!(
            VoiceTo::of("@bob"),
            VoiceTo::Private {
                to: "bob".into(),
                group: String::new()
            }
        );
        assert_eq!(
            VoiceTo::of("+team"),
            VoiceTo::Private {
                to: String::new(),
                group: "team".into()
            }
        );
    }
}
