//! Files in the window: `/file PATH [CAPTION]` uploads a file and sends it to the room shown
//! (`chatctl send --file`'s code), `/get [N|ID] [--force]` downloads the N-th last file of the
//! window shown (1: the last; or the file of message ID, or the file with that hash) into the
//! current directory under a safe name (`chatctl get`'s code), never replacing a file there
//! without `--force`. Progress shows in the status line; the outcome as a notice.

use tokio::sync::mpsc;

use super::app::{Action, App, FileRef, NetEvent};
use crate::client::Target;
use crate::cmd::tail::human_size;

/// The most files counted back by `/get N`.
const MAX_BACK: usize = 1000;

impl App {
    /// `/file PATH [CAPTION]`, typed as `line`. A path with spaces goes in double quotes.
    pub(super) fn send_file(&mut self, rest: &str, line: &str) -> Vec<Action> {
        let Some((path, caption)) = split_path(rest) else {
            return self.back(
                line,
                "/file PATH [CAPTION]: which file? (\"quotes\" for spaces)",
            );
        };
        let room = self.shown().room.clone();
        if room.starts_with('@') || room.starts_with('+') {
            return self.back(line, "/file sends to a room; this is a private window");
        }
        let reference = self.pend(line, "file not sent");
        self.scroll = 0;
        vec![Action::SendFile {
            reference,
            room,
            path,
            caption,
        }]
    }

    /// `/get [N|ID] [--force]`, typed as `line`.
    pub(super) fn get_file(&mut self, rest: &str, line: &str) -> Vec<Action> {
        let mut force = false;
        let mut which = None;
        for word in rest.split_whitespace() {
            match word {
                "--force" | "-f" => force = true,
                w if which.is_none() => which = Some(w),
                _ => return self.back(line, "/get [N|ID] [--force]: one file at a time"),
            }
        }
        let files = self
            .shown()
            .lines
            .iter()
            .rev()
            .filter_map(|l| l.file.as_ref().map(|f| (l.id.as_str(), f)));
        let found = match which {
            None => files.map(|(_, f)| f).next(),
            Some(w) if w.len() <= 6 && w.bytes().all(|b| b.is_ascii_digit()) => {
                match w.parse::<usize>() {
                    Ok(n) if (1..=MAX_BACK).contains(&n) => files.map(|(_, f)| f).nth(n - 1),
                    _ => None,
                }
            }
            Some(w) => {
                let w = w.to_ascii_lowercase();
                let mut files = files;
                files
                    .find(|(id, f)| *id == w || f.hash == w)
                    .map(|(_, f)| f)
            }
        };
        let Some(file) = found.cloned() else {
            return self.back(
                line,
                "/get: no such file in this window (N counts files back from the last, 1)",
            );
        };
        vec![Action::GetFile { file, force }]
    }
}

/// The path (first word, or a double-quoted run) and the caption after it.
fn split_path(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim();
    let (path, caption) = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split_once('"')?,
        None => rest.split_once(' ').unwrap_or((rest, "")),
    };
    (!path.is_empty()).then(|| (path.to_owned(), caption.trim().to_owned()))
}

/// Carries out a `/file` or `/get` (on its own task: a long transfer holds up nothing),
/// reporting progress through `tx`; the outcome.
pub(super) async fn act(a: Action, tx: &mpsc::Sender<NetEvent>, socket: &Target) -> NetEvent {
    match a {
        Action::SendFile {
            reference,
            room,
            path,
            caption,
        } => {
            let res = send(tx, socket, &room, &path, caption).await;
            let _ = tx.send(NetEvent::Progress(String::new())).await;
            match res {
                Ok(()) => NetEvent::Sent(reference),
                Err(why) => NetEvent::NotSent(reference, why),
            }
        }
        Action::GetFile { file, force } => {
            let res = get(tx, socket, &file, force).await;
            let _ = tx.send(NetEvent::Progress(String::new())).await;
            NetEvent::Notice(match res {
                Ok(saved) => saved,
                Err(why) => format!("/get: {why}"),
            })
        }
        _ => NetEvent::Notice("internal: not a file action".into()),
    }
}

/// A progress reporter: sends the status line's text when the percentage changes (dropped
/// when the window is busy).
pub(super) fn reporter(
    tx: &mpsc::Sender<NetEvent>,
    what: String,
    size: u64,
) -> impl FnMut(u64) + Send + 'static {
    let tx = tx.clone();
    let mut last = None;
    move |done| {
        let pct = done.saturating_mul(100).checked_div(size).unwrap_or(100);
        if last != Some(pct) {
            last = Some(pct);
            let _ = tx.try_send(NetEvent::Progress(format!(
                "{what} {pct}% of {}",
                human_size(size)
            )));
        }
    }
}

async fn send(
    tx: &mpsc::Sender<NetEvent>,
    socket: &Target,
    room: &str,
    path: &str,
    caption: String,
) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot read {path}: {e}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!("{path} is not a file"));
    }
    let name = std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = meta.len();
    let progress = reporter(tx, format!("uploading {name}"), size);
    let hash = crate::cmd::send_file::upload(socket, file, &name, size, false, progress)
        .await
        .map_err(|e| match e {
            crate::cmd::send_file::UploadError::Read(e) => cannot(e),
            crate::cmd::send_file::UploadError::Call(e) => e.to_string(),
        })?;
    crate::cmd::send_file::send(socket, room, caption, hash, name)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn get(
    tx: &mpsc::Sender<NetEvent>,
    socket: &Target,
    file: &FileRef,
    force: bool,
) -> Result<String, String> {
    let name = crate::cmd::get::safe_name(&file.name, &file.hash);
    let dir = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let dest = dir.join(&name);
    if dest.exists() && !force {
        return Err(format!(
            "{} exists; /get … --force replaces it",
            dest.display()
        ));
    }
    let mut progress = reporter(tx, format!("fetching {name}"), file.size);
    let request = chat_proto::v1::DownloadRequest {
        hash: file.hash.clone(),
        size: file.size,
        ..Default::default()
    };
    let got = crate::cmd::get::download(socket, request, None, &dest, |p| progress(p.have))
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("saved {} ({})", dest.display(), human_size(got)))
}

#[cfg(test)]
mod tests {
    use super::super::app::NetEvent;
    use super::super::kit::*;
    use super::*;

    #[test]
    fn a_path_and_its_caption() {
        assert_eq!(
            split_path("a.png the plan"),
            Some(("a.png".into(), "the plan".into()))
        );
        assert_eq!(
            split_path("\"my file.pdf\" hi"),
            Some(("my file.pdf".into(), "hi".into()))
        );
        assert_eq!(split_path("a.png"), Some(("a.png".into(), String::new())));
        assert_eq!(split_path(""), None);
        assert_eq!(split_path("\"unclosed"), None);
    }

    fn with_file(id: &str, name: &str) -> NetEvent {
        let NetEvent::Message {
            room,
            event,
            mut body,
        } = msg(id, "lobby", "bob", name)
        else {
            unreachable!("msg makes a message");
        };
        body.file = Some(FileRef {
            hash: id.repeat(64 / id.len()),
            name: name.into(),
            size: 2_400_000,
        });
        NetEvent::Message { room, event, body }
    }

    #[test]
    fn get_takes_the_nth_last_file_shown_or_one_by_id() {
        let mut app = as_alice();
        app.on_net(with_file("a1", "first.pdf"));
        app.on_net(msg("b2", "lobby", "bob", "no file"));
        app.on_net(with_file("c3", "second.png"));
        let got = |app: &mut App, line: &str| match typed(app, line).as_slice() {
            [Action::GetFile { file, force }] => Some((file.name.clone(), *force)),
            _ => None,
        };
        assert_eq!(got(&mut app, "/get"), Some(("second.png".into(), false)));
        assert_eq!(
            got(&mut app, "/get 2 --force"),
            Some(("first.pdf".into(), true))
        );
        assert_eq!(got(&mut app, "/get a1"), Some(("first.pdf".into(), false)));
        assert_eq!(got(&mut app, "/get 3"), None, "only two files here");
        assert_eq!(app.input.take(), "/get 3", "the line comes back");
        // A deleted message's file is gone from the window.
        app.on_net(NetEvent::Change {
            id: "d4".into(),
            room: "lobby".into(),
            target: "c3".into(),
            text: None,
        });
        assert_eq!(got(&mut app, "/get"), Some(("first.pdf".into(), false)));
        // /file needs a path, and a room.
        assert!(typed(&mut app, "/file").is_empty());
        app.input.take();
        assert!(matches!(
            typed(&mut app, "/file ./a.png the plan").as_slice(),
            [Action::SendFile { path, caption, .. }] if path == "./a.png" && caption == "the plan"
        ));
    }
}
