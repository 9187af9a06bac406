//! Anytime-valid sequential testing: the normal-mixture mSPRT (experiments.md §3.6 A),
//! tuned as in GrowthBook/Eppo (§3.6 B): the mixing variance is `τ² = ρ²·V·N` with
//! `ρ² = (−2 ln α + ln(−2 ln α + 1))/N*`, which makes the confidence sequence tightest
//! near the tuning sample `N*` (total over both arms).
//!
//! With `V` the variance of the effect estimate and `N` the total sample:
//! `Λ = √(V/(V+τ²))·exp(τ²Δ²/(2V(V+τ²)))`; reject H0 once `Λ ≥ 1/α`; always-valid
//! `p = min(1, 1/Λ)` (running minimum over looks in [`AlwaysValidP`]); confidence
//! sequence `Δ ± √(V(V+τ²)/τ²·(−2 ln α − ln(V/(V+τ²))))`. By Ville's inequality the
//! chance that H0 is ever rejected, at any number of looks, is at most α — which is
//! why the controller, which looks every few seconds, uses this and never a fixed-
//! horizon test.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use serde::{Deserialize, Serialize};

use super::check_alpha;
use super::welch::{ArmSummary, Effect};
use crate::error::ExperimentError;
use crate::metrics::{Moments, Proportion};

/// Sequential test settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialConfig {
    /// Two-sided level α (default 0.05).
    pub alpha: f64,
    /// Tuning sample N* (total over both arms) where the sequence is tightest (default 5 000).
    pub tuning_n: f64,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            tuning_n: 5_000.0,
        }
    }
}

impl SequentialConfig {
    /// Validate.
    ///
    /// # Errors
    /// α outside (0, 1) or a non-positive tuning sample.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        check_alpha(self.alpha)?;
        if !(self.tuning_n > 0.0 && self.tuning_n.is_finite()) {
            return Err(ExperimentError::config("tuning_n", "must be positive"));
        }
        Ok(())
    }

    /// ρ² of the normal mixture.
    pub fn rho2(&self) -> f64 {
        let l = -2.0 * self.alpha.ln();
        (l + (l + 1.0).ln()) / self.tuning_n
    }

    /// The |z| needed to reject at total sample `n_total`:
    /// `√(2(Nρ²+1)/(Nρ²)·ln(√(Nρ²+1)/α))` (3.035 at N = N*, α = 0.05).
    ///
    /// # Errors
    /// Invalid config or `n_total ≤ 0`.
    pub fn z_boundary(&self, n_total: f64) -> Result<f64, ExperimentError> {
        self.validate()?;
        if !(n_total > 0.0) {
            return Err(ExperimentError::input("need a positive sample"));
        }
        let a = n_total * self.rho2();
        Ok((2.0 * (a + 1.0) / a * ((a + 1.0).sqrt() / self.alpha).ln()).sqrt())
    }
}

/// Result of one look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SequentialResult {
    /// Effect estimate Δ.
    pub effect: f64,
    /// Its standard error √V.
    pub se: f64,
    /// Mixture likelihood ratio Λ (an e-value).
    pub lambda: f64,
    /// `min(1, 1/Λ)` at this look.
    pub p_value: f64,
    /// (1 − α) confidence sequence.
    pub ci: (f64, f64),
    /// `Λ ≥ 1/α`.
    pub reject: bool,
}

/// mSPRT with an explicit mixing variance `tau2`, null value `theta0`.
///
/// # Errors
/// Bad α, non-positive variances or non-finite effect.
pub fn msprt(
    effect: f64,
    variance: f64,
    tau2: f64,
    theta0: f64,
    alpha: f64,
) -> Result<SequentialResult, ExperimentError> {
    check_alpha(alpha)?;
    let usable = variance > 0.0
        && variance.is_finite()
        && tau2 > 0.0
        && tau2.is_finite()
        && effect.is_finite();
    if !usable {
        return Err(ExperimentError::InsufficientData(
            "sequential test needs positive finite variances".into(),
        ));
    }
    let v = variance;
    let ratio = v / (v + tau2);
    let log_lambda = 0.5 * ratio.ln() + tau2 * (effect - theta0).powi(2) / (2.0 * v * (v + tau2));
    let lambda = log_lambda.exp();
    let half = (v * (v + tau2) / tau2 * (-2.0 * alpha.ln() - ratio.ln())).sqrt();
    Ok(SequentialResult {
        effect,
        se: v.sqrt(),
        lambda,
        p_value: (-log_lambda).exp().min(1.0),
        ci: (effect - half, effect + half),
        reject: log_lambda >= -alpha.ln(),
    })
}

/// mSPRT tuned by `cfg` for an effect with variance `variance` at total sample `n_total`.
///
/// # Errors
/// As [`msprt`] and [`SequentialConfig::validate`].
pub fn tuned(
    effect: f64,
    variance: f64,
    n_total: f64,
    cfg: &SequentialConfig,
) -> Result<SequentialResult, ExperimentError> {
    cfg.validate()?;
    if !(n_total > 0.0) {
        return Err(ExperimentError::InsufficientData("no samples".into()));
    }
    let tau2 = cfg.rho2() * variance * n_total;
    msprt(effect, variance, tau2, 0.0, cfg.alpha)
}

/// Sequential test of the difference of two proportions (b − a), unpooled variance.
///
/// # Errors
/// Empty arms, or both rates 0 or 1 (no variance yet).
pub fn proportions(
    a: Proportion,
    b: Proportion,
    cfg: &SequentialConfig,
) -> Result<SequentialResult, ExperimentError> {
    if a.n == 0 || b.n == 0 || a.successes > a.n || b.successes > b.n {
        return Err(ExperimentError::InsufficientData(
            "an arm has no trials".into(),
        ));
    }
    let (pa, pb) = (a.rate(), b.rate());
    let var = pa * (1.0 - pa) / a.n as f64 + pb * (1.0 - pb) / b.n as f64;
    tuned(pb - pa, var, (a.n + b.n) as f64, cfg)
}

/// Sequential test of the difference (or relative lift) of two means.
///
/// # Errors
/// Fewer than 2 observations per arm, zero variance, or a zero control mean (relative).
pub fn means(
    a: &Moments,
    b: &Moments,
    effect: Effect,
    cfg: &SequentialConfig,
) -> Result<SequentialResult, ExperimentError> {
    if a.n < 2 || b.n < 2 {
        return Err(ExperimentError::InsufficientData(
            "need n ≥ 2 per arm".into(),
        ));
    }
    summaries(
        ArmSummary::from_moments(a),
        ArmSummary::from_moments(b),
        effect,
        cfg,
    )
}

/// As [`means`] from (mean, variance, n) summaries; proportions as GrowthBook does them
/// use variance p(1−p).
///
/// # Errors
/// As [`means`].
pub fn summaries(
    a: ArmSummary,
    b: ArmSummary,
    effect: Effect,
    cfg: &SequentialConfig,
) -> Result<SequentialResult, ExperimentError> {
    let (est, var) = match effect {
        Effect::Absolute => (b.mean - a.mean, a.var / a.n + b.var / b.n),
        Effect::Relative => {
            if a.mean == 0.0 {
                return Err(ExperimentError::InsufficientData(
                    "control mean is 0".into(),
                ));
            }
            let var =
                b.var / (b.n * a.mean.powi(2)) + a.var * b.mean.powi(2) / (a.n * a.mean.powi(4));
            ((b.mean - a.mean) / a.mean.abs(), var)
        }
    };
    tuned(est, var, a.n + b.n, cfg)
}

/// Running minimum of the per-look p-values: the always-valid p-value to report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlwaysValidP {
    /// Current always-valid p.
    pub p: f64,
}

impl Default for AlwaysValidP {
    fn default() -> Self {
        Self { p: 1.0 }
    }
}

impl AlwaysValidP {
    /// Fold in one look; returns the updated p.
    pub fn update(&mut self, look: &SequentialResult) -> f64 {
        self.p = self.p.min(look.p_value);
        self.p
    }
}
