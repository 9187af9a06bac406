//! probserve-bench: a load generator for probserve's `Infer` and the bare-tonic floor
//! it is measured against.
//!
//! - [`schedule`]: the open-loop arrival schedule and coordinated-omission-corrected
//!   latency (measured from the *intended* send time).
//! - [`stats`]: HDR-histogram recorders (overall and per time window), mergeable.
//! - [`driver`]: closed-loop (fixed concurrency) and open-loop (fixed arrival rate)
//!   drivers, generic over an async [`driver::Call`].
//! - [`client`]: gRPC callers for probserve's `Infer` (and the echo server, which
//!   speaks the same service) and for `GetHealthReport`.
//! - [`echo`]: the floor, a bare tonic `InferenceService` answering a canned response.
//! - [`loadgen`]: the `loadgen` command line and its run (used in-process by tests).
//! - [`result`]: the JSON result of one run; [`report`]: markdown tables of a suite.
//! - [`sys`]: process helpers (VmRSS, free ports, dates).

pub mod client;
pub mod driver;
pub mod echo;
pub mod loadgen;
pub mod report;
pub mod result;
pub mod schedule;
pub mod stats;
pub mod sys;

/// Errors of the load generator.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A run parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Histograms could not be merged.
    #[error("merging histograms: {0}")]
    Merge(String),
    /// Connecting to the target failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
    /// An I/O error (e.g. reading `/proc`).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}
