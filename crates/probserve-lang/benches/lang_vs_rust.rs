//! The same models written in the model language and against the runtime's Rust API,
//! run by the same algorithm with the same seed, side by side in one run:
//! (a) importance sampling on the temperature sensor, (b) single-site MH on a
//! 100-point regression (a fused observation loop), (c) single-site MH on eight
//! schools (an unrolled loop), (d) single-site MH on a 300-point logistic regression
//! (a loop too long to unroll), (e) single-site MH on a 40-group hierarchical model
//! with 400 observations indexed by group (a run-time array read at data indices),
//! plus parse+compile time of the temperature model. Before timing, each pair is
//! checked to produce bit-identical draws. Prints a table with lang/rust ratios after
//! criterion's runs.
//!
//! Run: `cargo bench -p probserve-lang --bench lang_vs_rust` (about a minute).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use probserve_lang::{BoundModel, InputValue, Inputs, builtin_model, compile};
use probserve_runtime as ps;

// ------------------------------------------------------------------ Rust models

struct TempRust {
    reading: f64,
}

impl ps::Model for TempRust {
    type Output = (f64, f64);
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<(f64, f64), ps::ModelError> {
        let temp = h.sample(ps::Address::new("temp"), &ps::Normal::new(20.0, 5.0)?)?;
        h.observe(
            ps::Address::new("reading"),
            &ps::Normal::new(temp, 1.0)?,
            self.reading,
        )?;
        Ok((temp, temp * 1.8 + 32.0))
    }
}

struct LinRegRust {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl ps::Model for LinRegRust {
    type Output = (f64, f64, f64);
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<(f64, f64, f64), ps::ModelError> {
        let a = h.sample(ps::Address::new("alpha"), &ps::Normal::new(0.0, 10.0)?)?;
        let b = h.sample(ps::Address::new("beta"), &ps::Normal::new(0.0, 10.0)?)?;
        let sigma = h.sample(ps::Address::new("sigma"), &ps::Exponential::new(1.0)?)?;
        for (i, (&x, &y)) in self.x.iter().zip(&self.y).enumerate() {
            h.observe(
                ps::Address::new("y").at_usize(i),
                &ps::Normal::new(a + b * x, sigma)?,
                y,
            )?;
        }
        Ok((a, b, sigma))
    }
}

const LINREG: &str = "model linreg {
  data x: real[];
  data y: real[len(x)];
  alpha ~ normal(0.0, 10.0);
  beta ~ normal(0.0, 10.0);
  sigma ~ exponential(1.0);
  for i in 0..len(y) {
    y[i] ~ normal(alpha + beta * x[i], sigma);
  }
  output alpha, beta, sigma;
}";

const Y8: [f64; 8] = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
const S8: [f64; 8] = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];

struct EightRust;

impl ps::Model for EightRust {
    type Output = [f64; 10];
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<[f64; 10], ps::ModelError> {
        let mut out = [0.0; 10];
        let mu = h.sample(ps::Address::new("mu"), &ps::Normal::new(0.0, 5.0)?)?;
        let tau = h.sample(ps::Address::new("tau"), &ps::HalfNormal::new(5.0)?)?;
        out[0] = mu;
        out[1] = tau;
        for j in 0..8 {
            let raw = h.sample(
                ps::Address::new("theta_raw").at_usize(j),
                &ps::Normal::new(0.0, 1.0)?,
            )?;
            let theta = mu + tau * raw;
            h.observe(
                ps::Address::new("y").at_usize(j),
                &ps::Normal::new(theta, S8[j])?,
                Y8[j],
            )?;
            out[2 + j] = theta;
        }
        Ok(out)
    }
}

/// The language's `inv_logit`, operation for operation.
fn inv_logit(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

struct LogRegRust {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl ps::Model for LogRegRust {
    type Output = (f64, f64);
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<(f64, f64), ps::ModelError> {
        let a = h.sample(ps::Address::new("alpha"), &ps::Normal::new(0.0, 2.5)?)?;
        let b = h.sample(ps::Address::new("beta"), &ps::Normal::new(0.0, 2.5)?)?;
        for (i, (&x, &y)) in self.x.iter().zip(&self.y).enumerate() {
            let p = inv_logit(a + b * x);
            h.observe(
                ps::Address::new("y").at_usize(i),
                &ps::Bernoulli::new(p)?,
                y,
            )?;
        }
        Ok((a, b))
    }
}

const LOGREG: &str = "model logreg {
  data x: real[];
  data y: bool[len(x)];
  alpha ~ normal(0.0, 2.5);
  beta ~ normal(0.0, 2.5);
  for i in 0..len(y) {
    y[i] ~ bernoulli(inv_logit(alpha + beta * x[i]));
  }
  output alpha, beta;
}";

struct HierRust {
    g: Vec<usize>,
    y: Vec<f64>,
    groups: usize,
}

impl ps::Model for HierRust {
    type Output = (f64, f64, f64);
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<(f64, f64, f64), ps::ModelError> {
        let mu = h.sample(ps::Address::new("mu"), &ps::Normal::new(0.0, 5.0)?)?;
        let tau = h.sample(ps::Address::new("tau"), &ps::HalfNormal::new(2.0)?)?;
        let sigma = h.sample(ps::Address::new("sigma"), &ps::HalfNormal::new(2.0)?)?;
        let mut theta = Vec::with_capacity(self.groups);
        for j in 0..self.groups {
            let eta = h.sample(
                ps::Address::new("eta").at_usize(j),
                &ps::Normal::new(0.0, 1.0)?,
            )?;
            theta.push(mu + tau * eta);
        }
        for (i, (&g, &y)) in self.g.iter().zip(&self.y).enumerate() {
            let m = theta.get(g).copied().unwrap_or(f64::NAN);
            h.observe(
                ps::Address::new("y").at_usize(i),
                &ps::Normal::new(m, sigma)?,
                y,
            )?;
        }
        Ok((mu, tau, sigma))
    }
}

const HIER: &str = "model hier {
  data J: int;
  data g: int[];
  data y: real[len(g)];
  mu ~ normal(0.0, 5.0);
  tau ~ half_normal(2.0);
  sigma ~ half_normal(2.0);
  for j in 0..J {
    eta[j] ~ normal(0.0, 1.0);
    let theta[j] = mu + tau * eta[j];
  }
  for i in 0..len(y) {
    y[i] ~ normal(theta[g[i]], sigma);
  }
  output mu, tau, sigma;
}";

// ------------------------------------------------------------------ setup

fn regression_data() -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..100).map(|i| f64::from(i) / 50.0 - 1.0).collect();
    let y = x
        .iter()
        .enumerate()
        .map(|(i, x)| 0.5 + 1.5 * x + ((i * 7919 % 17) as f64 / 8.0 - 1.0) * 0.3)
        .collect();
    (x, y)
}

fn logreg_data() -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..300).map(|i| f64::from(i) / 100.0 - 1.5).collect();
    let y = x
        .iter()
        .enumerate()
        .map(|(i, x)| {
            f64::from(u8::from(
                0.4 + 1.2 * x + ((i * 7919 % 13) as f64 / 6.0 - 1.0) > 0.0,
            ))
        })
        .collect();
    (x, y)
}

const GROUPS: usize = 40;

fn hier_data() -> (Vec<usize>, Vec<f64>) {
    let g: Vec<usize> = (0..400).map(|i| i * 7 % GROUPS).collect();
    let y = g
        .iter()
        .enumerate()
        .map(|(i, &g)| 1.0 + 0.1 * g as f64 + ((i * 7919 % 17) as f64 / 8.0 - 1.0))
        .collect();
    (g, y)
}

fn logreg_lang(x: &[f64], y: &[f64]) -> BoundModel {
    compile(LOGREG)
        .unwrap()
        .bind(&Inputs::from([
            ("x".to_string(), InputValue::RealVec(x.to_vec())),
            (
                "y".to_string(),
                InputValue::BoolVec(y.iter().map(|&v| v == 1.0).collect()),
            ),
        ]))
        .unwrap()
}

fn hier_lang(g: &[usize], y: &[f64]) -> BoundModel {
    compile(HIER)
        .unwrap()
        .bind(&Inputs::from([
            ("J".to_string(), InputValue::Int(GROUPS as i64)),
            (
                "g".to_string(),
                InputValue::IntVec(g.iter().map(|&v| v as i64).collect()),
            ),
            ("y".to_string(), InputValue::RealVec(y.to_vec())),
        ]))
        .unwrap()
}

fn temp_lang() -> BoundModel {
    let m = compile(builtin_model("temperature_sensor").unwrap()).unwrap();
    m.bind(&Inputs::from([(
        "reading".to_string(),
        InputValue::Real(22.0),
    )]))
    .unwrap()
}

fn linreg_lang(x: &[f64], y: &[f64]) -> BoundModel {
    compile(LINREG)
        .unwrap()
        .bind(&Inputs::from([
            ("x".to_string(), InputValue::RealVec(x.to_vec())),
            ("y".to_string(), InputValue::RealVec(y.to_vec())),
        ]))
        .unwrap()
}

fn eight_lang() -> BoundModel {
    compile(builtin_model("eight_schools").unwrap())
        .unwrap()
        .bind(&Inputs::from([
            ("y".to_string(), InputValue::RealVec(Y8.to_vec())),
            ("sigma".to_string(), InputValue::RealVec(S8.to_vec())),
        ]))
        .unwrap()
}

fn is_cfg() -> ps::ImportanceConfig {
    ps::ImportanceConfig {
        particles: 10_000,
        seed: 17,
        ..Default::default()
    }
}

fn mh_cfg() -> ps::McmcConfig {
    ps::McmcConfig {
        chains: 1,
        threads: 1,
        warmup: 1000,
        draws: 4000,
        seed: 23,
        ..Default::default()
    }
}

fn mh_draws<M: ps::Model + Sync>(m: &M) -> Vec<f64>
where
    M::Output: ps::Outputs,
{
    ps::mcmc(m, &mh_cfg()).unwrap().chains[0]
        .draws
        .values
        .clone()
}

/// Same algorithm, same seed: the two sides must produce the same numbers.
fn check_equivalence(x: &[f64], y: &[f64]) {
    let a = ps::importance_sampling(&temp_lang(), &is_cfg()).unwrap();
    let b = ps::importance_sampling(&TempRust { reading: 22.0 }, &is_cfg()).unwrap();
    assert_eq!(a.draws.values, b.draws.values, "temperature draws differ");
    assert_eq!(
        mh_draws(&linreg_lang(x, y)),
        mh_draws(&LinRegRust {
            x: x.to_vec(),
            y: y.to_vec()
        })
    );
    assert_eq!(mh_draws(&eight_lang()), mh_draws(&EightRust));
    let (lx, ly) = logreg_data();
    assert_eq!(
        mh_draws(&logreg_lang(&lx, &ly)),
        mh_draws(&LogRegRust { x: lx, y: ly })
    );
    let (g, hy) = hier_data();
    assert_eq!(
        mh_draws(&hier_lang(&g, &hy)),
        mh_draws(&HierRust {
            g,
            y: hy,
            groups: GROUPS
        })
    );
}

// ------------------------------------------------------------------ criterion

fn benches(c: &mut Criterion) {
    let (x, y) = regression_data();
    check_equivalence(&x, &y);
    let temp = temp_lang();
    let temp_rust = TempRust { reading: 22.0 };
    let mut g = c.benchmark_group("importance_temperature_10k");
    g.bench_function("lang", |b| {
        b.iter(|| ps::importance_sampling(black_box(&temp), &is_cfg()).unwrap())
    });
    g.bench_function("rust", |b| {
        b.iter(|| ps::importance_sampling(black_box(&temp_rust), &is_cfg()).unwrap())
    });
    g.finish();

    let lr = linreg_lang(&x, &y);
    let lr_rust = LinRegRust {
        x: x.clone(),
        y: y.clone(),
    };
    let mut g = c.benchmark_group("mh_regression_100pt_5k_iter");
    g.sample_size(10);
    g.bench_function("lang", |b| {
        b.iter(|| ps::mcmc(black_box(&lr), &mh_cfg()).unwrap())
    });
    g.bench_function("rust", |b| {
        b.iter(|| ps::mcmc(black_box(&lr_rust), &mh_cfg()).unwrap())
    });
    g.finish();

    let es = eight_lang();
    let mut g = c.benchmark_group("mh_eight_schools_5k_iter");
    g.sample_size(10);
    g.bench_function("lang", |b| {
        b.iter(|| ps::mcmc(black_box(&es), &mh_cfg()).unwrap())
    });
    g.bench_function("rust", |b| {
        b.iter(|| ps::mcmc(black_box(&EightRust), &mh_cfg()).unwrap())
    });
    g.finish();

    let (lx, ly) = logreg_data();
    let (lg, lg_rust) = (logreg_lang(&lx, &ly), LogRegRust { x: lx, y: ly });
    let mut g = c.benchmark_group("mh_logistic_300pt_5k_iter");
    g.sample_size(10);
    g.bench_function("lang", |b| {
        b.iter(|| ps::mcmc(black_box(&lg), &mh_cfg()).unwrap())
    });
    g.bench_function("rust", |b| {
        b.iter(|| ps::mcmc(black_box(&lg_rust), &mh_cfg()).unwrap())
    });
    g.finish();

    let (hg, hy) = hier_data();
    let hi = hier_lang(&hg, &hy);
    let hi_rust = HierRust {
        g: hg,
        y: hy,
        groups: GROUPS,
    };
    let mut g = c.benchmark_group("mh_hierarchical_40x400_5k_iter");
    g.sample_size(10);
    g.bench_function("lang", |b| {
        b.iter(|| ps::mcmc(black_box(&hi), &mh_cfg()).unwrap())
    });
    g.bench_function("rust", |b| {
        b.iter(|| ps::mcmc(black_box(&hi_rust), &mh_cfg()).unwrap())
    });
    g.finish();

    let src = builtin_model("temperature_sensor").unwrap();
    c.bench_function("compile_temperature_sensor", |b| {
        b.iter(|| compile(black_box(src)).unwrap())
    });
}

// ------------------------------------------------------------------ ratio table

/// Median seconds per call over `reps` interleaved rounds of `f` and `g`.
fn paired(reps: usize, mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    let mut a = Vec::with_capacity(reps);
    let mut b = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f();
        a.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        g();
        b.push(t.elapsed().as_secs_f64());
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    (a[reps / 2], b[reps / 2])
}

fn ratio_table() {
    let (x, y) = regression_data();
    let temp = temp_lang();
    let temp_rust = TempRust { reading: 22.0 };
    let lr = linreg_lang(&x, &y);
    let lr_rust = LinRegRust {
        x: x.clone(),
        y: y.clone(),
    };
    let es = eight_lang();
    let (lx, ly) = logreg_data();
    let (lg, lg_rust) = (logreg_lang(&lx, &ly), LogRegRust { x: lx, y: ly });
    let (hg, hy) = hier_data();
    let hi = hier_lang(&hg, &hy);
    let hi_rust = HierRust {
        g: hg,
        y: hy,
        groups: GROUPS,
    };
    eprintln!(
        "\n| benchmark (same algorithm, same seed) | language | Rust API | ratio lang/rust |"
    );
    eprintln!("|---|---|---|---|");
    let rows: [(&str, (f64, f64)); 5] = [
        (
            "importance sampling, temperature, 10k particles",
            paired(
                41,
                || {
                    drop(black_box(
                        ps::importance_sampling(&temp, &is_cfg()).unwrap(),
                    ))
                },
                || {
                    drop(black_box(
                        ps::importance_sampling(&temp_rust, &is_cfg()).unwrap(),
                    ))
                },
            ),
        ),
        (
            "single-site MH, 100-point regression, 5k iterations",
            paired(
                15,
                || drop(black_box(ps::mcmc(&lr, &mh_cfg()).unwrap())),
                || drop(black_box(ps::mcmc(&lr_rust, &mh_cfg()).unwrap())),
            ),
        ),
        (
            "single-site MH, eight schools, 5k iterations",
            paired(
                21,
                || drop(black_box(ps::mcmc(&es, &mh_cfg()).unwrap())),
                || drop(black_box(ps::mcmc(&EightRust, &mh_cfg()).unwrap())),
            ),
        ),
        (
            "single-site MH, 300-point logistic regression, 5k iterations",
            paired(
                11,
                || drop(black_box(ps::mcmc(&lg, &mh_cfg()).unwrap())),
                || drop(black_box(ps::mcmc(&lg_rust, &mh_cfg()).unwrap())),
            ),
        ),
        (
            "single-site MH, hierarchical 40 groups × 400 points, 5k iterations",
            paired(
                11,
                || drop(black_box(ps::mcmc(&hi, &mh_cfg()).unwrap())),
                || drop(black_box(ps::mcmc(&hi_rust, &mh_cfg()).unwrap())),
            ),
        ),
    ];
    for (name, (l, r)) in rows {
        eprintln!(
            "| {name} | {:.2} ms | {:.2} ms | **{:.2}×** |",
            l * 1e3,
            r * 1e3,
            l / r
        );
    }
    let src = builtin_model("temperature_sensor").unwrap();
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(compile(black_box(src)).unwrap());
    }
    let per = t.elapsed().as_secs_f64() / f64::from(n);
    eprintln!(
        "| parse + check + compile, temperature_sensor | {:.2} µs | (fugue: no compile step) | |",
        per * 1e6
    );
}

criterion_group! {
    name = group;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}

/// One workload, for instruction counting: setup runs outside the measured call, so
/// `LANG_PROFILE=lr-lang valgrind --tool=callgrind --toggle-collect='*measured*' <bench binary>`
/// counts only the inference (workloads: temp-lang, temp-rust, lr-lang, lr-rust,
/// es-lang, es-rust, lg-lang, lg-rust, hi-lang, hi-rust).
fn profile_work(which: &str) {
    let (x, y) = regression_data();
    let temp = temp_lang();
    let temp_rust = TempRust { reading: 22.0 };
    let lr = linreg_lang(&x, &y);
    let lr_rust = LinRegRust { x, y };
    let es = eight_lang();
    let (lx, ly) = logreg_data();
    let (lg, lg_rust) = (logreg_lang(&lx, &ly), LogRegRust { x: lx, y: ly });
    let (hg, hy) = hier_data();
    let hi = hier_lang(&hg, &hy);
    let hi_rust = HierRust {
        g: hg,
        y: hy,
        groups: GROUPS,
    };
    match which {
        "temp-lang" => measured(|| ps::importance_sampling(&temp, &is_cfg()).map(drop)),
        "temp-rust" => measured(|| ps::importance_sampling(&temp_rust, &is_cfg()).map(drop)),
        "lr-lang" => measured(|| ps::mcmc(&lr, &mh_cfg()).map(drop)),
        "lr-rust" => measured(|| ps::mcmc(&lr_rust, &mh_cfg()).map(drop)),
        "es-lang" => measured(|| ps::mcmc(&es, &mh_cfg()).map(drop)),
        "es-rust" => measured(|| ps::mcmc(&EightRust, &mh_cfg()).map(drop)),
        "lg-lang" => measured(|| ps::mcmc(&lg, &mh_cfg()).map(drop)),
        "lg-rust" => measured(|| ps::mcmc(&lg_rust, &mh_cfg()).map(drop)),
        "hi-lang" => measured(|| ps::mcmc(&hi, &mh_cfg()).map(drop)),
        "hi-rust" => measured(|| ps::mcmc(&hi_rust, &mh_cfg()).map(drop)),
        _ => panic!("unknown workload {which}"),
    }
}

#[inline(never)]
fn measured(f: impl FnOnce() -> Result<(), ps::InferError>) {
    black_box(f()).unwrap();
}

fn main() {
    if let Ok(which) = std::env::var("LANG_PROFILE") {
        let (x, y) = regression_data();
        check_equivalence(&x, &y);
        profile_work(&which);
        return;
    }
    group();
    Criterion::default().configure_from_args().final_summary();
    ratio_table();
}
