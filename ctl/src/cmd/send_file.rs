//! `chatctl send --file PATH [--room R] [CAPTION…]`: uploads the file to this node's store
//! (`FileService.Upload`, 64 KiB chunks; progress on standard error for files over 1 MiB),
//! then sends a message referencing it (`Send` with `attachment_hash`). Prints nothing on
//! success, or with `--json` the sent message (its `attachment` included).

use std::io::Read;
use std::path::Path;

use chat_proto::v1::{SendRequest, UploadMetadata, UploadRequest, upload_request};

use crate::Error;
use crate::client::{self, Target};
use crate::output::Printer;

/// Bytes per upload message.
const CHUNK: usize = 64 * 1024;
/// Files larger than this show their upload's progress.
const PROGRESS_OVER: u64 = 1024 * 1024;

/// Uploads `path` and sends it to `room` with `caption`.
pub async fn run(
    socket: &Target,
    printer: Printer,
    room: &str,
    path: &Path,
    caption: String,
) -> Result<(), Error> {
    let cannot = |e: std::io::Error| Error::Usage(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(Error::Usage(format!(
            "cannot read {}: not a regular file",
            path.display()
        )));
    }
    let size = meta.len();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let read_error = std::sync::Arc::new(std::sync::Mutex::new(None));
    let hash = upload(socket, file, &name, size, read_error.clone()).await;
    // A read that failed midway cut the upload (the node keeps nothing): say why.
    if let Some(e) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(cannot(e));
    }
    let hash = hash?;
    let mut api = client::chat_service(socket).await?;
    let response = api
        .send(SendRequest {
            room: room.to_owned(),
            text: caption,
            attachment_hash: hash,
            attachment_name: name,
        })
        .await
        .map_err(|s| client::call_error(socket, s))?
        .into_inner();
    if let (true, Some(message)) = (printer.is_json(), &response.message) {
        printer
            .json_line(&crate::cmd::tail::message_json(message))
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// Streams `file` (`size` bytes) to the node's store; its hash. A read error cuts the
/// upload (the node keeps nothing) and is left in `read_error`.
async fn upload(
    socket: &Target,
    file: std::fs::File,
    name: &str,
    size: u64,
    read_error: std::sync::Arc<std::sync::Mutex<Option<std::io::Error>>>,
) -> Result<String, Error> {
    let mut files = client::file_service(socket).await?;
    let first = UploadRequest {
        item: Some(upload_request::Item::Metadata(UploadMetadata {
            name: name.to_owned(),
            size,
        })),
    };
    let show = size > PROGRESS_OVER;
    let failed_tx = std::sync::Arc::new(tokio::sync::Notify::new());
    let failed = failed_tx.clone();
    // The bytes are read as the stream is polled: at most one chunk in memory besides
    // what the channel holds.
    let chunks = futures_util::stream::unfold((file, 0u64), move |(mut file, sent)| {
        let read_error = read_error.clone();
        let failed = failed_tx.clone();
        async move {
            let mut buf = vec![0u8; CHUNK];
            let n = match file.read(&mut buf) {
                Ok(0) => {
                    if show {
                        eprintln!();
                    }
                    return None;
                }
                Err(e) => {
                    if show {
                        eprintln!();
                    }
                    *read_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    failed.notify_one();
                    // Never end the stream: a clean end would upload what was read as the
                    // file; the call is dropped instead (below), a cut upload for the node.
                    std::future::pending::<()>().await;
                    return None;
                }
                Ok(n) => n,
            };
            buf.truncate(n);
            let sent = sent + n as u64;
            if show && (sent % (1024 * 1024) < CHUNK as u64 || sent == size) {
                eprint!("\ruploading: {} / {}", mb(sent), mb(size));
            }
            Some((
                UploadRequest {
                    item: Some(upload_request::Item::Chunk(buf)),
                },
                (file, sent),
            ))
        }
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter([first]), chunks);
    let response = tokio::select! {
        r = files.upload(stream) => r.map_err(|s| client::call_error(socket, s))?.into_inner(),
        // The caller reports the read error itself.
        () = failed.notified() => return Err(Error::Usage("a read failed".into())),
    };
    response
        .file
        .map(|f| f.hash)
        .ok_or_else(|| Error::Usage("chatd answered the upload without a file".into()))
}

fn mb(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}
