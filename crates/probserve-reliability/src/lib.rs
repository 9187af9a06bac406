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
//! - [`panic`]: a panic in a handler becomes `INTERNAL`/`PANIC`, and a panic hook
//!   logs each panic as one line.
//!
//! Later work adds circuit breakers, handler wrappers (panic and NaN isolation,
//! fallbacks), health scoring and SLO tracking here (see DESIGN.md).

pub mod admission;
pub mod breaker;
pub mod deadline;
pub mod panic;
pub mod slo;

pub use admission::{Admission, AdmissionLayer, AdmissionService, ItemPermit};
pub use deadline::DeadlineLayer;
pub use panic::{CatchPanicLayer, install_panic_hook};
