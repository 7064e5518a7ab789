//! Who is on the other end of a client connection (a local process on the Unix socket, or a
//! remote client over TCP): the API layer learns it, the services (people's accounts, send
//! limits) decide by it. A foundation type, so that services need not depend on the API.

use std::net::SocketAddr;

/// Who is on the other end of a control connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientInfo {
    /// A local process on the Unix socket.
    Unix {
        /// Its user id.
        uid: u32,
        /// Whether it may use the API.
        admitted: bool,
    },
    /// A remote client over TCP.
    Tcp {
        /// Its address.
        addr: SocketAddr,
    },
}

impl ClientInfo {
    /// The key the per-client send rate limit uses: the user, or the IP address.
    pub fn rate_key(&self) -> String {
        match self {
            ClientInfo::Unix { uid, .. } => format!("uid:{uid}"),
            ClientInfo::Tcp { addr } => format!("ip:{}", addr.ip()),
        }
    }
}

/// chatd itself as its operator, for the in-process calls it makes on the operator's behalf
/// (the statistics line of the operator's logs).
pub fn this_process() -> ClientInfo {
    ClientInfo::Unix {
        uid: rustix::process::geteuid().as_raw(),
        admitted: true,
    }
}

/// Whether the caller is the node's operator: root or chatd's own user (`own_uid`) on the
/// Unix socket — the users who can read the data directory anyway. Members of
/// `control.group`, TCP clients and in-process calls are not.
pub fn is_operator(client: Option<&ClientInfo>, own_uid: u32) -> bool {
    matches!(
        client,
        Some(ClientInfo::Unix { uid, admitted: true }) if *uid == 0 || *uid == own_uid
    )
}
