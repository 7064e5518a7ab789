//! `chat.v1.RecordService`: DHT records put, read and deleted through this node, signed with
//! its key (`crate::records`).

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
use crate::records::{DEFAULT_TTL, Records};

/// The `RecordService` implementation.
#[derive(Debug, Clone)]
pub struct RecordApi {
    records: Arc<Records>,
}

impl RecordApi {
    /// A service putting and reading records through `records`.
    pub fn new(records: Arc<Records>) -> RecordApi {
        RecordApi { records }
    }
}

fn kind(name: &str) -> Result<Kind, ApiError> {
    Kind::from_name(name).ok_or_else(|| {
        ApiError::field(
            "kind",
            format!("unknown kind {name:?}; one of nick, profile, presence, keys, mailbox"),
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
        let req = request.into_inner();
        let kind = kind(&req.kind)?;
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
            .records
            .put(kind, req.key, Some(req.value), ttl)
            .await
            .map_err(ApiError::from)?;
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
        let req = request.into_inner();
        let kind = kind(&req.kind)?;
        let (record, _) = self
            .records
            .put(kind, req.key, None, DEFAULT_TTL)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(DeleteRecordResponse {
            record: Some(to_proto(&record)),
        }))
    }
}
