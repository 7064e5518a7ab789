//! Private voice messages (issue 36): `SendPrivate` with `voice` turns the caller's encrypted
//! upload of a recording into a private file of Ogg/Opus with its transcript inside the
//! end-to-end encrypted reference (`files/private.rs`), as `ChatService.Send` with `voice`
//! does in a room (`chat_voice.rs`). The recording's plaintext exists only in the store's
//! `tmp/` while the sandboxed helper reads it (unlinked once opened); the upload's ciphertext
//! is removed once converted. `TranscribePrivate` makes a pending one's transcript later, on
//! a participant's node: into that participant's copy, and to the others as a private
//! message marked as a later transcript. docs/protocol.md, "Private voice
//! messages".

use std::str::FromStr;

use chat_proto::v1::PrivateMessage;

use super::PrivateOps;
use crate::chat::transcript::Transcript;
use crate::client::ClientInfo;
use crate::files::Files;
use crate::files::private::PrivateFile;
use crate::offload::Work;
use crate::ops::{ApiError, recording};
use crate::people::Who;

impl PrivateOps {
    /// The Ogg/Opus reference (its transcript in it), the message's text and how many other
    /// nodes hold the file, made from the encrypted upload `hash` of a recording named `name`.
    pub(super) async fn prepare_voice(
        &self,
        hash: &str,
        name: &str,
    ) -> Result<(Vec<u8>, String, u32), ApiError> {
        let files = self
            .node
            .files()
            .cloned()
            .ok_or_else(|| ApiError::Unavailable("this node has no file store".into()))?;
        let voice = recording::runner(&self.node)?;
        let hash = chat_blobs::Hash::from_str(hash)
            .map_err(|_| ApiError::field("attachment_hash", "64 hex digits"))?;
        let upload = files
            .pending(&hash)
            .ok_or_else(|| {
                ApiError::field(
                    "attachment_hash",
                    "no encrypted upload of the last 10 minutes has this hash (upload it with \
                     `encrypt`)",
                )
            })?
            .reference(hash, "recording".into());
        let input = open_plain(&files, &upload).await?;
        let (outcome, out) = recording::convert(&voice, &files, input).await?;
        let ogg = files.import_private(out).await?;
        // The recording's ciphertext: nothing references it.
        if let Err(e) = files.release(hash).await {
            tracing::warn!(error = %e, "could not remove a converted recording");
        }
        let stem = recording::ogg_stem(name)
            .filter(|s| !s.chars().any(char::is_control))
            .unwrap_or_else(|| "voice".into());
        let mut file = files
            .pending(&ogg.hash)
            .ok_or_else(|| ApiError::Unavailable("too many uploads wait here; retry".into()))?
            .reference(ogg.hash, format!("{stem}.ogg"));
        let (reference, text) = with_transcript(&mut file, outcome.transcript(), &outcome.text);
        let holders = self.hold(&files, &file).await?;
        Ok((reference, text, holders))
    }
}

impl PrivateOps {
    /// Transcribes the caller's private voice message `id` (hex) whose transcript is pending
    /// (its sender's node had no model) with this node's model: the transcript is sent to the
    /// conversation as a private message marked as a later transcript, then put in the
    /// caller's own copy (text and the reference's transcript). The voice message as it now
    /// stands, and the message that carried the transcript to the others.
    pub async fn transcribe(
        &self,
        client: Option<&ClientInfo>,
        id: &str,
    ) -> Result<(PrivateMessage, PrivateMessage), ApiError> {
        let who = self.caller(client)?;
        let id = id.trim().to_ascii_lowercase();
        let m = {
            let id = id.clone();
            self.off(Work::Private, move |ops| Ok(ops.dm.message_of(who, &id)?))
                .await?
        };
        let mut file = m
            .row
            .file
            .as_deref()
            .and_then(PrivateFile::decode)
            .filter(|f| f.voice.is_some())
            .ok_or_else(|| ApiError::FailedPrecondition("id: not a voice message".into()))?;
        let before = file.voice.clone().unwrap_or_default();
        if before.transcribed {
            return Err(ApiError::FailedPrecondition(
                "id: the voice message has its transcript already".into(),
            ));
        }
        let (voice, files) = recording::transcriber(&self.node)?;
        files
            .fetch_found(file.cipher_hash, Some(file.cipher_size))
            .await?;
        let input = open_plain(&files, &file).await?;
        let outcome = voice.run(input, None, true).await?;
        let mut t = outcome.transcript();
        if t.duration_ms == 0 {
            t.duration_ms = before.duration_ms;
        }
        let (reference, text) = with_transcript(&mut file, t.clone(), &outcome.text);
        // The other participants get it first, as a private message marked as a later
        // transcript (what a public voice message's later transcript is too): if that send
        // fails, nothing is saved and the caller may try again.
        let later =
            super::super::chat::voice_text_within(&t, &outcome.text, Some(()), chat_dm::MAX_TEXT);
        let shared = self.share_transcript(who, &m.row, &later).await?;
        let mine = self
            .off(Work::Private, move |ops| {
                let m = ops.dm.transcribed(who, &id, &text, &reference)?;
                Ok(ops.message(&m, &ops.dm.groups(who)?))
            })
            .await?;
        Ok((mine, shared))
    }

    /// Sends `text` (a later transcript) to the conversation of `row`: its group, or the
    /// other person of a one-to-one conversation under the name the conversation is bound to.
    async fn share_transcript(
        &self,
        who: Who,
        row: &crate::dm::store::Row,
        text: &str,
    ) -> Result<PrivateMessage, ApiError> {
        let sent = match (row.group, row.peer) {
            (Some(group), _) => {
                let group = hex::encode(group);
                let text = text.to_owned();
                self.off(Work::Private, move |ops| {
                    Ok(ops.dm.send_group_with(who, &group, &text, None)?)
                })
                .await?
            }
            (None, Some(peer)) => {
                let name = self.people.confirmed_name(&peer).ok_or_else(|| {
                    ApiError::Unavailable(
                        "the voice message's sender has no confirmed nickname now: the \
                         transcript cannot be sent to them (try again later)"
                            .into(),
                    )
                })?;
                self.dm.send_to_with(who, &name, text, None, false).await?
            }
            (None, None) => {
                return Err(ApiError::FailedPrecondition(
                    "id: the message belongs to no conversation".into(),
                ));
            }
        };
        self.off(Work::Private, move |ops| {
            Ok(ops.message(&sent, &ops.dm.groups(who)?))
        })
        .await
    }
}

/// The plaintext of the private file `file` (in this node's store), open for the helper to
/// read: decrypted into the store's `tmp/` and unlinked at once, so nothing stays behind.
async fn open_plain(files: &Files, file: &PrivateFile) -> Result<std::fs::File, ApiError> {
    let plain = files.upload_path();
    files.decrypt_file(file, plain.clone()).await?;
    let input = std::fs::File::open(&plain);
    let _ = std::fs::remove_file(&plain);
    input.map_err(|e| ApiError::Internal(format!("voice: the recording: {e}")))
}

/// Puts the transcript `t` in `file`'s reference: the encoded reference, and the message's
/// text with the transcript `text` in what the reference leaves of a private message's bound.
fn with_transcript(file: &mut PrivateFile, t: Transcript, text: &str) -> (Vec<u8>, String) {
    file.voice = Some(t.clone());
    let reference = file.encode();
    let text = super::super::chat::voice_text_within(
        &t,
        text,
        None,
        chat_dm::MAX_TEXT.saturating_sub(reference.len()),
    );
    (reference, text)
}

/// The quoted transcript of a voice message's text (`🎤 0:07 "…"`), if it has one.
pub fn quoted(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("🎤 ")?;
    let open = rest.find('"')?;
    let close = rest.rfind('"')?;
    (close > open).then(|| &rest[open + 1..close])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::attachment::MAX_NAME_BYTES;
    use crate::chat::transcript::Word;
    use chat_blobs::{FileKey, Hash, MediaType};

    fn long(n: usize) -> Transcript {
        Transcript {
            duration_ms: 300_000,
            transcribed: true,
            language: "en".into(),
            words: (0..n)
                .map(|i| Word {
                    word: format!("word{i}"),
                    start_ms: i as u64 * 400,
                    end_ms: i as u64 * 400 + 300,
                })
                .collect(),
            of: None,
        }
    }

    fn file(voice: Option<Transcript>, name: &str) -> PrivateFile {
        PrivateFile {
            cipher_hash: Hash([1; 32]),
            cipher_size: chat_blobs::crypt::ciphertext_len(1000),
            key: FileKey([2; 32]),
            plain_hash: [3; 32],
            name: name.into(),
            size: 1000,
            media: MediaType::Ogg,
            voice,
        }
    }

    #[test]
    fn a_short_transcript_travels_whole_in_the_reference() {
        let t = long(7);
        let bytes = file(Some(t.clone()), "voice.ogg").encode();
        let back = PrivateFile::decode(&bytes).expect("decodes");
        assert_eq!(back.voice, Some(t));
        assert_eq!(back.name, "voice.ogg");
    }

    #[test]
    fn a_long_transcript_loses_its_last_words_first_and_the_text_fits_the_rest() {
        // 700 words: far over the reference's bound; a long name leaves less room still.
        let t = long(700);
        let longest = format!("{}.ogg", "n".repeat(MAX_NAME_BYTES - 4));
        for name in ["voice.ogg", longest.as_str()] {
            let bytes = file(Some(t.clone()), name).encode();
            assert!(
                bytes.len() <= chat_dm::payload::MAX_FILE_REF,
                "{}",
                bytes.len()
            );
            let back = PrivateFile::decode(&bytes)
                .expect("decodes")
                .voice
                .expect("voice");
            assert!(!back.words.is_empty() && back.words.len() < 700);
            assert_eq!(
                back.words[..],
                t.words[..back.words.len()],
                "a prefix is kept"
            );
            assert_eq!((back.duration_ms, back.language.as_str()), (300_000, "en"));
            let words: Vec<&str> = t.words.iter().map(|w| w.word.as_str()).collect();
            let text = crate::ops::chat::voice_text_within(
                &t,
                &words.join(" "),
                None,
                chat_dm::MAX_TEXT - bytes.len(),
            );
            assert!(text.len() + bytes.len() <= chat_dm::MAX_TEXT);
            assert!(text.starts_with("🎤 5:00 \"word0 word1"), "{text}");
            assert!(text.ends_with("…\""), "the text is cut, marked: {text}");
            assert!(quoted(&text).is_some_and(|q| q.starts_with("word0")));
        }
    }

    #[test]
    fn a_bad_transcript_leaves_the_file_and_junk_is_no_file() {
        let mut bytes = file(None, "voice.ogg").encode();
        // A ninth item that is no transcript: the file, without a transcript.
        bytes[0] += 1; // array of 8 → 9
        bytes.push(0x07);
        let back = PrivateFile::decode(&bytes).expect("the file stays");
        assert!(back.voice.is_none());
        // A tenth item: no file.
        bytes[0] += 1;
        bytes.push(0x07);
        assert!(PrivateFile::decode(&bytes).is_none());
        assert_eq!(quoted("🎤 0:07 \"hi there\""), Some("hi there"));
        assert_eq!(quoted("🎤 0:07 (transcript pending)"), None);
        assert_eq!(quoted("plain \"text\""), None);
    }
}
