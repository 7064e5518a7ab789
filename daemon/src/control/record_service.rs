//! `chat.v1.RecordService`: DHT records put, read and deleted through this node
//! (`crate::records`).
//!
//! A client writes only its own records: what it puts or deletes is signed by the caller's
//! account (the operator's, a local user's or the TCP guest's — see `people::Who`), never by
//! the node's key, so nothing a client writes can pass for the node's own word. And it writes
//! only name claims (`nick`): the kinds chatd's services own — `profile`, `presence`, `keys`
//! (the private-message key bundle), `mailbox` (private-message items and the presence
//! epochs' items) and `provider` (the files service's provider records) — are refused with PERMISSION_DENIED for every caller, the operator included.
//! Any kind may be read.

use std::sync::Arc;
use std::time::Duration;

use chat_overlay::records::{Kind, Record as DhtRecord, Value};
use chat_proto::v1::record_service_server::RecordService;
use chat_proto::v1::{
    DeleteRecordRequest, DeleteRecordResponse, GetRecordRequest, GetRecordResponse,
    PutRecordRequest, PutRecordResponse, Record,
};
use tonic::{Request, Response, Status};

use super::ApiError;
use super::access::ClientInfo;
use crate::people::People;
use crate::records::{DEFAULT_TTL, Records};

/// The `RecordService` implementation.
#[derive(Debug, Clone)]
pub struct RecordApi {
    records: Arc<Records>,
    people: Arc<People>,
}

impl RecordApi {
    /// A service reading records through `records` and writing them as the caller's account
    /// (`people`).
    pub fn new(records: Arc<Records>, people: Arc<People>) -> RecordApi {
        RecordApi { records, people }
    }

    /// Puts (`value`) or deletes (`None`) the caller's own record of `kind` (already checked
    /// [`writable`]).
    async fn write(
        &self,
        caller: Option<&ClientInfo>,
        kind: Kind,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ttl: Duration,
    ) -> Result<(DhtRecord, u8), ApiError> {
        let signer = self
            .people
            .signer_of(self.people.who(caller))
            .map_err(ApiError::from)?;
        self.records
            .put_by(&signer, kind, key, value, ttl)
            .await
            .map_err(ApiError::from)
    }
}

/// Whether clients may write records of `kind`: only name claims; every other kind belongs to
/// a service of chatd (see the module docs).
pub fn writable(kind: Kind) -> Result<(), ApiError> {
    match kind {
        Kind::Nick => Ok(()),
        other => Err(ApiError::PermissionDenied(format!(
            "kind: {} records are written only by chatd's own services (profiles and presence \
             by the people service, key bundles and mailboxes by private messages, providers \
             by the files service); clients may write nick claims",
            other.name()
        ))),
    }
}

fn kind(name: &str) -> Result<Kind, ApiError> {
    Kind::from_name(name).ok_or_else(|| {
        ApiError::field(
            "kind",
            format!(
                "unknown kind {name:?}; one of nick, profile, presence, keys, mailbox, provider"
            ),
        )
    })
}

/// The API's form of a record.
pub fn to_proto(r: &DhtRecord) -> Record {
    Record {
        kind: Kind::from_u8(r.kind).map_or_else(|| r.kind.to_string(), |k| k.name().to_owned()),
        key: r.key.clone(),
        value: match &r.value {
            Value::Data(d) => d.clone(),
            _ => Vec::new(),
        },
        owner: r.owner.to_vec(),
        version: r.version,
        created_unix_ms: r.created,
        expires_unix_ms: r.expires,
        deleted: matches!(r.value, Value::Deleted),
        hash: r.hash().0.to_vec(),
    }
}

#[tonic::async_trait]
impl RecordService for RecordApi {
    #[tracing::instrument(skip_all)]
    async fn put_record(
        &self,
        request: Request<PutRecordRequest>,
    ) -> Result<Response<PutRecordResponse>, Status> {
        let caller = request.extensions().get::<ClientInfo>().cloned();
        let req = request.into_inner();
        let kind = kind(&req.kind)?;
        writable(kind)?;
        if req.value.len() > chat_overlay::records::MAX_VALUE {
            return Err(ApiError::field(
                "value",
                format!("at most {} bytes", chat_overlay::records::MAX_VALUE),
            )
            .into());
        }
        let ttl = match req.ttl_seconds {
            0 => DEFAULT_TTL,
            s => Duration::from_secs(u64::from(s)),
        };
        let (record, copies) = self
            .write(caller.as_ref(), kind, req.key, Some(req.value), ttl)
            .await?;
        Ok(Response::new(PutRecordResponse {
            record: Some(to_proto(&record)),
            copies: u32::from(copies),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_record(
        &self,
        request: Request<GetRecordRequest>,
    ) -> Result<Response<GetRecordResponse>, Status> {
        let req = request.into_inner();
        let kind = kind(&req.kind)?;
        let found = self
            .records
            .get(kind, req.key)
            .await
            .map_err(ApiError::from)?;
        if found.is_empty() {
            return Err(
                ApiError::NotFound(format!("no {} record under that key", kind.name())).into(),
            );
        }
        Ok(Response::new(GetRecordResponse {
            records: found.iter().map(to_proto).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_record(
        &self,
        request: Request<DeleteRecordRequest>,
    ) -> Result<Response<DeleteRecordResponse>, Status> {
        let caller = request.extensions().get::<ClientInfo>().cloned();
        let req = request.into_inner();
        let kind = kind(&req.kind)?;
        writable(kind)?;
        let (record, _) = self
            .write(caller.as_ref(), kind, req.key, None, DEFAULT_TTL)
            .await?;
        Ok(Response::new(DeleteRecordResponse {
            record: Some(to_proto(&record)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::testkit::{fixture, from, guest, local_account, operator};

    const OWNED: [&str; 4] = ["profile", "presence", "keys", "mailbox"];

    #[tokio::test]
    async fn nobody_writes_the_kinds_a_service_owns() {
        let f = fixture();
        let api = RecordApi::new(f.records.clone(), f.people.clone());
        // A presence epoch's key, a hosted account's key, the node's key, and the empty key.
        let epoch =
            chat_people::epoch::epoch_key(chat_people::epoch::epoch_of(crate::records::unix_ms()))
                .to_vec();
        let account = f
            .people
            .account_of(crate::people::Who::Operator)
            .expect("account")
            .to_vec();
        let keys = [epoch, account, f.records.owner().to_vec(), Vec::new()];
        for caller in [operator(), local_account(), guest()] {
            for kind in OWNED {
                for key in &keys {
                    let put = PutRecordRequest {
                        kind: kind.into(),
                        key: key.clone(),
                        value: b"forged".to_vec(),
                        ttl_seconds: 60,
                    };
                    let err = api
                        .put_record(from(caller.clone(), put))
                        .await
                        .expect_err("refused");
                    assert_eq!(
                        err.code(),
                        tonic::Code::PermissionDenied,
                        "{caller:?} {kind}"
                    );
                    assert!(err.message().starts_with("kind: "), "{}", err.message());
                    let delete = DeleteRecordRequest {
                        kind: kind.into(),
                        key: key.clone(),
                    };
                    let err = api
                        .delete_record(from(caller.clone(), delete))
                        .await
                        .expect_err("refused");
                    assert_eq!(
                        err.code(),
                        tonic::Code::PermissionDenied,
                        "{caller:?} {kind}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn a_name_claim_passes_the_check() {
        let f = fixture();
        let api = RecordApi::new(f.records.clone(), f.people.clone());
        for caller in [operator(), local_account(), guest()] {
            let put = PutRecordRequest {
                kind: "nick".into(),
                key: b"carol".to_vec(),
                value: b"x".to_vec(),
                ttl_seconds: 60,
            };
            // No ring here: the put gets as far as the overlay, which is not running.
            let err = api
                .put_record(from(caller.clone(), put))
                .await
                .expect_err("no ring");
            assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{caller:?}");
        }
    }
}
