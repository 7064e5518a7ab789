//! Compiles `chat/v1/*.proto` without a system `protoc`: protox parses the files into a file
//! descriptor set, tonic-prost-build generates the Rust code from it, and the encoded set is
//! written to `OUT_DIR` for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "chat/v1/chat_service.proto",
        "chat/v1/node_service.proto",
        "chat/v1/record_service.proto",
        "chat/v1/user_service.proto",
        "chat/v1/private_service.proto",
        "chat/v1/file_service.proto",
    ];
    println!("cargo:rerun-if-changed=chat");

    let fds = protox::compile(protos, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("chat_v1_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Lets chatctl print any message as JSON with exactly the proto's field names.
        .message_attribute(".chat.v1", "#[derive(serde::Serialize)]")
        .enum_attribute(".chat.v1", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
