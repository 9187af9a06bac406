//! Side-by-side benchmark of probserve-runtime against fugue-ppl 0.2.4 on identical models and
//! algorithms, in one run: (a) prior sampling, (b) importance sampling, (c) adaptive single-site
//! MH on a 100-point regression (ESS/s), (d) tempered SMC. Prints a table with ratios.
//!
//! Run: `cargo bench -p probserve-runtime --bench vs_fugue` (about two minutes).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use probserve_runtime as ps;
use probserve_runtime::diagnostics::ess_bulk;

// ---------------------------------------------------------------- our models

/// temp ~ normal(20, 5); valid ~ bernoulli(0.95); observe 22.0 ~ normal(temp, 1).
struct TempSensor;

impl ps::Model for TempSensor {
    type Output = (f64, bool);
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<(f64, bool), ps::ModelError> {
        let temp = h.sample(ps::Address::new("temp"), &ps::Normal::new(20.0, 5.0)?)?;
        let valid = h.sample_bool(ps::Address::new("valid"), &ps::Bernoulli::new(0.95)?)?;
        h.observe(
            ps::Address::new("reading"),
            &ps::Normal::new(temp, 1.0)?,
            22.0,
        )?;
        Ok((temp, valid))
    }
}

/// a, b ~ normal(0, 10); sigma ~ exponential(1); y_i ~ normal(a + b x_i, sigma), 100 points.
struct LinReg {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl ps::Model for LinReg {
    type Output = (f64, f64, f64);
    #[inline]
    fn run<H: ps::Handler>(&self, h: &mut H) -> Result<(f64, f64, f64), ps::ModelError> {
        let prior = ps::Normal::new(0.0, 10.0)?;
        let a = h.sample(ps::Address::new("a"), &prior)?;
        let b = h.sample(ps::Address::new("b"), &prior)?;
        let sigma = h.sample(ps::Address::new("sigma"), &ps::Exponential::new(1.0)?)?;
        let noise = ps::Normal::new(0.0, sigma)?;
        for (i, (&x, &y)) in self.x.iter().zip(&self.y).enumerate() {
            h.observe(
                ps::Address::new("y").at_usize(i),
                &noise.with_mean(a + b * x)?,
                y,
            )?;
        }
        Ok((a, b, sigma))
    }
}

// ---------------------------------------------------------------- fugue's models

mod fg {
    use fugue::{
        Bernoulli, Exponential, Model, ModelExt, Normal, addr, observe, sample, sequence_vec,
    };
    use std::sync::Arc;

    pub fn temp_sensor() -> Model<(f64, bool)> {
        sample(addr!("temp"), Normal::new(20.0, 5.0).unwrap()).bind(|temp| {
            sample(addr!("valid"), Bernoulli::new(0.95).unwrap()).bind(move |valid| {
                observe(addr!("reading"), Normal::new(temp, 1.0).unwrap(), 22.0)
                    .map(move |_| (temp, valid))
            })
        })
    }

    pub fn linreg(data: Arc<Vec<(f64, f64)>>) -> Model<(f64, f64, f64)> {
        sample(addr!("a"), Normal::new(0.0, 10.0).unwrap()).bind(move |a| {
            let data = data.clone();
            sample(addr!("b"), Normal::new(0.0, 10.0).unwrap()).bind(move |b| {
                let data = data.clone();
                sample(addr!("sigma"), Exponential::new(1.0).unwrap()).bind(move |sigma| {
                    let obs: Vec<Model<()>> = data
                        .iter()
                        .enumerate()
                        .map(|(i, &(x, y))| {
                            observe(addr!("y", i), Normal::new(a + b * x, sigma).unwrap(), y)
                        })
                        .collect();
                    sequence_vec(obs).map(move |_| (a, b, sigma))
                })
            })
        })
    }
}

// ---------------------------------------------------------------- timing helpers

/// Median nanoseconds per call of `f` over `rounds` batches of about `batch_time` each.
fn calibrate(f: &mut dyn FnMut(), batch_time: Duration) -> u64 {
    let mut n = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() >= batch_time / 4 || n >= 1 << 30 {
            let per = t.elapsed().as_secs_f64() / n as f64;
            return ((batch_time.as_secs_f64() / per).ceil() as u64).max(1);
        }
        n *= 2;
    }
}

fn batch(f: &mut dyn FnMut(), n: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Interleaved rounds of fugue and ours; returns median ns per call of each.
fn compare(fugue: &mut dyn FnMut(), ours: &mut dyn FnMut(), rounds: usize) -> (f64, f64) {
    let bt = Duration::from_millis(60);
    let (nf, no) = (calibrate(fugue, bt), calibrate(ours, bt));
    let (mut tf, mut to) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        tf.push(batch(fugue, nf));
        to.push(batch(ours, no));
    }
    (median(tf), median(to))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() {
    use rand08::SeedableRng as _;
    let rounds = 15;
    println!("probserve-runtime vs fugue-ppl 0.2.4 — identical models and algorithms, one run\n");
    println!("| benchmark | fugue-ppl | probserve-runtime | ratio (fugue / ours) |");
    println!("|---|---|---|---|");

    // (a) prior sampling: one run producing a trace.
    let mut frng = rand08::rngs::StdRng::seed_from_u64(1);
    let mut orng = ps::rng::stream_rng(1, 0);
    let mut trace = ps::Trace::new();
    let (f_a, o_a) = compare(
        &mut || {
            let (out, t) = fugue::runtime::handler::run(
                fugue::PriorHandler {
                    rng: &mut frng,
                    trace: fugue::Trace::default(),
                },
                fg::temp_sensor(),
            );
            black_box((out, t));
        },
        &mut || {
            trace.clear();
            let out = ps::Model::run(
                &TempSensor,
                &mut ps::PriorHandler::new(&mut orng, &mut trace),
            )
            .unwrap();
            trace.check_unique().unwrap();
            black_box((out, &trace));
        },
        rounds,
    );
    println!(
        "| (a) prior sampling, temperature sensor (per run) | {} | {} | **{:.1}×** |",
        fmt_ns(f_a),
        fmt_ns(o_a),
        f_a / o_a
    );

    // (a') the same through our batch API (1,000 draws with outputs and pool).
    let mut seed = 0;
    let (_, o_a2) = compare(
        &mut || {},
        &mut || {
            seed += 1;
            let cfg = ps::PriorConfig {
                draws: 1000,
                seed,
                ..Default::default()
            };
            black_box(ps::sample_prior(&TempSensor, &cfg).unwrap());
        },
        5,
    );
    println!(
        "| (a') ours via `sample_prior` API, per draw (1,000-draw batches) | – | {} | **{:.1}×** |",
        fmt_ns(o_a2 / 1000.0),
        f_a / (o_a2 / 1000.0)
    );

    // (b) 1,000-particle importance sampling.
    let mut frng = rand08::rngs::StdRng::seed_from_u64(2);
    let mut seed = 0;
    let (f_b, o_b) = compare(
        &mut || {
            black_box(fugue::smc_prior_particles(&mut frng, 1000, fg::temp_sensor));
        },
        &mut || {
            seed += 1;
            let cfg = ps::ImportanceConfig {
                particles: 1000,
                seed,
                ..Default::default()
            };
            black_box(ps::importance_sampling(&TempSensor, &cfg).unwrap());
        },
        rounds,
    );
    println!(
        "| (b) importance sampling, 1,000 particles | {} | {} | **{:.1}×** |",
        fmt_ns(f_b),
        fmt_ns(o_b),
        f_b / o_b
    );

    // (d) 1,000-particle tempered SMC, systematic resampling, ESS threshold 0.5, 1 rejuvenation move.
    let mut frng = rand08::rngs::StdRng::seed_from_u64(3);
    let mut seed = 0;
    let (f_d, o_d) = compare(
        &mut || {
            let cfg = fugue::SMCConfig {
                resampling_method: fugue::ResamplingMethod::Systematic,
                ess_threshold: 0.5,
                rejuvenation_steps: 1,
            };
            black_box(fugue::adaptive_smc(&mut frng, 1000, fg::temp_sensor, cfg));
        },
        &mut || {
            seed += 1;
            let cfg = ps::SmcConfig {
                particles: 1000,
                ess_threshold: 0.5,
                rejuvenation_steps: 1,
                seed,
                ..Default::default()
            };
            black_box(ps::smc(&TempSensor, &cfg).unwrap());
        },
        rounds,
    );
    println!(
        "| (d) SMC, 1,000 particles, 1 rejuvenation move | {} | {} | **{:.1}×** |",
        fmt_ns(f_d),
        fmt_ns(o_d),
        f_d / o_d
    );

    // (c) adaptive single-site MH, 1,000 warm-up + 4,000 kept = 5,000 iterations, one chain each.
    let mut r = ps::rng::stream_rng(42, 0);
    let x: Vec<f64> = (0..100).map(|i| -2.0 + 4.0 * f64::from(i) / 99.0).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|&x| {
            1.0 + 2.0 * x + 0.5 * rand::Rng::sample::<f64, _>(&mut r, rand_distr::StandardNormal)
        })
        .collect();
    let ours = LinReg {
        x: x.clone(),
        y: y.clone(),
    };
    let data = Arc::new(x.iter().copied().zip(y.iter().copied()).collect::<Vec<_>>());
    let reps = 6u64;
    let (mut f_time, mut f_ess, mut o_time, mut o_ess) = (0.0, 0.0, 0.0, 0.0);
    let min_ess = |cols: [&[f64]; 3]| {
        cols.iter()
            .map(|c| ess_bulk(&[c]))
            .fold(f64::INFINITY, f64::min)
    };
    for rep in 0..reps {
        let mut frng = rand08::rngs::StdRng::seed_from_u64(100 + rep);
        let d = data.clone();
        let t = Instant::now();
        let chain = fugue::adaptive_mcmc_chain(&mut frng, || fg::linreg(d.clone()), 4000, 1000);
        f_time += t.elapsed().as_secs_f64();
        let cols: Vec<Vec<f64>> = vec![
            chain.iter().map(|c| c.0.0).collect(),
            chain.iter().map(|c| c.0.1).collect(),
            chain.iter().map(|c| c.0.2).collect(),
        ];
        f_ess += min_ess([&cols[0], &cols[1], &cols[2]]);

        let cfg = ps::McmcConfig {
            chains: 1,
            threads: 1,
            warmup: 1000,
            draws: 4000,
            seed: 100 + rep,
            ..Default::default()
        };
        let t = Instant::now();
        let res = ps::mcmc(&ours, &cfg).unwrap();
        o_time += t.elapsed().as_secs_f64();
        let cols: Vec<Vec<f64>> = (0..3).map(|j| res.chains[0].draws.column(j)).collect();
        o_ess += min_ess([&cols[0], &cols[1], &cols[2]]);
    }
    let iters = 5000.0 * reps as f64;
    let (f_its, o_its) = (iters / f_time, iters / o_time);
    let (f_esss, o_esss) = (f_ess / f_time, o_ess / o_time);
    println!(
        "| (c) MH, 100-point regression: iterations/s | {:.0} it/s | {:.0} it/s | **{:.1}×** |",
        f_its,
        o_its,
        o_its / f_its
    );
    println!(
        "| (c) MH: min bulk ESS (mean of {reps} chains of 4,000 kept draws) | {:.0} | {:.0} | {:.2}× |",
        f_ess / reps as f64,
        o_ess / reps as f64,
        o_ess / f_ess
    );
    println!(
        "| (c) MH: **ESS/s** (min bulk ESS over a, b, sigma / wall time) | {:.0} /s | {:.0} /s | **{:.1}×** |",
        f_esss,
        o_esss,
        o_esss / f_esss
    );

    // Extra: our default multi-chain run (4 chains on all cores), aggregate ESS/s.
    let cfg = ps::McmcConfig {
        chains: 4,
        warmup: 1000,
        draws: 4000,
        seed: 7,
        ..Default::default()
    };
    let t = Instant::now();
    let res = ps::mcmc(&ours, &cfg).unwrap();
    let el = t.elapsed().as_secs_f64();
    let m = res
        .summaries()
        .iter()
        .map(|s| s.ess_bulk)
        .fold(f64::INFINITY, f64::min);
    println!(
        "| (c') ours, 4 chains in parallel threads: ESS/s (min bulk ESS across chains) | – | {:.0} /s | {:.1}× |",
        m / el,
        m / el / f_esss
    );

    println!(
        "\nTargets (≥ 3×): (a) {:.1}×, (b) {:.1}×, (c) ESS/s {:.1}×, (d) {:.1}×",
        f_a / o_a,
        f_b / o_b,
        o_esss / f_esss,
        f_d / o_d
    );
}
