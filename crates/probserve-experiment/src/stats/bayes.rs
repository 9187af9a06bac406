//! Bayesian second view: probability to beat control, Gaussian approximation on the
//! relative lift with an optional normal prior (GrowthBook `gbstats` Bayesian engine,
//! experiments.md §3.7). For binary metrics the arm variance is p(1−p); for continuous
//! metrics the sample variance. This is the delta-method normal approximation, not an
//! exact Beta–Binomial integral, which is what GrowthBook does too (B1–B3 vectors).
//! [`beta_probability_to_beat`] gives the exact Beta–Binomial answer under uniform
//! priors (Evan Miller's closed form) as a check on the approximation for small arms.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use serde::{Deserialize, Serialize};

use statrs::function::beta::ln_beta;

use super::welch::ArmSummary;
use super::{norm_cdf, norm_pdf, norm_ppf};
use crate::error::ExperimentError;
use crate::metrics::{Moments, Proportion};

/// Optional normal prior on the relative lift, given as mean and **variance**.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiftPrior {
    /// Prior mean.
    pub mean: f64,
    /// Prior variance.
    pub variance: f64,
}

/// Posterior summary of the relative lift of b over a.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BayesResult {
    /// Posterior mean of the lift.
    pub lift: f64,
    /// Posterior sd.
    pub sd: f64,
    /// (1 − α) credible interval.
    pub ci: (f64, f64),
    /// P(lift > 0): probability that b beats a.
    pub chance_to_win: f64,
    /// Expected loss of choosing control, and of choosing the treatment.
    pub risk: (f64, f64),
}

/// Probability that `b` beats `a` on a binary metric.
///
/// # Errors
/// Empty arms, a zero control rate, or a degenerate posterior.
pub fn binary(
    a: Proportion,
    b: Proportion,
    prior: Option<LiftPrior>,
    alpha: f64,
) -> Result<BayesResult, ExperimentError> {
    if a.n == 0 || b.n == 0 {
        return Err(ExperimentError::InsufficientData(
            "an arm has no trials".into(),
        ));
    }
    let s = |p: Proportion| {
        let r = p.rate();
        ArmSummary {
            mean: r,
            var: r * (1.0 - r),
            n: p.n as f64,
        }
    };
    from_summaries(s(a), s(b), prior, alpha)
}

/// Probability that `b` beats `a` on a continuous metric.
///
/// # Errors
/// Fewer than 2 observations, zero control mean, degenerate posterior.
pub fn continuous(
    a: &Moments,
    b: &Moments,
    prior: Option<LiftPrior>,
    alpha: f64,
) -> Result<BayesResult, ExperimentError> {
    if a.n < 2 || b.n < 2 {
        return Err(ExperimentError::InsufficientData(
            "need n ≥ 2 per arm".into(),
        ));
    }
    from_summaries(
        ArmSummary::from_moments(a),
        ArmSummary::from_moments(b),
        prior,
        alpha,
    )
}

fn from_summaries(
    a: ArmSummary,
    b: ArmSummary,
    prior: Option<LiftPrior>,
    alpha: f64,
) -> Result<BayesResult, ExperimentError> {
    super::check_alpha(alpha)?;
    if a.mean == 0.0 {
        return Err(ExperimentError::InsufficientData(
            "control mean is 0".into(),
        ));
    }
    let lift = (b.mean - a.mean) / a.mean.abs();
    let var = b.var / (b.n * a.mean.powi(2)) + a.var * b.mean.powi(2) / (a.n * a.mean.powi(4));
    if !(var > 0.0 && var.is_finite()) {
        return Err(ExperimentError::InsufficientData(
            "lift has no variance yet".into(),
        ));
    }
    let (mu, v) = match prior {
        Some(p) if p.variance > 0.0 && p.variance.is_finite() => {
            let post = 1.0 / (1.0 / p.variance + 1.0 / var);
            (post * (p.mean / p.variance + lift / var), post)
        }
        Some(_) => {
            return Err(ExperimentError::config(
                "prior.variance",
                "must be positive",
            ));
        }
        None => (lift, var),
    };
    let sd = v.sqrt();
    let z = norm_ppf(1.0 - alpha / 2.0);
    let chance = 1.0 - norm_cdf(-mu / sd);
    let pos = mu * norm_cdf(mu / sd) + sd * norm_pdf(mu / sd);
    let neg = mu * norm_cdf(-mu / sd) - sd * norm_pdf(mu / sd);
    Ok(BayesResult {
        lift: mu,
        sd,
        ci: (mu - z * sd, mu + z * sd),
        chance_to_win: chance,
        risk: (pos, -neg),
    })
}

/// Exact P(p_b > p_a) for Beta(1 + successes, 1 + failures) posteriors (uniform priors),
/// by Evan Miller's closed form. The sum has min(successes_a, successes_b) + 1 terms.
///
/// # Errors
/// More successes than trials.
pub fn beta_probability_to_beat(a: Proportion, b: Proportion) -> Result<f64, ExperimentError> {
    if a.successes > a.n || b.successes > b.n {
        return Err(ExperimentError::input("more successes than trials"));
    }
    let params = |p: Proportion| (1.0 + p.successes as f64, 1.0 + (p.n - p.successes) as f64);
    // P(X_b > X_a) = Σ_{i<α_b} B(α_a+i, β_a+β_b) / ((β_b+i) B(1+i, β_b) B(α_a, β_a)).
    // α_b enters only as the number of terms (α_b = successes_b + 1).
    let p_greater = |(aa, ba): (f64, f64), bb: f64, terms: u64| -> f64 {
        let base = ln_beta(aa, ba);
        (0..terms)
            .map(|i| {
                let i = i as f64;
                (ln_beta(aa + i, ba + bb) - (bb + i).ln() - ln_beta(1.0 + i, bb) - base).exp()
            })
            .sum::<f64>()
    };
    let (pa, pb) = (params(a), params(b));
    let p = if b.successes <= a.successes {
        p_greater(pa, pb.1, b.successes + 1)
    } else {
        1.0 - p_greater(pb, pa.1, a.successes + 1)
    };
    Ok(p.clamp(0.0, 1.0))
}
