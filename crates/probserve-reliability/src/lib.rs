//! Reliability building blocks for probserve, each one concern, each usable and
//! testable on its own.
//!
//! - [`admission`]: a tower layer in front of every gRPC service that sheds load
//!   (too many calls in flight → `RESOURCE_EXHAUSTED` at once, instead of queueing
//!   without bound) and refuses new calls while the server drains (`UNAVAILABLE`),
//!   while letting health checks and reflection through.
//!
//! Later work adds circuit breakers, handler wrappers (panic and NaN isolation,
//! fallbacks), health scoring and SLO tracking here (see DESIGN.md).

pub mod admission;

pub use admission::{Admission, AdmissionLayer, AdmissionService};
