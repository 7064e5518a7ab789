//! Errors of the control layer, and the one place where domain errors become `tonic::Status`.
//!
//! Services return [`ApiError`] (or anything convertible into it); `From<ApiError> for Status`
//! decides the gRPC code and the message a client sees. Internal details are logged, not sent.

use std::path::PathBuf;

use tonic::{Code, Status};

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
    /// The gRPC server failed.
    #[error("control server: {0}")]
    Serve(#[source] tonic::transport::Error),
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
    /// A bug or an unexpected failure inside chatd. Details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match err {
            ApiError::InvalidArgument(m) => Status::new(Code::InvalidArgument, m),
            ApiError::NotFound(m) => Status::new(Code::NotFound, m),
            ApiError::Unavailable(m) => Status::new(Code::Unavailable, m),
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
