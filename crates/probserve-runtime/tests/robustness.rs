//! Error paths, cancellation, determinism, handlers, combinators and structure-changing models.

mod common;

use common::*;
use probserve_runtime::*;
use std::time::Duration;

/// A model whose behaviour is chosen per test.
struct Faulty {
    mode: u8,
}

impl Model for Faulty {
    type Output = f64;
    fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
        let x = h.sample(Address::new("x"), &Normal::new(0.0, 1.0)?)?;
        match self.mode {
            0 => h.observe(Address::new("y").at(2), &Normal::new(x, 1.0)?, f64::NAN)?,
            1 => h.factor(Address::new("f"), f64::NAN)?,
            2 => {
                h.sample(Address::new("x"), &Normal::new(0.0, 1.0)?)?;
            }
            3 => h.observe(Address::new("y"), &Uniform::new(0.0, 1.0)?, 5.0)?,
            4 => h.factor(
                Address::new("trunc"),
                if x > 0.0 { 0.0 } else { f64::NEG_INFINITY },
            )?,
            5 => Err(ModelError::StepLimit { limit: 10 })?,
            _ => {}
        }
        Ok(x)
    }
}

fn all_algorithms<M: Model + Sync>(m: &M) -> Vec<Result<(), InferError>>
where
    M::Output: Outputs,
{
    vec![
        sample_prior(
            m,
            &PriorConfig {
                draws: 50,
                ..Default::default()
            },
        )
        .map(|_| ()),
        importance_sampling(
            m,
            &ImportanceConfig {
                particles: 50,
                ..Default::default()
            },
        )
        .map(|_| ()),
        smc(
            m,
            &SmcConfig {
                particles: 50,
                ..Default::default()
            },
        )
        .map(|_| ()),
        mcmc(
            m,
            &McmcConfig {
                chains: 2,
                warmup: 10,
                draws: 10,
                ..Default::default()
            },
        )
        .map(|_| ()),
    ]
}

#[test]
fn nan_is_an_error_naming_the_address() {
    for r in all_algorithms(&Faulty { mode: 0 }) {
        match r {
            Err(InferError::Model {
                address: Some(a),
                source: ModelError::NonFinite { .. },
            }) => assert_eq!(a, "y[2]"),
            other => panic!("expected NaN error, got {other:?}"),
        }
    }
    for r in all_algorithms(&Faulty { mode: 1 }) {
        match r {
            Err(InferError::Model {
                address: Some(a),
                source: ModelError::NonFinite { what, .. },
            }) => {
                assert_eq!((a.as_str(), what), ("f", "factor"));
            }
            other => panic!("expected NaN factor error, got {other:?}"),
        }
    }
}

#[test]
fn duplicate_address_is_an_error() {
    for r in all_algorithms(&Faulty { mode: 2 }) {
        assert!(
            matches!(
                r,
                Err(InferError::Model {
                    source: ModelError::DuplicateAddress(_),
                    ..
                })
            ),
            "expected duplicate error, got {r:?}"
        );
    }
}

#[test]
fn model_errors_propagate() {
    for r in all_algorithms(&Faulty { mode: 5 }) {
        assert!(
            matches!(
                r,
                Err(InferError::Model {
                    source: ModelError::StepLimit { limit: 10 },
                    ..
                })
            ),
            "{r:?}"
        );
    }
}

#[test]
fn zero_weight_everywhere_is_an_error() {
    let m = Faulty { mode: 3 };
    let is = importance_sampling(
        &m,
        &ImportanceConfig {
            particles: 100,
            ..Default::default()
        },
    );
    assert_eq!(is.err(), Some(InferError::NoPositiveWeight));
    let s = smc(
        &m,
        &SmcConfig {
            particles: 100,
            ..Default::default()
        },
    );
    assert_eq!(s.err(), Some(InferError::NoPositiveWeight));
    let c = mcmc(
        &m,
        &McmcConfig {
            chains: 1,
            max_init_attempts: 20,
            ..Default::default()
        },
    );
    assert_eq!(
        c.err(),
        Some(InferError::NoValidInitialization { attempts: 20 })
    );
}

#[test]
fn minus_infinity_means_zero_weight() {
    // x ~ N(0, 1) truncated to x > 0 by a −∞ factor: E[x] = sqrt(2/π).
    let truth = (2.0 / std::f64::consts::PI).sqrt();
    let m = Faulty { mode: 4 };
    let is = importance_sampling(
        &m,
        &ImportanceConfig {
            particles: 20_000,
            seed: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        is.draws
            .column(0)
            .iter()
            .zip(&is.weights)
            .all(|(x, w)| *x > 0.0 || *w == 0.0)
    );
    let s = &is.summaries()[0];
    assert_close("truncated IS", s.mean, truth, s.mcse_mean);
    let res = mcmc(
        &m,
        &McmcConfig {
            chains: 4,
            draws: 4000,
            seed: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &res.summaries()[0];
    assert!(s.q05 > 0.0);
    assert_close("truncated MCMC", s.mean, truth, s.mcse_mean);
}

#[test]
fn cancellation_and_deadlines() {
    let m = NormalNormal::example();
    let token = CancelToken::new();
    token.cancel();
    let cfg = McmcConfig {
        cancel: token.clone(),
        ..Default::default()
    };
    assert_eq!(mcmc(&m, &cfg).err(), Some(InferError::Cancelled));
    let cfg = ImportanceConfig {
        cancel: token.clone(),
        ..Default::default()
    };
    assert_eq!(
        importance_sampling(&m, &cfg).err(),
        Some(InferError::Cancelled)
    );
    let cfg = SmcConfig {
        cancel: token,
        ..Default::default()
    };
    assert_eq!(smc(&m, &cfg).err(), Some(InferError::Cancelled));

    // A run that would take hours stops at its deadline.
    let cancel = CancelToken::new().with_timeout(Duration::from_millis(20));
    let cfg = McmcConfig {
        chains: 2,
        warmup: 0,
        draws: usize::MAX / 4,
        cancel,
        ..Default::default()
    };
    assert_eq!(mcmc(&m, &cfg).err(), Some(InferError::DeadlineExceeded));
    let cancel = CancelToken::never().with_timeout(Duration::from_millis(20));
    let cfg = PriorConfig {
        draws: usize::MAX / 4,
        cancel,
        ..Default::default()
    };
    assert_eq!(
        sample_prior(&m, &cfg).err(),
        Some(InferError::DeadlineExceeded)
    );

    // Cancelling from another thread stops a running chain.
    let token = CancelToken::new();
    let t2 = token.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        t2.cancel();
    });
    let cfg = McmcConfig {
        chains: 1,
        warmup: 0,
        draws: usize::MAX / 4,
        cancel: token,
        ..Default::default()
    };
    assert_eq!(mcmc(&m, &cfg).err(), Some(InferError::Cancelled));
    stopper.join().unwrap();
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let m = LinReg::example();
    let run = |threads| {
        let cfg = McmcConfig {
            chains: 4,
            threads,
            warmup: 200,
            draws: 300,
            seed: 77,
            ..Default::default()
        };
        mcmc(&m, &cfg).unwrap()
    };
    let (a, b, c) = (run(1), run(2), run(4));
    for k in 0..4 {
        assert_eq!(a.chains[k].draws, b.chains[k].draws);
        assert_eq!(a.chains[k].draws, c.chains[k].draws);
    }
    assert_ne!(a.chains[0].draws, a.chains[1].draws);
    let other = mcmc(
        &m,
        &McmcConfig {
            chains: 4,
            warmup: 200,
            draws: 300,
            seed: 78,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(a.chains[0].draws, other.chains[0].draws);
    let s1 = smc(
        &m,
        &SmcConfig {
            particles: 300,
            seed: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let s2 = smc(
        &m,
        &SmcConfig {
            particles: 300,
            seed: 3,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s1.draws, s2.draws);
    assert_eq!(s1.log_evidence, s2.log_evidence);
}

#[test]
fn invalid_configs_are_typed_errors() {
    let m = NormalNormal::example();
    assert!(matches!(
        mcmc(
            &m,
            &McmcConfig {
                chains: 0,
                ..Default::default()
            }
        ),
        Err(InferError::InvalidConfig(_))
    ));
    assert!(matches!(
        mcmc(
            &m,
            &McmcConfig {
                thin: 0,
                ..Default::default()
            }
        ),
        Err(InferError::InvalidConfig(_))
    ));
    let cfg = ImportanceConfig {
        particles: 0,
        ..Default::default()
    };
    assert!(matches!(
        importance_sampling(&m, &cfg),
        Err(InferError::InvalidConfig(_))
    ));
    let cfg = SmcConfig {
        ess_threshold: 0.0,
        ..Default::default()
    };
    assert!(matches!(smc(&m, &cfg), Err(InferError::InvalidConfig(_))));
}

#[test]
fn replay_score_and_condition_handlers() {
    let m = NormalNormal::example();
    let mut rng = probserve_runtime::rng::stream_rng(1, 0);
    let mut base = Trace::new();
    let mu = m.run(&mut PriorHandler::new(&mut rng, &mut base)).unwrap();
    assert_eq!(base.records().len(), 1 + m.y.len());

    // Score reproduces the same weights; replay reproduces the value.
    let mut scored = Trace::new();
    assert_eq!(
        m.run(&mut ScoreHandler::new(&base, &mut scored)).unwrap(),
        mu
    );
    assert_eq!(scored, base);
    let mut replayed = Trace::new();
    let mut h = ReplayHandler::new(&base, &mut rng, &mut replayed);
    assert_eq!(m.run(&mut h).unwrap(), mu);
    assert_eq!(h.fresh, 0);

    // Scoring an empty trace names the missing site.
    let mut t = Trace::new();
    let err = m
        .run(&mut ScoreHandler::new(&Trace::new(), &mut t))
        .unwrap_err();
    assert_eq!(err, ModelError::MissingValue(Address::new("mu")));

    // Conditioning turns the latent into an observation.
    let mut cond = Conditions::new();
    cond.insert(Address::new("mu"), 0.5);
    let mut t = Trace::new();
    let out = m
        .run(&mut ConditionHandler::new(
            PriorHandler::new(&mut rng, &mut t),
            &cond,
        ))
        .unwrap();
    assert_eq!(out, 0.5);
    assert_eq!(t.latent_count(), 0);
    let want = Normal::new(m.m0, m.s0).unwrap().log_prob(0.5);
    assert_eq!(t.records()[0].kind, SiteKind::Observed);
    assert!((t.records()[0].log_prob - want).abs() < 1e-12);
    assert!((t.log_prior - 0.0).abs() < 1e-12);
}

#[test]
fn combinator_models_match_struct_models() {
    let nn = NormalNormal::example();
    let y = nn.y.clone();
    let combinator = sample(Address::new("mu"), Normal::new(nn.m0, nn.s0).unwrap())
        .bind(move |mu| {
            let y = y.clone();
            plate(y.len(), move |i| {
                observe(
                    Address::new("y").at_usize(i),
                    Normal::new(mu, 1.0).unwrap(),
                    y[i],
                )
            })
            .map(move |_| mu)
        })
        .named(["mu"]);
    let mut rng = probserve_runtime::rng::stream_rng(3, 0);
    let mut base = Trace::new();
    let mu = combinator
        .run(&mut PriorHandler::new(&mut rng, &mut base))
        .unwrap();
    let mut scored = Trace::new();
    assert_eq!(
        nn.run(&mut ScoreHandler::new(&base, &mut scored)).unwrap(),
        mu
    );
    assert!((scored.log_weight() - base.log_weight()).abs() < 1e-12);
    let is = importance_sampling(
        &combinator,
        &ImportanceConfig {
            particles: 20_000,
            seed: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let s = &is.summaries()[0];
    assert_eq!(s.name, "mu");
    assert_close("combinator IS", s.mean, nn.posterior().0, s.mcse_mean);
    let p = pure(3.0).map(|x: f64| x * 2.0);
    let mut t = Trace::new();
    assert_eq!(
        p.run(&mut PriorHandler::new(&mut rng, &mut t)).unwrap(),
        6.0
    );
    let f = factor(Address::new("f"), -1.5);
    f.run(&mut PriorHandler::new(&mut rng, &mut t)).unwrap();
    assert_eq!(t.log_factor, -1.5);
}

/// A program with interned (non-'static) site names.
struct Interned {
    names: Vec<String>,
}

impl Model for Interned {
    type Output = Vec<f64>;
    fn run<H: Handler>(&self, h: &mut H) -> Result<Vec<f64>, ModelError> {
        let z = h.sample(
            Address::site(SiteId(0)).at(3),
            &Dist::Normal(Normal::new(0.0, 1.0)?),
        )?;
        h.observe(
            Address::site(SiteId(1)).at(0).at(1),
            &Dist::Normal(Normal::new(z, 1.0)?),
            f64::NAN,
        )?;
        Ok(vec![z])
    }
    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.names.get(id.0 as usize).map(String::as_str)
    }
    fn output_names(&self) -> Vec<String> {
        vec!["z".into()]
    }
}

#[test]
fn interned_names_are_resolved_in_errors() {
    let m = Interned {
        names: vec!["group/z".into(), "obs".into()],
    };
    let err = importance_sampling(&m, &ImportanceConfig::default()).unwrap_err();
    assert!(
        matches!(&err, InferError::Model { address: Some(a), .. } if a == "obs[0][1]"),
        "{err:?}"
    );
    assert!(err.to_string().contains("obs[0][1]"));
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Dist>();
    check::<VecDist>();
    check::<Trace>();
    check::<TracePool>();
    check::<CancelToken>();
    check::<McmcConfig>();
    check::<SmcConfig>();
    check::<ImportanceConfig>();
    check::<PriorConfig>();
    check::<McmcResult>();
    check::<SmcResult>();
    check::<ImportanceResult>();
    check::<InferError>();
    check::<ModelError>();
    check::<NormalNormal>();
}

/// Tiny success probabilities sample in bounded time (rand_distr's geometric sampler
/// loops forever below p ≈ 1e-16), and the sampler has the right mean elsewhere.
#[test]
fn geometric_samples_at_tiny_p_and_has_the_right_mean() {
    use probserve_runtime::{Geometric, ScalarDist};
    let mut rng = probserve_runtime::rng::stream_rng(11, 0);
    for p in [1e-17, 1e-300, f64::MIN_POSITIVE] {
        let g = Geometric::new(p).expect("valid p");
        let k = g.sample(&mut rng);
        assert!(
            k.is_finite() && k >= 0.0 && k.fract() == 0.0,
            "p = {p}: {k}"
        );
    }
    assert_eq!(Geometric::new(1.0).expect("p = 1").sample(&mut rng), 0.0);
    // Mean (1 − p)/p, variance (1 − p)/p²: 4·MCSE bound from 200k draws.
    for p in [0.05, 0.3, 0.9] {
        let g = Geometric::new(p).expect("valid p");
        let n = 200_000;
        let mean = (0..n).map(|_| g.sample(&mut rng)).sum::<f64>() / f64::from(n);
        let (want, var) = ((1.0 - p) / p, (1.0 - p) / (p * p));
        let mcse = (var / f64::from(n)).sqrt();
        assert!(
            (mean - want).abs() < 4.0 * mcse,
            "p = {p}: mean {mean}, want {want} ± {mcse}"
        );
    }
}

/// The negative binomial's log-mass stays exact where `ln Γ(r)` alone overflows or
/// two huge log-gammas would cancel: `k = 0` is `r ln p` (here −∞), and for large `r`
/// the mass matches the Poisson limit it tends to.
#[test]
fn negative_binomial_log_mass_for_huge_r() {
    use probserve_runtime::{NegativeBinomial, Poisson, ScalarDist};
    let nb = NegativeBinomial::new(3.946e306, 4.6e-49).expect("valid");
    assert_eq!(nb.log_prob(0.0), f64::NEG_INFINITY);
    assert!(!nb.log_prob(7.0).is_nan());
    // With r = 1e12 and mean λ = r(1 − p)/p ≈ 5 it is Poisson(λ) up to O(λ²/r); the
    // difference of two log-gammas near 2.6e13 would have lost about 1e-3 here.
    let r = 1e12;
    let p = r / (r + 5.0);
    let lambda = r * (1.0 - p) / p;
    let nb = NegativeBinomial::new(r, p).expect("valid");
    let po = Poisson::new(lambda).expect("valid");
    for k in [0.0, 1.0, 5.0, 20.0] {
        let (a, b) = (nb.log_prob(k), po.log_prob(k));
        assert!((a - b).abs() < 1e-9, "k = {k}: {a} vs {b}");
    }
}
