//! `chatctl get ID [-o PATH] [--force]`: downloads a file through the node
//! (`FileService.Download`: fetched from its providers, every range verified) and saves it.
//! ID is a message id (the file it references) or a file hash. Progress goes to standard
//! error; the bytes go to a temporary file next to PATH, renamed only when complete, so a
//! failure leaves nothing under PATH. An existing PATH is kept unless `--force`.

use std::io::Write;
use std::path::{Path, PathBuf};

use chat_proto::v1::{DownloadRequest, PrivateHistoryRequest, download_response};

use crate::Error;
use crate::cli::GetArgs;
use crate::client::{self, Target};
use crate::output::Printer;

/// Longest file name chosen from a message, in bytes.
const MAX_NAME: usize = 120;
/// The download's writes to the disk are started (not waited for) after this many bytes, so
/// the sync before the rename finds little left to write.
const WRITEBACK_BYTES: u64 = 4 << 20;

/// Downloads the file.
pub async fn run(socket: &Target, printer: Printer, args: GetArgs) -> Result<(), Error> {
    let id = args.id.trim().to_ascii_lowercase();
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return private(socket, printer, args, id).await;
    }
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "{}: expected a message id (64 hex digits; a private message's: 32) or a file hash \
             (64 hex digits)",
            args.id
        )));
    }
    // A message id names its file; anything else is taken as the file's hash.
    let found = crate::cmd::files::with_files(socket, "").await?;
    let (hash, size, name) = match found.iter().find(|m| m.id == id) {
        Some(m) => {
            let a = m
                .attachment
                .as_ref()
                .map(|a| (a.hash.clone(), a.size, a.name.clone()));
            a.unwrap_or_default()
        }
        None => {
            let named = found
                .iter()
                .filter_map(|m| m.attachment.as_ref())
                .find(|a| a.hash == id);
            match named {
                Some(a) => (a.hash.clone(), a.size, a.name.clone()),
                None => (id.clone(), 0, String::new()),
            }
        }
    };
    let dest = match args.output {
        Some(p) => p,
        None => PathBuf::from(safe_name(&name, &hash)),
    };
    if dest.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} exists; use --force to replace it",
            dest.display()
        )));
    }
    let request = DownloadRequest {
        hash: hash.clone(),
        size,
        ..Default::default()
    };
    let got = download_showing(socket, request, None, &dest).await?;
    if printer.is_json() {
        printer
            .json_line(&serde_json::json!({
                "hash": hash,
                "size": got,
                "path": dest.display().to_string(),
            }))
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// A file name from an untrusted one: letters, digits, `.`, `-`, `_` kept (others `_`), no
/// leading dot, at most [`MAX_NAME`] bytes; the hash's first 16 digits when nothing is left.
pub fn safe_name(name: &str, hash: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    while out.len() > MAX_NAME {
        out.pop();
    }
    if out.is_empty() || out.chars().all(|c| c == '_') {
        return hash.get(..16).unwrap_or(hash).to_owned();
    }
    out
}

/// The file of private message `id`: the node fetches its ciphertext, decrypts it with the
/// key the message carried and streams the plaintext.
async fn private(
    socket: &Target,
    printer: Printer,
    args: GetArgs,
    id: String,
) -> Result<(), Error> {
    let mut api = client::private_service(socket, false).await?;
    let page = api
        .private_history(PrivateHistoryRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    let file = page
        .messages
        .iter()
        .find(|m| m.id == id)
        .and_then(|m| m.attachment.clone());
    let (name, size) = file
        .map(|a| (a.name, Some(a.size)))
        .unwrap_or((String::new(), None));
    let dest = match args.output {
        Some(p) => p,
        None => PathBuf::from(safe_name(&name, &id)),
    };
    if dest.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} exists; use --force to replace it",
            dest.display()
        )));
    }
    let request = DownloadRequest {
        private_id: id.clone(),
        ..Default::default()
    };
    let got = download_showing(socket, request, size, &dest).await?;
    if printer.is_json() {
        printer
            .json_line(&serde_json::json!({
                "id": id,
                "size": got,
                "path": dest.display().to_string(),
            }))
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// [`download`] with its progress on standard error.
async fn download_showing(
    socket: &Target,
    request: DownloadRequest,
    plain: Option<u64>,
    dest: &Path,
) -> Result<u64, Error> {
    let mut shown = false;
    let got = download(socket, request, plain, dest, |p| {
        eprint!(
            "\rfetching: {} / {} from {} provider(s)",
            mb(p.have),
            mb(p.size),
            p.providers
        );
        shown = true;
    })
    .await;
    if shown {
        eprintln!();
    }
    got
}

/// Downloads what `request` names into `dest` through a temporary file next to it (made once
/// the node took the download; renamed when complete, removed on failure; the node is asked
/// to stream the bytes as they verify), calling
/// `progress` with each progress message; the bytes written. `plain`: the size of a private
/// file's plaintext (progress counts its ciphertext). `dest` is replaced if it exists:
/// callers check first.
pub(crate) async fn download(
    socket: &Target,
    request: DownloadRequest,
    plain: Option<u64>,
    dest: &Path,
    mut progress: impl FnMut(&chat_proto::v1::DownloadProgress),
) -> Result<u64, Error> {
    let size = request.size;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let cannot = |e: std::io::Error| Error::Usage(format!("cannot write {}: {e}", dest.display()));
    let mut files = client::file_service(socket).await?;
    let private = !request.private_id.is_empty();
    // Written to a temporary file removed on failure: the bytes may come as soon as they
    // verified on the node, so the write overlaps the node's fetch.
    let mut request = request;
    request.stream_verified = !private;
    let mut stream = files
        .download(request)
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    // Made only once the node took the download: a refused one leaves nothing here.
    let mut tmp = tempfile_in(dir).map_err(cannot)?;
    let mut written = 0u64;
    let mut kicked = 0u64;
    let mut total = size;
    let result = loop {
        match stream.message().await {
            Ok(Some(m)) => match m.item {
                Some(download_response::Item::Progress(p)) => {
                    total = p.size;
                    progress(&p);
                }
                Some(download_response::Item::Chunk(c)) => {
                    if let Err(e) = tmp.1.write_all(&c) {
                        break Err(cannot(e));
                    }
                    written += c.len() as u64;
                    if written - kicked >= WRITEBACK_BYTES {
                        start_writeback(&tmp.1, kicked, written - kicked);
                        kicked = written;
                    }
                }
                None => {}
            },
            Ok(None) => break Ok(()),
            Err(s) => break Err(Error::Client(stream_error(socket, s))),
        }
    };
    let done = result.and_then(|()| {
        // A private file's plaintext was checked against its hash by the node.
        let total = if private {
            plain.unwrap_or(written)
        } else {
            total
        };
        if written != total {
            return Err(Error::Usage(format!(
                "the download ended after {written} of {total} bytes"
            )));
        }
        tmp.1.sync_all().map_err(cannot)?;
        std::fs::rename(&tmp.0, dest).map_err(cannot)
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp.0);
    }
    done.map(|()| written)
}

/// An error that ended the download stream: chatd's own (sent in the trailers, so without
/// the response headers [`client::call_error`] looks for, and without an underlying
/// transport error) is shown as chatd's message, not as "cannot reach chatd".
fn stream_error(socket: &Target, s: tonic::Status) -> client::ClientError {
    use std::error::Error as _;
    if s.source().is_none() && !s.message().is_empty() {
        return client::ClientError::Remote(s);
    }
    client::call_error(socket, s)
}

/// Starts writing `len` bytes of `file` from `offset` back to the disk without waiting
/// (`sync_file_range`); only a hint, so a failure is ignored: the sync at the end is what
/// makes the file durable.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor `file` owns and keeps open during the
    // call; no memory is passed.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File, _offset: u64, _len: u64) {}

/// A new file in `dir` only this process writes: `.chatctl-get-PID-N`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    for n in 0..100 {
        let path = dir.join(format!(".chatctl-get-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no temporary name free"))
}

fn mb(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn hostile_names_become_plain_file_names() {
        let h = "ab".repeat(32);
        assert_eq!(safe_name("photo.png", &h), "photo.png");
        assert_eq!(safe_name("../../etc/passwd", &h), "_.._etc_passwd");
        assert_eq!(safe_name(".bashrc", &h), "bashrc");
        assert_eq!(safe_name("a/\u{1b}[31mb", &h), "a___31mb");
        assert_eq!(safe_name("", &h), "abababababababab");
        assert_eq!(safe_name("///", &h), "abababababababab");
        assert!(safe_name(&"x".repeat(500), &h).len() <= 120);
    }
}
