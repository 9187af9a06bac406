//! Pooled two-proportion z-test (experiments.md §3.2); equals R `prop.test(correct=FALSE)`
//! and statsmodels `proportions_ztest`. The CI on the difference uses the unpooled SE.

use serde::{Deserialize, Serialize};

use super::{Alternative, check_alpha, norm_cdf, norm_ppf, norm_sf};
use crate::error::ExperimentError;
use crate::metrics::Proportion;

/// Result of a two-proportion z-test of b against a.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTestResult {
    /// p̂_b − p̂_a.
    pub diff: f64,
    /// z statistic (pooled SE).
    pub z: f64,
    /// p-value for the chosen alternative.
    pub p_value: f64,
    /// Two-sided (1 − α) CI for the difference, unpooled SE.
    pub ci: (f64, f64),
}

/// Pooled two-proportion z-test.
///
/// # Errors
/// An empty arm, more successes than trials, a bad α, or a pooled rate of 0 or 1
/// (the statistic is undefined).
pub fn two_proportion_ztest(
    a: Proportion,
    b: Proportion,
    alternative: Alternative,
    alpha: f64,
) -> Result<ZTestResult, ExperimentError> {
    check_alpha(alpha)?;
    if a.n == 0 || b.n == 0 {
        return Err(ExperimentError::InsufficientData(
            "an arm has no trials".into(),
        ));
    }
    if a.successes > a.n || b.successes > b.n {
        return Err(ExperimentError::input("more successes than trials"));
    }
    let (na, nb) = (a.n as f64, b.n as f64);
    let (pa, pb) = (a.rate(), b.rate());
    let pooled = (a.successes + b.successes) as f64 / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se <= 0.0 || !se.is_finite() {
        return Err(ExperimentError::InsufficientData(
            "pooled rate is 0 or 1".into(),
        ));
    }
    let diff = pb - pa;
    let z = diff / se;
    let p_value = match alternative {
        Alternative::TwoSided => 2.0 * norm_sf(z.abs()),
        Alternative::Greater => norm_sf(z),
        Alternative::Less => norm_cdf(z),
    };
    let se_u = (pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb).sqrt();
    let q = norm_ppf(1.0 - alpha / 2.0);
    Ok(ZTestResult {
        diff,
        z,
        p_value: p_value.min(1.0),
        ci: (diff - q * se_u, diff + q * se_u),
    })
}
