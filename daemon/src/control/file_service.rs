//! `chat.v1.FileService`: a thin adapter over [`crate::ops::FileOps`] (uploads, downloads,
//! the store's files).

use std::pin::Pin;

use chat_proto::v1::file_service_server::FileService;
use chat_proto::v1::{
    DownloadRequest, DownloadResponse, ListFilesRequest, ListFilesResponse, StatFileRequest,
    StatFileResponse, UploadRequest, UploadResponse, upload_request,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::ApiError;
use crate::client::ClientInfo;
use crate::ops::FileOps;
use crate::ops::files::UploadItem;
use crate::ops::private::PrivateOps;

/// The `FileService` implementation.
#[derive(Clone)]
pub struct FileApi {
    ops: FileOps,
    /// For downloads of private files (`private_id`): the caller's messages.
    private: Option<PrivateOps>,
}

impl FileApi {
    /// The service over `ops`.
    pub fn over(ops: FileOps) -> FileApi {
        FileApi { ops, private: None }
    }

    /// With the private-conversation service, for downloads of private files.
    pub fn with_private(mut self, private: PrivateOps) -> FileApi {
        self.private = Some(private);
        self
    }
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<DownloadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FileService for FileApi {
    #[tracing::instrument(skip_all)]
    async fn upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadResponse>, Status> {
        let items = request.into_inner().map(|m| match m {
            Ok(UploadRequest {
                item: Some(upload_request::Item::Metadata(meta)),
            }) => Ok(UploadItem::Metadata(meta)),
            Ok(UploadRequest {
                item: Some(upload_request::Item::Chunk(c)),
            }) => Ok(UploadItem::Chunk(c)),
            Ok(UploadRequest { item: None }) => Err(ApiError::field("item", "empty message")),
            Err(s) => Err(ApiError::Unavailable(format!(
                "the upload stream failed: {}",
                s.message()
            ))),
        });
        Ok(Response::new(self.ops.upload(Box::pin(items)).await?))
    }

    type DownloadStream = DownloadStream;

    #[tracing::instrument(skip_all)]
    async fn download(
        &self,
        request: Request<DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let who = request.extensions().get::<ClientInfo>().cloned();
        let req = request.into_inner();
        let rx = match (req.private_id.trim(), &self.private) {
            ("", _) => {
                self.ops
                    .download(&req.hash, req.size, req.stream_verified)
                    .await?
            }
            (id, Some(private)) => {
                let file = private.file_of(who.as_ref(), id).await?;
                self.ops.download_private(file).await?
            }
            (_, None) => {
                return Err(ApiError::Unavailable(
                    "private messages are not available on this node".into(),
                )
                .into());
            }
        };
        let stream = ReceiverStream::new(rx).map(|r| r.map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(skip_all)]
    async fn stat_file(
        &self,
        request: Request<StatFileRequest>,
    ) -> Result<Response<StatFileResponse>, Status> {
        let file = self.ops.stat(&request.into_inner().hash).await?;
        Ok(Response::new(StatFileResponse { file: Some(file) }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_files(
        &self,
        _request: Request<ListFilesRequest>,
    ) -> Result<Response<ListFilesResponse>, Status> {
        Ok(Response::new(self.ops.list().await?))
    }
}
