//! Every algorithm against analytic posteriors, with tolerances from the Monte Carlo error.

mod common;

use common::*;
use probserve_runtime::*;

fn check_posterior<M>(name: &str, model: &M, means: &[f64], sds: &[f64])
where
    M: Model + Sync,
    M::Output: Outputs,
{
    // Importance sampling: MCSE from the self-normalized (delta-method) standard error.
    let is = importance_sampling(
        model,
        &ImportanceConfig {
            particles: 40_000,
            seed: 11,
            ..Default::default()
        },
    )
    .unwrap();
    for (j, s) in is.summaries().iter().enumerate() {
        assert_close(
            &format!("{name} IS {}", s.name),
            s.mean,
            means[j],
            s.mcse_mean,
        );
        assert!(
            (s.sd / sds[j] - 1.0).abs() < 0.1,
            "{name} IS sd {} vs {}",
            s.sd,
            sds[j]
        );
    }

    // SMC: resampling correlates particles, so the MCSE comes from independent replicates.
    let reps = 10;
    let mut est = vec![Vec::new(); means.len()];
    for r in 0..reps {
        let cfg = SmcConfig {
            particles: 2000,
            seed: 100 + r,
            ..Default::default()
        };
        let res = smc(model, &cfg).unwrap();
        for (j, s) in res.summaries().iter().enumerate() {
            est[j].push(s.mean);
            assert!(
                (s.sd / sds[j] - 1.0).abs() < 0.2,
                "{name} SMC sd {} vs {}",
                s.sd,
                sds[j]
            );
        }
    }
    for (j, e) in est.iter().enumerate() {
        let m = e.iter().sum::<f64>() / reps as f64;
        let sd = (e.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (reps as f64 - 1.0)).sqrt();
        assert_close(
            &format!("{name} SMC [{j}]"),
            m,
            means[j],
            sd / (reps as f64).sqrt(),
        );
    }

    // MCMC: MCSE from the multi-chain ESS; also R-hat and ESS sanity.
    let cfg = McmcConfig {
        chains: 4,
        warmup: 1000,
        draws: 5000,
        seed: 5,
        ..Default::default()
    };
    let res = mcmc(model, &cfg).unwrap();
    for (j, s) in res.summaries().iter().enumerate() {
        assert_close(
            &format!("{name} MCMC {}", s.name),
            s.mean,
            means[j],
            s.mcse_mean,
        );
        assert!(
            (s.sd / sds[j] - 1.0).abs() < 0.1,
            "{name} MCMC sd {} vs {}",
            s.sd,
            sds[j]
        );
        let rhat = s.r_hat.unwrap();
        assert!(rhat < 1.02, "{name} rhat {rhat}");
        assert!(
            s.ess_bulk > 400.0 && s.ess_tail > 200.0,
            "{name} ess {} {}",
            s.ess_bulk,
            s.ess_tail
        );
        assert!(s.q05 < means[j] && means[j] < s.q95);
        assert!(s.hdi_low < means[j] && means[j] < s.hdi_high);
    }
    let acc = res.acceptance_rate();
    assert!(acc > 0.15 && acc < 0.8, "{name} acceptance {acc}");
}

#[test]
fn normal_normal_all_algorithms() {
    let m = NormalNormal::example();
    let (mean, sd) = m.posterior();
    check_posterior("normal-normal", &m, &[mean], &[sd]);
}

#[test]
fn beta_bernoulli_all_algorithms() {
    let m = BetaBernoulli::example();
    let (mean, sd) = m.posterior();
    check_posterior("beta-bernoulli", &m, &[mean], &[sd]);
}

#[test]
fn gamma_poisson_all_algorithms() {
    let m = GammaPoisson::example();
    let (mean, sd) = m.posterior();
    check_posterior("gamma-poisson", &m, &[mean], &[sd]);
}

#[test]
fn linear_regression_all_algorithms() {
    let m = LinReg::example();
    let (means, sds) = m.posterior();
    check_posterior("linreg", &m, &means, &sds);
}

#[test]
fn prior_sampling_matches_prior_moments() {
    let m = NormalNormal::example();
    let res = sample_prior(
        &m,
        &PriorConfig {
            draws: 20_000,
            seed: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &res.summaries()[0];
    assert_close("prior mu", s.mean, m.m0, s.mcse_mean);
    assert!((s.sd / m.s0 - 1.0).abs() < 0.03);
    assert!(res.pool.hit_ratio() > 0.99);

    let g = GammaPoisson::example();
    let res = sample_prior(
        &g,
        &PriorConfig {
            draws: 20_000,
            seed: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &res.summaries()[0];
    assert_close("prior lambda", s.mean, g.alpha / g.beta, s.mcse_mean);

    // Prior predictive: y_i ~ N(m0, sqrt(s0² + sigma²)).
    let pp = sample_prior_predictive(
        &m,
        &PriorConfig {
            draws: 20_000,
            seed: 5,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(pp.observations.width, m.y.len());
    assert_eq!(pp.observations.names[3], "y[3]");
    let o = &pp.observation_summaries()[3];
    assert_close("prior predictive y[3]", o.mean, m.m0, o.mcse_mean);
    let want = (m.s0 * m.s0 + m.sigma * m.sigma).sqrt();
    assert!((o.sd / want - 1.0).abs() < 0.03);
}

#[test]
fn log_marginal_likelihood_estimates() {
    let model = NormalNormal::example();
    let truth = model.log_marginal();
    let is = importance_sampling(
        &model,
        &ImportanceConfig {
            particles: 40_000,
            seed: 9,
            ..Default::default()
        },
    )
    .unwrap();
    // The relative variance of the IS evidence estimate is about 1/ESS - 1/N.
    let se = (1.0 / is.ess).sqrt();
    assert!(
        (is.log_marginal_likelihood - truth).abs() < 4.0 * se,
        "IS logZ {} vs {truth}",
        is.log_marginal_likelihood
    );
    let reps: Vec<f64> = (0..8)
        .map(|r| {
            smc(
                &model,
                &SmcConfig {
                    particles: 2000,
                    seed: 40 + r,
                    ..Default::default()
                },
            )
            .unwrap()
            .log_evidence
        })
        .collect();
    let m = reps.iter().sum::<f64>() / 8.0;
    let sd = (reps.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 7.0).sqrt();
    // Small slack for the (downward) Jensen bias of a log of an unbiased estimate.
    assert!(
        (m - truth).abs() < 4.0 * sd / 8f64.sqrt() + 0.02,
        "SMC logZ {m} vs {truth} (sd {sd})"
    );

    let bb = BetaBernoulli::example();
    let is = importance_sampling(
        &bb,
        &ImportanceConfig {
            particles: 40_000,
            seed: 9,
            ..Default::default()
        },
    )
    .unwrap();
    assert!((is.log_marginal_likelihood - bb.log_marginal()).abs() < 4.0 / is.ess.sqrt());
}
