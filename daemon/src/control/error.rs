//! Errors of the control layer, and the one place where domain errors become `tonic::Status`.
//!
//! The services' client operations (`crate::ops`) return [`ApiError`], whose kind and message
//! are decided there for every front door; `From<ApiError> for Status` decides the gRPC code.
//! Internal details are logged, not sent.

use std::path::PathBuf;

use tonic::{Code, Status};

use crate::offload::OffloadError;
use crate::paths::PathError;

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

pub use crate::ops::ApiError;

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
    use crate::chat::SendError;

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
