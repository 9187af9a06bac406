//! Numerical helpers: stable log-sum-exp, log-gamma/beta wrappers and the normal quantile.

use statrs::function::{erf, gamma};

/// `ln(2π) / 2`.
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln Γ(x)` for `x > 0` (statrs' Lanczos approximation).
#[inline]
pub fn ln_gamma(x: f64) -> f64 {
    gamma::ln_gamma(x)
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b)`.
#[inline]
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// `ln Γ(r + k) − ln Γ(r)` for `r > 0`, `k ≥ 0`: exactly 0 for `k = 0`, and for large
/// `r` from Stirling's series written with `ln_1p`, so neither the cancellation of two
/// huge log-gammas nor `∞ − ∞` (at `r` near `f64::MAX`) spoils it.
pub fn ln_poch(r: f64, k: f64) -> f64 {
    if k == 0.0 {
        return 0.0;
    }
    if r < 1e4 {
        return ln_gamma(r + k) - ln_gamma(r);
    }
    // ln Γ(x) = (x − ½) ln x − x + ½ ln 2π + 1/(12x) − 1/(360x³) + O(x⁻⁵), x ≥ 10⁴.
    let x = r + k;
    let series = |x: f64| 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x * x);
    (x - 0.5) * (k / r).ln_1p() + k * r.ln() - k + (series(x) - series(r))
}

/// `ln C(n, k)` for `0 ≤ k ≤ n`.
#[inline]
pub fn ln_binomial(n: f64, k: f64) -> f64 {
    if k == 0.0 || k == n {
        return 0.0;
    }
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// Stable `ln Σ exp(xᵢ)`.
///
/// Empty input and all-`−∞` input give `−∞`; any `+∞` gives `+∞`; any NaN gives NaN.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for &x in xs {
        if x.is_nan() {
            return f64::NAN;
        }
        if x > m {
            m = x;
        }
    }
    if m.is_infinite() {
        return m;
    }
    let s: f64 = xs.iter().map(|&x| (x - m).exp()).sum();
    m + s.ln()
}

/// Stable `ln(exp(a) + exp(b))`.
#[inline]
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi.is_infinite() {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// Standard normal quantile `Φ⁻¹(p)` for `p ∈ (0, 1)` (±∞ at the ends, NaN outside).
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    -std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * p)
}

/// Standard normal CDF.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// SplitMix64 step: a bijective mixer used to derive independent seeds.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lse_basics() {
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY; 3]), f64::NEG_INFINITY);
        assert!(log_sum_exp(&[1.0, f64::NAN]).is_nan());
        assert_eq!(log_sum_exp(&[1.0, f64::INFINITY]), f64::INFINITY);
        let v = log_sum_exp(&[1e308, 1e308]);
        assert!((v - 1e308).abs() <= 1e292);
        assert!((log_sum_exp(&[-1e308, -1e308]) - (-1e308)).abs() <= 1e292);
        assert!((log_add_exp(0.0, 0.0) - std::f64::consts::LN_2).abs() < 1e-15);
    }

    #[test]
    fn quantile_roundtrip() {
        for &p in &[1e-10, 0.025, 0.3, 0.5, 0.975] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-10 * p);
        }
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
    }
}
