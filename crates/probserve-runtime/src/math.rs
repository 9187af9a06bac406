//! Numerical helpers: stable log-sum-exp, log-gamma/beta wrappers, the large-argument
//! (Stirling and saddle-point) pieces the log-densities use where the plain formulas would
//! cancel or overflow, and the normal quantile.

use statrs::function::{erf, gamma};

/// `ln(2π) / 2`.
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// `ln Γ(x)` for `x > 0` (statrs' Lanczos approximation). Below `f64::MIN_POSITIVE` it is
/// `−ln x` (to within `γx < 1e-308`): statrs' reflection formula rounds `π x` to a few bits
/// there and is off by up to 0.05 at the smallest subnormal.
#[inline]
pub fn ln_gamma(x: f64) -> f64 {
    if x < f64::MIN_POSITIVE {
        return -x.ln();
    }
    gamma::ln_gamma(x)
}

/// `ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b)` for `a, b > 0`. With a shape `≥ 10⁴` the
/// log-gammas cancel (and `ln Γ(a + b)` overflows near `f64::MAX`, `∞ − ∞`): then it is
/// `ln Γ(small) − ln_poch(large, small)` for a small shape below 10, and Stirling's series
/// `½ ln 2π + (a − ½) ln(a/c) + (b − ½) ln(b/c) − ½ ln c + S(a) + S(b) − S(c)`, `c = a + b`
/// (never formed), with both at least 10.
pub fn ln_beta(a: f64, b: f64) -> f64 {
    let (small, large) = if a < b { (a, b) } else { (b, a) };
    if large < STIRLING_FROM {
        return ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    }
    if small < 10.0 {
        return ln_gamma(small) - ln_poch(large, small);
    }
    let (ln_ca, ln_cb) = ((b / a).ln_1p(), (a / b).ln_1p()); // ln(c/a), ln(c/b)
    let half_ln_c = 0.5 * (a.ln() + ln_ca);
    let tails = stirling_tail(a) + stirling_tail(b) - stirling_tail(a + b);
    HALF_LN_2PI - (a - 0.5) * ln_ca - (b - 0.5) * ln_cb - half_ln_c + tails
}

/// Where the large-argument (Stirling) forms take over: from here on a difference of two
/// log-gammas loses more than ~1e-11 to cancellation, while the series below is exact to
/// rounding. Below it the plain formulas keep their values.
pub const STIRLING_FROM: f64 = 1e4;

/// `ln Γ(r + k) − ln Γ(r)` for `r > 0` and `k > −1` with `r + k > 0`: exactly 0 for
/// `k = 0`, and for large `r` from Stirling's series written with `ln_1p`, so neither the
/// cancellation of two huge log-gammas nor `∞ − ∞` (at `r` near `f64::MAX`) spoils it.
pub fn ln_poch(r: f64, k: f64) -> f64 {
    if k == 0.0 {
        return 0.0;
    }
    if r < STIRLING_FROM {
        return ln_gamma(r + k) - ln_gamma(r);
    }
    // ln Γ(x) = (x − ½) ln x − x + ½ ln 2π + S(x), x = r + k ≥ 10⁴ − 1.
    let x = r + k;
    (x - 0.5) * (k / r).ln_1p() + k * r.ln() - k + (stirling_tail(x) - stirling_tail(r))
}

/// `S(x) = ln Γ(x) − [(x − ½) ln x − x + ½ ln 2π]` for `x ≥ 10` (six terms of Stirling's
/// series, error below 1e-15 at 10; `0` at `x = ∞`). The large-argument forms add it to their
/// regrouped leading terms instead of subtracting two huge log-gammas.
pub fn stirling_tail(x: f64) -> f64 {
    let r = 1.0 / x;
    let r2 = r * r;
    // Bernoulli-number coefficients B₂ⱼ / (2j(2j − 1)), j = 1…6.
    let poly = 1.0 / 12.0
        - r2 * (1.0 / 360.0
            - r2 * (1.0 / 1260.0
                - r2 * (1.0 / 1680.0 - r2 * (1.0 / 1188.0 - r2 * (691.0 / 360_360.0)))));
    r * poly
}

/// `ln(1 + t) − t` for `t ≥ −1` (`−t²/2 + t³/3 − …`), without the cancellation of the plain
/// difference near `t = 0`, where the saddle-point forms evaluate it: with `u = t / (2 + t)`,
/// `ln(1 + t) = 2 atanh u` and `t − 2u = u t`, so it is `−u t + 2 (u³/3 + u⁵/5 + …)`.
pub fn ln1pmx(t: f64) -> f64 {
    if t.abs() > 0.5 {
        return if t == f64::INFINITY {
            f64::NEG_INFINITY
        } else {
            t.ln_1p() - t
        };
    }
    let u = t / (2.0 + t);
    let (u2, lead) = (u * u, u * t);
    // |u| ≤ 1/3: each term is at most a ninth of the previous one.
    let (mut power, mut series, mut j) = (u * u2, 0.0, 3.0);
    while power.abs() > 1e-17 * lead.abs() {
        series += power / j;
        power *= u2;
        j += 2.0;
    }
    2.0 * series - lead
}

/// `1 + ln y − y` for `y ≥ 0`: `≤ 0`, with its maximum `0` at `y = 1`. Gamma-like log-densities
/// written around their saddle point are `shape · (1 + ln y − y)` plus terms of order `ln shape`,
/// which never forms `∞ − ∞`. `ln_y` (finite, computed from logs) is used where `y` itself
/// under- or overflowed (it may be `0`, subnormal or `∞` then); near `y = 1` this is
/// [`ln1pmx`]`(y − 1)`, with `y − 1` exact.
pub fn ln_saddle(y: f64, ln_y: f64) -> f64 {
    if !y.is_normal() {
        return 1.0 + ln_y - ln_y.exp();
    }
    if (0.5..=2.0).contains(&y) {
        ln1pmx(y - 1.0)
    } else {
        1.0 + y.ln() - y
    }
}

/// `ln[xᵃ (1 − x)ᵇ / B(a, b)]` for `a, b ≥ 10`, `x ∈ [0, 1]`: the beta, binomial and negative
/// binomial log-masses for large counts without the cancellation (or `∞ − ∞`) of
/// `a ln x + b ln(1 − x) − ln B(a, b)`. With `c = a + b`, `y₁ = x c / a` and
/// `y₂ = (1 − x) c / b`, Stirling's series makes it
/// `a (1 + ln y₁ − y₁) + b (1 + ln y₂ − y₂) + ½ ln(ab/c) − ½ ln 2π + S(c) − S(a) − S(b)`:
/// two non-positive saddle terms and small ones, with `c` never formed where it would overflow.
pub fn ln_beta_kernel(a: f64, b: f64, x: f64) -> f64 {
    let (ln_ca, ln_cb) = ((b / a).ln_1p(), (a / b).ln_1p()); // ln(c/a), ln(c/b)
    let q = 1.0 - x;
    let t1 = ln_saddle(x * (1.0 + b / a), x.ln() + ln_ca);
    let t2 = ln_saddle(q * (1.0 + a / b), (-x).ln_1p() + ln_cb);
    let half_ln_ab_over_c = 0.5 * (b.ln() - ln_ca);
    let tails = stirling_tail(a + b) - stirling_tail(a) - stirling_tail(b);
    a * t1 + b * t2 + (half_ln_ab_over_c - HALF_LN_2PI + tails)
}

/// `ln C(n, k)` for `0 ≤ k ≤ n`. For `n ≥ 10⁴` it is `ln Γ(n + 1) − ln Γ(n − m + 1)` (with
/// `m = min(k, n − k)`) through [`ln_poch`], minus `ln Γ(m + 1)`: the plain three log-gammas
/// lose `ulp(n ln n)` (a few 1e-6 at `n = 10⁹`) to cancellation, this only `ulp(m ln n)`.
#[inline]
pub fn ln_binomial(n: f64, k: f64) -> f64 {
    if k == 0.0 || k == n {
        return 0.0;
    }
    if n < STIRLING_FROM {
        return ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
    }
    let m = k.min(n - k);
    ln_poch(n - m + 1.0, m) - ln_gamma(m + 1.0)
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

    /// `ln(1 + t) − t` against its Taylor series `Σⱼ₌₂ (−1)ʲ⁺¹ tʲ / j` for small `t` (summed to
    /// 1e-30 of the value) and against the plain difference for `|t| ≥ 0.1` (where it cancels
    /// at most 1 digit).
    #[test]
    fn ln1pmx_matches_series_and_plain_form() {
        for t in [1e-300, -1e-200, 1e-9, -3e-6, 1e-4, -1e-3f64] {
            let (mut want, mut power) = (0.0, -t * t);
            for j in 2..12 {
                want += power / f64::from(j);
                power *= -t;
            }
            assert!((ln1pmx(t) - want).abs() <= 4e-16 * want.abs(), "t = {t}");
        }
        for t in [
            -0.9, -0.5, -0.3, -0.1, 0.1, 0.3, 0.49, 0.5, 0.51, 3.0, 1e10f64,
        ] {
            let want = t.ln_1p() - t;
            assert!((ln1pmx(t) - want).abs() <= 2e-15 * want.abs(), "t = {t}");
        }
        assert_eq!(ln1pmx(0.0), 0.0);
        assert_eq!(ln1pmx(-1.0), f64::NEG_INFINITY);
        assert_eq!(ln1pmx(f64::INFINITY), f64::NEG_INFINITY);
    }

    /// `S(x)` against `ln Γ(x) − [(x − ½) ln x − x + ½ ln 2π]` from statrs at moderate `x`;
    /// that difference loses a few ulps of `x ln x`, which is the tolerance.
    #[test]
    fn stirling_tail_matches_ln_gamma() {
        for x in [10.0f64, 12.5, 20.0, 100.0, 1e3] {
            let want = ln_gamma(x) - ((x - 0.5) * x.ln() - x + HALF_LN_2PI);
            let tol = 4.0 * f64::EPSILON * (x * x.ln() + x);
            assert!((stirling_tail(x) - want).abs() < tol, "x = {x}");
        }
        assert!((stirling_tail(1e300) * 12e300 - 1.0).abs() <= f64::EPSILON);
        assert_eq!(stirling_tail(f64::INFINITY), 0.0);
    }

    /// `1 + ln y − y` is `≤ 0`, exactly `0` at 1, and falls back on `ln y` where `y` is not
    /// representable.
    #[test]
    fn ln_saddle_edges() {
        assert_eq!(ln_saddle(1.0, 0.0), 0.0);
        assert!((ln_saddle(3.0, 0.0) - (1.0 + 3f64.ln() - 3.0)).abs() < 1e-15);
        assert_eq!(ln_saddle(0.0, -800.0), -799.0);
        assert_eq!(ln_saddle(0.0, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert_eq!(ln_saddle(f64::INFINITY, 800.0), f64::NEG_INFINITY);
        for y in [1e-300, 0.3, 0.999, 1.0 + 1e-9, 1.7, 1e300] {
            assert!(ln_saddle(y, y.ln()) <= 0.0);
        }
    }

    /// Subnormal arguments: `ln Γ(x) = −ln x − γx + …`, and statrs' reflection was off there.
    #[test]
    fn ln_gamma_at_subnormals() {
        for x in [5e-324, 1e-320, 1e-310] {
            assert_eq!(ln_gamma(x), -x.ln());
        }
        assert_eq!(
            ln_gamma(f64::MIN_POSITIVE),
            gamma::ln_gamma(f64::MIN_POSITIVE)
        );
    }

    /// Exact small cases at large `n` (from 2·10⁴, where the Stirling branch of [`ln_poch`]
    /// applies): `C(n, 1) = n`, `C(n, 2) = n(n − 1)/2`, `C(n, 10)` as a product; and
    /// `ln B(a, a) = ln[Γ(a)² / Γ(2a)]` against Legendre's duplication formula,
    /// `½ ln π − (2a − 1) ln 2 − [ln Γ(a + ½) − ln Γ(a)]` with the half-step series
    /// `½ ln a − 1/(8a) + 1/(192a³)`, where `ln Γ(2a)` overflows near `f64::MAX`.
    #[test]
    fn ln_binomial_and_ln_beta_at_large_arguments() {
        for n in [2e4f64, 1e9, 2f64.powi(53)] {
            assert!((ln_binomial(n, 1.0) - n.ln()).abs() <= 4e-16 * n.ln());
            let want = n.ln() + (n - 1.0).ln() - std::f64::consts::LN_2;
            assert!((ln_binomial(n, n - 2.0) - want).abs() <= 4e-16 * want);
            let want: f64 = (0..10)
                .map(|i| ((n - f64::from(i)) / f64::from(i + 1)).ln())
                .sum();
            assert!(
                (ln_binomial(n, 10.0) - want).abs() <= 1e-15 * want,
                "n = {n}"
            );
        }
        let ln_pi = std::f64::consts::PI.ln();
        for a in [1e4f64, 1e10, 1e300, f64::MAX] {
            let half_step = 0.5 * a.ln() - 1.0 / (8.0 * a) + 1.0 / (192.0 * a * a * a);
            let want = 0.5 * ln_pi - (2.0 * a - 1.0) * std::f64::consts::LN_2 - half_step;
            let got = ln_beta(a, a);
            assert!(
                got == want || (got - want).abs() <= 4e-16 * want.abs(),
                "a = {a}: {got} vs {want}"
            );
        }
        // One small shape: B(a, 1) = 1/a exactly.
        for a in [1e4f64, 1e16, f64::MAX] {
            assert!((ln_beta(a, 1.0) + a.ln()).abs() <= 4e-16 * a.ln());
            assert!((ln_beta(1.0, a) + a.ln()).abs() <= 4e-16 * a.ln());
        }
    }

    #[test]
    fn quantile_roundtrip() {
        for &p in &[1e-10, 0.025, 0.3, 0.5, 0.975] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-10 * p);
        }
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
    }
}
