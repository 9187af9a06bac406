//! Wilson score interval for a proportion (experiments.md §3.4); stays inside [0, 1]
//! and works for 0 and n successes.

use super::{check_alpha, norm_ppf};
use crate::error::ExperimentError;

/// Two-sided (1 − α) Wilson interval for `successes` out of `n`.
///
/// # Errors
/// `n = 0`, `successes > n`, or a bad α.
pub fn wilson_interval(successes: u64, n: u64, alpha: f64) -> Result<(f64, f64), ExperimentError> {
    check_alpha(alpha)?;
    if n == 0 {
        return Err(ExperimentError::InsufficientData(
            "Wilson interval needs n > 0".into(),
        ));
    }
    if successes > n {
        return Err(ExperimentError::input("more successes than trials"));
    }
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z = norm_ppf(1.0 - alpha / 2.0);
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Ok(((center - half).max(0.0), (center + half).min(1.0)))
}
