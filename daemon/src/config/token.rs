//! Reading the control API's bearer token file and resolving `control.group`.
//!
//! The token file must be a regular file that group and others cannot access (mode 0600 or
//! stricter): a readable token is a leaked token, so chatd refuses to start rather than serve
//! with it. The token is the file's first line, at least [`MIN_TOKEN_LEN`] characters.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Token;

/// Shortest token accepted.
pub const MIN_TOKEN_LEN: usize = 16;
/// Largest token file read.
const MAX_FILE: u64 = 4096;

/// Reads the token from `path`; the error is the problem, for a message naming the key.
pub fn read(path: &Path) -> Result<(std::path::PathBuf, Token), String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{shown} has mode {mode:04o}: a token file must not be accessible to group or others; fix it with: chmod 600 {shown}"
        ));
    }
    if meta.len() > MAX_FILE {
        return Err(format!("{shown} is larger than {MAX_FILE} bytes"));
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    file.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "{shown}: the token (first line) must be at least {MIN_TOKEN_LEN} printable ASCII characters without spaces"
        ));
    }
    Ok((
        std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
        Token(zeroize::Zeroizing::new(token.to_owned())),
    ))
}

/// The gid of group `name` (a name from /etc/group, or a number).
pub fn lookup_group(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let group = fields.next()?;
        let gid = fields.nth(1)?;
        (group == name).then(|| gid.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_a_private_token_and_refuses_a_shared_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let (_, token) = read(&path).expect("reads");
        assert_eq!(token.0.as_str(), "0123456789abcdef0123");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = read(&path).expect_err("group-readable refused");
        assert!(
            err.contains("mode 0640") && err.contains("chmod 600"),
            "{err}"
        );
        std::fs::write(&path, "short\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read(&path).expect_err("short").contains("at least 16"));
    }

    #[test]
    fn resolves_groups_by_name_or_number() {
        assert_eq!(lookup_group("0"), Some(0));
        assert_eq!(lookup_group("root"), Some(0));
        assert_eq!(lookup_group("no-such-group-here"), None);
    }
}
