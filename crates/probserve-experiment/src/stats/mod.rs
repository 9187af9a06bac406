//! Statistics on sufficient statistics: fixed-horizon tests, intervals, power,
//! sample-ratio mismatch, anytime-valid sequential tests, multiple-comparison
//! corrections, a Bayesian second view and segment analysis.
//! Formulas and reference vectors: shared/reference/experiments.md §3–§4; the frozen
//! scipy/statsmodels vectors live in `tests/reference/`.

pub mod bayes;
pub mod multiple;
pub mod power;
pub mod quantile;
pub mod segments;
pub mod sequential;
pub mod srm;
pub mod welch;
pub mod wilson;
pub mod ztest;

use serde::{Deserialize, Serialize};
use statrs::function::erf::{erfc, erfc_inv};

use crate::error::ExperimentError;

/// Standard normal CDF Φ(x).
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal survival 1 − Φ(x), accurate in the upper tail.
pub fn norm_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// Standard normal density φ(x).
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal quantile Φ⁻¹(p) for p in (0, 1).
pub fn norm_ppf(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// Which alternative hypothesis a test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Alternative {
    /// Difference ≠ 0.
    #[default]
    TwoSided,
    /// Difference (b − a) > 0.
    Greater,
    /// Difference (b − a) < 0.
    Less,
}

/// Check that `alpha` is a usable significance level.
pub(crate) fn check_alpha(alpha: f64) -> Result<(), ExperimentError> {
    if alpha.is_finite() && alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(ExperimentError::config(
            "alpha",
            format!("must be in (0, 1), got {alpha}"),
        ))
    }
}
