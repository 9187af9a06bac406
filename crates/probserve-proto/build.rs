//! Compiles `proto/probserve/v1/*.proto` with protox (pure Rust, no system protoc),
//! generates prost messages and tonic client/server stubs, and writes the encoded
//! `FileDescriptorSet` to `OUT_DIR` for server reflection.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "probserve/v1/common.proto",
    "probserve/v1/inference.proto",
    "probserve/v1/models.proto",
    "probserve/v1/experiments.proto",
    "probserve/v1/diagnostics.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for f in FILES {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(FILES, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("probserve_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
