//! Guardrails: the candidate against the baseline, measured at the same time on the
//! same traffic. Seed defaults: error rate ≤ 2× baseline, p95 latency ≤ 1.5×, timeout
//! rate ≤ 2×, all configurable.
//!
//! Noise alone cannot trigger a rollback: a check only counts once both arms have
//! `min_samples_per_arm` calls, a rate check needs `min_events` candidate events, and
//! (by default) the excess rate must also be significant under the anytime-valid
//! sequential test ([`crate::stats::sequential`]), so re-checking every few seconds
//! does not inflate false rollbacks. The p95 check compares anytime-valid bounds
//! ([`crate::stats::quantile`]): it breaches only when a lower confidence bound on the
//! candidate's p95 exceeds the limit times an upper bound on the baseline's, which
//! needs roughly 1,500 calls per arm (the baseline's upper bound must exist).

use serde::{Deserialize, Serialize};

use crate::metrics::{ArmMetrics, Proportion};
use crate::stats::quantile;
use crate::stats::sequential::{self, SequentialConfig};

/// Relative accuracy of the latency sketch's quantiles (DDSketch default).
const LATENCY_SKETCH_RELATIVE_ERROR: f64 = 0.01;

/// Guardrail settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuardrailConfig {
    /// Maximum candidate/baseline error-rate ratio (default 2).
    pub max_error_rate_ratio: f64,
    /// Maximum candidate/baseline p95 latency ratio (default 1.5).
    pub max_p95_ratio: f64,
    /// Maximum candidate/baseline timeout-rate ratio (default 2).
    pub max_timeout_rate_ratio: f64,
    /// Calls needed in each arm before any check counts (default 500).
    pub min_samples_per_arm: u64,
    /// Candidate events (errors or timeouts) needed before a rate check can breach (default 5).
    pub min_events: u64,
    /// Also require significance (default true): the sequential test for the rates,
    /// anytime-valid quantile bounds for p95 ([`crate::stats::quantile`]).
    pub require_significance: bool,
    /// Sequential settings for that test.
    pub sequential: SequentialConfig,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        Self {
            max_error_rate_ratio: 2.0,
            max_p95_ratio: 1.5,
            max_timeout_rate_ratio: 2.0,
            min_samples_per_arm: 500,
            min_events: 5,
            require_significance: true,
            sequential: SequentialConfig::default(),
        }
    }
}

/// Which guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardrailMetric {
    /// Error rate.
    ErrorRate,
    /// Timeout rate.
    TimeoutRate,
    /// 95th percentile latency.
    P95Latency,
}

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckStatus {
    /// Within the limit (or not significantly beyond it).
    Pass,
    /// Beyond the limit.
    Breach,
    /// Not enough data yet.
    InsufficientData,
}

/// Evidence for one check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GuardrailCheck {
    /// Which metric.
    pub metric: GuardrailMetric,
    /// Baseline value.
    pub baseline: f64,
    /// Candidate value.
    pub candidate: f64,
    /// candidate / baseline (∞ when the baseline is 0 and the candidate is not).
    pub ratio: f64,
    /// Configured limit on the ratio.
    pub limit: f64,
    /// Baseline calls.
    pub n_baseline: u64,
    /// Candidate calls.
    pub n_candidate: u64,
    /// Sequential p-value of "candidate rate differs", for rate checks.
    pub p_value: Option<f64>,
    /// Verdict.
    pub status: CheckStatus,
}

/// All guardrail checks of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailReport {
    /// Checks in order error rate, timeout rate, p95.
    pub checks: Vec<GuardrailCheck>,
}

impl GuardrailReport {
    /// Any check breached.
    pub fn breached(&self) -> bool {
        self.checks.iter().any(|c| c.status == CheckStatus::Breach)
    }

    /// Human-readable reason naming every breached check, if any.
    pub fn reason(&self) -> Option<String> {
        let parts: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Breach)
            .map(|c| {
                format!(
                    "{:?} {:.4} vs baseline {:.4} (ratio {:.2} > {:.2}, n {}/{})",
                    c.metric,
                    c.candidate,
                    c.baseline,
                    c.ratio,
                    c.limit,
                    c.n_candidate,
                    c.n_baseline
                )
            })
            .collect();
        (!parts.is_empty()).then(|| format!("guardrail breach: {}", parts.join("; ")))
    }
}

fn ratio(candidate: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        candidate / baseline
    } else if candidate > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

fn rate_check(
    cfg: &GuardrailConfig,
    metric: GuardrailMetric,
    limit: f64,
    base: Proportion,
    cand: Proportion,
) -> GuardrailCheck {
    let (b, c) = (base.rate(), cand.rate());
    let r = ratio(c, b);
    let mut check = GuardrailCheck {
        metric,
        baseline: b,
        candidate: c,
        ratio: r,
        limit,
        n_baseline: base.n,
        n_candidate: cand.n,
        p_value: None,
        status: CheckStatus::InsufficientData,
    };
    if base.n < cfg.min_samples_per_arm.max(1) || cand.n < cfg.min_samples_per_arm.max(1) {
        return check;
    }
    if r <= limit || cand.successes < cfg.min_events {
        check.status = CheckStatus::Pass;
        return check;
    }
    check.status = if cfg.require_significance {
        match sequential::proportions(base, cand, &cfg.sequential) {
            Ok(s) => {
                check.p_value = Some(s.p_value);
                if s.reject && s.effect > 0.0 {
                    CheckStatus::Breach
                } else {
                    CheckStatus::Pass
                }
            }
            // The test needs variance; with none in either arm (the baseline never
            // fails, the candidate always does) the separation is complete: both arms
            // have at least the minimum samples and the candidate at least
            // `min_events` events, so this is a breach, not a lack of data.
            Err(_) if b == 0.0 && c == 1.0 => CheckStatus::Breach,
            Err(_) => CheckStatus::InsufficientData,
        }
    } else {
        CheckStatus::Breach
    };
    check
}

/// Evaluate all guardrails of `candidate` against `baseline`.
pub fn evaluate(
    cfg: &GuardrailConfig,
    baseline: &ArmMetrics,
    candidate: &ArmMetrics,
) -> GuardrailReport {
    let mut checks = vec![
        rate_check(
            cfg,
            GuardrailMetric::ErrorRate,
            cfg.max_error_rate_ratio,
            baseline.error_counts(),
            candidate.error_counts(),
        ),
        rate_check(
            cfg,
            GuardrailMetric::TimeoutRate,
            cfg.max_timeout_rate_ratio,
            baseline.timeout_counts(),
            candidate.timeout_counts(),
        ),
    ];
    let nb = baseline.latency.count() as u64;
    let nc = candidate.latency.count() as u64;
    let (pb, pc) = (
        baseline.latency.quantile(0.95),
        candidate.latency.quantile(0.95),
    );
    let mut lat = GuardrailCheck {
        metric: GuardrailMetric::P95Latency,
        baseline: pb.unwrap_or(f64::NAN),
        candidate: pc.unwrap_or(f64::NAN),
        ratio: f64::NAN,
        limit: cfg.max_p95_ratio,
        n_baseline: nb,
        n_candidate: nc,
        p_value: None,
        status: CheckStatus::InsufficientData,
    };
    let enough = nb >= cfg.min_samples_per_arm.max(1) && nc >= cfg.min_samples_per_arm.max(1);
    if let (Some(b), Some(c), true) = (pb, pc, enough) {
        lat.ratio = ratio(c, b);
        let breach = if lat.ratio <= cfg.max_p95_ratio {
            false
        } else if cfg.require_significance {
            quantile::exceeds_ratio(
                0.95,
                cfg.max_p95_ratio,
                cfg.sequential.alpha,
                (nc, &|l| candidate.latency.quantile(l)),
                (nb, &|l| baseline.latency.quantile(l)),
                LATENCY_SKETCH_RELATIVE_ERROR,
            )
        } else {
            true
        };
        lat.status = if breach {
            CheckStatus::Breach
        } else {
            CheckStatus::Pass
        };
    }
    checks.push(lat);
    GuardrailReport { checks }
}
