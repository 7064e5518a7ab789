//! The node's identity: an ed25519 key pair kept in the data directory.
//!
//! The key file `node.key` is created on first start (random seed from the operating system,
//! mode 0600, written to a temporary file and then linked into place so a crash never leaves a
//! half-written key and an existing key is never replaced). On every later start chatd refuses
//! to run if the file is readable by group or others, or if it is corrupt; it never overwrites
//! it. Error messages name the file but never include its contents.
//!
//! File format (text, so an operator can see what it is):
//! ```text
//! chatd-node-key v1
//! secret <64 hex digits: the ed25519 seed>
//! public <64 hex digits: the matching public key, checked on load>
//! ```
//!
//! `NodeId = blake3(public key)`: the node's place on the ring, which it cannot choose.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chat_overlay::NodeId;
use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// File name of the key inside the data directory.
pub const KEY_FILE: &str = "node.key";
const HEADER: &str = "chatd-node-key v1";

/// The node's key pair and the id derived from it.
pub struct Identity {
    key: SigningKey,
    id: NodeId,
}

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or inspecting the key file failed.
    #[error("key file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The key file is readable (or writable) by group or others.
    #[error(
        "key file {path} has mode {mode:04o}: it must not be accessible to group or others; fix it with: chmod 600 {path}"
    )]
    Permissions { path: PathBuf, mode: u32 },
    /// The key file is not a regular file.
    #[error("key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    /// The key file's contents are damaged. It is left untouched.
    #[error(
        "key file {path} is corrupt ({reason}); chatd will not replace it — restore it from a backup or move it away to create a new identity"
    )]
    Corrupt { path: PathBuf, reason: &'static str },
    /// The operating system's random number generator failed.
    #[error("cannot generate a key: {0}")]
    Random(getrandom::Error),
}

/// Whether [`Identity::load_or_create`] found a key or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The key file existed.
    Loaded,
    /// The key file was created now.
    Created,
}

impl Identity {
    /// Loads `DIR/node.key`, creating it if it does not exist. `dir` must exist.
    pub fn load_or_create(dir: &Path) -> Result<(Identity, Origin), IdentityError> {
        Identity::load_or_create_file(dir, KEY_FILE)
    }

    /// Loads `DIR/FILE` (same format and rules as the node key), creating it if it does not
    /// exist: the key of an account this node hosts.
    pub fn load_or_create_file(
        dir: &Path,
        file: &str,
    ) -> Result<(Identity, Origin), IdentityError> {
        let path = dir.join(file);
        match load(&path) {
            Ok(identity) => Ok((identity, Origin::Loaded)),
            Err(IdentityError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                create(dir, &path)
            }
            Err(e) => Err(e),
        }
    }

    fn from_key(key: SigningKey) -> Identity {
        let id = node_id(&key.verifying_key());
        Identity { key, id }
    }

    /// The node's id on the ring.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The public half of the key pair.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The key pair, for signing (the transport and the chat layer use it later).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The node id of the public key whose 32 bytes are `public`.
pub fn node_id_of_bytes(public: &[u8; 32]) -> NodeId {
    NodeId(blake3::hash(public).into())
}

/// `blake3(public key)`.
pub fn node_id(public: &VerifyingKey) -> NodeId {
    NodeId(blake3::hash(public.as_bytes()).into())
}

fn load(path: &Path) -> Result<Identity, IdentityError> {
    let io_err = |source| IdentityError::Io {
        path: path.into(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(IdentityError::NotAFile { path: path.into() });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions {
            path: path.into(),
            mode,
        });
    }
    if meta.len() > 4096 {
        return Err(IdentityError::Corrupt {
            path: path.into(),
            reason: "too large",
        });
    }
    let text = Zeroizing::new(io::read_to_string(file).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => IdentityError::Corrupt {
            path: path.into(),
            reason: "not text",
        },
        _ => io_err(e),
    })?);
    parse(&text)
        .map(Identity::from_key)
        .map_err(|reason| IdentityError::Corrupt {
            path: path.into(),
            reason,
        })
}

fn parse(text: &str) -> Result<SigningKey, &'static str> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("unrecognised format");
    }
    let secret = field(lines.next(), "secret").ok_or("missing or malformed secret key")?;
    let public = field(lines.next(), "public").ok_or("missing or malformed public key")?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("unexpected trailing data");
    }
    let key = SigningKey::from_bytes(&secret);
    if key.verifying_key().as_bytes() != &*public {
        return Err("public key does not match secret key");
    }
    Ok(key)
}

fn field(line: Option<&str>, name: &str) -> Option<Zeroizing<[u8; 32]>> {
    let hex_digits = line?.strip_prefix(name)?.strip_prefix(' ')?;
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_digits.trim_end(), &mut out[..]).ok()?;
    Some(out)
}

fn render(key: &SigningKey) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{HEADER}\nsecret {}\npublic {}\n",
        hex::encode(key.to_bytes()),
        hex::encode(key.verifying_key().as_bytes())
    ))
}

fn create(dir: &Path, path: &Path) -> Result<(Identity, Origin), IdentityError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut seed[..]).map_err(IdentityError::Random)?;
    let key = SigningKey::from_bytes(&seed);

    let tmp = dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let result = write_new(&tmp, &render(&key)).and_then(|()| {
        // link() fails if the key exists: a concurrent start can never replace a key.
        std::fs::hard_link(&tmp, path)
    });
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
            Ok((Identity::from_key(key), Origin::Created))
        }
        // Somebody else created it meanwhile: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((load(path)?, Origin::Loaded)),
        Err(source) => Err(IdentityError::Io {
            path: path.into(),
            source,
        }),
    }
}

fn write_new(path: &Path, contents: &str) -> io::Result<()> {
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, origin) = Identity::load_or_create(dir.path()).expect("create");
        assert_eq!(origin, Origin::Created);
        let path = dir.path().join(KEY_FILE);
        assert_eq!(mode(&path), 0o600);
        let (second, origin) = Identity::load_or_create(dir.path()).expect("load");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(first.id(), second.id());
        assert_eq!(first.id(), node_id(&second.public_key()));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }

    #[test]
    fn node_id_is_blake3_of_public_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let want = blake3::hash(key.verifying_key().as_bytes());
        assert_eq!(
            node_id(&key.verifying_key()).to_hex(),
            want.to_hex().as_str()
        );
    }

    #[test]
    fn refuses_group_or_world_readable_key_and_leaves_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        Identity::load_or_create(dir.path()).expect("create");
        let path = dir.path().join(KEY_FILE);
        let before = std::fs::read(&path).expect("read");
        for bad in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).expect("chmod");
            let err = Identity::load_or_create(dir.path()).expect_err("refused");
            assert!(
                matches!(err, IdentityError::Permissions { mode, .. } if mode == bad),
                "{err}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
            assert_eq!(std::fs::read(&path).expect("read"), before);
            assert_eq!(mode(&path), bad, "mode untouched");
        }
    }

    #[test]
    fn refuses_corrupt_keys_and_leaves_them() {
        let good = render(&SigningKey::from_bytes(&[1; 32]));
        let other = render(&SigningKey::from_bytes(&[2; 32]));
        let mismatched = format!(
            "{}{}",
            &good[..good.find("public").unwrap()],
            &other[other.find("public").unwrap()..]
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "unrecognised format"),
            (b"garbage\n".to_vec(), "unrecognised format"),
            (
                good[..40].as_bytes().to_vec(),
                "missing or malformed secret key",
            ),
            (
                good.replace("secret 0", "secret x").into_bytes(),
                "missing or malformed secret key",
            ),
            (
                mismatched.into_bytes(),
                "public key does not match secret key",
            ),
            (
                format!("{}more\n", &*good).into_bytes(),
                "unexpected trailing data",
            ),
            (vec![0xff; 64], "not text"),
        ];
        for (contents, reason) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(KEY_FILE);
            write_new(&path, "").expect("create");
            std::fs::write(&path, &contents).expect("write");
            let err = Identity::load_or_create(dir.path()).expect_err("refused");
            assert!(
                err.to_string().contains(reason),
                "want {reason:?}, got {err}"
            );
            assert!(!err.to_string().contains('\n'));
            assert_eq!(
                std::fs::read(&path).expect("read"),
                contents,
                "file untouched"
            );
        }
    }

    #[test]
    fn round_trips_through_text() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let parsed = parse(&render(&key)).expect("parses");
        assert_eq!(parsed.to_bytes(), key.to_bytes());
    }
}
