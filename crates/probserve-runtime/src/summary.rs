//! Posterior summaries per output: mean, sd, MCSE, quantiles (5/25/50/75/95), HDI, and for MCMC
//! the bulk/tail ESS and R-hat; weighted versions for importance sampling and SMC.
//!
//! Summaries of large runs are long computations of their own (sorting every output, ESS over
//! many lags), so the `_checked` forms take the run's [`CancelToken`] and stop with its error.

use crate::cancel::CancelToken;
use crate::diagnostics;
use crate::error::InferError;

/// Default probability mass of the highest-density interval.
pub const DEFAULT_HDI_PROB: f64 = 0.9;

/// Summary of one output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSummary {
    /// Output name.
    pub name: String,
    /// Posterior mean.
    pub mean: f64,
    /// Posterior standard deviation.
    pub sd: f64,
    /// Monte Carlo standard error of the mean.
    pub mcse_mean: f64,
    /// 5 % quantile.
    pub q05: f64,
    /// 25 % quantile.
    pub q25: f64,
    /// Median.
    pub q50: f64,
    /// 75 % quantile.
    pub q75: f64,
    /// 95 % quantile.
    pub q95: f64,
    /// Lower end of the highest-density interval.
    pub hdi_low: f64,
    /// Upper end of the highest-density interval.
    pub hdi_high: f64,
    /// Mass of the HDI.
    pub hdi_prob: f64,
    /// Bulk effective sample size (Kish ESS for weighted draws, `n` for independent draws).
    pub ess_bulk: f64,
    /// Tail effective sample size (same as bulk for weighted or independent draws).
    pub ess_tail: f64,
    /// Rank-normalized split R-hat (MCMC only).
    pub r_hat: Option<f64>,
}

/// Summary of independent, equally weighted draws.
pub fn summarize_iid(name: &str, values: &[f64], hdi_prob: f64) -> OutputSummary {
    let n = values.len() as f64;
    let (mean, sd) = mean_sd(values);
    let mut s = from_sorted(name, mean, sd, sorted(values), None, hdi_prob);
    s.mcse_mean = sd / n.sqrt();
    s.ess_bulk = n;
    s.ess_tail = n;
    s
}

/// Summary of MCMC chains (each slice is one chain's retained draws).
pub fn summarize_chains(name: &str, chains: &[&[f64]], hdi_prob: f64) -> OutputSummary {
    match summarize_chains_checked(name, chains, hdi_prob, &CancelToken::never()) {
        Ok(s) => s,
        // A token that never fires cannot stop it.
        Err(_) => from_sorted(name, f64::NAN, f64::NAN, Vec::new(), None, hdi_prob),
    }
}

/// [`summarize_chains`], checking `cancel` between the steps and on every ESS lag.
///
/// # Errors
/// `Cancelled` or `DeadlineExceeded` from the token.
pub fn summarize_chains_checked(
    name: &str,
    chains: &[&[f64]],
    hdi_prob: f64,
    cancel: &CancelToken,
) -> Result<OutputSummary, InferError> {
    cancel.check()?;
    let all = chains.concat();
    let (mean, sd) = mean_sd(&all);
    let mut s = from_sorted(name, mean, sd, sorted(&all), None, hdi_prob);
    s.mcse_mean = diagnostics::mcse_mean_checked(chains, cancel)?;
    s.ess_bulk = diagnostics::ess_bulk_checked(chains, cancel)?;
    s.ess_tail = diagnostics::ess_tail_checked(chains, cancel)?;
    cancel.check()?;
    s.r_hat = if chains.len() > 1 {
        Some(diagnostics::rhat(chains))
    } else {
        None
    };
    Ok(s)
}

/// Summary of self-normalized weighted draws (`weights` sum to 1).
///
/// The MCSE is the delta-method standard error `sqrt(Σ wᵢ² (xᵢ − μ)²)`; the ESS is Kish's
/// `1 / Σ wᵢ²`.
pub fn summarize_weighted(
    name: &str,
    values: &[f64],
    weights: &[f64],
    hdi_prob: f64,
) -> OutputSummary {
    let mean: f64 = values.iter().zip(weights).map(|(x, w)| x * w).sum();
    let var: f64 = values
        .iter()
        .zip(weights)
        .map(|(x, w)| w * (x - mean) * (x - mean))
        .sum();
    let ess = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
    // Unbiased-ish correction for the weighted variance.
    let sd = if ess > 1.0 {
        (var * ess / (ess - 1.0)).sqrt()
    } else {
        var.sqrt()
    };
    let mut pairs: Vec<(f64, f64)> = values
        .iter()
        .copied()
        .zip(weights.iter().copied())
        .filter(|p| p.1 > 0.0)
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let q = |p: f64| weighted_quantile(&pairs, p);
    let (hdi_low, hdi_high) = weighted_hdi(&pairs, hdi_prob);
    let mcse = values
        .iter()
        .zip(weights)
        .map(|(x, w)| w * w * (x - mean) * (x - mean))
        .sum::<f64>()
        .sqrt();
    OutputSummary {
        name: name.to_string(),
        mean,
        sd,
        mcse_mean: mcse,
        q05: q(0.05),
        q25: q(0.25),
        q50: q(0.5),
        q75: q(0.75),
        q95: q(0.95),
        hdi_low,
        hdi_high,
        hdi_prob,
        ess_bulk: ess,
        ess_tail: ess,
        r_hat: None,
    }
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if n > 1.0 {
        values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn from_sorted(
    name: &str,
    mean: f64,
    sd: f64,
    v: Vec<f64>,
    r_hat: Option<f64>,
    hdi_prob: f64,
) -> OutputSummary {
    let q = |p: f64| diagnostics::quantile_sorted(&v, p);
    let (hdi_low, hdi_high) = hdi_sorted(&v, hdi_prob);
    OutputSummary {
        name: name.to_string(),
        mean,
        sd,
        mcse_mean: f64::NAN,
        q05: q(0.05),
        q25: q(0.25),
        q50: q(0.5),
        q75: q(0.75),
        q95: q(0.95),
        hdi_low,
        hdi_high,
        hdi_prob,
        ess_bulk: f64::NAN,
        ess_tail: f64::NAN,
        r_hat,
    }
}

/// Shortest interval containing a fraction `prob` of the sorted draws.
pub fn hdi_sorted(v: &[f64], prob: f64) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let k = ((prob.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    let mut best = (v[0], v[k - 1]);
    for i in 0..=n - k {
        let (lo, hi) = (v[i], v[i + k - 1]);
        if hi - lo < best.1 - best.0 {
            best = (lo, hi);
        }
    }
    best
}

fn weighted_quantile(pairs: &[(f64, f64)], p: f64) -> f64 {
    let total: f64 = pairs.iter().map(|x| x.1).sum();
    let target = p * total;
    let mut acc = 0.0;
    for &(x, w) in pairs {
        acc += w;
        if acc >= target {
            return x;
        }
    }
    pairs.last().map_or(f64::NAN, |x| x.0)
}

fn weighted_hdi(pairs: &[(f64, f64)], prob: f64) -> (f64, f64) {
    if pairs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let total: f64 = pairs.iter().map(|x| x.1).sum();
    let need = prob.clamp(0.0, 1.0) * total;
    let mut best = (pairs[0].0, pairs[pairs.len() - 1].0);
    let mut acc = 0.0;
    let mut lo = 0;
    for hi in 0..pairs.len() {
        acc += pairs[hi].1;
        while lo < hi && acc - pairs[lo].1 >= need {
            acc -= pairs[lo].1;
            lo += 1;
        }
        if acc >= need && pairs[hi].0 - pairs[lo].0 < best.1 - best.0 {
            best = (pairs[lo].0, pairs[hi].0);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iid_summary_of_a_grid() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        let s = summarize_iid("x", &v, 0.9);
        assert_eq!(s.mean, 50.0);
        assert_eq!(s.q05, 5.0);
        assert_eq!(s.q50, 50.0);
        assert_eq!(s.q95, 95.0);
        assert!(s.hdi_high - s.hdi_low <= 91.0);
    }

    #[test]
    fn checked_chain_summary_stops_on_cancel_and_agrees_otherwise() {
        let a: Vec<f64> = (0..2000).map(|i| f64::from(i % 97)).collect();
        let b: Vec<f64> = (0..2000).map(|i| f64::from(i % 89)).collect();
        let chains = [a.as_slice(), b.as_slice()];
        let c = CancelToken::new();
        c.cancel();
        assert!(matches!(
            summarize_chains_checked("x", &chains, 0.9, &c),
            Err(InferError::Cancelled)
        ));
        let live = summarize_chains_checked("x", &chains, 0.9, &CancelToken::new()).unwrap();
        assert_eq!(live, summarize_chains("x", &chains, 0.9));
    }

    #[test]
    fn weighted_matches_unweighted_for_equal_weights() {
        let v: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        let w = vec![1.0 / 1000.0; 1000];
        let s = summarize_weighted("x", &v, &w, 0.9);
        let u = summarize_iid("x", &v, 0.9);
        assert!((s.mean - u.mean).abs() < 1e-9);
        assert!((s.sd - u.sd).abs() < 1e-9);
        assert!((s.q50 - u.q50).abs() < 0.11);
        assert!((s.ess_bulk - 1000.0).abs() < 1e-6);
        assert!((s.mcse_mean - u.mcse_mean).abs() / u.mcse_mean < 0.01);
    }
}
