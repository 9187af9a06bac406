//! Simulation-based calibration (Talts et al. 2018): draw a truth from the prior, simulate data,
//! run inference, record the rank of the truth among posterior draws; ranks must be uniform.
//! Checked by a chi-square test on 10 bins with a fixed seed (critical value at p = 0.001).

mod common;

use common::*;
use probserve_runtime::*;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Posterior draws per replicate (ranks 0..=99 fall into 10 equal bins).
const L: usize = 99;
const BINS: usize = 10;
/// Chi-square critical value, 9 degrees of freedom, p = 0.001.
const CHI2_CRIT: f64 = 27.877;

fn chi_square(ranks: &[usize]) -> f64 {
    let mut counts = [0usize; BINS];
    for &r in ranks {
        counts[(r * BINS / (L + 1)).min(BINS - 1)] += 1;
    }
    let e = ranks.len() as f64 / BINS as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - e) * (c as f64 - e) / e)
        .sum()
}

fn rank(truth: f64, draws: &[f64]) -> usize {
    draws.iter().filter(|&&d| d < truth).count()
}

/// `L` draws resampled (multinomially) from weighted particles.
fn resample<R: Rng>(rng: &mut R, values: &[f64], weights: &[f64]) -> Vec<f64> {
    (0..L)
        .map(|_| {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            for (v, w) in values.iter().zip(weights) {
                acc += w;
                if u < acc {
                    return *v;
                }
            }
            values[values.len() - 1]
        })
        .collect()
}

/// Normal–normal with MCMC; `prior_sd_used` ≠ 1 gives a deliberately miscalibrated inference.
fn normal_normal_mcmc_ranks(prior_sd_used: f64, reps: usize) -> Vec<usize> {
    let mut rng = probserve_runtime::rng::stream_rng(2024, 0);
    (0..reps)
        .map(|r| {
            let mu: f64 = StandardNormal.sample(&mut rng);
            let y: Vec<f64> = (0..5)
                .map(|_| mu + Distribution::<f64>::sample(&StandardNormal, &mut rng))
                .collect();
            let model = NormalNormal {
                m0: 0.0,
                s0: prior_sd_used,
                sigma: 1.0,
                y,
            };
            let cfg = McmcConfig {
                chains: 1,
                warmup: 300,
                draws: L,
                thin: 10,
                seed: r as u64,
                ..Default::default()
            };
            let res = mcmc(&model, &cfg).unwrap();
            rank(mu, &res.chains[0].draws.column(0))
        })
        .collect()
}

#[test]
fn sbc_normal_normal_mcmc() {
    let chi2 = chi_square(&normal_normal_mcmc_ranks(1.0, 400));
    assert!(chi2 < CHI2_CRIT, "chi-square {chi2}");
}

#[test]
fn sbc_detects_a_miscalibrated_posterior() {
    // Inference with the wrong prior (sd 0.3 instead of 1): ranks pile up at the ends.
    let chi2 = chi_square(&normal_normal_mcmc_ranks(0.3, 400));
    assert!(chi2 > CHI2_CRIT, "chi-square {chi2} should reject");
}

#[test]
fn sbc_beta_bernoulli_importance_sampling() {
    let mut rng = probserve_runtime::rng::stream_rng(7, 0);
    let ranks: Vec<usize> = (0..400)
        .map(|r| {
            let p = Beta::new(2.0, 2.0).unwrap().sample(&mut rng);
            let y: Vec<f64> = (0..8)
                .map(|_| if rng.random::<f64>() < p { 1.0 } else { 0.0 })
                .collect();
            let model = BetaBernoulli { a: 2.0, b: 2.0, y };
            let res = importance_sampling(
                &model,
                &ImportanceConfig {
                    particles: 3000,
                    seed: r,
                    ..Default::default()
                },
            )
            .unwrap();
            rank(p, &resample(&mut rng, &res.draws.column(0), &res.weights))
        })
        .collect();
    let chi2 = chi_square(&ranks);
    assert!(chi2 < CHI2_CRIT, "chi-square {chi2}");
}

#[test]
fn sbc_gamma_poisson_smc() {
    let mut rng = probserve_runtime::rng::stream_rng(11, 0);
    let ranks: Vec<usize> = (0..300)
        .map(|r| {
            let lambda = Gamma::new(2.0, 1.0).unwrap().sample(&mut rng);
            let pois = Poisson::new(lambda.max(1e-12)).unwrap();
            let y: Vec<f64> = (0..6).map(|_| pois.sample(&mut rng)).collect();
            let model = GammaPoisson {
                alpha: 2.0,
                beta: 1.0,
                y,
            };
            let res = smc(
                &model,
                &SmcConfig {
                    particles: 1000,
                    seed: r,
                    ..Default::default()
                },
            )
            .unwrap();
            rank(
                lambda,
                &resample(&mut rng, &res.draws.column(0), &res.weights),
            )
        })
        .collect();
    let chi2 = chi_square(&ranks);
    assert!(chi2 < CHI2_CRIT, "chi-square {chi2}");
}
