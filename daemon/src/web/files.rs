//! `GET /files/{hash}`: a blob from this node's store, served so that untrusted bytes stay
//! harmless (docs/security.md, "Files on the web page").
//!
//! The hash is checked (64 hex digits, else 400). A blob this node does not hold is fetched
//! from its providers first (found in the DHT; none known: 404 with a body saying so), for at
//! most [`FETCH_WAIT`] (then 504; the fetch goes on in the background and a retry finds what
//! verified). Bytes are sent only once the whole blob is verified in the store.
//!
//! The headers come from `chat_blobs::media`: the media type is sniffed from the blob's own
//! bytes (never the claimed type or name), and only a PNG, JPEG, GIF or WebP that decoded
//! within limits ([`chat_blobs::thumb::decode_limited`], at most [`DECODING`] at once, blobs
//! of at most [`MAX_DECODE_BYTES`]) is `inline` with its image type; everything else —
//! SVG, HTML, XML and unknown bytes above all — is `Content-Disposition: attachment` with a
//! safe file name ([`chat_blobs::media::safe_file_name`]); a voice message's Ogg/Opus is
//! `audio/ogg` (sniffed) as an attachment too, which the page's `<audio>` plays all the same
//! (media elements ignore `Content-Disposition`). Every blob response carries
//! `X-Content-Type-Options: nosniff`, a `Content-Security-Policy` with `sandbox` and
//! `default-src 'none'`, and `Cross-Origin-Resource-Policy: same-origin`.
//!
//! Who may read: anyone the page's feed admits — freely on loopback; off loopback a session
//! (`X-Chatd-Session`, the one the page got in its `hello`) or the bearer token ([`caller`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_blobs::media::{MediaType, Serving};
use chat_blobs::{Hash, thumb};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::ReceiverStream;

use super::auth::Proof;
use super::listener::Client;
use super::{AppState, Refusal, Shared};
use crate::client::ClientInfo;
use crate::files::{Files, FilesError};

/// The header a page sends its session in (it keeps the session in `localStorage`, never in
/// a cookie, so no other site's request carries it).
pub const SESSION_HEADER: &str = "x-chatd-session";
/// Longest wait for a blob this node does not hold to be fetched before answering 504.
pub const FETCH_WAIT: Duration = Duration::from_secs(30);
/// Raster images decoded at once to decide whether they may show inline (more wait).
pub const DECODING: usize = 2;
/// Largest blob decoded to prove it is an image; a larger one is served as an attachment.
pub const MAX_DECODE_BYTES: u64 = 32 * 1024 * 1024;
/// On-demand fetches started by pages at once at most (more are answered 503).
pub const FETCHING: usize = 4;
/// Verdicts (media type and serving) remembered, by hash.
const VERDICTS: usize = 512;
/// Bytes per body chunk.
const CHUNK: usize = 64 * 1024;

/// What the file routes share: the remembered verdicts and the bounds on decoding and
/// fetching.
pub(crate) struct FileRoutes {
    verdicts: Mutex<HashMap<Hash, (MediaType, Serving)>>,
    decoding: Arc<Semaphore>,
    fetching: Arc<Semaphore>,
    /// Uploads running at once ([`super::upload::UPLOADS`]).
    pub(super) uploading: Arc<Semaphore>,
}

impl Default for FileRoutes {
    fn default() -> Self {
        FileRoutes {
            verdicts: Mutex::new(HashMap::new()),
            decoding: Arc::new(Semaphore::new(DECODING)),
            fetching: Arc::new(Semaphore::new(FETCHING)),
            uploading: Arc::new(Semaphore::new(super::upload::UPLOADS)),
        }
    }
}

/// Who is asking.
pub(super) enum Caller {
    /// An account (its session, or the bearer token), with the client it sends as
    /// (`None`: the operator).
    Account(Option<ClientInfo>),
    /// Nobody in particular: a reader on loopback.
    Reader,
}

/// Who a request comes from: its session header, else its bearer token, else nobody (refused
/// off loopback). A wrong proof is refused, and counted towards the lock-out off loopback.
pub(super) fn caller(s: &Shared, headers: &HeaderMap, from: &Client) -> Result<Caller, Refusal> {
    let auth = &s.auth;
    let ip = from.0.ip();
    if auth.closed && !auth.may_try(ip) {
        return Err(Refusal::LockedOut);
    }
    if let Some(v) = headers.get(SESSION_HEADER) {
        return match v.to_str().map(|v| auth.session(v)) {
            Ok(Proof::Session(who)) => Ok(Caller::Account(super::ws::client_info(who, *from))),
            Ok(Proof::Expired) => Err(Refusal::Wrong),
            _ => {
                if auth.closed {
                    auth.failed(ip);
                }
                Err(Refusal::Wrong)
            }
        };
    }
    match auth.bearer(headers) {
        Proof::Token => Ok(Caller::Account(Some(ClientInfo::Tcp { addr: from.0 }))),
        Proof::None if !auth.closed => Ok(Caller::Reader),
        Proof::None => Err(Refusal::Missing),
        _ => {
            if auth.closed {
                auth.failed(ip);
            }
            Err(Refusal::Wrong)
        }
    }
}

/// A plain-text answer.
pub(super) fn text(code: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct BlobQuery {
    /// The name to download it as (the reference's; made safe here).
    #[serde(default)]
    name: String,
    /// The size the reference gives (0: the size most providers claim).
    #[serde(default)]
    size: u64,
}

/// `GET /files/{hash}` (module docs).
pub(super) async fn download(
    State(s): AppState,
    ConnectInfo(from): ConnectInfo<Client>,
    headers: HeaderMap,
    hash: Result<Path<String>, PathRejection>,
    query: Result<Query<BlobQuery>, QueryRejection>,
) -> Response {
    if let Err(r) = caller(&s, &headers, &from) {
        return super::refusal(r);
    }
    let Some(hash) = hash.ok().and_then(|Path(h)| h.parse::<Hash>().ok()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "not a file hash: expected 64 hex digits",
        );
    };
    let Ok(Query(q)) = query else {
        return text(
            StatusCode::BAD_REQUEST,
            "name, size: a text and a number of bytes",
        );
    };
    let Some(files) = s.node.files().cloned() else {
        return text(StatusCode::NOT_FOUND, "this node has no files service");
    };
    let size = match held_or_fetched(&s.files, &files, hash, q.size).await {
        Ok(size) => size,
        Err(r) => return r,
    };
    let (kind, serving) = match s.files.verdict(&files, hash, size).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    let blob = match files.open_blob(hash).await {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    let name = if q.name.is_empty() {
        hash.to_hex()[..16].to_owned()
    } else {
        q.name
    };
    let mut r = Response::new(stream_file(blob));
    for (k, v) in blob_headers(serving, kind, &name) {
        r.headers_mut().insert(k, v);
    }
    if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

/// The headers a blob of checked type `kind`, served as `serving`, goes out with, for a
/// download named `name` (hostile: made safe here).
pub fn blob_headers(
    serving: Serving,
    kind: MediaType,
    name: &str,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static(serving.content_type),
    )];
    let disposition = serving.content_disposition(name, kind);
    // A safe name is printable ASCII in its fallback and percent-encoded otherwise; should a
    // value still not be a header value, the download goes without a name.
    out.push((
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment")),
    ));
    for (k, v) in chat_blobs::media::ALWAYS_HEADERS {
        out.push((
            HeaderName::from_static(lower(k)),
            HeaderValue::from_static(v),
        ));
    }
    // Named by its hash, a blob never changes.
    out.push((
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    ));
    out
}

/// The lower-case header names `HeaderName::from_static` wants.
fn lower(k: &'static str) -> &'static str {
    match k {
        "X-Content-Type-Options" => "x-content-type-options",
        "Content-Security-Policy" => "content-security-policy",
        "Cross-Origin-Resource-Policy" => "cross-origin-resource-policy",
        _ => "x-chatd-unknown",
    }
}

/// The blob's size once it is held complete: at once if it is, else after a fetch from the
/// providers the DHT names (at most [`FETCH_WAIT`]).
pub(super) async fn held_or_fetched(
    routes: &FileRoutes,
    files: &Arc<Files>,
    hash: Hash,
    size: u64,
) -> Result<u64, Response> {
    if let Some(info) = files.info(hash).await.map_err(failed)? {
        return Ok(info.size);
    }
    let deadline = tokio::time::Instant::now() + FETCH_WAIT;
    let too_long = || {
        text(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the file was not fetched within {} s; try again (what arrived is kept)",
                FETCH_WAIT.as_secs()
            ),
        )
    };
    let found = files.providers(hash).await.map_err(failed)?;
    if found.is_empty() {
        return Err(text(
            StatusCode::NOT_FOUND,
            format!("no such file: this node does not hold {hash} and no node is known to"),
        ));
    }
    let Ok(permit) = routes.fetching.clone().try_acquire_owned() else {
        return Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many files are being fetched for pages; try again shortly",
        ));
    };
    // The fetch runs on its own: a page that goes away does not cut it short.
    let f = files.clone();
    let size = (size > 0).then_some(size);
    let job = tokio::spawn(async move {
        let r = f.fetch_among(hash, size, found).await;
        drop(permit);
        r
    });
    match tokio::time::timeout_at(deadline, job).await {
        Ok(Ok(Ok(info))) => Ok(info.size),
        Ok(Ok(Err(e))) => Err(failed(e)),
        Ok(Err(_)) => Err(failed(FilesError::Worker)),
        Err(_) => Err(too_long()),
    }
}

/// A files-service error as the page sees it.
pub(super) fn failed(e: FilesError) -> Response {
    let code = match &e {
        FilesError::NoProvider { .. } | FilesError::Lookup(_) | FilesError::Fetch(_) => {
            StatusCode::BAD_GATEWAY
        }
        FilesError::Hold(_) | FilesError::Decrypt(_) => StatusCode::BAD_GATEWAY,
        FilesError::Store(chat_blobs::StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
        FilesError::Store(_) | FilesError::Worker => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let shown = super::error::shown(e.into());
    text(code, shown)
}

impl FileRoutes {
    /// The checked type of a complete blob and how it is served (remembered by hash).
    async fn verdict(
        &self,
        files: &Files,
        hash: Hash,
        size: u64,
    ) -> Result<(MediaType, Serving), FilesError> {
        if let Some(v) = self.lock().get(&hash) {
            return Ok(*v);
        }
        let kind = files.media_type(hash).await?;
        let serving = if kind.is_raster_image() && size <= MAX_DECODE_BYTES {
            let _turn = self.decoding_turn().await?;
            let bytes = files.read_to_vec(hash).await?;
            image_serving(kind, bytes).await?.0
        } else {
            chat_blobs::media::serving(kind, None)
        };
        let mut verdicts = self.lock();
        if verdicts.len() >= VERDICTS {
            verdicts.clear();
        }
        verdicts.insert(hash, (kind, serving));
        Ok((kind, serving))
    }

    /// A turn to hold and decode an image (at most [`DECODING`] at once).
    pub(super) async fn decoding_turn(
        &self,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, FilesError> {
        self.decoding
            .acquire()
            .await
            .map_err(|_| FilesError::Worker)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Hash, (MediaType, Serving)>> {
        self.verdicts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How an image of checked type `kind` whose bytes are `bytes` is served: inline only if it
/// decodes within limits (on the blocking pool); the bytes are handed back.
pub(super) async fn image_serving(
    kind: MediaType,
    bytes: Vec<u8>,
) -> Result<(Serving, Vec<u8>), FilesError> {
    tokio::task::spawn_blocking(move || {
        let decoded = thumb::decode_limited(&bytes, &thumb::DecodeLimits::default())
            .ok()
            .map(|(d, _)| d);
        (chat_blobs::media::serving(kind, decoded.as_ref()), bytes)
    })
    .await
    .map_err(|_| FilesError::Worker)
}

/// A response body reading `file` in chunks on the blocking pool.
fn stream_file(file: std::fs::File) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = file;
        loop {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Body::from_stream(ReceiverStream::new(rx))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
