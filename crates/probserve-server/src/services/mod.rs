//! The tonic services of the probserve v1 API, one module each, plus the shared
//! error conversion ([`status`]).

pub mod diagnostics;
pub mod experiments;
pub mod inference;
pub mod registry;
pub mod status;
