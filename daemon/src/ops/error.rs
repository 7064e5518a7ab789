//! What a client's call can fail with, for every front door: [`ApiError`], a kind (the
//! request is malformed, the thing is not found, the node is busy…) and the message the client
//! sees. The services' own errors become one here, in one place, so the gRPC API and the web
//! view show the same words; each front door then maps the kind to its own codes once (gRPC
//! statuses in `control/error.rs`, the web's frames in `web/error.rs`).

use chat_blobs::{FetchError, StoreError};
use chat_overlay::BroadcastError;

use crate::chat::{ChangeError, ChatError, SendError};
use crate::dm::PrivateError;
use crate::files::FilesError;
use crate::offload::OffloadError;
use crate::overlay::originate::OriginateError;
use crate::people::PeopleError;
use crate::records::RecordsError;
use chat_dm::DmError;
use chat_overlay::records::RecordError;

/// An error a client's call reports to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The node cannot serve this now (e.g. it has not joined a ring yet); retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// The thing to create exists already (e.g. a name held by another key).
    #[error("{0}")]
    AlreadyExists(String),
    /// The state does not allow it (e.g. a newer version is held).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A rate or capacity limit was hit; retrying later may help.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The client did not prove who it is (missing or wrong bearer token).
    #[error("{0}")]
    Unauthenticated(String),
    /// The client is known but not allowed (e.g. not in `control.group`).
    #[error("{0}")]
    PermissionDenied(String),
    /// A bug or an unexpected failure inside chatd. Details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A bad request field: the message starts with the field's name.
    pub fn field(name: &str, problem: impl std::fmt::Display) -> ApiError {
        ApiError::InvalidArgument(format!("{name}: {problem}"))
    }
}

impl From<crate::voice::VoiceError> for ApiError {
    fn from(err: crate::voice::VoiceError) -> ApiError {
        use crate::voice::VoiceError as V;
        match err {
            V::Refused(m) => ApiError::InvalidArgument(format!("the recording: {m}")),
            e @ V::NoModel(_) => ApiError::FailedPrecondition(e.to_string()),
            e @ (V::Timeout(_) | V::Limit(_) | V::Busy) => {
                ApiError::ResourceExhausted(e.to_string())
            }
            e @ V::Helper(_) => ApiError::Unavailable(e.to_string()),
            V::Io(e) => ApiError::Internal(format!("voice: {e}")),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> ApiError {
        ApiError::Internal(err.to_string())
    }
}

impl From<crate::chat::trace::TraceError> for ApiError {
    fn from(err: crate::chat::trace::TraceError) -> ApiError {
        use crate::chat::trace::TraceError;
        match err {
            TraceError::NotFound(_) => ApiError::NotFound(format!("id: {err}")),
            TraceError::NotJoined => ApiError::Unavailable(err.to_string()),
            TraceError::Busy => ApiError::ResourceExhausted(err.to_string()),
            TraceError::Store(e) => e.into(),
            TraceError::Task(_) => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<SendError> for ApiError {
    fn from(err: SendError) -> ApiError {
        match err {
            SendError::Text(e) => ApiError::field("text", e),
            SendError::Busy => ApiError::ResourceExhausted(err.to_string()),
            SendError::Chat(e) => e.into(),
        }
    }
}

impl From<ChangeError> for ApiError {
    fn from(err: ChangeError) -> ApiError {
        match err {
            ChangeError::NotFound(_) | ChangeError::Deleted(_) => {
                ApiError::NotFound(format!("id: {err}"))
            }
            ChangeError::NotYours(_) => ApiError::PermissionDenied(format!("id: {err}")),
            ChangeError::Send(e) => e.into(),
        }
    }
}

impl<E: Into<ApiError>> From<OriginateError<E>> for ApiError {
    fn from(err: OriginateError<E>) -> ApiError {
        match err {
            OriginateError::Job(e) => e.into(),
            OriginateError::DriverGone => ApiError::Unavailable(
                "the overlay driver is not running; the message was not sent".into(),
            ),
            OriginateError::Refused(e) => match e {
                BroadcastError::RateLimited { retry_after } => {
                    ApiError::ResourceExhausted(format!(
                        "this node is sending more than ring.origin_rate allows (all its clients together); retry in {} ms",
                        retry_after.as_millis().max(1)
                    ))
                }
                BroadcastError::Busy => ApiError::ResourceExhausted(
                    "too many broadcasts of this node in flight; try again shortly".into(),
                ),
                BroadcastError::NotMember => ApiError::Unavailable(
                    "this node is not a ring member; the message was not sent".into(),
                ),
                BroadcastError::TooLarge => ApiError::field("text", e),
                BroadcastError::SeqUsed => ApiError::Internal(e.to_string()),
                // The driver holds sends while the node learns its numbering; past its bound
                // of held sends the client is told to retry.
                BroadcastError::Numbering => {
                    ApiError::Unavailable(format!("{e}; the message was not sent"))
                }
            },
        }
    }
}

impl From<RecordsError> for ApiError {
    fn from(err: RecordsError) -> ApiError {
        match err {
            RecordsError::Invalid { field, problem } => ApiError::field(field, problem),
            RecordsError::Busy => ApiError::ResourceExhausted(err.to_string()),
            RecordsError::NoAnswer => ApiError::Unavailable(err.to_string()),
            RecordsError::Refused(e) => {
                let m = e.to_string();
                match e {
                    RecordError::UnknownKind(_)
                    | RecordError::BadKey(_)
                    | RecordError::BadSignature
                    | RecordError::TooLarge { .. }
                    | RecordError::Expired
                    | RecordError::ExpiryTooFar { .. } => ApiError::InvalidArgument(m),
                    RecordError::Taken { .. } => ApiError::AlreadyExists(m),
                    RecordError::Stale { .. } | RecordError::Removed => {
                        ApiError::FailedPrecondition(m)
                    }
                    RecordError::Quota(_) | RecordError::RateLimited { .. } | RecordError::Busy => {
                        ApiError::ResourceExhausted(m)
                    }
                    RecordError::NotResponsible
                    | RecordError::NotMember
                    | RecordError::Unavailable => ApiError::Unavailable(m),
                }
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        let m = err.to_string();
        match err {
            StoreError::TooLarge { .. } => ApiError::field("size", m),
            StoreError::QuotaFull { .. } => ApiError::ResourceExhausted(m),
            StoreError::NotFound(_) => ApiError::NotFound(m),
            StoreError::Corrupt(_) => ApiError::Unavailable(m),
            // A full disk is the operator's to fix, and the client's to be told plainly.
            StoreError::Io { ref source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) =>
            {
                ApiError::ResourceExhausted(format!("this node's disk is full: {m}"))
            }
            _ => ApiError::Internal(m),
        }
    }
}

impl From<FilesError> for ApiError {
    fn from(err: FilesError) -> ApiError {
        match err {
            FilesError::Store(e) | FilesError::Fetch(FetchError::Store(e)) => e.into(),
            FilesError::Fetch(FetchError::BadReference(m)) => ApiError::field("size", m),
            e @ (FilesError::Fetch(_) | FilesError::NoProvider { .. } | FilesError::Lookup(_)) => {
                ApiError::Unavailable(e.to_string())
            }
            e @ FilesError::Worker => ApiError::Internal(e.to_string()),
            e @ FilesError::Hold(_) => ApiError::FailedPrecondition(e.to_string()),
            e @ FilesError::Decrypt(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<PeopleError> for ApiError {
    fn from(err: PeopleError) -> ApiError {
        match err {
            PeopleError::Nickname(e) => ApiError::field("nickname", e),
            PeopleError::AwayTooLong => ApiError::field("away_message", err),
            PeopleError::TooFast(_) => ApiError::ResourceExhausted(err.to_string()),
            PeopleError::NotJoined | PeopleError::Ring(_) => ApiError::Unavailable(err.to_string()),
            PeopleError::AllTaken(_) => ApiError::AlreadyExists(err.to_string()),
            PeopleError::TooManyAccounts => ApiError::ResourceExhausted(err.to_string()),
            PeopleError::Key(_) => ApiError::Internal(err.to_string()),
            PeopleError::Records(e) => e.into(),
        }
    }
}

impl From<PrivateError> for ApiError {
    fn from(err: PrivateError) -> ApiError {
        let m = err.to_string();
        match err {
            PrivateError::Engine(e) => match e {
                DmError::TextSize { .. } | DmError::ControlChar { .. } | DmError::ToSelf => {
                    ApiError::field("text", e)
                }
                DmError::Backlog(_) | DmError::RateLimited { .. } | DmError::GroupLimit(_) => {
                    ApiError::ResourceExhausted(m)
                }
                DmError::NoGroup => ApiError::NotFound(m),
                DmError::NotAllowed(_) => ApiError::FailedPrecondition(m),
            },
            PrivateError::UnknownNick(_) | PrivateError::UnknownGroup(_) => ApiError::NotFound(m),
            PrivateError::AmbiguousGroup(_) | PrivateError::BadId(_) => {
                ApiError::InvalidArgument(m)
            }
            PrivateError::NoMessage(_) => ApiError::NotFound(m),
            PrivateError::KeyChanged { .. } => ApiError::FailedPrecondition(m),
            PrivateError::VerifyByName(_) => ApiError::InvalidArgument(m),
            PrivateError::NotYours(_) => ApiError::PermissionDenied(m),
            PrivateError::People(e) => e.into(),
            PrivateError::Store(_) => ApiError::Internal(m),
            PrivateError::Offload(e) => e.into(),
        }
    }
}

impl From<OffloadError> for ApiError {
    fn from(err: OffloadError) -> ApiError {
        match err {
            // Too many reads of this kind running and waiting: retrying later helps.
            OffloadError::Busy { .. } => ApiError::ResourceExhausted(err.to_string()),
            OffloadError::Task { .. } => ApiError::Internal(err.to_string()),
        }
    }
}
