//! Typed errors of the experiment engine: bad configuration and bad input are
//! [`ExperimentError`]; an operator command that is illegal in the rollout's current
//! state is a [`RolloutError`].

use crate::rollout::Phase;

/// Invalid configuration or statistical input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A configuration field is out of range or inconsistent.
    #[error("invalid config `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A statistical function got input it cannot work with.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Not enough data to compute the requested statistic.
    #[error("insufficient data: {0}")]
    InsufficientData(String),
    /// Two aggregates could not be merged.
    #[error("cannot merge metrics: {0}")]
    Merge(String),
}

impl ExperimentError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
    pub(crate) fn input(reason: impl Into<String>) -> Self {
        Self::InvalidInput(reason.into())
    }
}

/// An operator command or controller action that is illegal right now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RolloutError {
    /// The command is not allowed from the rollout's current phase.
    #[error("cannot {command} a rollout that is {phase:?}")]
    IllegalTransition {
        /// The command attempted.
        command: &'static str,
        /// The phase the rollout was in.
        phase: Phase,
    },
    /// `advance` on the last step: use `promote`.
    #[error("rollout is already at its last step; promote it instead")]
    AtLastStep,
    /// An approval named a step that does not exist.
    #[error("step {step} does not exist (plan has {steps} steps)")]
    NoSuchStep {
        /// The step index given.
        step: usize,
        /// Number of steps in the plan.
        steps: usize,
    },
    /// A command's argument is over a size limit (override keys, override count).
    #[error("{field}: {reason}")]
    Limit {
        /// The offending request field.
        field: &'static str,
        /// The limit and the value.
        reason: String,
    },
    /// The override names a version that is not an arm of this rollout.
    #[error("version `{0}` is not part of this rollout")]
    UnknownVersion(String),
    /// The plan itself is invalid.
    #[error(transparent)]
    Config(#[from] ExperimentError),
}
