//! Power, sample size and minimum detectable effect for two proportions, in Cohen's h
//! units (experiments.md §3.5, R `pwr.2p.test`).
//!
//! Every `n` here is **per arm**. The two-arm test statistic is `h·√(n/2)`, so the
//! per-arm size is `n = 2·((z₁₋α/₂ + z₁₋β)/h)²` — twice the one-sample formula in the
//! deployment guide. The sequential variants give the size at which the anytime-valid
//! test of [`super::sequential`] reaches the power at its final look.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use super::sequential::SequentialConfig;
use super::{check_alpha, norm_cdf, norm_ppf};
use crate::error::ExperimentError;

fn check_p(p: f64, field: &'static str) -> Result<(), ExperimentError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(ExperimentError::config(
            field,
            format!("probability must be in [0, 1], got {p}"),
        ))
    }
}

fn check_power(power: f64) -> Result<(), ExperimentError> {
    if power > 0.0 && power < 1.0 {
        Ok(())
    } else {
        Err(ExperimentError::config(
            "power",
            format!("must be in (0, 1), got {power}"),
        ))
    }
}

/// Cohen's h = |2·asin√p₂ − 2·asin√p₁|.
///
/// # Errors
/// A probability outside [0, 1].
pub fn cohens_h(p1: f64, p2: f64) -> Result<f64, ExperimentError> {
    check_p(p1, "p1")?;
    check_p(p2, "p2")?;
    Ok((2.0 * p2.sqrt().asin() - 2.0 * p1.sqrt().asin()).abs())
}

/// Per-arm sample size (unrounded) for a two-sided test at `alpha` with `power` to
/// detect effect size `h`.
///
/// # Errors
/// `h ≤ 0`, bad α or power.
pub fn sample_size_per_arm(h: f64, alpha: f64, power: f64) -> Result<f64, ExperimentError> {
    check_alpha(alpha)?;
    check_power(power)?;
    if !(h > 0.0 && h.is_finite()) {
        return Err(ExperimentError::config("h", "effect size must be positive"));
    }
    let z = norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power);
    Ok(2.0 * (z / h).powi(2))
}

/// Per-arm sample size, rounded up, to tell `p1` from `p2`.
///
/// # Errors
/// As [`cohens_h`] and [`sample_size_per_arm`].
pub fn required_sample_size(
    p1: f64,
    p2: f64,
    alpha: f64,
    power: f64,
) -> Result<u64, ExperimentError> {
    let n = sample_size_per_arm(cohens_h(p1, p2)?, alpha, power)?;
    Ok(n.ceil() as u64)
}

/// Two-sided power with `n` per arm.
///
/// # Errors
/// Bad α, `n ≤ 0` or negative h.
pub fn power_two_sided(h: f64, n: f64, alpha: f64) -> Result<f64, ExperimentError> {
    check_alpha(alpha)?;
    if !(n > 0.0) || h < 0.0 {
        return Err(ExperimentError::input("need n > 0 and h ≥ 0"));
    }
    let z = norm_ppf(1.0 - alpha / 2.0);
    let shift = h * (n / 2.0).sqrt();
    Ok(1.0 - norm_cdf(z - shift) + norm_cdf(-z - shift))
}

/// One-sided ("greater") power with `n` per arm (Cohen Ex. 6.1: h 0.3, n 80 → 0.5997).
///
/// # Errors
/// As [`power_two_sided`].
pub fn power_one_sided(h: f64, n: f64, alpha: f64) -> Result<f64, ExperimentError> {
    check_alpha(alpha)?;
    if !(n > 0.0) {
        return Err(ExperimentError::input("need n > 0"));
    }
    Ok(1.0 - norm_cdf(norm_ppf(1.0 - alpha) - h * (n / 2.0).sqrt()))
}

/// Minimum detectable effect in h units with `n` per arm.
///
/// # Errors
/// Bad α, power or n.
pub fn mde_h(n: f64, alpha: f64, power: f64) -> Result<f64, ExperimentError> {
    check_alpha(alpha)?;
    check_power(power)?;
    if !(n > 0.0) {
        return Err(ExperimentError::input("need n > 0"));
    }
    Ok((norm_ppf(1.0 - alpha / 2.0) + norm_ppf(power)) * (2.0 / n).sqrt())
}

/// Power of the sequential test at its look with `n` per arm (total 2n), for effect h.
/// Rejections at earlier looks only add to this, so it is a lower bound on the power
/// of the monitored experiment that stops at `n`.
///
/// # Errors
/// Bad n or config.
pub fn sequential_power(h: f64, n: f64, cfg: &SequentialConfig) -> Result<f64, ExperimentError> {
    if !(n > 0.0) {
        return Err(ExperimentError::input("need n > 0"));
    }
    let zb = cfg.z_boundary(2.0 * n)?;
    let shift = h * (n / 2.0).sqrt();
    Ok(1.0 - norm_cdf(zb - shift) + norm_cdf(-zb - shift))
}

/// Smallest per-arm n (rounded up) at which [`sequential_power`] reaches `power`.
///
/// # Errors
/// Bad power, h or config.
pub fn sequential_sample_size_per_arm(
    h: f64,
    power: f64,
    cfg: &SequentialConfig,
) -> Result<u64, ExperimentError> {
    check_power(power)?;
    let fixed = sample_size_per_arm(h, cfg.alpha, power)?;
    let (mut lo, mut hi) = (1.0f64, fixed.max(2.0));
    while sequential_power(h, hi, cfg)? < power {
        hi *= 2.0;
        if hi > 1e15 {
            return Err(ExperimentError::input(
                "effect too small for a finite sample size",
            ));
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if sequential_power(h, mid, cfg)? >= power {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo < 0.5 {
            break;
        }
    }
    Ok(hi.ceil() as u64)
}
