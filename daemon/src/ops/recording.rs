//! What a room's voice message (`chat_voice.rs`) and a private one (`private_voice.rs`)
//! both ask of the node: its voice runner, with or without a transcription model, and its
//! file store; a recording converted by the sandboxed helper into a new upload of the store
//! (nothing left behind when the helper fails); the Ogg/Opus file's name.

use std::path::PathBuf;
use std::sync::Arc;

use super::ApiError;
use crate::chat::attachment::MAX_NAME_BYTES;
use crate::files::Files;
use crate::node::Node;
use crate::voice::{Outcome, Voice};

/// The node's voice runner, for a new voice message.
pub(super) fn runner(node: &Node) -> Result<Arc<Voice>, ApiError> {
    node.voice()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("voice messages are off on this node".into()))
}

/// The node's voice runner with a transcription model and its file store, for a later
/// transcript of a pending voice message.
pub(super) fn transcriber(node: &Node) -> Result<(Arc<Voice>, Arc<Files>), ApiError> {
    let voice = node
        .voice()
        .filter(|v| v.has_model())
        .cloned()
        .ok_or_else(|| {
            ApiError::FailedPrecondition(
                "no transcription model on this node (set voice.model_dir)".into(),
            )
        })?;
    let files = node
        .files()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("this node has no files service".into()))?;
    Ok((voice, files))
}

/// Converts (and transcribes) the recording `input` to Ogg/Opus at a new upload path of
/// `files`: what the helper made of it and that path, for the store to import. When the
/// helper fails, whatever it wrote there is removed.
pub(super) async fn convert(
    voice: &Voice,
    files: &Files,
    input: std::fs::File,
) -> Result<(Outcome, PathBuf), ApiError> {
    let out = files.upload_path();
    match voice.run(input, Some(&out), true).await {
        Ok(o) => Ok((o, out)),
        Err(e) => {
            let _ = tokio::fs::remove_file(&out).await;
            Err(e.into())
        }
    }
}

/// The stem of a recording's `name` for its Ogg/Opus file's name (`{stem}.ogg`), if it has
/// one that fits an attachment's name.
pub(super) fn ogg_stem(name: &str) -> Option<String> {
    std::path::Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s.len() + 4 <= MAX_NAME_BYTES)
}

#[cfg(test)]
mod tests {
    use super::ogg_stem;
    use crate::chat::attachment::MAX_NAME_BYTES;

    #[test]
    fn the_stem_is_kept_when_it_fits_and_dropped_when_not() {
        assert_eq!(ogg_stem("memo.wav").as_deref(), Some("memo"));
        assert_eq!(ogg_stem("dir/memo.tar.gz").as_deref(), Some("memo.tar"));
        assert_eq!(ogg_stem(""), None);
        let fits = "n".repeat(MAX_NAME_BYTES - 4);
        assert_eq!(ogg_stem(&format!("{fits}.wav")), Some(fits.clone()));
        assert_eq!(ogg_stem(&format!("{fits}n.wav")), None);
    }
}
