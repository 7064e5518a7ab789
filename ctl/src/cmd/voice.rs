//! `chatctl voice PATH [--room R]`: uploads a recording (`FileService.Upload`), then sends it
//! as a voice message (`Send` with `voice`): the node converts it to Ogg/Opus and transcribes
//! it in its helper, which takes a few seconds per minute of audio. `--record` (or `-` for a
//! private one's PATH) records one first (`voice_record.rs`). `chatctl dm NICK --voice PATH`
//! and `group send G --voice PATH`: the same, privately (`SendPrivate` with `voice`: an
//! encrypted upload; the transcript travels inside the encrypted message). `chatctl
//! transcribe ID`: a later transcript of a pending voice message, made by this node
//! (`Transcribe`; for a private message's id, `TranscribePrivate`: in the caller's own
//! history only). All print nothing on success, or with `--json` the message.

use std::path::{Path, PathBuf};

use chat_proto::v1::{
    SendRequest, TranscribePrivateRequest, TranscribeRequest, VoiceTranscript, VoiceWord,
};
use serde_json::json;

use crate::Error;
use crate::cli::VoiceArgs;
use crate::client::{self, Target};
use crate::output::Printer;
use crate::tui::text::sanitize;

/// The recording at `path`, or (`None` or `-`) one recorded now.
fn recording(
    path: Option<&Path>,
) -> Result<(PathBuf, Option<crate::cmd::voice_record::Recording>), Error> {
    match path {
        Some(p) if p != Path::new("-") => Ok((p.to_owned(), None)),
        _ => {
            let r = crate::cmd::voice_record::record()?;
            Ok((r.path().to_owned(), Some(r)))
        }
    }
}

/// Uploads and sends the recording.
pub async fn send(socket: &Target, printer: Printer, args: VoiceArgs) -> Result<(), Error> {
    let (path, _recorded) = match args.record {
        true => recording(None)?,
        false => recording(args.path.as_deref())?,
    };
    let path = &path;
    let cannot = |e: std::io::Error| Error::Usage(format!("cannot read {}: {e}", path.display()));
    let (file, size, name) = crate::cmd::send_file::open(path)?;
    let hash = crate::cmd::send_file::upload(socket, file, &name, size, false, |_| {})
        .await
        .map_err(|e| e.or_read(&cannot))?;
    let mut api = client::chat_service(socket).await?;
    let response = api
        .send(SendRequest {
            room: args.room.unwrap_or_default(),
            text: String::new(),
            attachment_hash: hash,
            attachment_name: name,
            voice: true,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if let Some(message) = &response.message {
        print(printer, message)?;
    }
    Ok(())
}

/// Uploads the recording at `path` (`-`: records one) encrypted and sends it privately `to`
/// a person or group as a voice message.
pub async fn private(
    socket: &Target,
    printer: Printer,
    to: crate::cmd::private::To,
    path: &Path,
) -> Result<(), Error> {
    let (path, _recorded) = recording(Some(path))?;
    crate::cmd::send_file::private(socket, printer, to, &path, String::new(), true).await
}

/// Transcribes a pending voice message on this node: a public one (64 hex digits) for
/// everybody, as a message of the caller's; a private one (32) in the caller's own history.
pub async fn transcribe(socket: &Target, printer: Printer, id: &str) -> Result<(), Error> {
    if id.trim().len() == 32 {
        let mut api = client::private_service(socket, false).await?;
        let response = api
            .transcribe_private(TranscribePrivateRequest {
                id: id.trim().to_owned(),
            })
            .await
            .map_err(|s| client::call_error(socket, s))?
            .into_inner();
        let Some(m) = &response.message else {
            return Ok(());
        };
        if printer.is_json() {
            let mut v = crate::cmd::private::message_json(m);
            if let Some(shared) = &response.shared {
                v["shared"] = crate::cmd::private::message_json(shared);
            }
            printer.json_line(&v).map_err(Error::Output)?;
        } else {
            println!("{}", crate::output::terminal_safe(&m.text));
            if response.shared.is_some() {
                println!("(also sent to the conversation as a later transcript)");
            }
        }
        return Ok(());
    }
    let mut api = client::chat_service(socket).await?;
    let response = api
        .transcribe(TranscribeRequest {
            id: id.trim().to_owned(),
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if let Some(message) = &response.message {
        print(printer, message)?;
    }
    Ok(())
}

fn print(printer: Printer, m: &chat_proto::v1::ChatMessage) -> Result<(), Error> {
    if printer.is_json() {
        return printer
            .json_line(&crate::cmd::tail::message_json(m))
            .map_err(Error::Output);
    }
    Ok(())
}

/// `1.22 s` style offset: `0:01.2`.
pub fn offset(ms: u64) -> String {
    format!(
        "{}:{:02}.{}",
        ms / 60_000,
        (ms / 1000) % 60,
        (ms % 1000) / 100
    )
}

fn word_json(w: &VoiceWord) -> serde_json::Value {
    json!({"word": w.word, "start_ms": w.start_ms, "end_ms": w.end_ms})
}

/// The `voice` object of `--json` output.
pub fn voice_json(t: &VoiceTranscript) -> serde_json::Value {
    let mut v = json!({
        "duration_ms": t.duration_ms,
        "pending": t.pending,
        "language": t.language,
        "text": t.text,
        "words": t.words.iter().map(word_json).collect::<Vec<_>>(),
    });
    if !t.transcript_of.is_empty() {
        v["transcript_of"] = json!(t.transcript_of);
    }
    if !t.matches.is_empty() {
        v["matches"] = json!(t.matches.iter().map(word_json).collect::<Vec<_>>());
    }
    v
}

/// What follows a voice message's line: where a search's words are in the audio
/// (`  ▶ Tuesday@0:01.2`), else nothing.
pub fn matches_line(t: &VoiceTranscript) -> String {
    t.matches
        .iter()
        .map(|w| format!("  ▶ {}@{}", sanitize(&w.word), offset(w.start_ms)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_matches_read_as_times() {
        assert_eq!(offset(1220), "0:01.2");
        assert_eq!(offset(61_950), "1:01.9");
        let t = VoiceTranscript {
            matches: vec![VoiceWord {
                word: "Tuesday".into(),
                start_ms: 1220,
                end_ms: 1580,
            }],
            ..Default::default()
        };
        assert_eq!(matches_line(&t), "  ▶ Tuesday@0:01.2");
        assert_eq!(voice_json(&t)["matches"][0]["start_ms"], 1220);
    }
}
