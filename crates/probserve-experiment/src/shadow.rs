//! Shadow comparison for probabilistic outputs. A mirrored call runs the shadow
//! version off the request path; its output is compared with the primary's, not for
//! equality (sampling-based posteriors differ on every call) but as distributions:
//! the two agree when `|Δmean| ≤ k × pooled sd`, and when posterior draws exist the
//! two-sample KS distance between them is recorded too.
//!
//! Aggregates (agreement count, distances, latency sketches, errors per origin) merge
//! by addition. [`ShadowStats::report`] gives the agreement rate with a Wilson
//! interval, latency and error ratios, and the promotion verdict against the seed's
//! criteria: agreement > 85 %, p95 ratio < 1.5, error ratio < 2, ≥ 1 000 compared calls.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use serde::{Deserialize, Serialize};

use crate::drift::ks_2samp;
use crate::error::ExperimentError;
use crate::metrics::{LatencySketch, Moments};
use crate::stats::wilson::wilson_interval;

/// A posterior summary of one output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PosteriorSummary<'a> {
    /// Posterior mean.
    pub mean: f64,
    /// Posterior sd.
    pub sd: f64,
    /// Posterior draws, when the call returned them.
    pub draws: Option<&'a [f64]>,
}

/// Shadow comparison settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowConfig {
    /// Agreement when |Δmean| ≤ k × pooled sd (default 0.5).
    pub k: f64,
    /// Agreement rate needed to promote, exclusive (default 0.85).
    pub min_agreement: f64,
    /// Maximum shadow/primary p95 latency ratio, exclusive (default 1.5).
    pub max_p95_ratio: f64,
    /// Maximum shadow/primary error-rate ratio, exclusive (default 2).
    pub max_error_ratio: f64,
    /// Compared calls needed before promotion (default 1 000).
    pub min_samples: u64,
    /// Level of the agreement interval (default 0.05).
    pub alpha: f64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        Self {
            k: 0.5,
            min_agreement: 0.85,
            max_p95_ratio: 1.5,
            max_error_ratio: 2.0,
            min_samples: 1000,
            alpha: 0.05,
        }
    }
}

/// Comparison of one call.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CallComparison {
    /// shadow mean − primary mean.
    pub delta_mean: f64,
    /// √((sd_p² + sd_s²)/2).
    pub pooled_sd: f64,
    /// |Δmean| ≤ k × pooled sd.
    pub agree: bool,
    /// KS distance between draws, when both sides had draws.
    pub distance: Option<f64>,
}

/// Compare one call's primary and shadow outputs.
///
/// # Errors
/// Non-finite means, negative or non-finite sds.
pub fn compare_call(
    primary: &PosteriorSummary<'_>,
    shadow: &PosteriorSummary<'_>,
    k: f64,
) -> Result<CallComparison, ExperimentError> {
    for s in [primary, shadow] {
        if !s.mean.is_finite() || !s.sd.is_finite() || s.sd < 0.0 {
            return Err(ExperimentError::input(
                "posterior summary must have finite mean and sd ≥ 0",
            ));
        }
    }
    let delta = shadow.mean - primary.mean;
    let pooled = ((primary.sd.powi(2) + shadow.sd.powi(2)) / 2.0).sqrt();
    let distance = match (primary.draws, shadow.draws) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => Some(ks_2samp(a, b)?.d),
        _ => None,
    };
    Ok(CallComparison {
        delta_mean: delta,
        pooled_sd: pooled,
        agree: delta.abs() <= k * pooled,
        distance,
    })
}

/// Mergeable aggregate of a shadow run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShadowStats {
    /// Calls where both sides succeeded and were compared.
    pub compared: u64,
    /// Of those, calls that agreed.
    pub agreements: u64,
    /// |Δmean| / pooled sd over compared calls (pooled sd 0 → skipped).
    pub standardized_delta: Moments,
    /// KS distances where draws existed.
    pub distance: Moments,
    /// Primary calls and errors.
    pub primary_calls: u64,
    /// Primary errors.
    pub primary_errors: u64,
    /// Shadow calls and errors.
    pub shadow_calls: u64,
    /// Shadow errors.
    pub shadow_errors: u64,
    /// Primary latency (ms).
    pub primary_latency: LatencySketch,
    /// Shadow latency (ms).
    pub shadow_latency: LatencySketch,
}

/// One side of a mirrored call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SideResult<'a> {
    /// Latency in ms.
    pub latency_ms: f64,
    /// Output, or `None` when the call failed.
    pub output: Option<PosteriorSummary<'a>>,
}

impl ShadowStats {
    /// Record one mirrored call.
    ///
    /// # Errors
    /// As [`compare_call`].
    pub fn record(
        &mut self,
        primary: &SideResult<'_>,
        shadow: &SideResult<'_>,
        k: f64,
    ) -> Result<(), ExperimentError> {
        self.primary_calls += 1;
        self.shadow_calls += 1;
        self.primary_latency.add(primary.latency_ms);
        self.shadow_latency.add(shadow.latency_ms);
        self.primary_errors += u64::from(primary.output.is_none());
        self.shadow_errors += u64::from(shadow.output.is_none());
        if let (Some(p), Some(s)) = (&primary.output, &shadow.output) {
            let c = compare_call(p, s, k)?;
            self.compared += 1;
            self.agreements += u64::from(c.agree);
            if c.pooled_sd > 0.0 {
                self.standardized_delta
                    .add(c.delta_mean.abs() / c.pooled_sd);
            }
            if let Some(d) = c.distance {
                self.distance.add(d);
            }
        }
        Ok(())
    }

    /// Merge another replica's aggregate.
    ///
    /// # Errors
    /// Incompatible latency sketches.
    pub fn merge(&mut self, o: &ShadowStats) -> Result<(), ExperimentError> {
        self.compared += o.compared;
        self.agreements += o.agreements;
        self.standardized_delta.merge(&o.standardized_delta);
        self.distance.merge(&o.distance);
        self.primary_calls += o.primary_calls;
        self.primary_errors += o.primary_errors;
        self.shadow_calls += o.shadow_calls;
        self.shadow_errors += o.shadow_errors;
        self.primary_latency.merge(&o.primary_latency)?;
        self.shadow_latency.merge(&o.shadow_latency)
    }

    /// Summary and promotion verdict.
    pub fn report(&self, cfg: &ShadowConfig) -> ShadowReport {
        let rate = if self.compared > 0 {
            self.agreements as f64 / self.compared as f64
        } else {
            f64::NAN
        };
        let ci = wilson_interval(self.agreements, self.compared, cfg.alpha).ok();
        let p95_ratio = match (
            self.primary_latency.quantile(0.95),
            self.shadow_latency.quantile(0.95),
        ) {
            (Some(p), Some(s)) if p > 0.0 => s / p,
            _ => f64::NAN,
        };
        // Add-one smoothing so that zero primary errors do not make any shadow error infinite.
        let err = |e: u64, n: u64| (e as f64 + 1.0) / (n as f64 + 1.0);
        let error_ratio = err(self.shadow_errors, self.shadow_calls)
            / err(self.primary_errors, self.primary_calls);
        let mut blockers = Vec::new();
        if self.compared < cfg.min_samples {
            blockers.push(format!(
                "{} compared calls < {}",
                self.compared, cfg.min_samples
            ));
        }
        if !(rate > cfg.min_agreement) {
            blockers.push(format!("agreement {rate:.3} ≤ {}", cfg.min_agreement));
        }
        if !(p95_ratio < cfg.max_p95_ratio) {
            blockers.push(format!("p95 ratio {p95_ratio:.3} ≥ {}", cfg.max_p95_ratio));
        }
        if !(error_ratio < cfg.max_error_ratio) {
            blockers.push(format!(
                "error ratio {error_ratio:.3} ≥ {}",
                cfg.max_error_ratio
            ));
        }
        ShadowReport {
            compared: self.compared,
            agreement_rate: rate,
            agreement_ci: ci,
            mean_standardized_delta: self.standardized_delta.mean(),
            mean_distance: (self.distance.n > 0).then(|| self.distance.mean()),
            p95_ratio,
            error_ratio,
            promotable: blockers.is_empty(),
            blockers,
        }
    }
}

/// Shadow summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowReport {
    /// Compared calls.
    pub compared: u64,
    /// Agreement rate.
    pub agreement_rate: f64,
    /// Wilson interval of the agreement rate.
    pub agreement_ci: Option<(f64, f64)>,
    /// Mean |Δmean|/pooled sd.
    pub mean_standardized_delta: f64,
    /// Mean KS distance between draws.
    pub mean_distance: Option<f64>,
    /// Shadow/primary p95 latency.
    pub p95_ratio: f64,
    /// Shadow/primary error rate (add-one smoothed).
    pub error_ratio: f64,
    /// All criteria met.
    pub promotable: bool,
    /// Criteria not met.
    pub blockers: Vec<String>,
}
