//! The default location of chatd's control socket, shared by chatd and its clients.
//!
//! The first of these that applies wins:
//! 1. `$RUNTIME_DIRECTORY/control.sock` — systemd's `RuntimeDirectory=` (first entry if several);
//! 2. `$XDG_RUNTIME_DIR/chatd/control.sock` — a per-user runtime directory (a desktop session);
//! 3. `/tmp/chatd-$UID/control.sock` — a per-user directory that chatd creates with mode 0700
//!    and whose owner and mode it verifies before use, because `/tmp` is shared.
//!
//! Empty and relative values are ignored, as the XDG base directory specification asks.
//! Nothing here touches the file system: chatd creates and checks directories itself.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// File name of the control socket inside its directory.
pub const SOCKET_FILE: &str = "control.sock";

/// The default control socket path for the current process's environment and user.
pub fn default_control_socket() -> PathBuf {
    default_control_socket_from(|name| std::env::var_os(name), current_uid())
}

/// The default control socket path, reading the environment through `var`.
pub fn default_control_socket_from(var: impl Fn(&str) -> Option<OsString>, uid: u32) -> PathBuf {
    if let Some(dir) = env_dir(&var, "RUNTIME_DIRECTORY") {
        return dir.join(SOCKET_FILE);
    }
    if let Some(dir) = env_dir(&var, "XDG_RUNTIME_DIR") {
        return dir.join("chatd").join(SOCKET_FILE);
    }
    shared_tmp_dir(uid).join(SOCKET_FILE)
}

/// The per-user fallback directory under `/tmp`: `/tmp/chatd-UID`.
///
/// Because anyone can create entries in `/tmp`, chatd only uses this directory if it is owned by
/// the current user and inaccessible to group and others.
pub fn shared_tmp_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/chatd-{uid}"))
}

/// The real user id of the current process.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// A directory from an environment variable: the first entry of a colon-separated list (systemd
/// passes one entry per configured directory), absolute paths only.
pub fn env_dir(var: &impl Fn(&str) -> Option<OsString>, name: &str) -> Option<PathBuf> {
    let value = var(name)?;
    let first = value
        .as_bytes()
        .split(|&b| b == b':')
        .next()
        .unwrap_or_default();
    let path = PathBuf::from(OsStr::from_bytes(first));
    is_usable(&path).then_some(path)
}

fn is_usable(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.is_absolute()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn runtime_directory_wins() {
        let var = env(&[
            ("RUNTIME_DIRECTORY", "/run/chatd"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ]);
        assert_eq!(
            default_control_socket_from(var, 1),
            Path::new("/run/chatd/control.sock")
        );
    }

    #[test]
    fn runtime_directory_list_takes_first_entry() {
        let var = env(&[("RUNTIME_DIRECTORY", "/run/a:/run/b")]);
        assert_eq!(
            default_control_socket_from(var, 1),
            Path::new("/run/a/control.sock")
        );
    }

    #[test]
    fn xdg_runtime_dir_gets_a_chatd_subdirectory() {
        let var = env(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            default_control_socket_from(var, 1000),
            Path::new("/run/user/1000/chatd/control.sock")
        );
    }

    #[test]
    fn falls_back_to_per_user_tmp_dir() {
        assert_eq!(
            default_control_socket_from(env(&[]), 1234),
            Path::new("/tmp/chatd-1234/control.sock")
        );
    }

    #[test]
    fn empty_and_relative_values_are_ignored() {
        let var = env(&[
            ("RUNTIME_DIRECTORY", ""),
            ("XDG_RUNTIME_DIR", "relative/dir"),
        ]);
        assert_eq!(
            default_control_socket_from(var, 7),
            Path::new("/tmp/chatd-7/control.sock")
        );
    }
}
