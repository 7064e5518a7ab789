//! The contract between chatd and its clients.
//!
//! - [`v1`]: the gRPC package `chat.v1`, generated at build time from `proto/chat/v1/*.proto`
//!   (no system `protoc` needed: see `build.rs`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors of that package, for server reflection and
//!   for tests that compare output against the schema.
//! - [`paths`]: where the control socket lives by default, so that chatd and every client agree.

pub mod paths;

/// The gRPC package `chat.v1`.
pub mod v1 {
    #![allow(clippy::derive_partial_eq_without_eq)]
    // A ChatMessage carries its file reference inline; events are moved, not copied.
    #![allow(clippy::large_enum_variant)]
    tonic::include_proto!("chat.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of every file in `chat.v1`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/chat_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_describes_node_service() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let file = fds
            .file
            .iter()
            .find(|f| f.name() == "chat/v1/node_service.proto")
            .expect("node_service.proto is in the set");
        assert_eq!(file.package(), "chat.v1");
        assert!(file.service.iter().any(|s| s.name() == "NodeService"));
    }
}

#[cfg(test)]
mod chat_service_tests {
    use prost::Message;

    #[test]
    fn descriptor_set_describes_chat_service() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("descriptor set decodes");
        let file = fds
            .file
            .iter()
            .find(|f| f.name() == "chat/v1/chat_service.proto")
            .expect("chat_service.proto is in the set");
        let service = file
            .service
            .iter()
            .find(|s| s.name() == "ChatService")
            .expect("ChatService");
        let methods: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        assert_eq!(
            methods,
            [
                "Send",
                "Subscribe",
                "History",
                "Search",
                "ListRooms",
                "Edit",
                "Delete",
                "Trace",
                "Transcribe"
            ]
        );
    }
}
