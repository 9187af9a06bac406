//! Compiles `proto/probserve/v1/*.proto` with protox (pure Rust, no system protoc),
//! generates prost messages and tonic client/server stubs, and writes the encoded
//! `FileDescriptorSet`s to `OUT_DIR` for server reflection: the probserve files, and
//! `proto/google/rpc` (the error details our statuses carry; descriptors only).
//!
//! Two generation passes: messages and clients with tonic's prost codec, then the
//! servers alone (messages referenced through `extern_path`) with
//! `crate::codec::ServerCodec`, which answers an undecodable request with
//! INVALID_ARGUMENT. A client decoding a bad *response* keeps tonic's INTERNAL.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "probserve/v1/common.proto",
    "probserve/v1/inference.proto",
    "probserve/v1/models.proto",
    "probserve/v1/experiments.proto",
    "probserve/v1/diagnostics.proto",
];

/// Third-party protos served by reflection only (no Rust is generated from them).
const GOOGLE_RPC_FILES: &[&str] = &[
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
    "google/rpc/code.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for f in FILES.iter().chain(GOOGLE_RPC_FILES) {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("probserve_descriptor.bin"), fds.encode_to_vec())?;
    let google = protox::compile(GOOGLE_RPC_FILES, [&root])?;
    std::fs::write(
        out.join("google_rpc_descriptor.bin"),
        google.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds.clone())?;
    let server_dir = out.join("server");
    std::fs::create_dir_all(&server_dir)?;
    tonic_prost_build::configure()
        .out_dir(&server_dir)
        .build_client(false)
        .build_server(true)
        .extern_path(".probserve.v1", "crate::v1")
        .codec_path("crate::codec::ServerCodec")
        .compile_fds(fds)?;
    Ok(())
}
