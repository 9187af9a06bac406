//! Code generated from proto/probserve/v1 (no system protoc needed).
