//! Scalar families at the edges of `f64`: a deterministic sweep over a grid of extreme and
//! ordinary parameters and arguments (no NaN log-density for a valid distribution at a non-NaN
//! argument; every draw terminates and is not NaN). The accuracy of the regrouped formulas
//! used there is checked in `extreme_accuracy.rs`.

use probserve_runtime::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::Duration;

const TINY: f64 = 5e-324; // the smallest subnormal
const SUB: f64 = 1e-310; // a subnormal with a few bits
const ONE_MINUS: f64 = 1.0 - f64::EPSILON / 2.0; // the largest double below 1
const ONE_PLUS: f64 = 1.0 + f64::EPSILON; // the smallest double above 1

/// Positive magnitudes: 0's neighbours, the bottom and top of the range, and ordinary values.
const MAGNITUDES: [f64; 14] = [
    TINY,
    SUB,
    f64::MIN_POSITIVE,
    1e-300,
    1e-16,
    0.5,
    ONE_MINUS,
    1.0,
    ONE_PLUS,
    7.0,
    1e16,
    1e300,
    9e307,
    f64::MAX,
];

/// Parameter values: the magnitudes with both signs, signed zeros, the infinities and NaN
/// (the constructors must turn the invalid ones into errors).
fn params() -> Vec<f64> {
    let mut v = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
    for m in MAGNITUDES {
        v.push(m);
        v.push(-m);
    }
    v
}

/// Arguments: the parameter values (NaN excluded) plus integers and points near 1, which the
/// discrete families and the beta care about.
fn args() -> Vec<f64> {
    let mut v: Vec<f64> = params().into_iter().filter(|x| !x.is_nan()).collect();
    v.extend([
        2.0,
        3.8e-163,
        0.25,
        1.0 - 1e-16,
        20.0,
        1e4,
        123_456.0,
        9_007_199_254_740_992.0,
        1e200,
    ]);
    v
}

/// Arguments worth trying for a distribution with parameters `ps`: the grid plus values made
/// from the parameters (means, modes and scales of the positive families sit there).
fn args_for(ps: &[f64]) -> Vec<f64> {
    let mut v = args();
    for &p in ps {
        v.extend([p, -p, 1.0 / p, p.floor(), 1.0 - p]);
        for &q in ps {
            v.extend([p / q, p * q, (p / q).floor(), p / (p + q)]);
        }
    }
    v.retain(|x| !x.is_nan());
    v
}

/// Every scalar family built from the parameters `(a, b, c)` (invalid ones dropped).
fn families(a: f64, b: f64, c: f64) -> Vec<Dist> {
    [
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
        Binomial::new(count(c), a).map(Dist::from),
        Poisson::new(a).map(Dist::from),
        Categorical::new(&[a, b, c]).map(Dist::from),
        Categorical::from_logits(&[a, b]).map(Dist::from),
        Geometric::new(a).map(Dist::from),
        NegativeBinomial::new(a, b).map(Dist::from),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A trial count from a grid value (2^53 + 1 and `u64::MAX` exercise the constructor's limit).
fn count(c: f64) -> u64 {
    match c {
        c if c == f64::MAX => u64::MAX,
        1e16 => (1u64 << 53) + 1,
        9e307 => 1u64 << 53,
        c => c.abs().min(1e18) as u64,
    }
}

fn sweep<F: FnMut(f64, f64, f64)>(mut f: F) {
    let ps = params();
    for &a in &ps {
        for &b in &ps {
            for &c in &ps {
                f(a, b, c);
            }
        }
    }
}

/// Failures collected per family: a count and the first few distinct cases.
#[derive(Default)]
struct Failures {
    by_family: BTreeMap<&'static str, (usize, BTreeSet<String>)>,
}

impl Failures {
    fn record(&mut self, d: &Dist, what: String) {
        let (n, cases) = self.by_family.entry(d.family()).or_default();
        *n += 1;
        if cases.len() < 6 {
            cases.insert(format!("{d:?} {what}"));
        }
    }

    fn assert_none(&self, of: &str) {
        let report: Vec<String> = self
            .by_family
            .iter()
            .map(|(f, (n, cases))| {
                let cases: Vec<&str> = cases.iter().map(String::as_str).collect();
                format!("{f}: {n} {of}, e.g.\n  {}", cases.join("\n  "))
            })
            .collect();
        assert!(report.is_empty(), "{}", report.join("\n"));
    }
}

#[test]
fn log_density_is_never_nan_on_the_grid() {
    let mut bad = Failures::default();
    let mut evaluated = 0usize;
    sweep(|a, b, c| {
        let xs = args_for(&[a, b, c]);
        for d in families(a, b, c) {
            for &x in &xs {
                evaluated += 1;
                let lp = d.log_prob(x);
                if lp.is_nan() {
                    bad.record(&d, format!("at x = {x:e}"));
                }
            }
        }
    });
    assert!(evaluated > 1_000_000, "only {evaluated} evaluations");
    bad.assert_none("NaN log-densities");
}

/// Every valid distribution on the grid draws (a few times) in bounded time, never NaN, and
/// its draws have a non-NaN log-density. A draw that hangs fails the test after a minute
/// instead of hanging the suite.
#[test]
fn sampling_terminates_and_is_not_nan_on_the_grid() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rng = probserve_runtime::rng::stream_rng(2024, 0);
        let mut bad = Failures::default();
        sweep(|a, b, c| {
            for d in families(a, b, c) {
                for _ in 0..3 {
                    let x = d.sample(&mut rng);
                    if x.is_nan() || d.log_prob(x).is_nan() {
                        bad.record(&d, format!("drew {x:e}"));
                    }
                }
            }
        });
        let _ = tx.send(bad);
    });
    let bad = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("sampling on the grid did not finish within a minute (a sampler hangs)");
    bad.assert_none("bad draws");
}

// ---------------------------------------------------------------------------------------------
