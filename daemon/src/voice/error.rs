//! What a voice job can fail with.

/// Why a recording could not be converted or transcribed.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The helper refused the recording: it is not audio, damaged, too long or too large
    /// (the helper's words, for the client).
    #[error("{0}")]
    Refused(String),
    /// No model is configured (`voice.model_dir`) or it cannot be loaded.
    #[error("no transcription model on this node: {0}")]
    NoModel(String),
    /// Too many jobs wait for a helper already.
    #[error("too many recordings wait for transcription on this node; retry later")]
    Busy,
    /// The helper ran past `voice.timeout_secs` and was killed.
    #[error("transcription took longer than {0} s and was stopped")]
    Timeout(u64),
    /// The helper hit its CPU-time or memory limit, or was killed by a signal.
    #[error("transcription stopped: {0}")]
    Limit(String),
    /// The helper could not be started (no Python, no faster-whisper…) or answered nonsense.
    #[error("the transcription helper failed: {0}")]
    Helper(String),
    /// Reading the recording or writing the converted file failed.
    #[error("voice: {0}")]
    Io(#[from] std::io::Error),
}
