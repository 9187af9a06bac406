//! Structure-changing (trans-dimensional) models and vector-valued sites under inference.

mod common;

use common::*;
use probserve_runtime::*;

/// b ~ Bernoulli(0.5); if b { x ~ N(0,1); y ~ N(x,1) } else { y ~ N(0,1) }, y = 1.
struct Switch;

impl Model for Switch {
    type Output = f64;
    fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
        let b = h.sample(Address::new("b"), &Bernoulli::new(0.5)?)?;
        if b == 1.0 {
            let x = h.sample(Address::new("x"), &Normal::new(0.0, 1.0)?)?;
            h.observe(Address::new("y"), &Normal::new(x, 1.0)?, 1.0)?;
        } else {
            h.observe(Address::new("y"), &Normal::new(0.0, 1.0)?, 1.0)?;
        }
        Ok(b)
    }
}

#[test]
fn structure_changing_model_is_sampled_correctly() {
    let l1 = Normal::new(0.0, 2f64.sqrt()).unwrap().log_prob(1.0).exp();
    let l0 = Normal::new(0.0, 1.0).unwrap().log_prob(1.0).exp();
    let truth = l1 / (l1 + l0);
    let res = mcmc(
        &Switch,
        &McmcConfig {
            chains: 4,
            warmup: 1000,
            draws: 10_000,
            seed: 9,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &res.summaries()[0];
    assert_close("switch MCMC", s.mean, truth, s.mcse_mean);
    let is = importance_sampling(
        &Switch,
        &ImportanceConfig {
            particles: 20_000,
            seed: 9,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &is.summaries()[0];
    assert_close("switch IS", s.mean, truth, s.mcse_mean);
}

/// w ~ Dirichlet(1,1,1); y_i ~ Categorical(w); and x ~ MvNormal(mu, S); y2 ~ MvNormal(x, I).
struct Vectors {
    counts: [usize; 3],
}

impl Model for Vectors {
    type Output = Vec<f64>;
    fn run<H: Handler>(&self, h: &mut H) -> Result<Vec<f64>, ModelError> {
        let mut w = Vec::new();
        h.sample_vector(
            Address::new("w"),
            &VecDist::Dirichlet(Dirichlet::new(&[1.0, 1.0, 1.0])?),
            &mut w,
        )?;
        let cat = Categorical::new(&w)?;
        let mut i = 0;
        for (k, &c) in self.counts.iter().enumerate() {
            for _ in 0..c {
                h.observe(Address::new("y").at(i), &cat, k as f64)?;
                i += 1;
            }
        }
        let mut x = Vec::new();
        h.sample_vector(
            Address::new("x"),
            &MvNormal::new(&[0.0, 0.0], &[1.0, 0.5, 0.5, 1.0])?,
            &mut x,
        )?;
        h.observe_vector(
            Address::new("y2"),
            &MvNormal::new(&x, &[1.0, 0.0, 0.0, 1.0])?,
            &[1.0, -1.0],
        )?;
        Ok(vec![w[0], x[0], x[1]])
    }
}

#[test]
fn vector_sites_dirichlet_and_mvnormal() {
    let m = Vectors { counts: [6, 2, 2] };
    // Dirichlet(7, 3, 3): E[w0] = 7/13. Gaussian: cov = (S^-1 + I)^-1, mean = cov · y.
    let w_truth = 7.0 / 13.0;
    let (s00, s01) = (1.0, 0.5);
    let det = s00 * s00 - s01 * s01;
    let (p00, p01) = (s00 / det + 1.0, -s01 / det);
    let pdet = p00 * p00 - p01 * p01;
    let (c00, c01) = (p00 / pdet, -p01 / pdet);
    let x_truth = [c00 - c01, c01 - c00]; // cov · (1, −1)
    let res = mcmc(
        &m,
        &McmcConfig {
            chains: 4,
            warmup: 1000,
            draws: 5000,
            seed: 12,
            ..Default::default()
        },
    )
    .unwrap();
    let s = res.summaries();
    assert_close("dirichlet MCMC", s[0].mean, w_truth, s[0].mcse_mean);
    assert_close("mvnormal MCMC x0", s[1].mean, x_truth[0], s[1].mcse_mean);
    assert_close("mvnormal MCMC x1", s[2].mean, x_truth[1], s[2].mcse_mean);
    let is = importance_sampling(
        &m,
        &ImportanceConfig {
            particles: 40_000,
            seed: 12,
            ..Default::default()
        },
    )
    .unwrap();
    let s = is.summaries();
    assert_close("dirichlet IS", s[0].mean, w_truth, s[0].mcse_mean);
    assert_close("mvnormal IS", s[1].mean, x_truth[0], s[1].mcse_mean);
}
