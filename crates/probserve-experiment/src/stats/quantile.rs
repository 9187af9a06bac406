//! Anytime-valid confidence bounds for a quantile, and the comparison the p95
//! latency guardrail uses.
//!
//! For the true q-quantile ξ of a continuous distribution, the indicators
//! 1{Xᵢ ≤ ξ} are Bernoulli(q), hence sub-Gaussian with variance proxy 1/4. Robbins'
//! normal-mixture boundary (Howard et al. 2021, "Time-uniform, nonparametric,
//! nonasymptotic confidence sequences") bounds their running sum uniformly over
//! time: with probability ≥ 1 − α, for every n at once,
//! |F̂ₙ(ξ) − q| ≤ uₙ = √((n/4 + ρ)·(ln(1 + n/(4ρ)) + 2 ln(1/α))) / n   (one side each).
//! So the empirical quantile at level q − uₙ is a lower bound on ξ and the one at
//! q + uₙ an upper bound, valid however often they are looked at — which is what a
//! controller re-evaluating every few seconds does. No distributional assumption:
//! latency tails are heavy and skewed.

/// The boundary is tightest around this many observations (ρ = n₀/4).
pub const TUNING_N: f64 = 1_000.0;

/// Half-width uₙ of the one-sided bound at level `alpha` after `n` observations.
/// `n` = 0 or α outside (0, 1) gives +∞ (no information).
pub fn radius(n: u64, alpha: f64) -> f64 {
    if n == 0 || !(alpha > 0.0 && alpha < 1.0) {
        return f64::INFINITY;
    }
    let (v, rho) = (0.25 * n as f64, 0.25 * TUNING_N);
    ((v + rho) * ((1.0 + v / rho).ln() + 2.0 * (1.0 / alpha).ln())).sqrt() / n as f64
}

/// Levels (lower, upper) of the empirical CDF whose quantiles bound the true
/// q-quantile after `n` observations; `None` on a side that carries no information
/// yet (the level falls outside (0, 1)).
pub fn bound_levels(q: f64, n: u64, alpha: f64) -> (Option<f64>, Option<f64>) {
    let u = radius(n, alpha);
    let lo = q - u;
    let hi = q + u;
    (
        (lo > 0.0 && lo < 1.0).then_some(lo),
        (hi > 0.0 && hi < 1.0).then_some(hi),
    )
}

/// Whether the candidate's q-quantile exceeds `limit` × the baseline's with
/// anytime-valid confidence 1 − α (α split over the two bounds).
///
/// `candidate_quantile` and `baseline_quantile` read empirical quantiles (e.g. from
/// a sketch); `relative_error` is their relative accuracy (0.01 for the default
/// DDSketch), applied against the breach.
pub fn exceeds_ratio(
    q: f64,
    limit: f64,
    alpha: f64,
    (n_candidate, candidate_quantile): (u64, &dyn Fn(f64) -> Option<f64>),
    (n_baseline, baseline_quantile): (u64, &dyn Fn(f64) -> Option<f64>),
    relative_error: f64,
) -> bool {
    let half = alpha / 2.0;
    let (Some(c_lo), _) = bound_levels(q, n_candidate, half) else {
        return false;
    };
    let (_, Some(b_hi)) = bound_levels(q, n_baseline, half) else {
        return false;
    };
    match (candidate_quantile(c_lo), baseline_quantile(b_hi)) {
        (Some(c), Some(b)) => c * (1.0 - relative_error) > limit * b * (1.0 + relative_error),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_shrinks_like_sqrt_log_n_over_n() {
        assert!(radius(0, 0.05).is_infinite());
        assert!(radius(100, 0.0).is_infinite());
        assert!(radius(100, f64::NAN).is_infinite());
        let r: Vec<f64> = [100u64, 1_000, 10_000, 100_000]
            .iter()
            .map(|&n| radius(n, 0.025))
            .collect();
        assert!(r.windows(2).all(|w| w[1] < w[0]), "{r:?}");
        // At n₀ the bound is about 2√(ln(1/α) + …)/√n: near 0.064 for α = 0.025.
        assert!((r[1] - 0.0635).abs() < 0.002, "{}", r[1]);
        assert!(r[3] < 0.01);
    }

    #[test]
    fn upper_level_exists_only_with_enough_data() {
        assert_eq!(bound_levels(0.95, 500, 0.025).1, None);
        let (lo, hi) = bound_levels(0.95, 5_000, 0.025);
        let (lo, hi) = (lo.unwrap_or(f64::NAN), hi.unwrap_or(f64::NAN));
        assert!(lo < 0.95 && hi > 0.95 && hi < 1.0, "{lo} {hi}");
    }
}
