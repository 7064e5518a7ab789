//! Voice messages through the chat operations (issue 36): `Send` with `voice` converts and
//! transcribes an uploaded recording in the sandboxed helper (`crate::voice`) and sends the
//! Ogg/Opus file with its transcript (`chat/transcript.rs`); `Transcribe` makes a later
//! transcript of a pending one; Search results get the matching words' offsets.

use chat_proto::v1::{ChatMessage, VoiceTranscript, VoiceWord};

use super::{ApiError, ChatOps, Kind, Room, Work, position};
use crate::chat::envelope::MAX_TEXT_BYTES;
use crate::chat::transcript::{self, Transcript};
use crate::client::ClientInfo;
use crate::ops::recording;

impl ChatOps {
    /// Sends the recording `hash` (uploaded to this node) to `room` as a voice message.
    pub async fn send_voice(
        &self,
        client: Option<&ClientInfo>,
        room: &str,
        hash: &str,
        name: &str,
    ) -> Result<ChatMessage, ApiError> {
        let room: Room = match room {
            "" => Room::lobby(),
            r => r.parse().map_err(|e| ApiError::field("room", e))?,
        };
        let files = self
            .node
            .files()
            .ok_or_else(|| ApiError::field("attachment_hash", "this node has no files service"))?
            .clone();
        let voice = recording::runner(&self.node)?;
        let parsed: chat_blobs::Hash = hash
            .parse()
            .map_err(|_| ApiError::field("attachment_hash", "expected 64 hex digits"))?;
        if files.info(parsed).await?.is_none() {
            return Err(ApiError::field(
                "attachment_hash",
                "this node does not hold that file (upload it with FileService.Upload first)",
            ));
        }
        // The client's send rate and the node's state are checked before the helper runs
        // (its work is the expensive part), once.
        let go = self.sending(client)?;
        let input = files.open_blob(parsed).await?;
        let (outcome, out) = recording::convert(&voice, &files, input).await?;
        let ogg = files.import_upload(out).await?;
        let stem = recording::ogg_stem(name).unwrap_or_else(|| "voice".into());
        let attachment = self
            .reference(&ogg.hash.to_string(), &format!("{stem}.ogg"))
            .await?;
        let t = outcome.transcript();
        let text = voice_text(&t, &outcome.text, None);
        self.originate(go, move |chat, author| {
            chat.send_voice(&room, &text, Some(author), Some(&attachment), Some(&t))
        })
        .await
    }

    /// Transcribes the pending voice message `id` here and sends the transcript.
    pub async fn transcribe(
        &self,
        client: Option<&ClientInfo>,
        id: &str,
    ) -> Result<ChatMessage, ApiError> {
        let chat = self.chat.clone();
        let id = id.trim().to_ascii_lowercase();
        let stored = self
            .offload
            .run(Work::Read, move || {
                let (_, pos) = position(&chat, "id", &id)?
                    .ok_or_else(|| ApiError::field("id", "give a message id"))?;
                let rows = chat.after(pos - 1, None, 1)?;
                rows.into_iter()
                    .find(|s| s.pos == pos)
                    .ok_or_else(|| ApiError::NotFound(format!("id: no message {id} here")))
            })
            .await??;
        let m = &stored.message;
        let (Some(a), Some(t)) = (&m.attachment, &m.transcript) else {
            return Err(ApiError::FailedPrecondition(
                "id: not a voice message".into(),
            ));
        };
        if m.kind != Kind::Text {
            return Err(ApiError::FailedPrecondition(
                "id: the message was deleted".into(),
            ));
        }
        let (voice, files) = recording::transcriber(&self.node)?;
        let go = self.sending(client)?;
        let hash = chat_blobs::Hash(a.hash);
        files.fetch_found(hash, Some(a.size)).await?;
        let outcome = voice.run(files.open_blob(hash).await?, None, true).await?;
        let mut later = outcome.transcript();
        later.of = Some(m.id);
        if later.duration_ms == 0 {
            later.duration_ms = t.duration_ms;
        }
        let text = voice_text(&later, &outcome.text, Some(()));
        let room = m.room.clone();
        self.originate(go, move |chat, author| {
            chat.send_voice(&room, &text, Some(author), None, Some(&later))
        })
        .await
    }
}

/// The message text of a voice message (`🎤 0:07 "…"`) or of a later transcript of one,
/// within the text's bound.
pub fn voice_text(t: &Transcript, text: &str, later: Option<()>) -> String {
    voice_text_within(t, text, later, MAX_TEXT_BYTES)
}

/// [`voice_text`] within `max` bytes: the transcript is cut at a character boundary and
/// marked `…` (a private message's text shares its bound with the file reference).
pub fn voice_text_within(t: &Transcript, text: &str, later: Option<()>, max: usize) -> String {
    let clock = transcript::clock(t.duration_ms);
    let head = match later {
        Some(()) => format!("🎤 transcript of a {clock} voice message:"),
        None => format!("🎤 {clock}"),
    };
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let text = text.trim();
    if !t.transcribed {
        return format!("{head} (transcript pending)");
    }
    if text.is_empty() {
        return format!("{head} (no speech)");
    }
    let room = max.saturating_sub(head.len() + 8);
    let quoted = match text.len() <= room {
        true => text.to_owned(),
        false => {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}…", &text[..cut])
        }
    };
    format!("{head} \"{quoted}\"")
}

/// The API form of a transcript item.
pub fn voice_to_proto(t: &Transcript) -> VoiceTranscript {
    let words: Vec<VoiceWord> = t.words.iter().map(word_to_proto).collect();
    VoiceTranscript {
        duration_ms: t.duration_ms,
        pending: !t.transcribed,
        language: t.language.clone(),
        text: t
            .words
            .iter()
            .map(|w| w.word.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        words,
        transcript_of: t.of.map(|id| id.to_hex()).unwrap_or_default(),
        matches: Vec::new(),
    }
}

fn word_to_proto(w: &transcript::Word) -> VoiceWord {
    VoiceWord {
        word: w.word.clone(),
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    }
}

/// Fills in the matching words of the voice messages among search results.
pub fn fill_matches(messages: &mut [ChatMessage], query: &str) {
    for v in messages.iter_mut().filter_map(|m| m.voice.as_mut()) {
        fill_match(v, query);
    }
}

/// Fills in the words of one voice message's transcript that match a search's `query`.
pub fn fill_match(v: &mut VoiceTranscript, query: &str) {
    let t = Transcript {
        words: v
            .words
            .iter()
            .map(|w| transcript::Word {
                word: w.word.clone(),
                start_ms: w.start_ms,
                end_ms: w.end_ms,
            })
            .collect(),
        ..Transcript::default()
    };
    v.matches = t.matches(query).iter().map(word_to_proto).collect();
}
