//! Fused observation loops (`for i in .. { y[i] ~ normal(mean, scale); }`) must give
//! exactly what the unfused loop gives: the same draws bit for bit, the same errors,
//! the same step accounting. The unfused twin wraps the observation in an `if`.

use probserve_lang::{BoundModel, InputValue, Inputs, compile};
use probserve_runtime::{
    McmcConfig, Model, ModelError, PriorHandler, Trace, mcmc, rng::stream_rng,
};

fn bound(src: &str, x: &[f64], y: &[f64]) -> BoundModel {
    let m = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let inputs: Inputs = [
        ("x".to_string(), InputValue::RealVec(x.to_vec())),
        ("y".to_string(), InputValue::RealVec(y.to_vec())),
        ("s0".to_string(), InputValue::Real(0.7)),
    ]
    .into_iter()
    .collect();
    m.bind(&inputs).unwrap_or_else(|e| panic!("{e:?}"))
}

fn bind_inputs(src: &str, inputs: &Inputs) -> BoundModel {
    compile(src)
        .unwrap_or_else(|d| panic!("{d}"))
        .bind(inputs)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// The model with `obs` as the loop body, fused and unfused.
fn twins(lo: &str, obs: &str) -> (String, String) {
    let make = |body: String| {
        format!(
            "model m {{ data x: real[]; data y: real[]; data s0: real;
  a ~ normal(0.0, 2.0); b ~ normal(0.0, 2.0); s ~ exponential(1.0);
  for i in {lo}..len(y) {{ {body} }}
  output a, b, s; }}"
        )
    };
    (
        make(obs.to_string()),
        make(format!("if s0 > 0.0 {{ {obs} }}")),
    )
}

fn mh(m: &BoundModel) -> Vec<f64> {
    let cfg = McmcConfig {
        chains: 1,
        threads: 1,
        warmup: 200,
        draws: 300,
        seed: 5,
        ..Default::default()
    };
    mcmc(m, &cfg).unwrap().chains[0].draws.values.clone()
}

fn run_once(m: &BoundModel) -> Result<Vec<f64>, ModelError> {
    let mut rng = stream_rng(3, 0);
    let mut trace = Trace::new();
    m.run(&mut PriorHandler::new(&mut rng, &mut trace))
        .map(|d| d.values().to_vec())
}

fn data(n: usize) -> (Vec<f64>, Vec<f64>) {
    let x: Vec<f64> = (0..n).map(|i| i as f64 / 7.0 - 1.0).collect();
    let y = x
        .iter()
        .map(|v| 0.3 + 1.2 * v + (v * 13.0).sin() * 0.2)
        .collect();
    (x, y)
}

#[test]
fn fused_loops_give_identical_draws() {
    let (x, y) = data(40);
    for obs in [
        "y[i] ~ normal(a + b * x[i], s);",
        "y[i] ~ normal(x[i] * b + a, s);",
        "y[i] ~ normal(b * x[i] + 1.5, s0);",
        "y[i] ~ normal(a + b * x[i] * x[i], s + 0.1);",
        "y[i] ~ normal(a, 1.0);",
    ] {
        let (fused, plain) = twins("0", obs);
        let (f, p) = (bound(&fused, &x, &y), bound(&plain, &x, &y));
        assert_eq!(mh(&f), mh(&p), "{obs}");
    }
}

#[test]
fn fused_loops_report_the_same_errors() {
    let (x, y) = data(10);
    for (lo, obs, xn) in [
        // x shorter than y: an index error at x[5].
        ("0", "y[i] ~ normal(a + b * x[i], s);", 5),
        // A negative loop start: an index error at y[-1].
        ("-1", "y[i] ~ normal(a + b * x[i], s);", 10),
        // An invalid scale.
        ("0", "y[i] ~ normal(a + b * x[i], 0.0 - s);", 10),
        ("0", "y[i] ~ normal(a, s0 - 1.0);", 10),
    ] {
        let (fused, plain) = twins(lo, obs);
        let (f, p) = (bound(&fused, &x[..xn], &y), bound(&plain, &x[..xn], &y));
        let (ef, ep) = (run_once(&f), run_once(&p));
        assert!(ef.is_err(), "{obs}");
        assert_eq!(ef, ep, "{obs}");
    }
}

#[test]
fn fused_loops_count_steps_and_stop() {
    // 2 top-level statements + 10 iterations × (1 + 1 body statement) = 22 steps.
    let src = "model m { data y: real[]; for i in 0..len(y) { y[i] ~ normal(0.0, 1.0); }
      let c = 2.0; output c; }";
    let m = compile(src).unwrap();
    let bind = |n: usize| {
        m.bind(&Inputs::from([(
            "y".to_string(),
            InputValue::RealVec(vec![0.5; n]),
        )]))
        .unwrap()
    };
    assert!(run_once(&bind(10).with_step_limit(22)).is_ok());
    assert!(run_once(&bind(10).with_step_limit(21)).is_err());
    let big = bind(200_000).with_step_limit(1000);
    assert_eq!(
        run_once(&big).unwrap_err(),
        ModelError::StepLimit { limit: 1000 }
    );
}

/// Logistic and Poisson regression loops fuse too: the same draws and errors as the
/// loop they replace (observing bool and count data).
#[test]
fn glm_loops_give_identical_draws_and_errors() {
    let make = |ty: &str, body: &str| {
        format!(
            "model m {{ data x: real[]; data y: {ty}[]; data s0: real;
  a ~ normal(0.0, 1.0); b ~ normal(0.0, 1.0);
  for i in 0..len(y) {{ {body} }}
  output a, b; }}"
        )
    };
    let x: Vec<f64> = (0..60).map(|i| f64::from(i) / 20.0 - 1.5).collect();
    let bools: Vec<bool> = x.iter().map(|v| (v * 5.0).sin() > -0.2).collect();
    let counts: Vec<i64> = x.iter().map(|v| ((v + 2.0) * 1.7) as i64).collect();
    let cases = [
        (
            "bool",
            "y[i] ~ bernoulli(inv_logit(a + b * x[i]));",
            InputValue::BoolVec(bools.clone()),
        ),
        (
            "bool",
            "y[i] ~ bernoulli(inv_logit(x[i] * b + a));",
            InputValue::BoolVec(bools),
        ),
        (
            "int",
            "y[i] ~ poisson(exp(a + b * x[i]));",
            InputValue::IntVec(counts.clone()),
        ),
        // exp overflows for the largest x: the same "invalid rate" error both ways.
        (
            "int",
            "y[i] ~ poisson(exp(a + 800.0 * x[i]));",
            InputValue::IntVec(counts),
        ),
    ];
    for (ty, obs, y) in cases {
        let fused = make(ty, obs);
        let plain = make(ty, &format!("if s0 > 0.0 {{ {obs} }}"));
        let inputs: Inputs = [
            ("x".to_string(), InputValue::RealVec(x.clone())),
            ("y".to_string(), y),
            ("s0".to_string(), InputValue::Real(0.7)),
        ]
        .into_iter()
        .collect();
        let (f, p) = (bind_inputs(&fused, &inputs), bind_inputs(&plain, &inputs));
        let (rf, rp) = (run_once(&f), run_once(&p));
        assert_eq!(rf, rp, "{obs}");
        assert_eq!(rf.is_err(), obs.contains("800.0"), "{obs}: {rf:?}");
        let cfg = McmcConfig {
            chains: 1,
            threads: 1,
            warmup: 100,
            draws: 100,
            seed: 9,
            ..Default::default()
        };
        let (mf, mp) = (mcmc(&f, &cfg), mcmc(&p, &cfg));
        match (mf, mp) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.chains[0].draws.values, b.chains[0].draws.values, "{obs}")
            }
            (a, b) => assert_eq!(
                a.map(|_| ()).map_err(|e| e.to_string()),
                b.map(|_| ()).map_err(|e| e.to_string()),
                "{obs}"
            ),
        }
    }
}

/// A random intercept `theta[g[i]]` in a loop too long to unroll runs natively; the
/// same draws as the loop, and the same error when a group has no intercept.
#[test]
fn random_intercept_loops_give_identical_draws_and_errors() {
    let make = |body: &str| {
        format!(
            "model m {{ data J: int; data g: int[]; data y: real[len(g)]; data s0: real;
  tau ~ half_normal(1.0); s ~ half_normal(1.0);
  for j in 0..J {{ eta[j] ~ normal(0.0, 1.0); let th[j] = tau * eta[j]; }}
  for i in 0..len(y) {{ {body} }}
  output tau, s, th; }}"
        )
    };
    let obs = "y[i] ~ normal(th[g[i]], s);";
    let (fused, plain) = (make(obs), make(&format!("if s0 > 0.0 {{ {obs} }}")));
    let n = 5000;
    let g: Vec<i64> = (0..n).map(|i| i * 7 % 12).collect();
    let y: Vec<f64> = g.iter().map(|&k| (k as f64 * 0.3).sin()).collect();
    for groups in [12, 11] {
        // With 11 groups, g = 11 has no intercept: an error at the first such i.
        let inputs: Inputs = [
            ("J".to_string(), InputValue::Int(groups)),
            ("g".to_string(), InputValue::IntVec(g.clone())),
            ("y".to_string(), InputValue::RealVec(y.clone())),
            ("s0".to_string(), InputValue::Real(0.7)),
        ]
        .into_iter()
        .collect();
        let (f, p) = (bind_inputs(&fused, &inputs), bind_inputs(&plain, &inputs));
        let (rf, rp) = (run_once(&f), run_once(&p));
        assert_eq!(rf, rp, "{groups} groups");
        assert_eq!(rf.is_err(), groups == 11, "{rf:?}");
        if groups == 12 {
            assert_eq!(mh(&f), mh(&p));
        }
    }
}
