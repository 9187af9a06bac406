//! Typed errors: distribution construction, model execution and inference.

use crate::address::Address;

/// A distribution could not be built from its parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// A scalar parameter is outside its valid range (or not finite).
    #[error("{dist}: invalid parameter {param} = {value}")]
    InvalidParameter {
        /// Distribution name.
        dist: &'static str,
        /// Parameter name.
        param: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A parameter vector is empty or its lengths do not agree.
    #[error("{dist}: invalid dimension for {param}: {len}")]
    InvalidDimension {
        /// Distribution name.
        dist: &'static str,
        /// Parameter name.
        param: &'static str,
        /// The rejected length.
        len: usize,
    },
    /// A covariance matrix is not symmetric positive definite.
    #[error("{dist}: covariance matrix is not symmetric positive definite")]
    NotPositiveDefinite {
        /// Distribution name.
        dist: &'static str,
    },
}

/// An error raised while running a model under a handler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A value or log-density was NaN (or a factor was +∞) at this address.
    #[error("non-finite {what} at address {address}")]
    NonFinite {
        /// The site that produced it.
        address: Address,
        /// What was non-finite ("value", "log-density", "factor").
        what: &'static str,
    },
    /// The same address was visited twice in one run.
    #[error("duplicate address {0} in one run")]
    DuplicateAddress(Address),
    /// A handler needed a value for this address and none was given.
    #[error("no value for address {0}")]
    MissingValue(Address),
    /// A vector site was replayed with a value of the wrong length.
    #[error("value at address {address} has length {got}, expected {expected}")]
    Shape {
        /// The site.
        address: Address,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A distribution could not be built inside the model.
    #[error("invalid distribution{}: {source}", address.map(|a| format!(" at {a}")).unwrap_or_default())]
    Dist {
        /// The site, when known.
        address: Option<Address>,
        /// The construction error.
        source: DistError,
    },
    /// The model exceeded its execution budget (raised by the model language).
    #[error("step limit of {limit} exceeded")]
    StepLimit {
        /// The budget.
        limit: u64,
    },
    /// One run visited more sites than its trace may hold ([`crate::Model::max_sites`]):
    /// the memory budget of the run.
    #[error("site limit of {limit} exceeded: one run may record at most {limit} sites")]
    SiteLimit {
        /// The budget.
        limit: usize,
    },
    /// Any other model-defined failure.
    #[error("{0}")]
    Other(String),
}

impl From<DistError> for ModelError {
    fn from(source: DistError) -> Self {
        ModelError::Dist {
            address: None,
            source,
        }
    }
}

impl ModelError {
    /// Attach an address to a distribution-construction error.
    pub fn dist_at(address: Address, source: DistError) -> Self {
        ModelError::Dist {
            address: Some(address),
            source,
        }
    }

    /// The address this error refers to, if any.
    pub fn address(&self) -> Option<Address> {
        match self {
            ModelError::NonFinite { address, .. }
            | ModelError::DuplicateAddress(address)
            | ModelError::MissingValue(address)
            | ModelError::Shape { address, .. } => Some(*address),
            ModelError::Dist { address, .. } => *address,
            ModelError::StepLimit { .. } | ModelError::SiteLimit { .. } | ModelError::Other(_) => {
                None
            }
        }
    }
}

/// An inference run failed or was stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// The cancellation flag was raised.
    #[error("inference cancelled")]
    Cancelled,
    /// The deadline passed before inference finished.
    #[error("inference deadline exceeded")]
    DeadlineExceeded,
    /// The model failed; `address` is the failing site rendered with the model's names.
    #[error("model error{}: {source}", address.as_ref().map(|a| format!(" at {a}")).unwrap_or_default())]
    Model {
        /// The failing site, rendered with the model's site names.
        address: Option<String>,
        /// The underlying error.
        source: ModelError,
    },
    /// Every particle had zero weight (log-weight −∞).
    #[error("no particle has positive weight")]
    NoPositiveWeight,
    /// No initial state with finite log-density was found.
    #[error("no initial state with finite log-density after {attempts} prior draws")]
    NoValidInitialization {
        /// How many prior draws were tried.
        attempts: usize,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Runs of the model produced outputs of different lengths.
    #[error("model output length changed from {expected} to {got}")]
    OutputShape {
        /// Length of the first draw.
        expected: usize,
        /// Length of a later draw.
        got: usize,
    },
    /// A worker thread failed unexpectedly.
    #[error("worker thread failed: {0}")]
    Worker(String),
}
