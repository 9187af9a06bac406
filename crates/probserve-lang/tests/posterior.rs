//! Posterior checks of compiled models against analytic answers, through the
//! runtime's importance sampling, SMC and MCMC.

use probserve_lang::{BoundModel, InputValue, Inputs, builtin_model, compile};
use probserve_runtime::{
    ImportanceConfig, McmcConfig, Model, OutputSummary, SmcConfig, importance_sampling, mcmc, smc,
};

fn bind(name: &str, inputs: &[(&str, InputValue)]) -> BoundModel {
    let src = builtin_model(name).expect("built-in model");
    let model = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let inputs: Inputs = inputs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    model.bind(&inputs).expect("inputs bind")
}

fn summary<'a>(s: &'a [OutputSummary], name: &str) -> &'a OutputSummary {
    s.iter().find(|x| x.name == name).expect("output present")
}

/// Normal prior N(20, 5²), one reading 22 with sd 1: posterior N(21.923, 25/26).
const TEMP_MEAN: f64 = 20.0 + 25.0 / 26.0 * 2.0;
fn temp_sd() -> f64 {
    (25.0f64 / 26.0).sqrt()
}

#[test]
fn analytic_temperature_value() {
    assert!((TEMP_MEAN - 21.923).abs() < 1e-3);
}

#[test]
fn temperature_importance_sampling() {
    let m = bind("temperature_sensor", &[("reading", InputValue::Real(22.0))]);
    assert_eq!(m.output_labels(), ["temp", "fahrenheit"]);
    let cfg = ImportanceConfig {
        particles: 20_000,
        seed: 11,
        ..Default::default()
    };
    let r = importance_sampling(&m, &cfg).expect("importance sampling");
    let s = r.summaries();
    let temp = summary(&s, "temp");
    let tol = 4.0 * temp_sd() / r.ess.sqrt();
    assert!(
        (temp.mean - TEMP_MEAN).abs() < tol,
        "mean {} vs {TEMP_MEAN} (tol {tol})",
        temp.mean
    );
    assert!((temp.sd - temp_sd()).abs() < 0.05, "sd {}", temp.sd);
    let f = summary(&s, "fahrenheit");
    assert!((f.mean - (TEMP_MEAN * 1.8 + 32.0)).abs() < 1.8 * tol);
}

#[test]
fn temperature_mcmc() {
    let m = bind("temperature_sensor", &[("reading", InputValue::Real(22.0))]);
    let cfg = McmcConfig {
        chains: 2,
        warmup: 1000,
        draws: 5000,
        seed: 5,
        ..Default::default()
    };
    let r = mcmc(&m, &cfg).expect("mcmc");
    let s = r.summaries();
    let temp = summary(&s, "temp");
    let tol = 5.0 * temp.mcse_mean.max(temp_sd() / 5000f64.sqrt());
    assert!(
        (temp.mean - TEMP_MEAN).abs() < tol,
        "mean {} vs {TEMP_MEAN} (tol {tol})",
        temp.mean
    );
    assert!(temp.r_hat.is_some_and(|r| r < 1.05));
}

#[test]
fn beta_binomial_smc() {
    let m = bind(
        "beta_binomial",
        &[
            ("trials", InputValue::Int(200)),
            ("successes", InputValue::Int(30)),
        ],
    );
    let cfg = SmcConfig {
        particles: 4000,
        seed: 3,
        ..Default::default()
    };
    let r = smc(&m, &cfg).expect("smc");
    let p = summary(&r.summaries(), "p").clone();
    // Beta(31, 171): mean 31/202.
    let (a, b) = (31.0f64, 171.0f64);
    let mean = a / (a + b);
    let sd = (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt();
    let tol = 5.0 * sd / r.ess.max(1.0).sqrt() + 0.002;
    assert!(
        (p.mean - mean).abs() < tol,
        "p {} vs {mean} (tol {tol})",
        p.mean
    );
}

#[test]
fn faulty_sensor_mixture_importance() {
    // The design's sketch: the reading is precise only when the sensor is valid.
    let src = "model faulty {
        data reading: real;
        temp ~ normal(20.0, 5.0);
        valid ~ bernoulli(0.95);
        reading ~ normal(temp, valid ? 0.5 : 5.0);
        output temp, valid;
    }";
    let model = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let m = model
        .bind(&Inputs::from([(
            "reading".to_string(),
            InputValue::Real(22.0),
        )]))
        .expect("bind");
    // Analytic: p(valid | y) from the two marginal likelihoods, then the mixture mean.
    let npdf = |x: f64, var: f64| {
        (-(x * x) / (2.0 * var)).exp() / (2.0 * std::f64::consts::PI * var).sqrt()
    };
    let (w1, w0) = (0.95 * npdf(2.0, 25.25), 0.05 * npdf(2.0, 50.0));
    let pv = w1 / (w1 + w0);
    let mean = pv * (20.0 + 25.0 / 25.25 * 2.0) + (1.0 - pv) * (20.0 + 25.0 / 50.0 * 2.0);
    let r = importance_sampling(
        &m,
        &ImportanceConfig {
            particles: 40_000,
            seed: 1,
            ..Default::default()
        },
    )
    .expect("is");
    let s = r.summaries();
    let tol = 4.0 * 5.0 / r.ess.sqrt();
    assert!((summary(&s, "temp").mean - mean).abs() < tol);
    assert!((summary(&s, "valid").mean - pv).abs() < 4.0 / r.ess.sqrt());
}

#[test]
fn linear_regression_known_sigma_mcmc_matches_conjugate_posterior() {
    let src = "model lr {
        data x: real[];
        data y: real[len(x)];
        alpha ~ normal(0.0, 10.0);
        beta ~ normal(0.0, 10.0);
        for i in 0..len(y) { y[i] ~ normal(alpha + beta * x[i], 1.0); }
        output alpha, beta;
    }";
    let x: Vec<f64> = (0..20).map(|i| f64::from(i) / 4.0 - 2.0).collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, x)| 1.0 + 2.0 * x + ((i * 7919 % 13) as f64 / 6.0 - 1.0))
        .collect();
    // Conjugate posterior: precision = XᵀX + I/100, mean = precision⁻¹ Xᵀy.
    let n = x.len() as f64;
    let (sx, sxx) = (x.iter().sum::<f64>(), x.iter().map(|v| v * v).sum::<f64>());
    let (sy, sxy) = (
        y.iter().sum::<f64>(),
        x.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>(),
    );
    let (p11, p12, p22) = (n + 0.01, sx, sxx + 0.01);
    let det = p11 * p22 - p12 * p12;
    let alpha = (p22 * sy - p12 * sxy) / det;
    let beta = (p11 * sxy - p12 * sy) / det;
    let model = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let m = model
        .bind(&Inputs::from([
            ("x".to_string(), InputValue::RealVec(x)),
            ("y".to_string(), InputValue::RealVec(y)),
        ]))
        .expect("bind");
    let r = mcmc(
        &m,
        &McmcConfig {
            chains: 2,
            warmup: 2000,
            draws: 8000,
            seed: 9,
            ..Default::default()
        },
    )
    .expect("mcmc");
    let s = r.summaries();
    let a = summary(&s, "alpha");
    let b = summary(&s, "beta");
    assert!(
        (a.mean - alpha).abs() < 5.0 * a.mcse_mean + 0.01,
        "alpha {} vs {alpha}",
        a.mean
    );
    assert!(
        (b.mean - beta).abs() < 5.0 * b.mcse_mean + 0.01,
        "beta {} vs {beta}",
        b.mean
    );
}

#[test]
fn eight_schools_runs_and_expands_theta() {
    let y = vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
    let sigma = vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];
    let m = bind(
        "eight_schools",
        &[
            ("y", InputValue::RealVec(y)),
            (
                "sigma",
                InputValue::IntVec(vec![15, 10, 16, 11, 9, 11, 10, 18]),
            ),
        ],
    );
    let _ = sigma;
    let labels = m.output_labels();
    assert_eq!(labels.len(), 10);
    assert_eq!(labels[2], "theta[0]");
    assert_eq!(labels[9], "theta[7]");
    assert_eq!(m.output_names(), labels.to_vec());
    let r = mcmc(
        &m,
        &McmcConfig {
            chains: 2,
            warmup: 1000,
            draws: 3000,
            seed: 2,
            ..Default::default()
        },
    )
    .expect("mcmc");
    let s = r.summaries();
    let mu = summary(&s, "mu");
    // Reference posterior mean of mu is about 4.4 (sd about 3.3).
    assert!(
        (mu.mean - 4.4).abs() < 5.0 * mu.mcse_mean + 1.0,
        "mu {}",
        mu.mean
    );
    assert!(summary(&s, "tau").mean > 0.0);
    assert!(s.iter().all(|x| x.mean.is_finite()));
}
