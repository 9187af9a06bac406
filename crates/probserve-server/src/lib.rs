//! The probserve gRPC server: tonic services, configuration, telemetry and the probserve binary.
