//! Reliability building blocks for probserve, each one concern, each usable and
//! testable on its own.
//!
//! - [`admission`]: a tower layer in front of every gRPC service that sheds load
//!   (too many calls in flight → `RESOURCE_EXHAUSTED` at once, instead of queueing
//!   without bound) and refuses new calls while the server drains (`UNAVAILABLE`),
//!   while letting health checks and reflection through.
//!
//! - [`deadline`]: the server's maximum deadline for every call (the client's
//!   `grpc-timeout` clamped, invalid values dropped, a backstop answer).
//! - [`panic`](mod@panic): a panic in a handler becomes `INTERNAL`/`PANIC`, and a panic hook
//!   logs each panic as one line.
//!
//! Policy cores, plain state machines with no tonic, no async and no clock of
//! their own (every call that depends on time takes `now`, so tests drive time by
//! hand). **Not yet wired into the server**: nothing on the Infer path uses them.
//!
//! - [`breaker`]: a circuit breaker per model version with resilience4j's
//!   semantics (count and time windows, failure- and slow-call-rate thresholds,
//!   half-open probes, a growing wait in open, operator-forced states), mapped onto
//!   Healthy / Degraded / Failed / Recovery; every state change is returned as a
//!   [`breaker::Transition`].
//! - [`slo`]: availability and latency objectives, burn rates, the SRE Workbook's
//!   multiwindow, multi-burn-rate alerts and the error budget left.
//!
//! Later work adds handler wrappers (panic and NaN isolation, fallbacks) and health
//! scoring here, and wires the breaker and the SLOs into the server (issue 13).

pub mod admission;
pub mod breaker;
pub mod deadline;
pub mod panic;
pub mod slo;

pub use admission::{Admission, AdmissionLayer, AdmissionService, ItemPermit};
pub use breaker::{Breaker, BreakerConfig};
pub use deadline::DeadlineLayer;
pub use panic::{CatchPanicLayer, install_panic_hook};
pub use slo::{SloConfig, SloTracker};
