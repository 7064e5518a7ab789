//! The daemon's top-level error, and the exit status each kind of failure maps to.

use std::net::SocketAddr;

use crate::config::ConfigError;
use crate::control::ControlError;
use crate::identity::IdentityError;
use crate::paths::PathError;

/// Exit status: could not start, or failed while running.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: invalid configuration (`EX_CONFIG` from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Why chatd stopped with an error. Every variant displays as one line saying what and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory is unusable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The node key is missing, unreadable or corrupt.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The control socket could not be served.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The chat history could not be opened.
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
    /// The peer-facing UDP address could not be bound.
    #[error("node.listen: cannot bind UDP {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The QUIC transport could not start.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => EXIT_CONFIG,
            _ => EXIT_FAILURE,
        }
    }
}
