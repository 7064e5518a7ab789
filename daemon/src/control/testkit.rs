//! Test fixtures for the control services: a node with its records and people services (no
//! ring), and requests made as each kind of caller — the operator, another admitted local
//! user (a `control.group` member) and a TCP guest — the way the server's connection info
//! reaches them.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tonic::Request;

use super::access::ClientInfo;
use crate::node::Node;
use crate::people::{People, PeopleConfig};
use crate::records::Records;

/// A node's services, without a ring.
pub struct Fixture {
    /// Holds the data directory.
    pub _dir: tempfile::TempDir,
    pub node: Arc<Node>,
    pub records: Arc<Records>,
    pub people: Arc<People>,
}

/// A fresh node named `bob`.
pub fn fixture() -> Fixture {
    let key = || SigningKey::from_bytes(&[5; 32]);
    let node = Arc::new(Node::new(
        key().verifying_key(),
        "bob".parse().ok(),
        "127.0.0.1:9".parse().expect("addr"),
        vec![],
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = crate::chat::Chat::in_memory(key(), None, &crate::chat::ChatConfig::default())
        .expect("chat");
    let (records, _) = Records::open(dir.path(), key()).expect("records");
    let people = People::open(
        dir.path(),
        node.id(),
        chat,
        records.clone(),
        PeopleConfig {
            wish: "bob".parse().expect("nick"),
            away_after: Duration::ZERO,
            nick_ttl: Duration::from_secs(3600),
        },
    )
    .expect("people");
    Fixture {
        _dir: dir,
        node,
        records,
        people,
    }
}

/// chatd's own user on the Unix socket: the operator.
pub fn operator() -> ClientInfo {
    ClientInfo::Unix {
        uid: rustix::process::geteuid().as_raw(),
        admitted: true,
    }
}

/// Another local user admitted through `control.group` (neither root nor chatd's user).
pub fn local_account() -> ClientInfo {
    let own = rustix::process::geteuid().as_raw();
    ClientInfo::Unix {
        uid: if own == 4242 { 4243 } else { 4242 },
        admitted: true,
    }
}

/// The TCP token's holder.
pub fn guest() -> ClientInfo {
    ClientInfo::Tcp {
        addr: "127.0.0.1:40000".parse().expect("addr"),
    }
}

/// `message` as sent by `caller`.
pub fn from<T>(caller: ClientInfo, message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.extensions_mut().insert(caller);
    r
}
