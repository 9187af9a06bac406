//! The probserve model language: parser, semantic checks and compilation onto probserve-runtime.
