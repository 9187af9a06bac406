//! The probserve gRPC server: configuration, telemetry, the tonic services and the
//! server lifecycle. The `probserve` binary (src/main.rs) is a thin CLI over
//! [`server::run`].
//!
//! Request path: RPC layer (span + metrics) → admission (load shedding, drain gate)
//! → tonic router → service handler. See ARCHITECTURE.md.

pub mod catalog;
pub mod config;
pub mod infer;
pub mod pool;
pub mod rollouts;
pub mod run_cost;
pub mod server;
pub mod services;
pub mod state;
pub mod telemetry;
