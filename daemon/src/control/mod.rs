//! The control server: gRPC (`chat.v1`) on a Unix socket.
//!
//! [`ControlSocket::bind`] prepares the socket: it creates the directory (mode 0700) if missing,
//! replaces a stale socket file that nobody answers on, refuses to start if something does
//! answer (another chatd), and makes the socket mode 0660 so the owner's group may use it —
//! before the socket appears at its path, so it is never there with another mode.
//! [`ControlSocket::serve`] runs the services until shutdown; the socket file is removed when the
//! [`ControlSocket`] is dropped, unless another process has replaced it meanwhile.
//!
//! One file per gRPC service (`node_service.rs`, `chat_service.rs`, `record_service.rs`,
//! `user_service.rs`, `private_service.rs`; the standard health and
//! reflection services in `standard.rs`); who may call is decided in `access.rs` (peer
//! credentials on the socket, a bearer token on the optional TCP listener, and
//! `access::require_operator` for the operator's calls: `Leave`, `ReadLog`); the TCP
//! listener's connection caps and timeouts are in `tcp.rs`; errors become `tonic::Status` in
//! one place, `error.rs`.
//!
//! The handlers are thin adapters over the services' client operations (`crate::ops`): they
//! take the caller from the connection, call the operation and map its error. The web view is
//! a peer front door over the same operations; it never calls these handlers, nor they it.

pub mod access;
mod chat_service;
mod error;
mod file_service;
mod node_service;
#[cfg(test)]
#[path = "offload_tests.rs"]
mod offload_tests;
mod private_service;
mod quiet;
mod record_service;
mod standard;
pub mod tcp;
#[cfg(test)]
mod testkit;
mod trace;
mod user_service;

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::node_service_server::NodeServiceServer;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{Instrument, info, warn};

pub use chat_service::ChatApi;
pub use error::{ApiError, ControlError};
pub use file_service::FileApi;
pub use node_service::NodeApi;
pub use private_service::PrivateApi;
pub use record_service::RecordApi;
pub use user_service::UserApi;

use access::{Conn, Gate, UnixPolicy};
use chat_proto::v1::chat_service_server::ChatServiceServer;
use chat_proto::v1::file_service_server::FileServiceServer;
use chat_proto::v1::private_service_server::PrivateServiceServer;
use chat_proto::v1::record_service_server::RecordServiceServer;
use chat_proto::v1::user_service_server::UserServiceServer;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::Access;
use crate::eventlog::stats::Activity;

/// What the control services serve: the services, built before the API (which depends on
/// them, never the reverse), and the other front doors' links.
pub struct Services {
    pub node: Arc<Node>,
    /// The chat service's operations (shared with the web view: one send limit per client).
    pub chat: crate::ops::ChatOps,
    pub records: Arc<crate::records::Records>,
    pub people: Arc<crate::people::People>,
    pub dm: Arc<crate::dm::Dm>,
    /// The files service (`FileService`).
    pub files: Arc<crate::files::Files>,
    /// The node's status (the same one the web view and the event log read).
    pub status: crate::status::NodeStatus,
    /// The web view, when it runs (`GetWebLink`).
    pub web: Option<Arc<dyn crate::ops::WebFront>>,
    /// The IRC front door, when it runs (`GetIrcPassword`).
    pub irc: Option<Arc<dyn crate::ops::IrcFront>>,
}

/// Connections accepted but not yet picked up by the server, at most.
const ACCEPT_BACKLOG: usize = 64;

use crate::node::Node;
use crate::paths;
use crate::shutdown::Shutdown;

/// Mode of the control socket: owner and group may connect.
pub const SOCKET_MODE: u32 = 0o660;
/// How long to wait for an existing socket's owner to answer before calling it in use.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A bound control socket, removed from the file system on drop.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    guard: SocketFile,
}

impl ControlSocket {
    /// Binds the control socket at `path` (see the module docs for the checks).
    pub async fn bind(path: &Path) -> Result<ControlSocket, ControlError> {
        ControlSocket::bind_for_group(path, None).await
    }

    /// Binds the control socket at `path`, owned by group `gid` (`control.group`) if given, so
    /// that the group's members pass the file mode; their credentials are checked again on
    /// every connection.
    pub async fn bind_for_group(
        path: &Path,
        gid: Option<u32>,
    ) -> Result<ControlSocket, ControlError> {
        paths::prepare_socket_dir(path)?;
        let io_err = |source| ControlError::Io {
            path: path.into(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(ControlError::NotASocket(path.into()));
            }
            Ok(_) => match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    info!(socket = %path.display(), "replacing stale control socket");
                    std::fs::remove_file(path).map_err(io_err)?;
                }
                Ok(Err(e)) => return Err(io_err(e)),
                Ok(Ok(_)) | Err(_) => return Err(ControlError::InUse(path.into())),
            },
        }
        // Bind under a temporary name, set the mode, then link it into place: the socket
        // never appears at `path` with the wrong mode, and link() fails rather than replace a
        // socket another chatd created meanwhile.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".chatd-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let tmp_err = |source| ControlError::Io {
            path: tmp.clone(),
            source,
        };
        let listener = UnixListener::bind(&tmp).map_err(tmp_err)?;
        let linked = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(SOCKET_MODE))
            .and_then(|()| match gid {
                Some(gid) => std::os::unix::fs::chown(&tmp, None, Some(gid)),
                None => Ok(()),
            })
            .and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => ControlError::InUse(path.into()),
            _ => io_err(e),
        })?;
        let guard = SocketFile::new(path).map_err(io_err)?;
        Ok(ControlSocket { listener, guard })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.guard.path
    }
}

impl ControlSocket {
    /// Serves every control service until `shutdown` fires, then stops accepting and lets
    /// in-flight calls finish; the caller bounds how long it waits for that. The socket file
    /// is removed when this future completes or is dropped. With `access.tcp_listen` set, the
    /// same services are served there too (bearer token required).
    pub async fn serve(
        self,
        services: Services,
        access: &Access,
        mut shutdown: Shutdown,
    ) -> Result<(), ControlError> {
        let Services {
            node,
            chat,
            records,
            people,
            dm,
            files,
            status,
            web,
            irc,
        } = services;
        let ControlSocket { listener, guard } = self;
        let (tx, rx) = mpsc::channel::<io::Result<Conn>>(ACCEPT_BACKLOG);
        let policy = UnixPolicy {
            own_uid: rustix::process::geteuid().as_raw(),
            group: access.group.as_ref().map(|g| g.1),
        };
        let activity = node.activity().clone();
        // The server's own tasks: if one ends while it serves, the server stops with an error
        // (and the app with it), never half deaf.
        // The accept loops return only once the server dropped its end of the queue (it is
        // stopping): they then wait to be aborted, so only a panic reports here.
        let mut helpers = tokio::task::JoinSet::new();
        let mut names = std::collections::HashMap::new();
        {
            let (tx, activity) = (tx.clone(), activity.clone());
            let h = helpers.spawn(
                async move {
                    accept_unix(listener, policy, tx, activity).await;
                    std::future::pending::<()>().await;
                }
                .in_current_span(),
            );
            names.insert(h.id(), "the Unix accept loop");
        }
        if let Some(addr) = access.tcp_listen {
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| ControlError::Tcp { addr, source })?;
            let local = tcp.local_addr().unwrap_or(addr);
            info!(tcp = %local, "control API also on TCP (bearer token required)");
            let admission = tcp::Admission::new(tcp::Limits::default());
            let h = helpers.spawn(
                async move {
                    accept_tcp(tcp, admission, tx, activity).await;
                    std::future::pending::<()>().await;
                }
                .in_current_span(),
            );
            names.insert(h.id(), "the TCP accept loop");
        } else {
            drop(tx);
        }

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in standard::HEALTH_SERVICES {
            health
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        {
            let node = node.clone();
            let h = helpers.spawn(standard::follow_membership(health, node).in_current_span());
            names.insert(h.id(), "the health follower");
        }
        let (reflection_v1, reflection_v1alpha) =
            standard::reflection().map_err(|e| ControlError::Reflection(e.to_string()))?;
        let gate = Gate::new(access.token.as_ref().map(|t| t.1.clone()));
        let result = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(tcp::KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(tcp::KEEPALIVE_TIMEOUT))
            .layer(tonic::service::InterceptorLayer::new(move |r| {
                gate.check(r)
            }))
            .add_service(NodeServiceServer::new(
                NodeApi::new(node.clone(), people.clone()).with_fronts(status, web, irc),
            ))
            .add_service(UserServiceServer::new(UserApi::over(
                crate::ops::UserOps::new(people.clone(), node.clone()),
            )))
            .add_service(ChatServiceServer::new(ChatApi::over(chat)))
            .add_service(RecordServiceServer::new(RecordApi::new(
                records,
                people.clone(),
            )))
            .add_service(PrivateServiceServer::new(PrivateApi::new(
                dm.clone(),
                people.clone(),
                node.clone(),
            )))
            .add_service(FileServiceServer::new(
                FileApi::over(crate::ops::FileOps::new(files)).with_private(
                    crate::ops::private::PrivateOps::new(dm, people.clone(), node.clone()),
                ),
            ))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(
                ReceiverStream::new(rx),
                async move { shutdown.recv().await },
            );
        let result = tokio::select! {
            r = result => r.map_err(ControlError::Serve),
            Some(ended) = helpers.join_next_with_id() => {
                let id = match &ended {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                Err(ControlError::Helper(names.get(&id).copied().unwrap_or("a task")))
            }
        };
        helpers.shutdown().await;
        drop(guard);
        result
    }
}

/// Accepts Unix connections, recording each peer's credentials.
async fn accept_unix(
    listener: UnixListener,
    policy: UnixPolicy,
    tx: mpsc::Sender<io::Result<Conn>>,
    activity: Arc<Activity>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let info = policy.classify(&stream);
                let stream = match quiet::QuietUnix::new(stream) {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "control socket: cannot watch a new connection");
                        continue;
                    }
                };
                let conn = Conn::Unix(stream, info, activity.connection());
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts TCP connections within `admission`'s caps (see `tcp.rs`); one over a cap is
/// closed at once.
async fn accept_tcp(
    listener: TcpListener,
    admission: tcp::Admission,
    tx: mpsc::Sender<io::Result<Conn>>,
    activity: Arc<Activity>,
) {
    let mut refused: u64 = 0;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Some(slot) = admission.admit(addr.ip()) else {
                    drop(stream);
                    refused += 1;
                    if refused.is_power_of_two() {
                        warn!(client = %addr, refused, open = admission.open(),
                            "control TCP listener: connection cap reached; closing new connections");
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let info = access::ClientInfo::Tcp { addr };
                let conn = Conn::Tcp(admission.guard(stream, slot), info, activity.connection());
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(error = %e, "control TCP listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Removes the socket file on drop, if it is still the one we created (same device and inode).
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    fn new(path: &Path) -> io::Result<SocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.into(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    warn!(socket = %self.path.display(), error = %e, "cannot remove control socket");
                }
            }
            _ => {} // already gone, or replaced by someone else: not ours to remove
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("exists").mode() & 0o777
    }

    #[tokio::test]
    async fn creates_directory_and_socket_with_modes_and_removes_on_drop() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("run/chatd/control.sock");
        let socket = ControlSocket::bind(&path).await.expect("bind");
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        assert_eq!(mode(&path), SOCKET_MODE);
        let entries = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .count();
        assert_eq!(entries, 1, "no temporary socket left behind");
        UnixStream::connect(&path).await.expect("connectable");
        drop(socket);
        assert!(!path.exists(), "socket removed on drop");
    }

    #[tokio::test]
    async fn replaces_a_stale_socket() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("control.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
        assert!(path.exists(), "stale socket file left behind");
        let _socket = ControlSocket::bind(&path)
            .await
            .expect("stale socket replaced");
        UnixStream::connect(&path).await.expect("ours now");
    }

    #[tokio::test]
    async fn refuses_a_live_socket_and_leaves_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("control.sock");
        let first = ControlSocket::bind(&path).await.expect("first");
        let err = ControlSocket::bind(&path)
            .await
            .expect_err("second refused");
        assert!(matches!(err, ControlError::InUse(_)), "{err}");
        assert!(err.to_string().contains("another chatd"), "{err}");
        UnixStream::connect(&path)
            .await
            .expect("first still reachable");
        drop(first);
    }

    #[tokio::test]
    async fn refuses_to_replace_a_regular_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("control.sock");
        std::fs::write(&path, b"precious").expect("write");
        let err = ControlSocket::bind(&path).await.expect_err("refused");
        assert!(matches!(err, ControlError::NotASocket(_)), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), b"precious");
    }

    #[tokio::test]
    async fn does_not_remove_a_socket_someone_else_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("control.sock");
        let ours = ControlSocket::bind(&path).await.expect("bind");
        std::fs::remove_file(&path).expect("remove");
        let _theirs = std::os::unix::net::UnixListener::bind(&path).expect("rebind");
        drop(ours);
        assert!(path.exists(), "the other process's socket is left alone");
    }
}
