//! The standard gRPC services every client expects: `grpc.health.v1` and server reflection
//! (`grpc.reflection.v1` and `v1alpha`; grpcio's reflection client only speaks v1alpha).
//!
//! Health reports NOT_SERVING for the server as a whole (""), `chat.v1.ChatService` and
//! `chat.v1.RecordService` until the node has joined or founded a ring, following
//! [`Node::subscribe_joined`].

use std::sync::Arc;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::node::Node;

/// Service names whose health follows ring membership.
pub const HEALTH_SERVICES: &[&str] = &[
    "",
    "chat.v1.ChatService",
    "chat.v1.RecordService",
    "chat.v1.UserService",
    "chat.v1.PrivateService",
    "chat.v1.FileService",
];

/// Keeps the health statuses equal to the node's membership until the node is dropped.
pub async fn follow_membership(reporter: HealthReporter, node: Arc<Node>) {
    let mut joined = node.subscribe_joined();
    drop(node);
    loop {
        let status = if *joined.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in HEALTH_SERVICES {
            reporter.set_service_status(*name, status).await;
        }
        if joined.changed().await.is_err() {
            // The membership is gone: nothing will change any more (the server's helpers
            // must not end on their own).
            return std::future::pending().await;
        }
    }
}

/// Reflection services (v1, v1alpha) describing chat.v1 and grpc.health.v1.
pub fn reflection() -> Result<
    (
        tonic_reflection::server::v1::ServerReflectionServer<
            impl tonic_reflection::server::v1::ServerReflection,
        >,
        tonic_reflection::server::v1alpha::ServerReflectionServer<
            impl tonic_reflection::server::v1alpha::ServerReflection,
        >,
    ),
    tonic_reflection::server::Error,
> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(chat_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}
