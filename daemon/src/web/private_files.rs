//! `GET /private-files/{id}`: the decrypted file of private message `id`, for the page's
//! logged-in account only (docs/security.md, "Private files on the web page").
//!
//! Private files are stored as ciphertext; the key is in the account's copy of the message
//! (`dm.sqlite3`). This route finds the message among the *caller's* messages
//! ([`crate::ops::PrivateOps::file_of`]), has the ciphertext (held, or fetched from its
//! providers as `/files/{hash}` does, within the same bounds: [`super::files::FETCH_WAIT`],
//! [`super::files::FETCHING`]), and streams the plaintext as it decrypts
//! ([`crate::files::Files::decrypt_to`]: every STREAM chunk authenticated before it is sent,
//! the last one only once the whole plaintext matched its hash; a failure cuts the body). No
//! plaintext is written to disk, and the response says `Cache-Control: no-store` so the
//! browser keeps none either.
//!
//! Who may read: only a request with the page's session (`X-Chatd-Session`) or the bearer
//! token — on loopback too, unlike `/files/{hash}` — whose account is a participant of the
//! message; an `Origin` or `Sec-Fetch-Site` naming another site is refused (403) before
//! anything is looked up. No proof: 401 before anything is looked up. A message of another
//! account, an unknown id, and a message without a file all get the same 404, so a caller
//! learns nothing of other accounts' messages.
//!
//! The headers are those of `/files/{hash}` ([`super::files::blob_headers`]): the media type
//! sniffed from the plaintext's first bytes (never the reference's claim or the name); a
//! raster image of at most [`super::files::MAX_DECODE_BYTES`] is decoded within limits first
//! (held in memory for that, never on disk) and only then `inline`; everything else is an
//! `attachment` (a voice message's Ogg/Opus plays in the page's `<audio>` all the same), with
//! `nosniff`, the sandboxing policy and `Cross-Origin-Resource-Policy: same-origin`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chat_blobs::media::{MediaType, SNIFF_BYTES};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::files::{Caller, blob_headers, caller, failed, held_or_fetched, image_serving, text};
use super::listener::Client;
use super::{AppState, Shared};
use crate::files::Files;
use crate::files::private::PrivateFile;
use crate::ops::ApiError;

/// Plaintext bytes per body chunk.
const CHUNK: usize = 64 * 1024;

/// `GET /private-files/{id}` (module docs).
pub(super) async fn download(
    State(s): AppState,
    ConnectInfo(from): ConnectInfo<Client>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    if !same_site(&headers) {
        return text(
            StatusCode::FORBIDDEN,
            "cross-origin request refused: private files are for this web view's own page",
        );
    }
    let client = match caller(&s, &headers, &from) {
        Ok(Caller::Account(c)) => c,
        Ok(Caller::Reader) => {
            return text(
                StatusCode::UNAUTHORIZED,
                "private files need the page's login (X-Chatd-Session): run `chatctl web` and \
                 open the link it prints",
            );
        }
        Err(r) => return super::refusal(r),
    };
    let Some(id) = id
        .ok()
        .map(|Path(id)| id)
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "not a private message id: expected 32 hex digits",
        );
    };
    let file = match file_of(&s, client.as_ref(), &id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(files) = s.node.files().cloned() else {
        return text(StatusCode::NOT_FOUND, "this node has no files service");
    };
    if let Err(e) = files.keep(file.cipher_hash).await {
        return failed(e);
    }
    if let Err(r) = held_or_fetched(&s.files, &files, file.cipher_hash, file.cipher_size).await {
        return r;
    }
    serve(&s, files, file).await
}

/// Whether the request comes from this web view's own page (or no browser page at all): an
/// `Origin` of another site or `Sec-Fetch-Site` other than `same-origin`/`none` is refused.
fn same_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| matches!(v.to_str(), Ok("same-origin") | Ok("none")))
        .unwrap_or(true);
    fetch_site && super::ws::same_origin(headers)
}

/// The file of the caller's private message `id`; one 404 for every "not yours".
async fn file_of(
    s: &Shared,
    client: Option<&crate::client::ClientInfo>,
    id: &str,
) -> Result<PrivateFile, Response> {
    let not_found = || {
        text(
            StatusCode::NOT_FOUND,
            format!("no private file {id} in this account's conversations"),
        )
    };
    let Some(private) = &s.private else {
        return Err(not_found());
    };
    match private.file_of(client, id).await {
        Ok(f) => Ok(f),
        Err(ApiError::NotFound(_) | ApiError::InvalidArgument(_)) => Err(not_found()),
        Err(ApiError::PermissionDenied(_) | ApiError::FailedPrecondition(_)) => Err(not_found()),
        Err(e) => {
            let code = match &e {
                ApiError::Unavailable(_) | ApiError::ResourceExhausted(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(text(code, super::error::shown(e)))
        }
    }
}

/// Decrypts the held ciphertext of `file` into the response: sniffed from the first chunk,
/// a raster image checked by decoding before it goes out, anything else streamed.
async fn serve(s: &Shared, files: Arc<Files>, file: PrivateFile) -> Response {
    let (size, name) = (file.size, file.name.clone());
    let mut plain = decrypting(files, file);
    let first = match plain.recv().await {
        Some(Ok(c)) => c,
        Some(Err(e)) => return undecryptable(&e),
        None => Vec::new(),
    };
    let kind = MediaType::sniff(&first[..first.len().min(SNIFF_BYTES)]);
    let (serving, body) = if kind.is_raster_image() && size <= super::files::MAX_DECODE_BYTES {
        // Held whole to be decoded (never written anywhere), in one of the
        // [`super::files::DECODING`] turns.
        let _turn = match s.files.decoding_turn().await {
            Ok(t) => t,
            Err(e) => return failed(e),
        };
        let mut whole = first;
        while let Some(c) = plain.recv().await {
            match c {
                Ok(c) if (whole.len() + c.len()) as u64 <= size => whole.extend_from_slice(&c),
                Ok(_) => return undecryptable(&std::io::Error::other("longer than its size")),
                Err(e) => return undecryptable(&e),
            }
        }
        let (serving, whole) = match image_serving(kind, whole).await {
            Ok(v) => v,
            Err(e) => return failed(e),
        };
        (serving, Body::from(whole))
    } else {
        let head = tokio_stream::once(Ok::<_, std::io::Error>(first));
        let rest = ReceiverStream::new(plain);
        (
            chat_blobs::media::serving(kind, None),
            Body::from_stream(head.chain(rest)),
        )
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    for (k, v) in blob_headers(serving, kind, &name) {
        h.insert(k, v);
    }
    // Plaintext of a private message: the browser keeps no copy.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    r
}

/// The plaintext of `file`'s held ciphertext, in chunks as they decrypt; an error (the file
/// does not open, or does not match its hash) as the last item.
fn decrypting(files: Arc<Files>, file: PrivateFile) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (out, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let (chunks, mut plain) = mpsc::channel::<Vec<u8>>(4);
        let forward = async {
            while let Some(c) = plain.recv().await {
                if out.send(Ok(c)).await.is_err() {
                    return;
                }
            }
        };
        let (decrypted, ()) = tokio::join!(files.decrypt_to(&file, chunks, CHUNK), forward);
        if let Err(e) = decrypted {
            tracing::warn!(blob = %file.cipher_hash, error = %e, "a private file did not open for a page");
            let _ = out.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    rx
}

fn undecryptable(e: &std::io::Error) -> Response {
    text(
        StatusCode::BAD_GATEWAY,
        format!("the private file does not open: {e}"),
    )
}
