//! MCMC diagnostics after Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021): rank-normalized
//! split R-hat, bulk and tail effective sample size, and the Monte Carlo standard error of the mean.
//!
//! Every function takes the chains as slices of draws; chains of unequal length are truncated to
//! the shortest. Degenerate input (fewer than 4 draws per split chain, zero variance) gives NaN.
//!
//! The ESS of a long, strongly autocorrelated chain walks many lags at O(draws) each, so the
//! `_checked` variants take a [`CancelToken`] and check it on every lag: a summary never runs
//! past the call's deadline or cancellation.

use crate::cancel::CancelToken;
use crate::error::InferError;
use crate::math::normal_quantile;

/// Split each chain into two halves (dropping the middle draw of odd-length chains).
pub fn split_chains(chains: &[&[f64]]) -> Vec<Vec<f64>> {
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    let half = n / 2;
    let mut out = Vec::with_capacity(chains.len() * 2);
    for c in chains {
        out.push(c[..half].to_vec());
        out.push(c[n - half..n].to_vec());
    }
    out
}

fn as_slices(v: &[Vec<f64>]) -> Vec<&[f64]> {
    v.iter().map(Vec::as_slice).collect()
}

/// Classic potential scale reduction factor on the chains as given (no split, no ranks).
pub fn rhat_basic(chains: &[&[f64]]) -> f64 {
    let m = chains.len();
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    if m < 2 || n < 2 {
        return f64::NAN;
    }
    let means: Vec<f64> = chains
        .iter()
        .map(|c| c[..n].iter().sum::<f64>() / n as f64)
        .collect();
    let w = chains
        .iter()
        .zip(&means)
        .map(|(c, mu)| c[..n].iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (n as f64 - 1.0))
        .sum::<f64>()
        / m as f64;
    let grand = means.iter().sum::<f64>() / m as f64;
    let b = n as f64
        * means
            .iter()
            .map(|mu| (mu - grand) * (mu - grand))
            .sum::<f64>()
        / (m as f64 - 1.0);
    if w.is_nan() || w <= 0.0 {
        return f64::NAN;
    }
    let var_plus = (n as f64 - 1.0) / n as f64 * w + b / n as f64;
    (var_plus / w).sqrt()
}

/// Replace draws by normal scores of their pooled ranks (average ranks for ties).
pub fn rank_normalize(chains: &[&[f64]]) -> Vec<Vec<f64>> {
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    let total = n * chains.len();
    let mut idx: Vec<(f64, usize)> = Vec::with_capacity(total);
    for (j, c) in chains.iter().enumerate() {
        for (i, &x) in c[..n].iter().enumerate() {
            idx.push((x, j * n + i));
        }
    }
    idx.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut ranks = vec![0.0; total];
    let mut i = 0;
    while i < total {
        let mut k = i + 1;
        while k < total && idx[k].0 == idx[i].0 {
            k += 1;
        }
        // Ranks i+1 ..= k share their average.
        let avg = (i + 1 + k) as f64 / 2.0;
        for e in &idx[i..k] {
            ranks[e.1] = avg;
        }
        i = k;
    }
    let s = total as f64;
    (0..chains.len())
        .map(|j| {
            ranks[j * n..(j + 1) * n]
                .iter()
                .map(|&r| normal_quantile((r - 0.375) / (s + 0.25)))
                .collect()
        })
        .collect()
}

/// Rank-normalized split R-hat: the maximum of the bulk and the folded (tail) versions.
pub fn rhat(chains: &[&[f64]]) -> f64 {
    let split = split_chains(chains);
    let s = as_slices(&split);
    let bulk = rhat_basic(&as_slices(&rank_normalize(&s)));
    let med = median(&s.concat());
    let folded: Vec<Vec<f64>> = split
        .iter()
        .map(|c| c.iter().map(|x| (x - med).abs()).collect())
        .collect();
    let tail = rhat_basic(&as_slices(&rank_normalize(&as_slices(&folded))));
    if bulk.is_nan() || tail.is_nan() {
        f64::NAN
    } else {
        bulk.max(tail)
    }
}

/// Effective sample size of the chains as given (multi-chain autocorrelation with Geyer's
/// initial monotone sequence, as in Stan and ArviZ).
pub fn ess_basic(chains: &[&[f64]]) -> f64 {
    ess_basic_checked(chains, &CancelToken::never()).unwrap_or(f64::NAN)
}

/// [`ess_basic`], checking `cancel` on every lag.
///
/// # Errors
/// `Cancelled` or `DeadlineExceeded` from the token.
pub fn ess_basic_checked(chains: &[&[f64]], cancel: &CancelToken) -> Result<f64, InferError> {
    cancel.check()?;
    let m = chains.len();
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    if m == 0 || n < 4 {
        return Ok(f64::NAN);
    }
    let nf = n as f64;
    let means: Vec<f64> = chains
        .iter()
        .map(|c| c[..n].iter().sum::<f64>() / nf)
        .collect();
    let centered: Vec<Vec<f64>> = chains
        .iter()
        .zip(&means)
        .map(|(c, mu)| c[..n].iter().map(|x| x - mu).collect())
        .collect();
    // Mean over chains of the biased autocovariance at lag t.
    let acov = |t: usize| -> f64 {
        centered
            .iter()
            .map(|c| {
                c[..n - t]
                    .iter()
                    .zip(&c[t..])
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    / nf
            })
            .sum::<f64>()
            / m as f64
    };
    let mean_var = acov(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        let grand = means.iter().sum::<f64>() / m as f64;
        var_plus += means
            .iter()
            .map(|mu| (mu - grand) * (mu - grand))
            .sum::<f64>()
            / (m as f64 - 1.0);
    }
    if var_plus.is_nan() || var_plus <= 0.0 || !var_plus.is_finite() {
        return Ok(f64::NAN);
    }
    let rho = |t: usize| 1.0 - (mean_var - acov(t)) / var_plus;
    let mut rho_hat = vec![0.0; n];
    rho_hat[0] = 1.0;
    let mut rho_even = 1.0;
    let mut rho_odd = rho(1);
    rho_hat[1] = rho_odd;
    let mut t = 1;
    while t + 4 < n && rho_even + rho_odd > 0.0 {
        cancel.check()?;
        rho_even = rho(t + 1);
        rho_odd = rho(t + 2);
        if rho_even + rho_odd >= 0.0 {
            rho_hat[t + 1] = rho_even;
            rho_hat[t + 2] = rho_odd;
        }
        t += 2;
    }
    let max_t = t;
    if rho_even > 0.0 && max_t + 1 < n {
        rho_hat[max_t + 1] = rho_even;
    }
    // Geyer's initial monotone sequence.
    let mut t = 1;
    while t + 3 <= max_t {
        if rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t] {
            rho_hat[t + 1] = (rho_hat[t - 1] + rho_hat[t]) / 2.0;
            rho_hat[t + 2] = rho_hat[t + 1];
        }
        t += 2;
    }
    let total = (m * n) as f64;
    let mut tau = -1.0 + 2.0 * rho_hat[..=max_t.min(n - 1)].iter().sum::<f64>();
    if max_t + 1 < n {
        tau += rho_hat[max_t + 1];
    }
    let tau = tau.max(1.0 / total.log10());
    Ok(total / tau)
}

/// Bulk ESS: ESS of the rank-normalized split chains.
pub fn ess_bulk(chains: &[&[f64]]) -> f64 {
    ess_bulk_checked(chains, &CancelToken::never()).unwrap_or(f64::NAN)
}

/// [`ess_bulk`], checking `cancel` (see the module docs).
///
/// # Errors
/// `Cancelled` or `DeadlineExceeded` from the token.
pub fn ess_bulk_checked(chains: &[&[f64]], cancel: &CancelToken) -> Result<f64, InferError> {
    let split = split_chains(chains);
    ess_basic_checked(&as_slices(&rank_normalize(&as_slices(&split))), cancel)
}

/// Tail ESS: the smaller ESS of the 5 % and 95 % quantile indicators over split chains.
pub fn ess_tail(chains: &[&[f64]]) -> f64 {
    ess_tail_checked(chains, &CancelToken::never()).unwrap_or(f64::NAN)
}

/// [`ess_tail`], checking `cancel` (see the module docs).
///
/// # Errors
/// `Cancelled` or `DeadlineExceeded` from the token.
pub fn ess_tail_checked(chains: &[&[f64]], cancel: &CancelToken) -> Result<f64, InferError> {
    let split = split_chains(chains);
    let mut pooled = split.concat();
    if pooled.is_empty() {
        return Ok(f64::NAN);
    }
    pooled.sort_by(f64::total_cmp);
    let q05 = quantile_sorted(&pooled, 0.05);
    let q95 = quantile_sorted(&pooled, 0.95);
    let ind = |q: f64| -> Result<f64, InferError> {
        let v: Vec<Vec<f64>> = split
            .iter()
            .map(|c| c.iter().map(|&x| if x <= q { 1.0 } else { 0.0 }).collect())
            .collect();
        ess_basic_checked(&as_slices(&v), cancel)
    };
    let (a, b) = (ind(q05)?, ind(q95)?);
    Ok(if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    })
}

/// ESS for the mean: ESS of the split chains without rank normalization.
pub fn ess_mean(chains: &[&[f64]]) -> f64 {
    ess_basic(&as_slices(&split_chains(chains)))
}

/// Monte Carlo standard error of the mean: `sd / sqrt(ess_mean)`.
pub fn mcse_mean(chains: &[&[f64]]) -> f64 {
    mcse_mean_checked(chains, &CancelToken::never()).unwrap_or(f64::NAN)
}

/// [`mcse_mean`], checking `cancel` (see the module docs).
///
/// # Errors
/// `Cancelled` or `DeadlineExceeded` from the token.
pub fn mcse_mean_checked(chains: &[&[f64]], cancel: &CancelToken) -> Result<f64, InferError> {
    let all: Vec<f64> = chains.concat();
    let n = all.len() as f64;
    if n < 2.0 {
        return Ok(f64::NAN);
    }
    let mu = all.iter().sum::<f64>() / n;
    let sd = (all.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (n - 1.0)).sqrt();
    if sd == 0.0 {
        return Ok(0.0);
    }
    Ok(sd / ess_basic_checked(&as_slices(&split_chains(chains)), cancel)?.sqrt())
}

/// Linear-interpolation (type 7) quantile of sorted data.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};
    use rand_distr::StandardNormal;

    fn iid(seed: u64, n: usize) -> Vec<f64> {
        let mut r = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| r.sample::<f64, _>(StandardNormal)).collect()
    }

    fn ar1(seed: u64, n: usize, phi: f64) -> Vec<f64> {
        let e = iid(seed, n);
        let mut x = 0.0;
        e.iter()
            .map(|z| {
                x = phi * x + (1.0 - phi * phi).sqrt() * z;
                x
            })
            .collect()
    }

    #[test]
    fn iid_chains_have_full_ess_and_rhat_near_one() {
        let c: Vec<Vec<f64>> = (0..4).map(|s| iid(s, 1000)).collect();
        let s: Vec<&[f64]> = c.iter().map(Vec::as_slice).collect();
        let r = rhat(&s);
        assert!(r < 1.01, "rhat {r}");
        let e = ess_bulk(&s);
        assert!(e > 3000.0 && e < 5000.0, "ess {e}");
        let t = ess_tail(&s);
        assert!(t > 2500.0, "tail {t}");
    }

    #[test]
    fn ar1_ess_matches_theory() {
        // ESS of an AR(1) chain is n (1 − φ) / (1 + φ).
        let c: Vec<Vec<f64>> = (0..4).map(|s| ar1(s + 10, 5000, 0.8)).collect();
        let s: Vec<&[f64]> = c.iter().map(Vec::as_slice).collect();
        let e = ess_mean(&s);
        let theory = 20000.0 * 0.2 / 1.8;
        assert!((e / theory - 1.0).abs() < 0.25, "ess {e} vs {theory}");
    }

    #[test]
    fn shifted_chain_gives_large_rhat() {
        let mut c: Vec<Vec<f64>> = (0..4).map(|s| iid(s + 20, 500)).collect();
        c[0].iter_mut().for_each(|x| *x += 3.0);
        let s: Vec<&[f64]> = c.iter().map(Vec::as_slice).collect();
        assert!(rhat(&s) > 1.2);
    }

    #[test]
    fn a_cancelled_or_expired_token_stops_the_ess() {
        // A random walk: autocorrelation stays positive for many lags (the slow case).
        let walk: Vec<f64> = iid(7, 20_000)
            .iter()
            .scan(0.0, |acc, x| {
                *acc += x;
                Some(*acc)
            })
            .collect();
        let chains = [walk.as_slice(), walk.as_slice()];
        let cancelled = CancelToken::new();
        cancelled.cancel();
        assert!(matches!(
            ess_bulk_checked(&chains, &cancelled),
            Err(InferError::Cancelled)
        ));
        let expired = CancelToken::new().with_deadline(std::time::Instant::now());
        assert!(matches!(
            ess_tail_checked(&chains, &expired),
            Err(InferError::DeadlineExceeded)
        ));
        assert!(matches!(
            mcse_mean_checked(&chains, &expired),
            Err(InferError::DeadlineExceeded)
        ));
        // A live token gives the same number as the unchecked function.
        let live = CancelToken::new();
        assert_eq!(
            ess_bulk_checked(&chains, &live).unwrap().to_bits(),
            ess_bulk(&chains).to_bits()
        );
    }

    #[test]
    fn degenerate_inputs_are_nan_not_panics() {
        assert!(ess_bulk(&[]).is_nan());
        assert!(ess_basic(&[&[1.0, 1.0, 1.0, 1.0, 1.0]]).is_nan());
        assert!(rhat(&[&[1.0]]).is_nan());
        assert!(mcse_mean(&[&[2.0; 10]]) == 0.0);
    }
}
