//! Rust types and tonic stubs generated at build time from `proto/probserve/v1`.
//!
//! The proto files are compiled by protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is needed. [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set,
//! proto comments included, for server reflection (`grpcurl describe`).

pub mod codec;

/// The `probserve.v1` package: messages, enums, clients and servers.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("probserve.v1");
    // The servers, generated in a second pass with [`crate::codec::ServerCodec`].
    include!(concat!(env!("OUT_DIR"), "/server/probserve.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every probserve proto file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/probserve_descriptor.bin"));

/// The encoded `FileDescriptorSet` of `google/rpc/{status,error_details,code}.proto`
/// (and their imports), so reflection clients can decode our error details.
pub const GOOGLE_RPC_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/google_rpc_descriptor.bin"));

/// Fully-qualified names of the probserve gRPC services, as used by health checks.
pub const SERVICE_NAMES: &[&str] = &[
    "probserve.v1.InferenceService",
    "probserve.v1.ModelRegistryService",
    "probserve.v1.ExperimentService",
    "probserve.v1.DiagnosticsService",
];

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_holds_every_service_with_comments() {
        let fds = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = fds
            .file
            .iter()
            .flat_map(|f| {
                f.service
                    .iter()
                    .map(move |s| format!("{}.{}", f.package(), s.name()))
            })
            .collect();
        for name in super::SERVICE_NAMES {
            assert!(
                services.iter().any(|s| s == name),
                "{name} missing from {services:?}"
            );
        }
        let has_comments = fds.file.iter().any(|f| {
            f.source_code_info
                .as_ref()
                .is_some_and(|i| !i.location.is_empty())
        });
        assert!(
            has_comments,
            "source info (comments) must be kept for grpcurl describe"
        );
    }
}
