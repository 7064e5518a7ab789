//! The provider side: one incoming bulk stream, one range request, one answer.
//!
//! The request (chat-blobs' `wire::Request`, at most `MAX_REQUEST` bytes) is read with its
//! own length bound; a malformed one is refused with [`BAD_REQUEST`]. The answer is
//! chat-blobs' validated encoding, written on a blocking thread into a [`bridge`] writer
//! that the stream drains; a blob found damaged on disk is removed and the stream reset,
//! so the requester sees a cut response, never wrong bytes.

use std::io;

use chat_blobs::StoreError;
use chat_blobs::wire::{MAX_BOUNDARIES, Request};
use tokio::io::AsyncReadExt;

use super::{FileStats, Files, bridge, lock};
use crate::transport::BulkStream;

/// The whole request must arrive within this once the stream is handed over (a slow
/// requester must not hold one of the answers' places).
pub const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// Reset code: the request was malformed (or late).
pub const BAD_REQUEST: u32 = 0x100;
/// Reset code: the answer failed on this side (a damaged blob, a disk error).
pub const FAILED: u32 = 0x101;

/// Reads one request from `stream` and answers it.
pub(super) async fn answer(files: &Files, mut stream: BulkStream) {
    let peer = stream.peer().id;
    if stream.header().version != super::HEADER.version {
        return stream.refuse(crate::transport::bulk::reset::VERSION);
    }
    let read = tokio::time::timeout(REQUEST_DEADLINE, read_request(&mut stream)).await;
    let request = match read.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no request in time",
        ))
    }) {
        Ok(r) => r,
        Err(e) => {
            FileStats::add(&files.stats.bad_requests, 1);
            tracing::debug!(peer = %peer.short(), error = %e, "blob request refused");
            return stream.refuse(BAD_REQUEST);
        }
    };
    let (writer, pieces) = bridge::writer();
    let store = files.store.clone();
    let hash = request.hash;
    let work = tokio::task::spawn_blocking(move || {
        let source = lock(&store).source(&request.hash);
        let mut writer = writer;
        match source {
            Ok(source) => {
                let res = match super::faults::Faults::from_env() {
                    Some(faults) => source.serve(&request.ranges, faults.wrap(&mut writer)),
                    None => source.serve(&request.ranges, &mut writer),
                };
                if matches!(res, Err(StoreError::Corrupt(_))) {
                    tracing::warn!(blob = %request.hash, "a stored blob does not match its outboard: removed");
                    if let Err(e) = lock(&store).remove(&request.hash) {
                        tracing::warn!(blob = %request.hash, error = %e, "removing a damaged blob");
                    }
                }
                res
            }
            Err(StoreError::NotFound(_)) => {
                use std::io::Write;
                writer
                    .write_all(&[chat_blobs::wire::STATUS_NOT_FOUND])
                    .and_then(|()| writer.flush())
                    .map(|()| 1)
                    .map_err(StoreError::Response)
            }
            Err(e) => Err(e),
        }
    });
    let pumped = bridge::pump_out(pieces, &mut stream).await;
    let served = match work.await {
        Ok(r) => r,
        Err(_) => return stream.refuse(FAILED),
    };
    match (served, pumped) {
        (Ok(_), Ok(n)) => {
            FileStats::add(&files.stats.bytes_served, n);
            if stream.finish().is_ok() {
                // Keep the stream (and its place in the bounds) until the requester has it all.
                let idle = std::time::Duration::from_secs(30);
                let _ = tokio::time::timeout(idle, stream.stopped()).await;
            }
        }
        (Err(e), _) => {
            if matches!(e, StoreError::Corrupt(_)) {
                FileStats::add(&files.stats.corrupt, 1);
            }
            tracing::debug!(peer = %peer.short(), blob = %hash, error = %e, "blob answer failed");
            stream.refuse(FAILED);
        }
        (Ok(_), Err(e)) => {
            tracing::debug!(peer = %peer.short(), blob = %hash, error = %e, "blob answer cut");
            stream.refuse(FAILED);
        }
    }
}

/// Reads a request: its fixed part, then as many boundaries as it says (bounded).
pub(super) async fn read_request(stream: &mut BulkStream) -> io::Result<Request> {
    let mut head = [0u8; 34];
    stream.read_exact(&mut head).await?;
    let n = usize::from(head[33]);
    if n == 0 || n > MAX_BOUNDARIES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n} range boundaries"),
        ));
    }
    let mut bytes = Vec::with_capacity(34 + n * 8);
    bytes.extend_from_slice(&head);
    bytes.resize(34 + n * 8, 0);
    stream.read_exact(&mut bytes[34..]).await?;
    Request::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
