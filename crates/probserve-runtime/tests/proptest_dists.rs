//! Property tests: log-densities against statrs, total functions on arbitrary input, samples in
//! the support, and log-sum-exp at extreme values.

use probserve_runtime::math::{log_add_exp, log_sum_exp};
use probserve_runtime::*;
use proptest::prelude::*;
use statrs::distribution::{self as sd, Continuous, Discrete};

fn close(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn pos() -> impl Strategy<Value = f64> {
    (1e-2f64..1e2).prop_map(|x| x)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn normal_family(mu in -50.0f64..50.0, s in pos(), x in -100.0f64..100.0) {
        prop_assert!(close(Normal::new(mu, s).unwrap().log_prob(x), sd::Normal::new(mu, s).unwrap().ln_pdf(x)));
        let hn = HalfNormal::new(s).unwrap().log_prob(x.abs());
        prop_assert!(close(hn, std::f64::consts::LN_2 + sd::Normal::new(0.0, s).unwrap().ln_pdf(x.abs())));
        let y = x.abs() + 1e-3;
        prop_assert!(close(LogNormal::new(mu / 10.0, s).unwrap().log_prob(y), sd::LogNormal::new(mu / 10.0, s).unwrap().ln_pdf(y)));
    }

    #[test]
    fn heavy_tails(loc in -10.0f64..10.0, s in pos(), nu in 0.1f64..50.0, x in -1e3f64..1e3) {
        prop_assert!(close(StudentT::new(nu, loc, s).unwrap().log_prob(x), sd::StudentsT::new(loc, s, nu).unwrap().ln_pdf(x)));
        prop_assert!(close(Cauchy::new(loc, s).unwrap().log_prob(x), sd::Cauchy::new(loc, s).unwrap().ln_pdf(x)));
    }

    #[test]
    fn positive_families(a in 0.05f64..30.0, b in 0.05f64..30.0, x in 1e-3f64..50.0) {
        prop_assert!(close(Exponential::new(b).unwrap().log_prob(x), sd::Exp::new(b).unwrap().ln_pdf(x)));
        prop_assert!(close(Gamma::new(a, b).unwrap().log_prob(x), sd::Gamma::new(a, b).unwrap().ln_pdf(x)));
        // 1/X ~ Gamma(a, b), with the Jacobian 1/x². (statrs' own InverseGamma::ln_pdf is
        // ln(pdf), which underflows to a few-bit subnormal below e^-708: it was 0.017 off at
        // a = 0.05, b = 27.35, x = 0.0369.)
        let ig = sd::Gamma::new(a, b).unwrap().ln_pdf(1.0 / x) - 2.0 * x.ln();
        prop_assert!(close(InverseGamma::new(a, b).unwrap().log_prob(x), ig));
    }

    #[test]
    fn unit_interval_families(a in 0.05f64..30.0, b in 0.05f64..30.0, x in 1e-4f64..0.9999, lo in -10.0f64..10.0, w in pos()) {
        prop_assert!(close(Beta::new(a, b).unwrap().log_prob(x), sd::Beta::new(a, b).unwrap().ln_pdf(x)));
        let u = lo + w * x;
        prop_assert!(close(Uniform::new(lo, lo + w).unwrap().log_prob(u), sd::Uniform::new(lo, lo + w).unwrap().ln_pdf(u)));
        // A 2-d Dirichlet at (x, 1 − x) is a Beta at x.
        let d = Dirichlet::new(&[a, b]).unwrap().log_prob(&[x, 1.0 - x]);
        prop_assert!((d - sd::Beta::new(a, b).unwrap().ln_pdf(x)).abs() < 1e-7 * d.abs().max(1.0));
    }

    #[test]
    fn counting_families(p in 0.01f64..0.99, n in 1u64..200, k in 0u64..200, rate in 0.01f64..100.0, r in 0.1f64..20.0) {
        let kf = k as f64;
        prop_assert!(close(Bernoulli::new(p).unwrap().log_prob((k % 2) as f64), sd::Bernoulli::new(p).unwrap().ln_pmf(k % 2)));
        let bin = Binomial::new(n, p).unwrap().log_prob(kf);
        if k <= n {
            prop_assert!(close(bin, sd::Binomial::new(p, n).unwrap().ln_pmf(k)));
        } else {
            prop_assert_eq!(bin, f64::NEG_INFINITY);
        }
        prop_assert!(close(Poisson::new(rate).unwrap().log_prob(kf), sd::Poisson::new(rate).unwrap().ln_pmf(k)));
        prop_assert!(close(Geometric::new(p).unwrap().log_prob(kf), sd::Geometric::new(p).unwrap().ln_pmf(k + 1)));
        prop_assert!(close(NegativeBinomial::new(r, p).unwrap().log_prob(kf), sd::NegativeBinomial::new(r, p).unwrap().ln_pmf(k)));
    }

    #[test]
    fn categorical_matches(ws in prop::collection::vec(0.01f64..10.0, 1..12), k in 0usize..12) {
        let ours = Categorical::new(&ws).unwrap().log_prob(k as f64);
        if k < ws.len() {
            prop_assert!(close(ours, sd::Categorical::new(&ws).unwrap().ln_pmf(k as u64)));
        } else {
            prop_assert_eq!(ours, f64::NEG_INFINITY);
        }
        let logits: Vec<f64> = ws.iter().map(|w| w.ln() + 3.0).collect();
        prop_assert!(close(Categorical::from_logits(&logits).unwrap().log_prob(0.0), Categorical::new(&ws).unwrap().log_prob(0.0)));
    }

    #[test]
    fn mvnormal_matches_independent_normals(m0 in -5.0f64..5.0, m1 in -5.0f64..5.0, s0 in pos(), s1 in pos(), x0 in -20.0f64..20.0, x1 in -20.0f64..20.0, rho in -0.95f64..0.95) {
        let d = MvNormal::new(&[m0, m1], &[s0 * s0, 0.0, 0.0, s1 * s1]).unwrap();
        let want = sd::Normal::new(m0, s0).unwrap().ln_pdf(x0) + sd::Normal::new(m1, s1).unwrap().ln_pdf(x1);
        prop_assert!(close(d.log_prob(&[x0, x1]), want));
        // Correlated: the bivariate normal density formula.
        let c = rho * s0 * s1;
        let d = MvNormal::new(&[m0, m1], &[s0 * s0, c, c, s1 * s1]).unwrap();
        let (z0, z1) = ((x0 - m0) / s0, (x1 - m1) / s1);
        let q = (z0 * z0 - 2.0 * rho * z0 * z1 + z1 * z1) / (1.0 - rho * rho);
        let want = -(2.0 * std::f64::consts::PI * s0 * s1 * (1.0 - rho * rho).sqrt()).ln() - 0.5 * q;
        prop_assert!((d.log_prob(&[x0, x1]) - want).abs() < 1e-8 * want.abs().max(1.0));
    }

    /// Constructors are total: any input gives Ok or a typed error, and valid distributions give
    /// a non-NaN log-density for every non-NaN argument.
    #[test]
    fn total_on_arbitrary_input(a in any::<f64>(), b in any::<f64>(), c in any::<f64>(), x in any::<f64>()) {
        let scalars: Vec<Dist> = [
            Normal::new(a, b).map(Dist::from),
            HalfNormal::new(a).map(Dist::from),
            LogNormal::new(a, b).map(Dist::from),
            StudentT::new(a, b, c).map(Dist::from),
            Cauchy::new(a, b).map(Dist::from),
            Exponential::new(a).map(Dist::from),
            Gamma::new(a, b).map(Dist::from),
            InverseGamma::new(a, b).map(Dist::from),
            Beta::new(a, b).map(Dist::from),
            Uniform::new(a, b).map(Dist::from),
            Bernoulli::new(a).map(Dist::from),
            Binomial::new(c.abs().min(1e18) as u64, a).map(Dist::from),
            Poisson::new(a).map(Dist::from),
            Categorical::new(&[a, b, c]).map(Dist::from),
            Categorical::from_logits(&[a, b]).map(Dist::from),
            Geometric::new(a).map(Dist::from),
            NegativeBinomial::new(a, b).map(Dist::from),
        ]
        .into_iter()
        .flatten()
        .collect();
        for d in &scalars {
            let lp = d.log_prob(x);
            prop_assert!(x.is_nan() || !lp.is_nan(), "{} at {x}: {lp}", d.family());
        }
        let _ = Dirichlet::new(&[a, b, c]).map(|d| d.log_prob(&[x, 0.5, 0.5]));
        let _ = MvNormal::new(&[a, b], &[c, x, x, c]).map(|d| d.log_prob(&[x, x]));
    }

    /// Draws lie in the support and have finite log-density.
    #[test]
    fn samples_in_support(seed in any::<u64>(), a in 0.05f64..20.0, b in 0.05f64..20.0) {
        let mut rng = probserve_runtime::rng::stream_rng(seed, 0);
        let ds: Vec<Dist> = vec![
            Normal::new(a, b).unwrap().into(), HalfNormal::new(b).unwrap().into(), LogNormal::new(a / 10.0, b / 10.0).unwrap().into(),
            StudentT::new(a, 0.0, b).unwrap().into(), Cauchy::new(a, b).unwrap().into(), Exponential::new(a).unwrap().into(),
            Gamma::new(a, b).unwrap().into(), InverseGamma::new(a, b).unwrap().into(), Beta::new(a, b).unwrap().into(),
            Uniform::new(-a, b).unwrap().into(), Bernoulli::new(a / 20.1).unwrap().into(), Binomial::new(20, a / 20.1).unwrap().into(),
            Poisson::new(a).unwrap().into(), Categorical::new(&[a, b, 1.0]).unwrap().into(), Geometric::new(a / 20.1).unwrap().into(),
            NegativeBinomial::new(a, b / 20.1).unwrap().into(),
        ];
        for d in &ds {
            let x = d.sample(&mut rng);
            let s = d.support();
            let in_support = s.contains(x) || (matches!(s, Support::Positive) && x == 0.0)
                || (matches!(s, Support::UnitInterval) && (x == 0.0 || x == 1.0));
            prop_assert!(in_support, "{} drew {x} outside {s:?}", d.family());
            prop_assert!(!d.log_prob(x).is_nan(), "{} logp NaN at {x}", d.family());
        }
        let dir = Dirichlet::new(&[a / 100.0, b, 1.0]).unwrap();
        let mut v = vec![0.0; 3];
        dir.sample_into(&mut rng, &mut v);
        prop_assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-9 && v.iter().all(|x| *x >= 0.0));
    }

    #[test]
    fn log_sum_exp_at_extremes(xs in prop::collection::vec(-1e308f64..1e308, 1..50), shift in -1e3f64..1e3) {
        let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let l = log_sum_exp(&xs);
        prop_assert!(l.is_finite());
        prop_assert!(l >= m && l <= m + (xs.len() as f64).ln() + 1e-9 * m.abs().max(1.0));
        // −∞ entries do not change the result.
        let mut with_inf = xs.clone();
        with_inf.push(f64::NEG_INFINITY);
        prop_assert_eq!(log_sum_exp(&with_inf), l);
        // Equal entries: x + ln n, even at ±1e308.
        let same = vec![xs[0]; xs.len()];
        let want = xs[0] + (xs.len() as f64).ln();
        prop_assert!((log_sum_exp(&same) - want).abs() <= 1e-12 * want.abs().max(1.0));
        // Shift equivariance for moderate values.
        let small: Vec<f64> = xs.iter().map(|x| x / 1e306).collect();
        let shifted: Vec<f64> = small.iter().map(|x| x + shift).collect();
        prop_assert!((log_sum_exp(&shifted) - (log_sum_exp(&small) + shift)).abs() < 1e-9 * (shift.abs() + 1.0));
        prop_assert!((log_add_exp(xs[0], m) - log_sum_exp(&[xs[0], m])).abs() <= 1e-12 * m.abs().max(1.0));
    }
}
