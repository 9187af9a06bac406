//! Welch's t-test with Welch–Satterthwaite degrees of freedom (experiments.md §3.3,
//! gbstats `TTest`), on sufficient statistics, for the absolute difference and for the
//! relative lift by the delta method.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{Alternative, check_alpha};
use crate::error::ExperimentError;
use crate::metrics::Moments;

/// Absolute difference or relative lift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Effect {
    /// x̄_b − x̄_a.
    #[default]
    Absolute,
    /// (x̄_b − x̄_a)/|x̄_a|, variance by the delta method.
    Relative,
}

/// Result of a Welch test of b against a.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchResult {
    /// Effect estimate (absolute or relative).
    pub effect: f64,
    /// Standard error of the effect.
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom (from the absolute variances).
    pub dof: f64,
    /// t statistic.
    pub t: f64,
    /// p-value.
    pub p_value: f64,
    /// (1 − α) interval (one-sided intervals have an infinite end).
    pub ci: (f64, f64),
}

/// Mean and sample variance of an arm given as (mean, variance, n).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Mean.
    pub mean: f64,
    /// Variance.
    pub var: f64,
    /// Size.
    pub n: f64,
}

impl ArmSummary {
    /// From sufficient statistics (sample variance, n−1 denominator).
    pub fn from_moments(m: &Moments) -> Self {
        Self {
            mean: m.mean(),
            var: m.variance(),
            n: m.n as f64,
        }
    }
}

fn students_t(dof: f64) -> Result<StudentsT, ExperimentError> {
    StudentsT::new(0.0, 1.0, dof)
        .map_err(|e| ExperimentError::input(format!("t distribution: {e}")))
}

/// Welch t-test from sufficient statistics.
///
/// # Errors
/// Fewer than 2 observations in an arm, zero variance in both arms, a zero control
/// mean for the relative effect, or a bad α.
pub fn welch_test(
    a: &Moments,
    b: &Moments,
    effect: Effect,
    alternative: Alternative,
    alpha: f64,
) -> Result<WelchResult, ExperimentError> {
    if a.n < 2 || b.n < 2 {
        return Err(ExperimentError::InsufficientData(
            "Welch test needs n ≥ 2 per arm".into(),
        ));
    }
    welch_from_summaries(
        ArmSummary::from_moments(a),
        ArmSummary::from_moments(b),
        effect,
        alternative,
        alpha,
    )
}

/// Welch t-test from per-arm (mean, variance, n).
///
/// # Errors
/// As [`welch_test`].
pub fn welch_from_summaries(
    a: ArmSummary,
    b: ArmSummary,
    effect: Effect,
    alternative: Alternative,
    alpha: f64,
) -> Result<WelchResult, ExperimentError> {
    check_alpha(alpha)?;
    if !(a.n >= 2.0 && b.n >= 2.0) {
        return Err(ExperimentError::InsufficientData(
            "Welch test needs n ≥ 2 per arm".into(),
        ));
    }
    let (va, vb) = (a.var / a.n, b.var / b.n);
    let denom = va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0);
    if !(denom > 0.0) {
        return Err(ExperimentError::InsufficientData(
            "both arms have zero variance".into(),
        ));
    }
    let dof = (va + vb).powi(2) / denom;
    let (est, se) = match effect {
        Effect::Absolute => (b.mean - a.mean, (va + vb).sqrt()),
        Effect::Relative => {
            if a.mean == 0.0 {
                return Err(ExperimentError::InsufficientData(
                    "control mean is 0".into(),
                ));
            }
            let ma = a.mean.abs();
            let var =
                b.var / (b.n * a.mean.powi(2)) + a.var * b.mean.powi(2) / (a.n * a.mean.powi(4));
            ((b.mean - a.mean) / ma, var.sqrt())
        }
    };
    let t = est / se;
    let dist = students_t(dof)?;
    let (p_value, ci) = match alternative {
        Alternative::TwoSided => {
            let q = dist.inverse_cdf(1.0 - alpha / 2.0);
            (2.0 * dist.sf(t.abs()), (est - q * se, est + q * se))
        }
        Alternative::Greater => {
            let q = dist.inverse_cdf(1.0 - alpha);
            (dist.sf(t), (est - q * se, f64::INFINITY))
        }
        Alternative::Less => {
            let q = dist.inverse_cdf(1.0 - alpha);
            (dist.cdf(t), (f64::NEG_INFINITY, est + q * se))
        }
    };
    Ok(WelchResult {
        effect: est,
        se,
        dof,
        t,
        p_value: p_value.min(1.0),
        ci,
    })
}
