//! Records' messages (service [`crate::wire::RECORDS`]): a client's put and get, the
//! holders' digest comparison and fetch, and the push of copies.

use serde::{Deserialize, Serialize};

use super::{Hash, MAX_KEY, Record, RecordError};
use crate::id::NodeId;
use crate::wire::{InvalidMessage, MAX_PEER_LIST, Peer};

/// Wire version of the records service.
pub const VERSION: u16 = 1;

/// Most records in one message.
pub const MAX_BATCH: usize = 16;
/// Most hashes in one digest answer or fetch (a digest answer is cut at 512, between
/// locations; a mailbox holds at most 512 items).
pub const MAX_HASHES: usize = 1024;
/// Record bytes ([`Record::size`]) one message carries at most; a single record may exceed it
/// alone (values are bounded by [`super::MAX_VALUE`]).
pub const BATCH_BYTES: usize = 32 * 1024;

/// Records requests (see `docs/protocol.md`, "Records").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RecordsRequest {
    /// Store this record (the receiver must be its primary holder).
    Put(Record),
    /// The records of `kind` and `key`, from the item after `after` on (mailbox pages).
    Get {
        kind: u8,
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        after: Option<Hash>,
    },
    /// Compare the records located in `(from, to]`: the sender's XOR of hashes and count.
    Sync {
        from: NodeId,
        to: NodeId,
        digest: [u8; 32],
        count: u32,
    },
    /// Send these records.
    Fetch(Vec<Hash>),
}

/// Records responses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RecordsResponse {
    /// Answer to `Put`: the copies the primary aims for, or why not.
    Put(Result<u8, RecordError>),
    /// Answer to `Get`: what the receiver holds; `replicas`: its next `k` successors (the
    /// other holders, when it is the primary); `more`: the last item sent, when there are
    /// more.
    Got {
        records: Vec<Record>,
        replicas: Vec<Peer>,
        more: Option<Hash>,
        /// The receiver is the key's successor in its own view.
        primary: bool,
    },
    /// Answer to `Sync`: `None` when the digests match; otherwise the receiver's hashes in
    /// the range, in location order, up to `upto` when the list was cut.
    Sync {
        hashes: Option<Vec<Hash>>,
        upto: Option<NodeId>,
    },
    /// Answer to `Fetch`: the records still held.
    Fetched(Vec<Record>),
    /// The request was not served: malformed, or its origin is over its rate.
    Refused(RecordError),
}

/// Records notices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RecordsNotice {
    /// Copies for the receiver to hold (replication, repair, hand-over at leave).
    Store(Vec<Record>),
}

fn records_ok(rs: &[Record]) -> Result<(), InvalidMessage> {
    if rs.len() > MAX_BATCH {
        return Err(InvalidMessage::ListTooLong(rs.len()));
    }
    Ok(())
}

impl RecordsRequest {
    /// Checks list bounds (records themselves are checked by their policy).
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            RecordsRequest::Fetch(h) if h.len() > MAX_HASHES => {
                Err(InvalidMessage::ListTooLong(h.len()))
            }
            RecordsRequest::Get { key, .. } if key.len() > MAX_KEY => {
                Err(InvalidMessage::Oversized)
            }
            _ => Ok(()),
        }
    }
}

impl RecordsResponse {
    /// Checks list bounds.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            RecordsResponse::Got {
                records, replicas, ..
            } => {
                if replicas.len() > MAX_PEER_LIST {
                    return Err(InvalidMessage::ListTooLong(replicas.len()));
                }
                records_ok(records)
            }
            RecordsResponse::Sync {
                hashes: Some(h), ..
            } if h.len() > MAX_HASHES => Err(InvalidMessage::ListTooLong(h.len())),
            RecordsResponse::Fetched(rs) => records_ok(rs),
            _ => Ok(()),
        }
    }
}

impl RecordsNotice {
    /// Checks list bounds.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            RecordsNotice::Store(rs) => records_ok(rs),
        }
    }
}

/// Splits `records` into batches within [`MAX_BATCH`] and [`BATCH_BYTES`].
pub fn batches(records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut out = Vec::new();
    let mut cur: Vec<Record> = Vec::new();
    let mut bytes = 0;
    for r in records {
        let s = r.size();
        if !cur.is_empty() && (cur.len() == MAX_BATCH || bytes + s > BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += s;
        cur.push(r);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
