//! The daemon's top-level error, and the exit status each kind of failure maps to.

use std::net::SocketAddr;

use crate::config::ConfigError;
use crate::control::ControlError;
use crate::identity::IdentityError;
use crate::paths::PathError;

/// Exit status: could not start, or failed while running.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: the UDP port is in use (`EX_TEMPFAIL`: a later retry may work, so the unit
/// restarts on it).
pub const EXIT_PORT_IN_USE: u8 = 75;
/// Exit status: a permission problem — a directory or key owned by another user, open to
/// others, or not accessible (`EX_NOPERM`; the unit does not restart on it).
pub const EXIT_PERMISSION: u8 = 77;
/// Exit status: invalid configuration (`EX_CONFIG` from sysexits.h; the unit does not restart
/// on it).
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
    /// The DHT record file could not be opened.
    #[error(transparent)]
    Records(#[from] crate::records::RecordStoreError),
    /// The private-message store could not be opened.
    #[error(transparent)]
    Private(#[from] crate::dm::store::StoreError),
    /// The blob store could not be opened.
    #[error("files: {0}")]
    Files(#[from] crate::files::FilesError),
    /// The operator's account could not be opened.
    #[error("the operator's account: {0}")]
    People(#[from] crate::people::PeopleError),
    /// The peer-facing UDP address could not be bound.
    #[error("node.listen: cannot bind UDP {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The QUIC transport could not start.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// LAN discovery (`discovery.mdns`) could not start.
    #[error("discovery.mdns: {0}")]
    Lan(#[from] crate::discovery::mdns::LanError),
    /// The web view could not start.
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    /// The IRC front door could not start.
    #[error(transparent)]
    Irc(#[from] crate::irc::IrcError),
    /// The event log (`log.events`) could not start.
    #[error("log.events: {0}")]
    EventLog(#[from] crate::eventlog::EventLogError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A part of the daemon that must run as long as it does ended.
    #[error("{0} unexpectedly")]
    TaskEnded(crate::supervise::Ended),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        use std::io::ErrorKind::{AddrInUse, PermissionDenied};
        match self {
            Error::Config(_) => EXIT_CONFIG,
            Error::Listen { source, .. } if source.kind() == AddrInUse => EXIT_PORT_IN_USE,
            Error::Listen { source, .. } if source.kind() == PermissionDenied => EXIT_PERMISSION,
            Error::Web(crate::web::WebError::Bind { source, .. }) if source.kind() == AddrInUse => {
                EXIT_PORT_IN_USE
            }
            Error::Irc(crate::irc::IrcError::Bind { source, .. }) if source.kind() == AddrInUse => {
                EXIT_PORT_IN_USE
            }
            Error::Path(PathError::WrongOwner { .. } | PathError::Untrusted { .. }) => {
                EXIT_PERMISSION
            }
            Error::Path(PathError::Io { source, .. }) if source.kind() == PermissionDenied => {
                EXIT_PERMISSION
            }
            Error::Identity(IdentityError::Permissions { .. }) => EXIT_PERMISSION,
            Error::EventLog(crate::eventlog::EventLogError::Open { source, .. })
                if source.kind() == PermissionDenied =>
            {
                EXIT_PERMISSION
            }
            Error::Identity(IdentityError::Io { source, .. })
                if source.kind() == PermissionDenied =>
            {
                EXIT_PERMISSION
            }
            _ => EXIT_FAILURE,
        }
    }
}
