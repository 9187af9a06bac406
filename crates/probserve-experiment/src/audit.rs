//! Audit records: every transition says who, when, why, and what the metrics were.
//! The caller persists the record (and the new state) before acting on it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::guardrails::GuardrailReport;
use crate::metrics::ArmMetrics;
use crate::rollout::Phase;
use crate::shadow::ShadowReport;
use crate::stats::bayes::BayesResult;
use crate::stats::sequential::SequentialResult;
use crate::stats::srm::SrmResult;

/// Who caused a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// A human or tool, by name.
    Operator(String),
    /// The automatic controller.
    Controller,
}

/// One arm's headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSnapshot {
    /// Calls.
    pub requests: u64,
    /// Errors.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Median latency (ms).
    pub p50_ms: Option<f64>,
    /// p95 latency (ms).
    pub p95_ms: Option<f64>,
    /// p99 latency (ms).
    pub p99_ms: Option<f64>,
}

impl ArmSnapshot {
    /// From an aggregate.
    pub fn of(m: &ArmMetrics) -> Self {
        Self {
            requests: m.requests,
            errors: m.errors,
            timeouts: m.timeouts,
            p50_ms: m.latency.quantile(0.5),
            p95_ms: m.latency.quantile(0.95),
            p99_ms: m.latency.quantile(0.99),
        }
    }
}

/// The evidence attached to a transition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Per-version headline numbers.
    pub arms: BTreeMap<String, ArmSnapshot>,
    /// Guardrail checks.
    pub guardrails: Option<GuardrailReport>,
    /// SRM check.
    pub srm: Option<SrmResult>,
    /// Sequential test of the primary metric.
    pub sequential: Option<SequentialResult>,
    /// Shadow comparison.
    pub shadow: Option<ShadowReport>,
    /// Bayesian second view of a binary primary metric (probability to beat control).
    /// Reported only; decisions use the sequential test.
    pub bayes: Option<BayesResult>,
}

/// One audited transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Rollout id.
    pub rollout_id: String,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// The command or controller action, e.g. "promote".
    pub action: String,
    /// Phase before.
    pub from: Phase,
    /// Phase after.
    pub to: Phase,
    /// Step before.
    pub step_from: usize,
    /// Step after.
    pub step_to: usize,
    /// Why.
    pub reason: String,
    /// Metrics at decision time (controller decisions always carry them).
    pub metrics: Option<MetricsSnapshot>,
    /// State revision after the transition (monotone; for optimistic concurrency).
    pub revision: u64,
}
