//! `chatctl send --file PATH [--room R] [CAPTION…]` and `chatctl dm|group send … --file`:
//! uploads the file to this node's store (`FileService.Upload`, 64 KiB chunks, encrypted by
//! the node for a private file; progress on standard error for files over 1 MiB), then sends
//! a message referencing it (`Send` / `SendPrivate` with `attachment_hash`). Prints nothing
//! on success (a private send says whether the file outlives this node), or with `--json`
//! the sent message (its `attachment` included). A file that cannot be read, or whose read
//! fails midway, is a clear error and the node keeps nothing of it (the upload is cut, never
//! ended early).

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chat_proto::v1::{
    SendPrivateRequest, SendRequest, UploadMetadata, UploadRequest, upload_request,
};

use crate::Error;
use crate::client::{self, Target};
use crate::output::Printer;

/// Bytes per upload message.
const CHUNK: usize = 64 * 1024;
/// Files larger than this show their upload's progress.
const PROGRESS_OVER: u64 = 1024 * 1024;

/// Why an upload failed: reading the local file, or chatd.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// The file's read failed midway (the upload was cut; the node keeps nothing).
    Read(std::io::Error),
    /// chatd refused the upload or could not be reached.
    Call(Error),
}

impl UploadError {
    /// The error to report, a read error through `cannot` (which names the path).
    pub(crate) fn or_read(self, cannot: &impl Fn(std::io::Error) -> Error) -> Error {
        match self {
            UploadError::Read(e) => cannot(e),
            UploadError::Call(e) => e,
        }
    }
}

impl From<Error> for UploadError {
    fn from(e: Error) -> Self {
        UploadError::Call(e)
    }
}

impl From<client::ClientError> for UploadError {
    fn from(e: client::ClientError) -> Self {
        UploadError::Call(Error::Client(e))
    }
}

/// Opens `path` for an upload: the file, its size and its name. A directory or other
/// non-regular file is refused.
pub(crate) fn open(path: &Path) -> Result<(std::fs::File, u64, String), Error> {
    let cannot = |e: std::io::Error| Error::Usage(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(Error::Usage(format!(
            "cannot read {}: not a regular file",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((file, meta.len(), name))
}

/// Uploads `path` and sends it to `room` with `caption`.
pub async fn run(
    socket: &Target,
    printer: Printer,
    room: &str,
    path: &Path,
    caption: String,
) -> Result<(), Error> {
    let cannot = |e: std::io::Error| Error::Usage(format!("cannot read {}: {e}", path.display()));
    let (file, size, name) = open(path)?;
    let hash = upload_showing(socket, file, &name, size, false)
        .await
        .map_err(|e| e.or_read(&cannot))?;
    let response = send(socket, room, caption, hash, name).await?;
    if let (true, Some(message)) = (printer.is_json(), &response.message) {
        printer
            .json_line(&crate::cmd::tail::message_json(message))
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// [`upload`] with its progress on standard error for files over [`PROGRESS_OVER`].
async fn upload_showing(
    socket: &Target,
    file: std::fs::File,
    name: &str,
    size: u64,
    encrypt: bool,
) -> Result<String, UploadError> {
    let show = size > PROGRESS_OVER;
    let hash = upload(socket, file, name, size, encrypt, move |sent| {
        if show && (sent % (1024 * 1024) < CHUNK as u64 || sent == size) {
            eprint!("\ruploading: {} / {}", mb(sent), mb(size));
        }
    })
    .await;
    if show {
        eprintln!();
    }
    hash
}

/// Uploads `path` encrypted (`UploadMetadata.encrypt`) and sends it privately `to` a person
/// or group with `caption` (`SendPrivate` with `attachment_hash`; with `voice`, as a voice
/// message: the node converts and transcribes it, the caption is unused). Says on standard
/// error whether the file reaches an offline recipient after this node stops.
pub async fn private(
    socket: &Target,
    printer: Printer,
    to: crate::cmd::private::To,
    path: &Path,
    caption: String,
    voice: bool,
) -> Result<(), Error> {
    use crate::cmd::private::To;
    let cannot = |e: std::io::Error| Error::Usage(format!("cannot read {}: {e}", path.display()));
    let (file, size, name) = open(path)?;
    let hash = upload_showing(socket, file, &name, size, true)
        .await
        .map_err(|e| e.or_read(&cannot))?;
    let (to, group_id, accept_new_key) = match to {
        To::Nick(n) => (n, String::new(), false),
        To::NickNewKey(n) => (n, String::new(), true),
        To::Group(g) => (String::new(), g, false),
    };
    let mut api = client::private_service(socket, false).await?;
    let response = api
        .send_private(SendPrivateRequest {
            to,
            group_id,
            text: caption,
            accept_new_key,
            attachment_hash: hash,
            attachment_name: name,
            voice,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if let (true, Some(m)) = (printer.is_json(), &response.message) {
        let mut v = crate::cmd::private::message_json(m);
        v["file_holders"] = serde_json::json!(response.file_holders);
        printer.json_line(&v).map_err(Error::Output)?;
    } else if response.file_holders > 0 {
        eprintln!(
            "sent; {} other node(s) keep the encrypted file for an offline recipient",
            response.file_holders
        );
    } else {
        eprintln!(
            "sent; the file is over files.offline_max_mb: it is served only while this node is \
             up (until the recipient's node has fetched it)"
        );
    }
    Ok(())
}

/// Sends `caption` to `room` with the uploaded file `hash` named `name`.
pub(crate) async fn send(
    socket: &Target,
    room: &str,
    caption: String,
    hash: String,
    name: String,
) -> Result<chat_proto::v1::SendResponse, Error> {
    let mut api = client::chat_service(socket).await?;
    Ok(api
        .send(SendRequest {
            room: room.to_owned(),
            text: caption,
            attachment_hash: hash,
            attachment_name: name,
            voice: false,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner())
}

/// Streams `file` (`size` bytes) to the node's store (encrypted there if `encrypt`), calling
/// `progress` with the bytes sent after each chunk; its hash. A read error cuts the upload
/// (the node keeps nothing): [`UploadError::Read`].
pub(crate) async fn upload(
    socket: &Target,
    file: std::fs::File,
    name: &str,
    size: u64,
    encrypt: bool,
    progress: impl FnMut(u64) + Send + 'static,
) -> Result<String, UploadError> {
    let mut files = client::file_service(socket).await?;
    let first = UploadRequest {
        item: Some(upload_request::Item::Metadata(UploadMetadata {
            name: name.to_owned(),
            size,
            encrypt,
        })),
    };
    let read_error: Arc<Mutex<Option<std::io::Error>>> = Arc::new(Mutex::new(None));
    let failed = Arc::new(tokio::sync::Notify::new());
    let (slot, failed_tx) = (read_error.clone(), failed.clone());
    // The bytes are read as the stream is polled: at most one chunk in memory besides
    // what the channel holds.
    let chunks = futures_util::stream::unfold(
        (file, 0u64, progress),
        move |(mut file, sent, mut progress)| {
            let (slot, failed) = (slot.clone(), failed_tx.clone());
            async move {
                let mut buf = vec![0u8; CHUNK];
                let n = match file.read(&mut buf) {
                    Ok(0) => return None,
                    Err(e) => {
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        failed.notify_one();
                        // Never end the stream: a clean end would upload what was read as
                        // the file; the call is dropped instead (below), a cut upload.
                        std::future::pending::<()>().await;
                        return None;
                    }
                    Ok(n) => n,
                };
                buf.truncate(n);
                let sent = sent + n as u64;
                progress(sent);
                Some((
                    UploadRequest {
                        item: Some(upload_request::Item::Chunk(buf)),
                    },
                    (file, sent, progress),
                ))
            }
        },
    );
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter([first]), chunks);
    let response = tokio::select! {
        r = files.upload(stream) => r.map_err(|s| client::call_error(socket, s))?.into_inner(),
        () = failed.notified() => {
            let e = read_error.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(UploadError::Read(
                e.unwrap_or_else(|| std::io::Error::other("the read failed")),
            ));
        }
    };
    response
        .file
        .map(|f| f.hash)
        .ok_or_else(|| Error::Usage("chatd answered the upload without a file".into()).into())
}

fn mb(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}
