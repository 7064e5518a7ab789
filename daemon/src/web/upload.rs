//! `POST /files`: a file uploaded from the page (drag-and-drop or its button), stored in this
//! node's blob store and sent to a room in a message that references it, as
//! `chatctl send --file` does.
//!
//! The request: the file's bytes as the body (any `Content-Type`; a `Content-Length` is
//! required), `?room=R&name=N&caption=C` (room empty: the lobby; caption optional); with
//! `&voice=1` the file is a recording (the page's 🎙 button: WebM/Opus or Ogg/Opus), sent as
//! a voice message through the chat operations' `send_voice`, as `chatctl voice` does:
//! converted to Ogg/Opus and transcribed in the sandboxed helper, or sent with its transcript
//! pending on a node without a model; the answer then carries `voice` (`pending`,
//! `duration_ms`, `text`), and a node with voice messages off answers 503 before a byte is
//! stored. Only the page's logged-in account may upload, with the same protections as the
//! page's sends on `/ws`: the `Origin` must be this web view's own address (a cross-origin request is refused
//! with 403 before a byte is read), and the request must carry the page's session in the
//! `X-Chatd-Session` header (a header no other site can make a browser send without a CORS
//! preflight, which this view never grants) or the bearer token; a reader's request is 401.
//! The sender is the session's account, under the same per-client send limit.
//!
//! Bounds: a `Content-Length` over `files.max_file_mb` is refused with 413 before the body is
//! read; the body is streamed to the store's `tmp/` through the files service's upload
//! (`crate::ops::files::FileOps::upload`: exactly the announced bytes, removed on any
//! failure), never held whole in memory; at most [`UPLOADS`] uploads run at once (more: 503);
//! a body that stalls for [`IDLE`] is cut. The upload runs in a task of its own, so a page
//! that goes away mid-upload leaves nothing half-written either.

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_proto::v1::UploadMetadata;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::AppState;
use super::files::{Caller, caller, text};
use super::listener::Client;
use crate::ops::ApiError;
use crate::ops::files::{FileOps, UploadItem};

/// Uploads running at once at most.
pub const UPLOADS: usize = 4;
/// Longest pause in an upload's body before it is cut.
pub const IDLE: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    /// The room (empty: the lobby).
    #[serde(default)]
    room: String,
    /// The file's name as the message shows it (empty: from its hash and type).
    #[serde(default)]
    name: String,
    /// The caption (empty: `📎 NAME SIZE`).
    #[serde(default)]
    caption: String,
    /// `1`: a recording, sent as a voice message (converted and transcribed here; the
    /// caption is not used: the message's text is `🎤 M:SS "transcript"`).
    #[serde(default)]
    voice: u8,
}

/// `POST /files` (module docs).
pub(super) async fn upload(
    State(s): AppState,
    ConnectInfo(from): ConnectInfo<Client>,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, QueryRejection>,
    body: Body,
) -> Response {
    if !super::ws::same_origin(&headers) {
        return text(
            StatusCode::FORBIDDEN,
            "cross-origin upload refused: the Origin must be this web view's own address",
        );
    }
    let client = match caller(&s, &headers, &from) {
        Ok(Caller::Account(c)) => c,
        Ok(Caller::Reader) => {
            return text(
                StatusCode::UNAUTHORIZED,
                "uploading needs the page's login: run `chatctl web` and open the link it prints",
            );
        }
        Err(r) => return super::refusal(r),
    };
    let Ok(Query(q)) = query else {
        return text(
            StatusCode::BAD_REQUEST,
            "room, name, caption: expected text parameters; voice: 0 or 1",
        );
    };
    let Some(files) = s.node.files().cloned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no files service",
        );
    };
    let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return text(
            StatusCode::LENGTH_REQUIRED,
            "an upload needs a Content-Length",
        );
    };
    let max = match files.usage().await {
        Ok((cfg, _)) => cfg.max_file_bytes,
        Err(e) => return answer_error(e.into()),
    };
    if len > max {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the file is {len} bytes, over this node's limit of {max} bytes (files.max_file_mb = {})",
                max >> 20
            ),
        );
    }
    if len == 0 {
        return text(StatusCode::BAD_REQUEST, "the file is empty");
    }
    // What the message needs is checked before a byte is stored.
    if let Err(e) = check_message(&q) {
        return answer_error(e);
    }
    let voice = q.voice == 1;
    if voice && s.node.voice().is_none() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "voice messages are off on this node",
        );
    }
    let Ok(permit) = s.files.uploading.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many uploads at once; try again shortly",
        );
    };
    let ops = FileOps::new(files);
    let chat_ops = s.chat_ops.clone();
    let job = tokio::spawn(async move {
        let items = body_items(body, q.name.clone(), len);
        let stored = ops.upload(items).await?;
        let hash = stored.file.map(|f| f.hash).unwrap_or_default();
        // The upload's slot is held through the conversion and transcription too.
        let sent = match voice {
            true => {
                chat_ops
                    .send_voice(client.as_ref(), &q.room, &hash, &q.name)
                    .await?
            }
            false => {
                chat_ops
                    .send_with_file(client.as_ref(), &q.room, q.caption, &hash, &q.name)
                    .await?
            }
        };
        drop(permit);
        Ok::<_, ApiError>((sent, hash))
    });
    match job.await {
        Ok(Ok((sent, hash))) => {
            tracing::info!(blob = %hash, size = len, voice, "file uploaded from the web page");
            let mut body = json!({"id": sent.id, "hash": hash, "size": len});
            if let Some(v) = &sent.voice {
                body["voice"] = json!({"pending": v.pending, "duration_ms": v.duration_ms,
                    "text": v.text});
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Ok(Err(e)) => answer_error(e),
        Err(_) => answer_error(ApiError::Internal("the upload's task stopped".into())),
    }
}

/// Checks the room, name and caption of an upload's message.
fn check_message(q: &UploadQuery) -> Result<(), ApiError> {
    if !q.room.is_empty() {
        q.room
            .parse::<crate::chat::Room>()
            .map_err(|e| ApiError::field("room", e))?;
    }
    use crate::chat::attachment::MAX_NAME_BYTES;
    if q.name.len() > MAX_NAME_BYTES || q.name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "name",
            format!("at most {MAX_NAME_BYTES} bytes without control characters"),
        ));
    }
    if !q.caption.trim().is_empty() {
        crate::chat::envelope::check_text(&q.caption).map_err(|e| ApiError::field("caption", e))?;
    }
    Ok(())
}

/// The upload's items: its metadata, then the body's chunks as they come (a body that
/// stalls for [`IDLE`] or breaks ends with an error, so the upload is removed).
fn body_items(body: Body, name: String, size: u64) -> ReceiverStream<Result<UploadItem, ApiError>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let meta = UploadItem::Metadata(UploadMetadata {
            name,
            size,
            encrypt: false,
        });
        if tx.send(Ok(meta)).await.is_err() {
            return;
        }
        let mut data = body.into_data_stream();
        loop {
            let item = match tokio::time::timeout(IDLE, data.next()).await {
                Ok(Some(Ok(bytes))) => Ok(UploadItem::Chunk(bytes.to_vec())),
                Ok(Some(Err(e))) => Err(ApiError::Unavailable(format!("the upload was cut: {e}"))),
                Ok(None) => return,
                Err(_) => Err(ApiError::Unavailable(format!(
                    "the upload stalled for {} s",
                    IDLE.as_secs()
                ))),
            };
            let end = item.is_err();
            if tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}

/// An operation's error as an HTTP answer (the same words as the API's).
fn answer_error(e: ApiError) -> Response {
    let code = match &e {
        ApiError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::AlreadyExists(_) | ApiError::FailedPrecondition(_) => StatusCode::CONFLICT,
        ApiError::ResourceExhausted(_) => StatusCode::TOO_MANY_REQUESTS,
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(code, super::error::shown(e))
}
