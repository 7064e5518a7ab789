//! Errors of the control layer, and the one place where domain errors become `tonic::Status`.
//!
//! Services return [`ApiError`] (or anything convertible into it); `From<ApiError> for Status`
//! decides the gRPC code and the message a client sees. Internal details are logged, not sent.

use std::path::PathBuf;

use tonic::{Code, Status};

use chat_overlay::BroadcastError;

use crate::chat::{ChangeError, ChatError, SendError};
use crate::dm::PrivateError;
use crate::offload::OffloadError;
use crate::paths::PathError;
use crate::people::PeopleError;
use crate::records::RecordsError;
use crate::ring::originate::OriginateError;
use chat_dm::DmError;
use chat_overlay::records::RecordError;

/// Why the control server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another process answers on the socket.
    #[error("control socket {0} is in use: another chatd is already serving on it")]
    InUse(PathBuf),
    /// Something other than a socket sits at the socket's path.
    #[error("control socket {0} exists and is not a socket; remove it or pass --control")]
    NotASocket(PathBuf),
    /// The socket's directory is unusable.
    #[error(transparent)]
    Dir(#[from] PathError),
    /// A file-system or socket operation failed.
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TCP listener could not be bound.
    #[error("control.tcp_listen: cannot listen on {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The reflection service could not be built.
    #[error("control server: reflection: {0}")]
    Reflection(String),
    /// The gRPC server failed.
    #[error("control server: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// One of the server's own tasks (an accept loop, the health follower) ended or panicked
    /// while it served: the server stops rather than run half deaf.
    #[error("control server: {0} ended unexpectedly")]
    Helper(&'static str),
}

/// An error a control service reports to its client.
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
                "the ring driver is not running; the message was not sent".into(),
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

impl From<OffloadError> for Status {
    fn from(err: OffloadError) -> Status {
        ApiError::from(err).into()
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match err {
            ApiError::InvalidArgument(m) => Status::new(Code::InvalidArgument, m),
            ApiError::NotFound(m) => Status::new(Code::NotFound, m),
            ApiError::AlreadyExists(m) => Status::new(Code::AlreadyExists, m),
            ApiError::FailedPrecondition(m) => Status::new(Code::FailedPrecondition, m),
            ApiError::Unavailable(m) => Status::new(Code::Unavailable, m),
            ApiError::ResourceExhausted(m) => Status::new(Code::ResourceExhausted, m),
            ApiError::Unauthenticated(m) => Status::new(Code::Unauthenticated, m),
            ApiError::PermissionDenied(m) => Status::new(Code::PermissionDenied, m),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error in control API");
                Status::new(Code::Internal, "internal error (see chatd's log)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_map_to_grpc_codes() {
        let cases = [
            (
                ApiError::InvalidArgument("bad".into()),
                Code::InvalidArgument,
                "bad",
            ),
            (
                ApiError::NotFound("no such room".into()),
                Code::NotFound,
                "no such room",
            ),
            (
                ApiError::Unavailable("not joined".into()),
                Code::Unavailable,
                "not joined",
            ),
            (
                ApiError::ResourceExhausted("slow down".into()),
                Code::ResourceExhausted,
                "slow down",
            ),
            (
                ApiError::Unauthenticated("token".into()),
                Code::Unauthenticated,
                "token",
            ),
            (
                ApiError::PermissionDenied("group".into()),
                Code::PermissionDenied,
                "group",
            ),
            (
                ApiError::field("room", "bad"),
                Code::InvalidArgument,
                "room: bad",
            ),
            (
                SendError::Busy.into(),
                Code::ResourceExhausted,
                "too many messages waiting to be sent to the ring; try again shortly",
            ),
            (
                SendError::Text(crate::chat::envelope::TextError::Empty).into(),
                Code::InvalidArgument,
                "text: must not be empty or only whitespace",
            ),
            (
                SendError::Text(crate::chat::envelope::TextError::Control(0x1b)).into(),
                Code::InvalidArgument,
                "text: contains the control character U+001B; only newline and tab are allowed",
            ),
            (
                OffloadError::Busy {
                    kind: crate::offload::Work::Search,
                    running: 2,
                    queued: 32,
                    waited_ms: 5000,
                }
                .into(),
                Code::ResourceExhausted,
                "this node is busy with search calls (2 running, 32 more waiting at most, \
                 5000 ms waited); retry shortly",
            ),
        ];
        for (err, code, message) in cases {
            let status = Status::from(err);
            assert_eq!((status.code(), status.message()), (code, message));
        }
        let status = Status::from(ApiError::Internal("db handle poisoned".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(
            !status.message().contains("poisoned"),
            "internal details stay in the log"
        );
    }
}
