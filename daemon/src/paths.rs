//! Where chatd keeps its files, and the checks it makes before trusting a directory.
//!
//! - Data directory (node key, later the database): `--data-dir`, else `$STATE_DIRECTORY`
//!   (systemd's `StateDirectory=`), else `$XDG_DATA_HOME/chatd`, else `~/.local/share/chatd`.
//!   Created with mode 0700 when missing, and locked so that two daemons cannot share one
//!   identity.
//! - Control socket: see [`chat_proto::paths`], shared with chatctl so both agree on the default.
//!   Its directory is created with mode 0700 when missing; the shared `/tmp/chatd-UID` fallback
//!   must moreover be owned by us and closed to group and others.

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::env::Env;

pub use chat_proto::paths::{SOCKET_FILE, current_uid, shared_tmp_dir};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "chatd.lock";

/// Errors preparing a directory.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// No variable to derive a default data directory from.
    #[error(
        "node.data_dir: no default (none of $STATE_DIRECTORY, $XDG_DATA_HOME, $HOME is set); pass --data-dir"
    )]
    NoDataDir,
    /// Creating or inspecting a directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A path that must be a directory is something else.
    #[error("{what} {path} exists but is not a directory")]
    NotADirectory { what: &'static str, path: PathBuf },
    /// The shared `/tmp` fallback directory is not safely ours.
    #[error(
        "control socket directory {path} is {problem}; it must be owned by uid {uid} with mode 0700 (remove it or pass --control)"
    )]
    Untrusted {
        path: PathBuf,
        problem: String,
        uid: u32,
    },
    /// The data directory belongs to another user.
    #[error(
        "data directory {path} is owned by uid {owner}, but chatd runs as uid {uid}; give it to chatd's user (chown -R {uid} {path}) or pass another --data-dir"
    )]
    WrongOwner { path: PathBuf, owner: u32, uid: u32 },
    /// Another process holds the data directory's lock.
    #[error("data directory {0} is in use by another chatd")]
    DataDirInUse(PathBuf),
}

/// The default data directory for `env`.
pub fn default_data_dir(env: &Env) -> Result<PathBuf, PathError> {
    let var = env.lookup();
    if let Some(dir) = chat_proto::paths::env_dir(&var, "STATE_DIRECTORY") {
        return Ok(dir);
    }
    if let Some(dir) = chat_proto::paths::env_dir(&var, "XDG_DATA_HOME") {
        return Ok(dir.join("chatd"));
    }
    if let Some(home) = chat_proto::paths::env_dir(&var, "HOME") {
        return Ok(home.join(".local/share/chatd"));
    }
    Err(PathError::NoDataDir)
}

/// The default control socket for `env`.
pub fn default_control_socket(env: &Env) -> PathBuf {
    chat_proto::paths::default_control_socket_from(env.lookup(), current_uid())
}

/// Creates `path` (and missing parents) with mode 0700 if it does not exist; checks that it is
/// a directory if it does.
pub fn ensure_dir(what: &'static str, path: &Path) -> Result<(), PathError> {
    let io_err = |source| PathError::Io {
        what,
        path: path.into(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(PathError::NotADirectory {
            what,
            path: path.into(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(io_err),
        Err(e) => Err(io_err(e)),
    }
}

/// Prepares the directory that will hold the control socket at `socket`.
pub fn prepare_socket_dir(socket: &Path) -> Result<(), PathError> {
    let what = "control socket directory";
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(()); // a bare file name: the current directory
    };
    ensure_dir(what, dir)?;
    let uid = current_uid();
    if dir == shared_tmp_dir(uid) {
        check_private_dir(dir, uid)?;
    }
    Ok(())
}

/// Checks that `dir` is a real directory (not a symlink) owned by `uid` and closed to group
/// and others — what a directory under a world-writable parent must be before we trust it.
pub fn check_private_dir(dir: &Path, uid: u32) -> Result<(), PathError> {
    let what = "control socket directory";
    let meta = std::fs::symlink_metadata(dir).map_err(|source| PathError::Io {
        what,
        path: dir.into(),
        source,
    })?;
    let problem = if meta.file_type().is_symlink() {
        Some("a symbolic link".to_owned())
    } else if meta.uid() != uid {
        Some(format!("owned by uid {}", meta.uid()))
    } else if meta.mode() & 0o077 != 0 {
        Some(format!("mode {:04o}", meta.mode() & 0o7777))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(PathError::Untrusted {
            path: dir.into(),
            problem,
            uid,
        }),
        None => Ok(()),
    }
}

/// Checks that the data directory belongs to `uid`: it holds the node's identity, and another
/// user's directory (even one we can write, e.g. as root) is a mistake to refuse, not to repair.
pub fn check_owner(dir: &Path, uid: u32) -> Result<(), PathError> {
    let meta = std::fs::metadata(dir).map_err(|source| PathError::Io {
        what: "data directory",
        path: dir.into(),
        source,
    })?;
    if meta.uid() != uid {
        return Err(PathError::WrongOwner {
            path: dir.into(),
            owner: meta.uid(),
            uid,
        });
    }
    Ok(())
}

/// An exclusive lock on a data directory, held for the daemon's lifetime.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates the data directory if needed, checks that it is ours, and takes its lock.
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, PathError> {
    ensure_dir("data directory", dir)?;
    check_owner(dir, current_uid())?;
    let path = dir.join(LOCK_FILE);
    let io_err = |source| PathError::Io {
        what: "data directory",
        path: dir.into(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err)?;
    use rustix::fs::{FlockOperation, flock};
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(PathError::DataDirInUse(dir.into())),
        Err(e) => Err(io_err(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn data_dir_defaults_in_order() {
        let env = Env::from_pairs([
            ("STATE_DIRECTORY", "/var/lib/chatd"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            default_data_dir(&env).ok(),
            Some(PathBuf::from("/var/lib/chatd"))
        );
        let env = Env::from_pairs([("XDG_DATA_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(default_data_dir(&env).ok(), Some(PathBuf::from("/x/chatd")));
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(
            default_data_dir(&env).ok(),
            Some(PathBuf::from("/h/.local/share/chatd"))
        );
        assert!(matches!(
            default_data_dir(&Env::default()),
            Err(PathError::NoDataDir)
        ));
    }

    #[test]
    fn ensure_dir_creates_private_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/b");
        ensure_dir("test", &dir).expect("created");
        let mode = std::fs::metadata(&dir)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        ensure_dir("test", &dir).expect("idempotent");
    }

    #[test]
    fn ensure_dir_refuses_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        std::fs::write(&file, b"").expect("write");
        let err = ensure_dir("test", &file).expect_err("refused");
        assert!(matches!(err, PathError::NotADirectory { .. }), "{err}");
    }

    #[test]
    fn private_dir_check_rejects_open_foreign_or_linked_dirs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("d");
        ensure_dir("test", &dir).expect("created");
        let uid = current_uid();
        check_private_dir(&dir, uid).expect("0700 and ours");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = check_private_dir(&dir, uid).expect_err("mode 0755");
        assert!(err.to_string().contains("is mode 0755"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");

        let err = check_private_dir(&dir, uid.wrapping_add(1)).expect_err("not ours");
        assert!(
            err.to_string().contains(&format!("owned by uid {uid}")),
            "{err}"
        );

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        let err = check_private_dir(&link, uid).expect_err("symlink");
        assert!(err.to_string().contains("a symbolic link"), "{err}");
    }

    #[test]
    fn a_data_dir_of_another_user_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let uid = current_uid();
        check_owner(tmp.path(), uid).expect("ours");
        let err = check_owner(tmp.path(), uid.wrapping_add(1)).expect_err("not ours");
        assert!(
            matches!(err, PathError::WrongOwner { owner, .. } if owner == uid),
            "{err}"
        );
        assert!(err.to_string().contains("chown -R"), "{err}");
    }

    #[test]
    fn data_dir_lock_is_exclusive() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = lock_data_dir(tmp.path()).expect("first lock");
        assert!(matches!(
            lock_data_dir(tmp.path()),
            Err(PathError::DataDirInUse(_))
        ));
        drop(first);
        lock_data_dir(tmp.path()).expect("lock is released on drop");
    }
}
