//! Running compiled models: budgets, cancellation, addresses, outputs, run-time
//! errors and input binding.

use std::time::Duration;

use probserve_lang::{BoundModel, DEFAULT_STEP_LIMIT, InputError, InputValue, Inputs, compile};
use probserve_runtime::{
    Address, CancelToken, ImportanceConfig, InferError, Model, ModelError, PriorConfig,
    PriorHandler, SiteId, Trace, importance_sampling, rng::stream_rng, sample_prior,
};

fn bound(src: &str, inputs: &[(&str, InputValue)]) -> BoundModel {
    let m = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let inputs: Inputs = inputs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    m.bind(&inputs).unwrap_or_else(|e| panic!("{e:?}"))
}

fn run_once(m: &BoundModel, seed: u64) -> (Result<Vec<f64>, ModelError>, Trace) {
    let mut rng = stream_rng(seed, 0);
    let mut trace = Trace::new();
    let r = m.run(&mut PriorHandler::new(&mut rng, &mut trace));
    (r.map(|d| d.values().to_vec()), trace)
}

const BIG_LOOP: &str =
    "model spin {\n  let a = 0.0;\n  for i in 0..100000000 { let b = a + 1.0; }\n  output a;\n}";

#[test]
fn step_limit_stops_huge_loops() {
    let m = bound(BIG_LOOP, &[]);
    assert_eq!(m.step_limit(), DEFAULT_STEP_LIMIT);
    let (r, _) = run_once(&m, 0);
    assert_eq!(
        r.unwrap_err(),
        ModelError::StepLimit {
            limit: DEFAULT_STEP_LIMIT
        }
    );
    let small = m.clone().with_step_limit(1000);
    let (r, _) = run_once(&small, 0);
    assert_eq!(r.unwrap_err(), ModelError::StepLimit { limit: 1000 });
    // Through inference the error names the budget.
    let err = importance_sampling(&small, &ImportanceConfig::default()).unwrap_err();
    assert!(err.to_string().contains("step limit of 1000"), "{err}");
}

#[test]
fn budget_counts_statements_and_iterations() {
    // 3 top-level statements + 10 iterations × (1 + 1 body statement) = 23 steps.
    let src = "model m { let a = 1.0; for i in 0..10 { let b = a; } let c = 2.0; output c; }";
    let m = bound(src, &[]);
    assert!(run_once(&m.clone().with_step_limit(24), 0).0.is_ok());
    assert!(run_once(&m.with_step_limit(22), 0).0.is_err());
}

#[test]
fn cancellation_stops_a_running_loop() {
    let token = CancelToken::new();
    let m = bound(BIG_LOOP, &[])
        .with_step_limit(u64::MAX)
        .with_cancel(token.clone());
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
    });
    let (r, _) = run_once(&m, 0);
    canceller.join().expect("canceller thread");
    let err = r.unwrap_err().to_string();
    assert!(err.contains("cancelled"), "{err}");
}

#[test]
fn deadline_stops_a_running_loop() {
    let token = CancelToken::new().with_timeout(Duration::from_millis(10));
    let m = bound(BIG_LOOP, &[])
        .with_step_limit(u64::MAX)
        .with_cancel(token);
    let err = run_once(&m, 0).0.unwrap_err().to_string();
    assert!(err.contains("deadline"), "{err}");
}

#[test]
fn indexed_latents_have_indexed_addresses() {
    let src = "model m {\n  data n: int;\n  mu ~ normal(0, 1);\n  for i in 0..n { z[i] ~ normal(mu, 1); }\n  output mu, z;\n}";
    let m = bound(src, &[("n", InputValue::Int(5))]);
    assert_eq!(
        m.output_labels(),
        ["mu", "z[0]", "z[1]", "z[2]", "z[3]", "z[4]"]
    );
    let (r, trace) = run_once(&m, 3);
    let values = r.expect("runs");
    let names: Vec<String> = trace
        .records()
        .iter()
        .map(|rec| rec.address.display_with(&ModelNames(&m)).to_string())
        .collect();
    assert_eq!(names, ["mu", "z[0]", "z[1]", "z[2]", "z[3]", "z[4]"]);
    let z3 = Address::site(SiteId(1)).at(3);
    assert_eq!(trace.value(&z3), Some(values[4]));
}

struct ModelNames<'a>(&'a BoundModel);

impl probserve_runtime::SiteNames for ModelNames<'_> {
    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.0.site_name(id)
    }
}

#[test]
fn bools_are_output_as_zero_or_one_and_ints_exactly() {
    let src = "model m { b ~ bernoulli(0.5); k ~ poisson(4.0); let both = b && k > 2; output b, k, both; }";
    let m = bound(src, &[]);
    let r = sample_prior(
        &m,
        &PriorConfig {
            draws: 500,
            seed: 1,
            ..Default::default()
        },
    )
    .expect("prior");
    let v = &r.draws.values;
    for row in v.chunks(3) {
        assert!(row[0] == 0.0 || row[0] == 1.0);
        assert_eq!(row[1].fract(), 0.0);
        assert_eq!(row[2], f64::from(u8::from(row[0] == 1.0 && row[1] > 2.0)));
    }
}

#[test]
fn same_seed_same_draws() {
    let m = bound(
        probserve_lang::builtin_model("temperature_sensor").expect("model"),
        &[("reading", InputValue::Real(22.0))],
    );
    let cfg = ImportanceConfig {
        particles: 300,
        seed: 42,
        ..Default::default()
    };
    let a = importance_sampling(&m, &cfg).expect("a");
    let b = importance_sampling(&m, &cfg).expect("b");
    assert_eq!(a.draws.values, b.draws.values);
    assert_eq!(a.log_weights, b.log_weights);
}

#[test]
fn run_time_errors_are_clear() {
    let cases: &[(&str, &str)] = &[
        (
            "model m { data y: real[]; for i in 0..len(y) + 1 { y[i] ~ normal(0, 1); } }",
            "index 3 is out of range for `y` (length 3)",
        ),
        (
            "model m { data y: real[]; for i in 0..2 { z[i] ~ normal(0, 1); } let a = z[2]; }",
            "`z[2]` is read before it is assigned",
        ),
        (
            "model m { data y: real[]; for i in 0..2 { z[0] ~ normal(0, 1); } }",
            "`z[0]` is assigned twice",
        ),
        (
            "model m { data y: real[]; for i in 0..2 { z[i - 5] ~ normal(0, 1); } }",
            "index -5 of `z` is out of range",
        ),
        (
            "model m { data y: real[]; s ~ normal(0, 1); x ~ normal(0, s - 100.0); }",
            "x invalid distribution at #1: Normal: invalid parameter sigma",
        ),
    ];
    for (src, want) in cases {
        let m = bound(src, &[("y", InputValue::RealVec(vec![1.0, 2.0, 3.0]))]);
        let (r, _) = run_once(&m, 0);
        let err = match r {
            Ok(v) => panic!("{src}: ran fine: {v:?}"),
            Err(e) => e,
        };
        let shown = match importance_sampling(
            &m,
            &ImportanceConfig {
                particles: 4,
                ..Default::default()
            },
        ) {
            Err(InferError::Model { address, source }) => {
                format!("{} {}", address.unwrap_or_default(), source)
            }
            other => panic!("{src}: {other:?}"),
        };
        assert!(
            err.to_string().contains(want) || shown.contains(want),
            "{src}: {err} / {shown}"
        );
    }
}

#[test]
fn factor_and_categorical() {
    // factor(-inf) when x is false rejects every particle where it is false.
    let src = "model m {\n  data probs: real[];\n  c ~ categorical(probs);\n  x ~ bernoulli(0.5);\n  factor(x ? 0.0 : -1.0 / 0.0);\n  output c, x;\n}";
    let m = bound(src, &[("probs", InputValue::RealVec(vec![0.2, 0.0, 0.8]))]);
    let r = importance_sampling(
        &m,
        &ImportanceConfig {
            particles: 4000,
            seed: 8,
            ..Default::default()
        },
    )
    .expect("is");
    let s = r.summaries();
    assert!((s[1].mean - 1.0).abs() < 1e-12, "x {}", s[1].mean);
    // c is 0 (p 0.2) or 2 (p 0.8): mean 1.6.
    assert!((s[0].mean - 1.6).abs() < 4.0 * 0.8 / r.ess.sqrt());
    let bad = compile(src).expect("compiles").bind(&Inputs::from([(
        "probs".to_string(),
        InputValue::RealVec(vec![-1.0, 0.5]),
    )]));
    let errs = bad.expect_err("negative probability");
    assert_eq!(errs[0].field(), "probs");
}

#[test]
fn binding_reports_every_problem() {
    let src = "model m {\n  data n: int;\n  data x: real[n];\n  data y: real[len(x)];\n  data f: real[3];\n  data b: bool;\n  data r: real;\n  data k: int;\n}";
    let m = compile(src).expect("compiles");
    let inputs = Inputs::from([
        ("n".to_string(), InputValue::Int(2)),
        ("x".to_string(), InputValue::IntVec(vec![1, 2, 3])),
        ("y".to_string(), InputValue::RealVec(vec![1.0, 2.0])),
        (
            "f".to_string(),
            InputValue::RealVec(vec![1.0, f64::NAN, 3.0]),
        ),
        ("b".to_string(), InputValue::Int(1)),
        ("r".to_string(), InputValue::Real(f64::INFINITY)),
        ("zzz".to_string(), InputValue::Real(1.0)),
    ]);
    let errs = m.bind(&inputs).expect_err("bad inputs");
    let mut fields: Vec<&str> = errs.iter().map(InputError::field).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["b", "f", "k", "r", "zzz"], "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| matches!(e, InputError::Unknown { field } if field == "zzz"))
    );
    assert!(
        errs.iter()
            .any(|e| matches!(e, InputError::Missing { field, .. } if field == "k"))
    );
    assert!(
        errs.iter()
            .any(|e| matches!(e, InputError::WrongType { field, got: "int", .. } if field == "b"))
    );
    assert!(
        errs.iter()
            .any(|e| matches!(e, InputError::NonFinite { field, index: Some(1) } if field == "f"))
    );
    assert!(
        errs.iter()
            .any(|e| matches!(e, InputError::NonFinite { field, index: None } if field == "r"))
    );

    // Once types are right, lengths are checked.
    let inputs = Inputs::from([
        ("n".to_string(), InputValue::Int(2)),
        ("x".to_string(), InputValue::IntVec(vec![1, 2, 3])),
        ("y".to_string(), InputValue::RealVec(vec![1.0, 2.0])),
        ("f".to_string(), InputValue::RealVec(vec![1.0, 3.0])),
        ("b".to_string(), InputValue::Bool(true)),
        ("r".to_string(), InputValue::Int(4)),
        ("k".to_string(), InputValue::Int(1 << 60)),
    ]);
    let errs = m.bind(&inputs).expect_err("bad lengths");
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["field `k`: integer 1152921504606846976 is too large (at most 2^53 in magnitude)",],
        "{errs:?}"
    );
    let mut inputs = inputs;
    inputs.insert("k".to_string(), InputValue::Int(7));
    let errs = m.bind(&inputs).expect_err("bad lengths");
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "field `x` must have length 2 (= n), got 3",
            "field `y` must have length 3 (= len(x)), got 2",
            "field `f` must have length 3, got 2",
        ]
    );
    inputs.insert("n".to_string(), InputValue::Int(-1));
    let errs = m.bind(&inputs).expect_err("negative size");
    assert!(
        errs.iter()
            .any(|e| e.field() == "n" && e.to_string().contains("cannot be negative"))
    );
}

#[test]
fn frames_are_reused_across_models_on_one_thread() {
    let a = bound(
        "model a { x ~ normal(0, 1); let y = x * 2.0; output x, y; }",
        &[],
    );
    let b = bound(
        "model b { data n: int; for i in 0..n { z[i] ~ normal(0, 1); } output z; }",
        &[("n", InputValue::Int(20))],
    );
    for seed in 0..50 {
        let (ra, _) = run_once(&a, seed);
        let ra = ra.expect("a");
        assert_eq!(ra[1], ra[0] * 2.0);
        let (rb, _) = run_once(&b, seed);
        let rb = rb.expect("b");
        assert_eq!(rb.len(), 20);
        assert!(rb.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn compiled_and_bound_models_are_send_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<probserve_lang::CompiledModel>();
    assert_send_sync::<BoundModel>();
    assert_send_sync::<probserve_lang::Diagnostics>();
    assert_send_sync::<InputError>();
}

#[test]
fn non_finite_loop_bounds_are_errors() {
    // `min` of an empty vector is +inf, `max` -inf: a loop to either is an error, in
    // code the data fixes and in code a latent decides.
    for src in [
        "model m { data c: int[]; data y: real[]; for i in 0..min(c) { let a = i; } }",
        "model m { data c: int[]; data y: real[]; for i in max(c)..3 { let a = i; } }",
        "model m { data c: int[]; data y: real[]; k ~ poisson(2.0);
           for i in k..k + min(c) { let a = i; } }",
        "model m { data c: int[]; data y: real[]; for i in 0..min(c) { y[i] ~ normal(0.0, 1.0); } }",
    ] {
        let m = bound(
            src,
            &[
                ("c", InputValue::IntVec(vec![])),
                ("y", InputValue::RealVec(vec![])),
            ],
        );
        let err = run_once(&m, 0).0.expect_err(src).to_string();
        assert!(
            err.contains("bounds of a `for` loop must be finite"),
            "{src}: {err}"
        );
    }
}

#[test]
fn the_first_failure_of_a_statement_is_reported() {
    let src = "model m { data y: real[]; for i in 0..2 { z[i] ~ normal(0, 1); }
      let a = z[7] + y[9]; }";
    let m = bound(src, &[("y", InputValue::RealVec(vec![1.0]))]);
    let err = run_once(&m, 0).0.expect_err("fails").to_string();
    assert!(
        err.contains("`z[7]` is read before it is assigned"),
        "{err}"
    );
}

#[test]
fn budget_counts_latent_loops_per_iteration() {
    // k iterations of (1 + 1 statement) after 2 top-level statements: 2 + 2k steps.
    let src = "model m { k ~ poisson(20.0); for i in 0..k { let b = i; } output k; }";
    let m = bound(src, &[]);
    for seed in 0..20 {
        let (r, _) = run_once(&m, seed);
        let k = r.expect("runs")[0] as u64;
        let limit = 2 + 2 * k;
        assert!(
            run_once(&m.clone().with_step_limit(limit), seed).0.is_ok(),
            "k = {k}"
        );
        let err = run_once(&m.clone().with_step_limit(limit - 1), seed).0;
        assert_eq!(err.unwrap_err(), ModelError::StepLimit { limit: limit - 1 });
    }
}
