//! Sample-ratio mismatch: Pearson χ² of observed arm sizes against the planned weights
//! (experiments.md §3.9). A mismatch means an assignment bug, so the controller holds
//! the rollout and alerts instead of rolling back.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::error::ExperimentError;

/// SRM settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SrmConfig {
    /// Flag a mismatch when p < this (default 0.001).
    pub p_threshold: f64,
    /// Only test when every weighted arm has at least this many units (default 8).
    pub min_per_arm: u64,
}

impl Default for SrmConfig {
    fn default() -> Self {
        Self {
            p_threshold: 0.001,
            min_per_arm: 8,
        }
    }
}

/// Result of an SRM check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SrmResult {
    /// χ² statistic.
    pub chi2: f64,
    /// Degrees of freedom (arms with positive weight − 1).
    pub dof: usize,
    /// p-value.
    pub p_value: f64,
    /// Every weighted arm had enough units for the check to count.
    pub enough_data: bool,
    /// `enough_data && p_value < p_threshold`.
    pub mismatch: bool,
}

/// χ² SRM check of `observed` counts against `weights` (any positive scale).
///
/// # Errors
/// Length mismatch, fewer than two weighted arms, negative or non-finite weights.
pub fn srm_check(
    observed: &[u64],
    weights: &[f64],
    cfg: &SrmConfig,
) -> Result<SrmResult, ExperimentError> {
    if observed.len() != weights.len() {
        return Err(ExperimentError::input(
            "observed and weights differ in length",
        ));
    }
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(ExperimentError::input("weights must be finite and ≥ 0"));
    }
    let wsum: f64 = weights.iter().sum();
    let k = weights.iter().filter(|w| **w > 0.0).count();
    if k < 2 || wsum <= 0.0 {
        return Err(ExperimentError::input(
            "SRM needs at least two weighted arms",
        ));
    }
    let total: u64 = observed.iter().sum();
    let mut chi2 = 0.0;
    let mut enough = true;
    for (&o, &w) in observed.iter().zip(weights) {
        if w <= 0.0 {
            continue;
        }
        enough &= o >= cfg.min_per_arm;
        let e = w / wsum * total as f64;
        if e > 0.0 {
            chi2 += (o as f64 - e).powi(2) / e;
        }
    }
    let dof = k - 1;
    let dist = ChiSquared::new(dof as f64)
        .map_err(|e| ExperimentError::input(format!("chi-square: {e}")))?;
    let p_value = if total == 0 { 1.0 } else { dist.sf(chi2) };
    Ok(SrmResult {
        chi2,
        dof,
        p_value,
        enough_data: enough,
        mismatch: enough && p_value < cfg.p_threshold,
    })
}
