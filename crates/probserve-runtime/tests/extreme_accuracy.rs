//! Accuracy of the scalar families' large-argument forms (Stirling and saddle-point
//! regroupings that keep huge shapes, counts and degrees of freedom finite), against
//! references derived independently of them. The grid sweep over the edges of `f64` is in
//! `extremes.rs`.

use probserve_runtime::*;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;
const LN_PI: f64 = 1.144_729_885_849_400_2;

/// `got == want` (infinities included) or `|got − want| ≤ tol · max(|want|, 1)`.
fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    let err = (got - want).abs();
    assert!(
        got == want || err <= tol * want.abs().max(1.0),
        "{what}: got {got:e}, want {want:e} (error {err:e}, tolerance {tol:e})"
    );
}

/// `ln Γ(a + ½) − ln Γ(a) − ½ ln a` from its asymptotic series `−1/(8a) + 1/(192a³) − …`
/// (the next term, `1/(640a⁵)`, is below 1e-23 for `a ≥ 10⁴`).
fn half_step_ln_gamma_ratio(a: f64) -> f64 {
    -1.0 / (8.0 * a) + 1.0 / (192.0 * a * a * a)
}

/// Neumaier-compensated `step · Σ exp(f(x))` over the points `x = j · step` in `[lo, hi]`,
/// for normalization checks. `step` is a power of two (1 for counts), so every point is exact
/// and the spacing is exactly `step`.
fn sum_exp(lo: f64, hi: f64, step: f64, f: impl Fn(f64) -> f64) -> f64 {
    let (mut sum, mut comp) = (0.0f64, 0.0f64);
    let mut j = (lo / step).floor();
    while j * step <= hi {
        let v = f(j * step).exp();
        let t = sum + v;
        comp += if sum.abs() >= v {
            (sum - t) + v
        } else {
            (v - t) + sum
        };
        sum = t;
        j += 1.0;
    }
    (sum + comp) * step
}

/// The largest power of two not above `x`.
fn pow2_below(x: f64) -> f64 {
    2f64.powi(x.log2().floor() as i32)
}

/// Gamma(a, rate a) and InverseGamma(a, scale a) at 1 are `a ln a − a − ln Γ(a)`, which is
/// `½ ln a − ½ ln 2π − 1/(12a) + O(a⁻³)` by Stirling's formula; the plain form was `∞ − ∞`
/// from a ≈ 2.5e305 on and lost everything to cancellation long before. Tolerance: a few ulps
/// of the value (the reference's own rounding is one or two).
#[test]
fn gamma_and_inverse_gamma_at_huge_shape_match_stirling() {
    for a in [1e4, 1e6, 1e16, 1e100, 1e300, 9e307, f64::MAX] {
        let want = 0.5 * a.ln() - HALF_LN_2PI - 1.0 / (12.0 * a) + 1.0 / (360.0 * a * a * a);
        let g = Gamma::new(a, a).unwrap().log_prob(1.0);
        let ig = InverseGamma::new(a, a).unwrap().log_prob(1.0);
        assert_close(g, want, 4e-16, &format!("Gamma({a:e}, {a:e}) at 1"));
        assert_close(ig, want, 4e-16, &format!("InverseGamma({a:e}, {a:e}) at 1"));
    }
    // The pinned proptest case: the true value is below −1e309, so −∞ (it was NaN).
    let ig = InverseGamma::new(3.946000685527365e306, 4.6172803407259406e-49).unwrap();
    assert_eq!(ig.log_prob(3.8e-163), f64::NEG_INFINITY);
    // Gamma(1.8e308, 1.8e308) (NaN at every x before): at 2 it is a (ln 2 − 1) + ½ ln a − ln 2
    // − ½ ln 2π ≈ −5.5e307, at 10 below −1e309: −∞.
    let (a, g) = (f64::MAX, Gamma::new(f64::MAX, f64::MAX).unwrap());
    let ln2 = std::f64::consts::LN_2;
    let want = a * (ln2 - 1.0) + 0.5 * a.ln() - ln2 - HALF_LN_2PI;
    assert_close(g.log_prob(2.0), want, 4e-16, "Gamma(MAX, MAX) at 2");
    assert_eq!(g.log_prob(10.0), f64::NEG_INFINITY);
}

/// Around the mode, Gamma(a, rate a) at `x = 1 + t` is `a (ln(1 + t) − t) − ln(1 + t) + ½ ln a
/// − ½ ln 2π − S(a)`; the reference sums the power series of `ln(1 + t) − t` term by term (the
/// code uses an atanh series and a different grouping) with `t` read back from the `f64` `x`.
/// Tolerance 1e-13 absolute: the terms are O(z²) ≤ 18 and the series is summed to 1e-20.
#[test]
fn gamma_near_its_mode_at_large_shape_matches_the_power_series() {
    for a in [2e4, 1e8, 1e12, 1e16f64] {
        for z in [-6.0, -3.0, -1.0, -0.1, 0.0, 0.5, 2.0, 5.0] {
            let x = 1.0 + z / a.sqrt();
            let t = x - 1.0; // exact (Sterbenz)
            let mut series = 0.0;
            let mut power = t * t;
            for j in 2..60 {
                let sign = if j % 2 == 0 { -1.0 } else { 1.0 };
                series += sign * power / f64::from(j);
                power *= t;
            }
            let stirling = 1.0 / (12.0 * a) - 1.0 / (360.0 * a * a * a);
            let want = a * series - t.ln_1p() + 0.5 * a.ln() - HALF_LN_2PI - stirling;
            let got = Gamma::new(a, a).unwrap().log_prob(x);
            assert_close(
                got,
                want,
                1e-13,
                &format!("Gamma({a:e}, {a:e}) at 1 + {z}/sqrt(a)"),
            );
            // The rate only rescales: Gamma(a, a·s) at x/s is the same density times s (s a
            // power of two, so that a·s and x/s are exact). Here y = rate·x/shape is no longer
            // exact but rounded twice, and the value moves by a|t| per unit of relative error
            // in y (its condition number: a 1-ulp change of x moves it as much), so the
            // tolerance adds 4 ulps of that.
            let s = 2f64.powi(-664);
            let scaled = Gamma::new(a, a * s).unwrap().log_prob(x / s) - s.ln();
            let tol = 1e-13 + 4.0 * f64::EPSILON * a * t.abs();
            assert!(
                (scaled - want).abs() <= tol,
                "Gamma({a:e}, {a:e}·2^-664) at 1 + {z}/sqrt(a): {scaled} vs {want}"
            );
        }
    }
}

/// Each density integrates to 1: a trapezoid sum over ±12 standard deviations (spectrally
/// accurate for these smooth, rapidly decaying integrands; the truncated tails are < 1e-30).
/// The plain formulas were off by up to ~1e-6 in the normalizer at these shapes.
#[test]
fn large_shape_densities_integrate_to_one() {
    for a in [2e4, 1e7, 1e12f64] {
        let sd = 1.0 / a.sqrt();
        let h = pow2_below(sd / 20.0);
        let g = Gamma::new(a, a).unwrap();
        let ig = InverseGamma::new(a, a).unwrap();
        let total_g = sum_exp(1.0 - 12.0 * sd, 1.0 + 12.0 * sd, h, |x| g.log_prob(x));
        let total_ig = sum_exp(1.0 - 12.0 * sd, 1.0 + 12.0 * sd, h, |x| ig.log_prob(x));
        assert_close(total_g, 1.0, 1e-11, &format!("∫ Gamma({a:e}, {a:e})"));
        assert_close(
            total_ig,
            1.0,
            1e-11,
            &format!("∫ InverseGamma({a:e}, {a:e})"),
        );
    }
    for (a, b) in [(3e4, 7e4), (1e9, 1e7), (5e12, 5e12f64)] {
        let (m, c) = (a / (a + b), a + b);
        let sd = (m * (1.0 - m) / c).sqrt();
        let h = pow2_below(sd / 20.0);
        let d = Beta::new(a, b).unwrap();
        let total = sum_exp(m - 12.0 * sd, m + 12.0 * sd, h, |x| d.log_prob(x));
        assert_close(total, 1.0, 1e-11, &format!("∫ Beta({a:e}, {b:e})"));
    }
}

/// Student-t at its centre is `ln Γ((ν+1)/2) − ln Γ(ν/2) − ½ ln(νπ)`, which the half-step
/// log-gamma series makes `−½ ln 2π − 1/(4ν) + 1/(24ν³) + O(ν⁻⁵)`; for ν ≥ 1e16 the whole
/// density is the standard normal's to O(z⁴/ν) < 1e-13. The plain normalizer was NaN (∞ − ∞)
/// from ν ≈ 5e305 and off by about `ulp(ν ln ν)` before (~1e287 at ν = 1e300). Tolerances: a
/// few ulps of the value.
#[test]
fn student_t_with_huge_nu_matches_its_normal_limit() {
    for nu in [2e4, 1e6, 1e10, 1e16, 1e300, 9e307, f64::MAX] {
        // ½ ln(ν/2) − ½ ln ν − ½ ln π is −½ ln 2π, taken exactly.
        let want = -HALF_LN_2PI + half_step_ln_gamma_ratio(0.5 * nu);
        let got = StudentT::new(nu, 0.0, 1.0).unwrap().log_prob(0.0);
        assert_close(got, want, 4e-16, &format!("StudentT({nu:e}) at 0"));
    }
    let normal = Normal::new(0.0, 1.0).unwrap();
    for nu in [1e16, 1e300, f64::MAX] {
        let t = StudentT::new(nu, 0.0, 1.0).unwrap();
        for z in [-30.0, -3.0, -1.0, 0.25, 2.0, 8.0] {
            assert_close(
                t.log_prob(z),
                normal.log_prob(z),
                1e-13,
                &format!("StudentT({nu:e}) at {z}"),
            );
        }
        // Where z² overflows but z²/ν does not, ln(1 + z²/ν) is still finite.
        let z: f64 = 1e160;
        let want = -HALF_LN_2PI - 0.5 * (nu + 1.0) * (2.0 * z.ln() - nu.ln()).exp().ln_1p();
        assert_close(
            t.log_prob(z),
            want,
            1e-14,
            &format!("StudentT({nu:e}) at 1e160"),
        );
    }
}

/// Student-t with tiny ν: the centre is `ln(ν/2) − ½ ln ν + O(ν) = ½ ln ν − ln 2` (the halving
/// of the smallest subnormal rounds to 0, which made it −∞), and `ln(1 + z²/ν)` stays finite
/// where `z²/ν` overflows: `2 ln|z| − ln ν`.
#[test]
fn student_t_with_tiny_nu() {
    for nu in [5e-324, 1e-310, 1e-300, 1e-200] {
        let t = StudentT::new(nu, 0.0, 1.0).unwrap();
        let centre = 0.5 * nu.ln() - std::f64::consts::LN_2;
        assert_close(
            t.log_prob(0.0),
            centre,
            1e-15,
            &format!("StudentT({nu:e}) at 0"),
        );
        let z: f64 = 1e200;
        let want = centre - 0.5 * (1.0 + nu) * (2.0 * z.ln() - nu.ln());
        assert_close(
            t.log_prob(z),
            want,
            1e-15,
            &format!("StudentT({nu:e}) at 1e200"),
        );
    }
}

/// Beta(a, a) at ½ is `ln 2 − ½ ln π + ln Γ(a + ½) − ln Γ(a)` (Legendre's duplication formula),
/// i.e. `ln 2 − ½ ln π + ½ ln a − 1/(8a) + 1/(192a³)`; it was −∞ (a NaN normalizer masked) from
/// a ≈ 1.3e305 on. Beta(a, 1) is `ln a + (a − 1) ln x` exactly, Beta(a, ½) at x is
/// `ln Γ(a + ½) − ln Γ(a) − ½ ln π + (a − 1) ln x − ½ ln(1 − x)`.
#[test]
fn beta_with_huge_shapes_matches_closed_forms() {
    for a in [1e4, 1e5, 1e10, 1e16, 1e300, 9e307, f64::MAX] {
        let want =
            std::f64::consts::LN_2 - 0.5 * LN_PI + 0.5 * a.ln() + half_step_ln_gamma_ratio(a);
        assert_close(
            Beta::new(a, a).unwrap().log_prob(0.5),
            want,
            4e-16,
            &format!("Beta({a:e}, {a:e}) at ½"),
        );
        for x in [0.5, 0.999, 1.0 - 1e-12, 1.0 - f64::EPSILON / 2.0] {
            let exact = a.ln() + (a - 1.0) * x.ln();
            assert_close(
                Beta::new(a, 1.0).unwrap().log_prob(x),
                exact,
                1e-14,
                &format!("Beta({a:e}, 1) at {x}"),
            );
            let mirrored = Beta::new(1.0, a).unwrap().log_prob(1.0 - x);
            assert_close(
                mirrored,
                exact,
                1e-14,
                &format!("Beta(1, {a:e}) at 1 − {x}"),
            );
            let half = 0.5 * a.ln() + half_step_ln_gamma_ratio(a) - 0.5 * LN_PI
                + (a - 1.0) * x.ln()
                - 0.5 * (-x).ln_1p();
            assert_close(
                Beta::new(a, 0.5).unwrap().log_prob(x),
                half,
                1e-14,
                &format!("Beta({a:e}, ½) at {x}"),
            );
        }
    }
}

/// Negative binomial with a large count, against closed forms for integer `r`:
/// `C(k + r − 1, k) = ∏ᵢ₌₁^(r−1) (k + i)/i`, so the log-mass is
/// `Σ ln(k + i) − ln (r−1)! + r ln p + k ln(1 − p)`. `r = 1, 2, 3` take the small-`r` branch,
/// `r = 10` the saddle-point kernel;
/// `p = r/(r + k)` puts `k` at the mode. The plain form was NaN (∞ − ∞) from k ≈ 2.5e305 and
/// lost about `ulp(k ln k)` (units at k = 1e15) before. Tolerance: 1e-13 of the sum of the
/// terms' magnitudes (the reference's own rounding).
#[test]
fn negative_binomial_at_large_counts_matches_closed_forms() {
    for r in [1u32, 2, 3, 10] {
        let rf = f64::from(r);
        for k in [
            1e4,
            123_456.0,
            1e9,
            1e15,
            9_007_199_254_740_992.0,
            1e200,
            1e300,
            9e307,
        ] {
            for p in [rf / (rf + k), 0.5, 1e-3 / k] {
                let ln_fact: f64 = (1..r).map(|i| f64::from(i).ln()).sum();
                let ln_prod: f64 = (1..r).map(|i| (k + f64::from(i)).ln()).sum();
                let (a, b) = (rf * p.ln(), k * (-p).ln_1p());
                let want = ln_prod - ln_fact + a + b;
                let scale = ln_prod.abs() + ln_fact + a.abs() + b.abs();
                let got = NegativeBinomial::new(rf, p).unwrap().log_prob(k);
                let what = format!("NegativeBinomial({r}, {p:e}) at {k:e}");
                assert!(
                    (got - want).abs() <= 1e-13 * scale.max(1.0) || got == want,
                    "{what}: got {got:e}, want {want:e}"
                );
            }
        }
    }
    // Huge r and tiny p at a huge count: finite near the mode, not NaN anywhere.
    let nb = NegativeBinomial::new(3.946e306, 4.6e-49).unwrap();
    for k in [7.0, 1e16, 1e300, 9e307, f64::MAX] {
        assert!(!nb.log_prob(k).is_nan(), "k = {k:e}");
    }
}

/// `ln P(k + 1) − ln P(k)` against the exact `ln` of the pmf ratio, a rational in the
/// parameters. The log-masses are only as exact as their inputs: the tolerance is 4 ulps of each
/// value plus 4 ulps of backward error in the probability/rate parameter, whose effect is
/// `|∂ ln P / ∂ ln p|` (`sensitivity`, about `|k − mean|`; it reaches ~1e6 here).
fn assert_ratio(lp_k: f64, lp_k1: f64, want: f64, sensitivity: f64, what: &str) {
    let eps = f64::EPSILON;
    let tol = 4.0 * eps * (lp_k.abs() + lp_k1.abs() + sensitivity) + 1e-14;
    let got = lp_k1 - lp_k;
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e} (error {:e}, tolerance {tol:e})",
        (got - want).abs()
    );
}

/// Large-count pmfs sum to 1 over ±40 standard deviations (compensated sums; the tails left
/// out are below 1e-300): negative binomial with r = 1e8 (the kernel branch), Poisson with
/// λ = 1e9 and binomial with n = 1e9. The plain forms lost ~1e-6 relative there; 1e-11 is the
/// summation's own error with margin. Also the pmf ratios `P(k + 1)/P(k)` (see
/// [`assert_ratio`]), including across the 10⁴ threshold.
#[test]
fn large_count_pmfs_sum_to_one() {
    let (r, p) = (1e8, 0.5);
    let nb = NegativeBinomial::new(r, p).unwrap();
    let (mean, sd) = (r * (1.0 - p) / p, (r * (1.0 - p)).sqrt() / p);
    let lo = (mean - 40.0 * sd).floor();
    let total = sum_exp(lo, mean + 40.0 * sd, 1.0, |k| nb.log_prob(k));
    assert_close(total, 1.0, 1e-11, "Σ NegativeBinomial(1e8, ½)");
    for k in [lo, mean, (mean + 3.0 * sd).floor(), 9_999.0] {
        let want = ((r + k) * (1.0 - p) / (k + 1.0)).ln();
        let sensitivity = r - k * p / (1.0 - p);
        let what = format!("NegativeBinomial ratio at {k:e}");
        assert_ratio(
            nb.log_prob(k),
            nb.log_prob(k + 1.0),
            want,
            sensitivity.abs(),
            &what,
        );
    }

    let lambda = 1e9;
    let po = Poisson::new(lambda).unwrap();
    let sd = lambda.sqrt();
    let total = sum_exp((lambda - 40.0 * sd).floor(), lambda + 40.0 * sd, 1.0, |k| {
        po.log_prob(k)
    });
    assert_close(total, 1.0, 1e-11, "Σ Poisson(1e9)");
    for k in [(lambda - 3.0 * sd).floor(), lambda, 9_999.0] {
        let want = (lambda / (k + 1.0)).ln();
        let what = format!("Poisson ratio at {k:e}");
        assert_ratio(
            po.log_prob(k),
            po.log_prob(k + 1.0),
            want,
            (k - lambda).abs(),
            &what,
        );
    }

    let (n, p) = (1_000_000_000u64, 0.3);
    let bin = Binomial::new(n, p).unwrap();
    let nf = n as f64;
    let (mean, sd) = (nf * p, (nf * p * (1.0 - p)).sqrt());
    let total = sum_exp((mean - 40.0 * sd).floor(), mean + 40.0 * sd, 1.0, |k| {
        bin.log_prob(k)
    });
    assert_close(total, 1.0, 1e-11, "Σ Binomial(1e9, 0.3)");
    for k in [9.0, 10.0, (mean - 5.0 * sd).floor(), mean, nf - 11.0] {
        let want = ((nf - k) / (k + 1.0) * p / (1.0 - p)).ln();
        let sensitivity = k - (nf - k) * p / (1.0 - p);
        let what = format!("Binomial ratio at {k:e}");
        assert_ratio(
            bin.log_prob(k),
            bin.log_prob(k + 1.0),
            want,
            sensitivity.abs(),
            &what,
        );
    }
}

/// A Poisson(λ) mass at k is the Gamma(k + 1, 1) density at λ (both `λᵏ e^{−λ} / k!`); the two
/// large-argument forms are computed differently (saddle ratio λ/k with S(k) against
/// λ/(k + 1) with S(k + 1)), so agreement to 1e-13 relative checks both. At k = f64::MAX the
/// true value is below −1e308: −∞, where the plain form was NaN.
#[test]
fn poisson_at_large_counts_matches_the_gamma_density() {
    for lambda in [1e-300, 0.5, 7.0, 1e4, 1e9, 1e15] {
        for k in [1e4, 3e4, 1e9, 1e15, 4e15] {
            let po = Poisson::new(lambda).unwrap().log_prob(k);
            let g = Gamma::new(k + 1.0, 1.0).unwrap().log_prob(lambda);
            assert_close(po, g, 1e-13, &format!("Poisson({lambda:e}) at {k:e}"));
        }
        assert_eq!(
            Poisson::new(lambda).unwrap().log_prob(f64::MAX),
            f64::NEG_INFINITY
        );
    }
}

/// At the shape thresholds the plain and the large-argument forms agree to what the plain one
/// (there still accurate to ~1e-11 absolute) can tell, and match statrs.
#[test]
fn plain_and_large_forms_agree_at_the_threshold() {
    use statrs::distribution::{self as sd, Continuous, Discrete};
    let below = 1e4 * (1.0 - f64::EPSILON);
    for x in [0.5, 0.99, 1.0, 1.01, 2.0] {
        let (g0, g1) = (
            Gamma::new(below, 1e4).unwrap(),
            Gamma::new(1e4, 1e4).unwrap(),
        );
        assert_close(
            g0.log_prob(x),
            g1.log_prob(x),
            1e-10,
            &format!("Gamma at the threshold, x = {x}"),
        );
        let want = sd::Gamma::new(2e4, 3e4).unwrap().ln_pdf(x);
        assert_close(
            Gamma::new(2e4, 3e4).unwrap().log_prob(x),
            want,
            1e-9,
            "Gamma(2e4, 3e4) vs statrs",
        );
    }
    // statrs' inverse gamma is NaN at these shapes; use X ~ InverseGamma(a, b) ⇔ 1/X ~ Gamma(a, b):
    // the densities differ by the Jacobian 1/x² (x a power of two, so 1/x is exact).
    for x in [0.5, 1.0, 2.0] {
        for (a, b) in [(2e4, 3e4), (1e10, 1e10), (1e300, 2e300)] {
            let ig = InverseGamma::new(a, b).unwrap().log_prob(x);
            let g = Gamma::new(a, b).unwrap().log_prob(1.0 / x) - 2.0 * x.ln();
            assert_close(ig, g, 1e-13, &format!("InverseGamma({a:e}, {b:e}) at {x}"));
        }
    }
    for x in [0.3, 0.5, 0.52] {
        let (b0, b1) = (
            Beta::new(below, below).unwrap(),
            Beta::new(1e4, 1e4).unwrap(),
        );
        assert_close(
            b0.log_prob(x),
            b1.log_prob(x),
            1e-10,
            &format!("Beta at the threshold, x = {x}"),
        );
        let want = sd::Beta::new(2e4, 2.5e4).unwrap().ln_pdf(x);
        assert_close(
            Beta::new(2e4, 2.5e4).unwrap().log_prob(x),
            want,
            1e-9,
            "Beta vs statrs",
        );
    }
    for z in [-3.0, 0.0, 1.0, 10.0] {
        let (t0, t1) = (
            StudentT::new(2.0 * below, 0.0, 1.0).unwrap(),
            StudentT::new(2e4, 0.0, 1.0).unwrap(),
        );
        assert_close(
            t0.log_prob(z),
            t1.log_prob(z),
            1e-10,
            &format!("StudentT at the threshold, z = {z}"),
        );
    }
    for k in [9_999.0, 10_000.0, 10_001.0] {
        let want = sd::Poisson::new(1e4).unwrap().ln_pmf(k as u64);
        assert_close(
            Poisson::new(1e4).unwrap().log_prob(k),
            want,
            1e-10,
            &format!("Poisson(1e4) at {k}"),
        );
        let want = sd::NegativeBinomial::new(20.0, 0.002)
            .unwrap()
            .ln_pmf(k as u64);
        assert_close(
            NegativeBinomial::new(20.0, 0.002).unwrap().log_prob(k),
            want,
            1e-10,
            &format!("NegativeBinomial(20, 0.002) at {k}"),
        );
        let want = sd::Binomial::new(0.5, 20_000).unwrap().ln_pmf(k as u64);
        assert_close(
            Binomial::new(20_000, 0.5).unwrap().log_prob(k),
            want,
            1e-10,
            &format!("Binomial(2e4, ½) at {k}"),
        );
    }
}

/// The samplers changed at the edges: a Gamma with a tiny rate (1/rate > 1e300) divides a
/// unit draw by the rate, an inverse gamma with a tiny scale multiplies, a Student-t with
/// ν > 1e300 draws χ²/ν directly, a Beta with subnormal shapes is a Bernoulli; their first two
/// moments match within 5 Monte-Carlo standard errors (20k draws).
#[test]
fn samplers_at_the_edges_have_the_right_moments() {
    let mut rng = probserve_runtime::rng::stream_rng(77, 0);
    let n = 20_000usize;
    let mut moments = |d: &Dist, scale: f64| {
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng) / scale).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    };
    let check = |what: &str, (mean, var): (f64, f64), want_mean: f64, want_var: f64| {
        let mcse = (want_var / n as f64).sqrt();
        assert!(
            (mean - want_mean).abs() < 5.0 * mcse,
            "{what}: mean {mean} vs {want_mean} ± {mcse}"
        );
        assert!(
            (var / want_var - 1.0).abs() < 0.1,
            "{what}: variance {var} vs {want_var}"
        );
    };
    // Gamma(3, 1e-305): mean 3e305, variance 3e610, in units of 1e305.
    let g: Dist = Gamma::new(3.0, 1e-305).unwrap().into();
    check("Gamma(3, 1e-305)", moments(&g, 1e305), 3.0, 3.0);
    let g: Dist = Gamma::new(0.5, 1e-305).unwrap().into();
    check("Gamma(½, 1e-305)", moments(&g, 1e305), 0.5, 0.5);
    // InverseGamma(20, 1e-305): mean b/19, variance b²/(19² · 18).
    let ig: Dist = InverseGamma::new(20.0, 1e-305).unwrap().into();
    check(
        "InverseGamma(20, 1e-305)",
        moments(&ig, 1e-305),
        1.0 / 19.0,
        1.0 / (19.0 * 19.0 * 18.0),
    );
    // Student-t with ν = 1e301: standard normal.
    let t: Dist = StudentT::new(1e301, 0.0, 1.0).unwrap().into();
    check("StudentT(1e301)", moments(&t, 1.0), 0.0, 1.0);
    let t: Dist = StudentT::new(f64::MAX, 2.0, 3.0).unwrap().into();
    check("StudentT(MAX, 2, 3)", moments(&t, 1.0), 2.0, 9.0);
    // Beta(2e-323, 3e-323): 1 with probability 2/5.
    let b: Dist = Beta::new(2e-323, 3e-323).unwrap().into();
    check("Beta(2e-323, 3e-323)", moments(&b, 1.0), 0.4, 0.24);
    // Beta with a + b = ∞: the mean.
    let b = Beta::new(f64::MAX, f64::MAX / 2.0).unwrap();
    let x = b.sample(&mut rng);
    assert!(
        (x - 2.0 / 3.0).abs() <= f64::EPSILON,
        "Beta(MAX, MAX/2) drew {x}"
    );
    // Student-t with the smallest ν: beyond f64::MAX, both signs.
    let t = StudentT::new(5e-324, 0.0, 1.0).unwrap();
    let draws: Vec<f64> = (0..200).map(|_| t.sample(&mut rng)).collect();
    assert!(draws.iter().all(|x| x.is_infinite()));
    assert!(draws.iter().any(|x| *x > 0.0) && draws.iter().any(|x| *x < 0.0));
}
