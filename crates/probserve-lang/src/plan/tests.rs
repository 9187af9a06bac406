//! What the optimizing lowering makes of typical models: the plan's shape, not its
//! numbers (those are checked against the plain lowering in `tests/differential.rs`).

use crate::{InputValue, Inputs, Lowering, builtin_model, compile};

use super::{Op, Plan};

fn plan(src: &str, inputs: &[(&str, InputValue)], lowering: Lowering) -> Plan {
    let inputs: Inputs = inputs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    let m = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let b = m
        .bind_with(&inputs, lowering)
        .unwrap_or_else(|e| panic!("{e:?}"));
    (*b.plan).clone()
}

fn count(p: &Plan, f: impl Fn(&Op) -> bool) -> usize {
    p.ops.iter().filter(|op| f(op)).count()
}

fn jumps(p: &Plan) -> usize {
    count(p, |op| {
        matches!(
            op,
            Op::Jump { .. } | Op::JumpIfZero { .. } | Op::LoopInit { .. } | Op::LoopNext { .. }
        )
    })
}

#[test]
fn temperature_is_three_ops_on_a_small_register_file() {
    let src = builtin_model("temperature_sensor").expect("model");
    let p = plan(
        src,
        &[("reading", InputValue::Real(22.0))],
        Lowering::Optimized,
    );
    assert!(
        matches!(
            p.ops.as_slice(),
            [
                Op::SampleNormal { .. },
                Op::ObserveNormalMean { .. },
                Op::MulAdd { .. }
            ]
        ),
        "{:?}",
        p.ops
    );
    assert_eq!(p.entry_steps, 3);
    assert_eq!(p.width, 2);
    assert!(p.small_init.is_some(), "{} registers", p.n_regs());
}

#[test]
fn eight_schools_unrolls_into_straight_line_code() {
    let src = builtin_model("eight_schools").expect("model");
    let y = vec![28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0];
    let s = vec![15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0];
    let inputs = [
        ("y", InputValue::RealVec(y)),
        ("sigma", InputValue::RealVec(s)),
    ];
    let p = plan(src, &inputs, Lowering::Optimized);
    // mu, tau, then per school: sample theta_raw, theta = mu + tau * theta_raw, observe.
    assert_eq!(p.ops.len(), 2 + 8 * 3, "{:?}", p.ops);
    assert_eq!(jumps(&p), 0);
    assert!(p.arrays.is_empty(), "theta and theta_raw live in registers");
    assert_eq!(
        count(&p, |op| matches!(op, Op::ObserveNormalMean { .. })),
        8
    );
    // 3 statements (mu, tau, the loop) + 8 iterations × (1 + 3 body statements),
    // charged at the start.
    assert_eq!(p.entry_steps, 3 + 8 * 4);
    let plain = plan(src, &inputs, Lowering::Plain);
    assert!(jumps(&plain) > 0 && !plain.arrays.is_empty());
}

#[test]
fn a_regression_likelihood_is_one_native_loop() {
    let src = builtin_model("linear_regression").expect("model");
    let x: Vec<f64> = (0..1000).map(f64::from).collect();
    let inputs = [
        ("x", InputValue::RealVec(x.clone())),
        ("y", InputValue::RealVec(x)),
    ];
    let p = plan(src, &inputs, Lowering::Optimized);
    assert_eq!(count(&p, |op| matches!(op, Op::ObsLoop { .. })), 1);
    assert_eq!(p.ops.len(), 4, "{:?}", p.ops);
}

#[test]
fn loops_the_data_does_not_fix_stay_loops() {
    // A latent trip count, and a loop too long to unroll.
    let src = "model m {
      data n: int;
      k ~ poisson(3.0);
      for i in 0..k { z[i] ~ normal(0.0, 1.0); }
      for j in 0..n { w[j] ~ normal(0.0, 1.0); }
      output k;
    }";
    let p = plan(src, &[("n", InputValue::Int(100_000))], Lowering::Optimized);
    assert_eq!(count(&p, |op| matches!(op, Op::LoopInit { .. })), 2);
    assert_eq!(p.arrays.len(), 2, "z and w are run-time arrays");
    assert!(p.ops.len() < 30, "{} ops", p.ops.len());
    let small = plan(src, &[("n", InputValue::Int(10))], Lowering::Optimized);
    assert_eq!(count(&small, |op| matches!(op, Op::LoopInit { .. })), 1);
    assert_eq!(small.arrays.len(), 1, "only z is a run-time array");
}

#[test]
fn an_array_read_at_a_latent_index_is_a_run_time_array() {
    let src = "model m {
      data p: real[];
      for j in 0..3 { mu[j] ~ normal(0.0, 1.0); }
      k ~ categorical(p);
      let m = mu[k];
      output m;
    }";
    let p = plan(
        src,
        &[("p", InputValue::RealVec(vec![1.0; 3]))],
        Lowering::Optimized,
    );
    assert_eq!(p.arrays.len(), 1);
    assert_eq!(count(&p, |op| matches!(op, Op::ArrLoad { .. })), 1);
}

#[test]
fn failures_found_while_lowering_happen_when_the_run_gets_there() {
    let src = "model m {
      data y: real[];
      a ~ normal(0.0, 1.0);
      let b = y[5];
      output a;
    }";
    let p = plan(
        src,
        &[("y", InputValue::RealVec(vec![1.0]))],
        Lowering::Optimized,
    );
    assert!(matches!(p.ops.last(), Some(Op::Fail { .. })), "{:?}", p.ops);
    assert!(matches!(p.ops.first(), Some(Op::SampleNormal { .. })));
}

#[test]
fn data_branches_and_constant_expressions_fold_away() {
    let src = "model m {
      data flag: bool;
      data s: real;
      let scale = flag ? exp(s) * 2.0 : 1.0;
      x ~ normal(0.0, scale);
      y ~ normal(x, flag ? sqrt(scale) : 1.0);
      if flag { z ~ normal(y, 1.0); } else { z ~ cauchy(y, 1.0); }
      output x, y;
    }";
    let p = plan(
        src,
        &[
            ("flag", InputValue::Bool(true)),
            ("s", InputValue::Real(0.5)),
        ],
        Lowering::Optimized,
    );
    assert_eq!(jumps(&p), 0);
    assert!(
        matches!(
            p.ops.as_slice(),
            [
                Op::SampleNormal { .. },
                Op::SampleNormalMean { .. },
                Op::SampleNormalMean { .. }
            ]
        ),
        "{:?}",
        p.ops
    );
}

#[test]
fn long_unrolled_loops_outgrow_the_frame_file() {
    let src = "model m { data x: real[]; data y: real[len(x)]; mu ~ normal(0.0, 3.0);
      for i in 0..len(y) { y[i] ~ normal(mu + x[i], 1.0); } output mu; }";
    let x: Vec<f64> = (0..1500).map(f64::from).collect();
    let inputs = [
        ("x", InputValue::RealVec(x.clone())),
        ("y", InputValue::RealVec(x)),
    ];
    let p = plan(src, &inputs, Lowering::Optimized);
    assert_eq!(jumps(&p), 0);
    assert!(p.n_regs() > 1024, "{} registers", p.n_regs());
    // Over the unrolling limit: the same loop stays a loop.
    let x: Vec<f64> = (0..20_000).map(f64::from).collect();
    let inputs = [
        ("x", InputValue::RealVec(x.clone())),
        ("y", InputValue::RealVec(x)),
    ];
    let p = plan(src, &inputs, Lowering::Optimized);
    assert_eq!(count(&p, |op| matches!(op, Op::LoopInit { .. })), 1);
    assert!(p.ops.len() < 20, "{} ops", p.ops.len());
}

#[test]
fn many_latent_indexed_sites_bound_the_restarts() {
    // Ten indexed sites, each read at a latent index: after a few restarts every site is
    // a run-time array (binding stays a handful of lowerings).
    let mut src = String::from("model m {\n  data p: real[];\n  k ~ categorical(p);\n");
    for a in 0..10 {
        src.push_str(&format!(
            "  for j in 0..3 {{ z{a}[j] ~ normal(0.0, 1.0); }}\n  let v{a} = z{a}[k];\n"
        ));
    }
    src.push_str("  output k;\n}");
    let p = plan(
        &src,
        &[("p", InputValue::RealVec(vec![1.0; 3]))],
        Lowering::Optimized,
    );
    assert_eq!(p.arrays.len(), 10);
}

#[test]
fn logistic_and_poisson_likelihoods_are_native_loops() {
    for (ty, obs, y) in [
        (
            "bool",
            "y[i] ~ bernoulli(inv_logit(a + b * x[i]));",
            InputValue::BoolVec(vec![true; 10_000]),
        ),
        (
            "int",
            "y[i] ~ poisson(exp(x[i] * b + a));",
            InputValue::IntVec(vec![3; 10_000]),
        ),
    ] {
        let src = format!(
            "model m {{ data x: real[]; data y: {ty}[len(x)]; a ~ normal(0.0, 1.0);
              b ~ normal(0.0, 1.0); for i in 0..len(y) {{ {obs} }} output a, b; }}"
        );
        let inputs = [("x", InputValue::RealVec(vec![0.5; 10_000])), ("y", y)];
        let p = plan(&src, &inputs, Lowering::Optimized);
        assert_eq!(count(&p, |op| matches!(op, Op::ObsLoop { .. })), 1, "{obs}");
        assert_eq!(p.ops.len(), 3, "{obs}: {:?}", p.ops);
    }
}

#[test]
fn a_long_random_intercept_likelihood_is_a_native_loop() {
    let src = "model m { data g: int[]; data y: real[len(g)];
      s ~ half_normal(1.0);
      for j in 0..4 { th[j] ~ normal(0.0, 1.0); }
      for i in 0..len(y) { y[i] ~ normal(th[g[i]], s); }
      output s; }";
    let bind = |n: usize| {
        let inputs = [
            (
                "g",
                InputValue::IntVec((0..n as i64).map(|i| i % 4).collect()),
            ),
            ("y", InputValue::RealVec(vec![0.0; n])),
        ];
        plan(src, &inputs, Lowering::Optimized)
    };
    let long = bind(10_000);
    assert_eq!(count(&long, |op| matches!(op, Op::ObsLoop { .. })), 1);
    assert_eq!(long.arrays.len(), 1, "th is read as a run-time array");
    // Short enough to unroll: th stays in registers and each observation is one op.
    let short = bind(100);
    assert_eq!(count(&short, |op| matches!(op, Op::ObsLoop { .. })), 0);
    assert!(short.arrays.is_empty());
}

#[test]
fn static_cost_is_fixed_only_when_no_loop_is_left() {
    let src = "model m {\n  data n: int;\n  x ~ normal(0.0, 1.0);\n  for i in 0..n { factor(-0.5 * x * x); }\n  output x;\n}";
    let bind = |n: i64| {
        let m = compile(src).unwrap_or_else(|d| panic!("{d}"));
        let inputs: Inputs = [("n".to_string(), InputValue::Int(n))].into();
        m.bind(&inputs).unwrap_or_else(|e| panic!("{e:?}"))
    };
    // n = 0 and n = 10 unroll: fixed, and the ops and sites grow with n.
    let none = bind(0).static_cost();
    let ten = bind(10).static_cost();
    assert!(none.fixed && ten.fixed, "{none:?} {ten:?}");
    assert_eq!(none.sites, 1);
    assert_eq!(ten.sites, 11);
    assert!(ten.ops > none.ops);
    // Beyond the unrolling limit the loop stays: the data sets the work.
    let big = bind(1_000_000).static_cost();
    assert!(!big.fixed, "{big:?}");
    // A straight-line model: each op once, one site per sample or observation.
    let src = builtin_model("temperature_sensor").expect("model");
    let m = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let inputs: Inputs = [("reading".to_string(), InputValue::Real(22.0))].into();
    let c = m
        .bind(&inputs)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .static_cost();
    assert_eq!((c.ops, c.sites, c.fixed), (3, 2, true));
}

/// `w[m]` written under a latent branch: a run-time array at an index the data sets.
const FAR_WRITE: &str = "model m {
  data m: int;
  b ~ bernoulli(0.5);
  if b { w[m] ~ normal(0.0, 1.0); }
  output b;
}";

fn bind_far(m: i64) -> crate::BoundModel {
    let c = compile(FAR_WRITE).unwrap_or_else(|d| panic!("{d}"));
    let inputs: Inputs = [("m".to_string(), InputValue::Int(m))].into();
    c.bind(&inputs).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn a_plan_with_a_run_time_array_is_never_fixed() {
    // Its memory is set by the indices written during the run, not by the plan.
    let b = bind_far(0);
    assert!(!b.plan.arrays.is_empty());
    assert!(!b.static_cost().fixed, "{:?}", b.static_cost());
}

#[test]
fn run_time_arrays_are_bounded_by_the_array_budget() {
    use probserve_runtime::{ModelError, PriorConfig, sample_prior};
    // Far past the array budget: every run that takes the branch stops with SiteLimit
    // before growing the array (16 M elements would be 268 MB per run).
    let b = bind_far((1 << 24) - 1).with_max_array_elems(1000);
    let cfg = PriorConfig {
        draws: 20,
        seed: 1,
        ..PriorConfig::default()
    };
    let e = sample_prior(&b, &cfg).expect_err("over the array budget");
    assert!(
        matches!(
            &e,
            probserve_runtime::InferError::Model {
                source: ModelError::SiteLimit { .. },
                ..
            }
        ),
        "{e}"
    );
    // Within the budget the same model runs, whatever the site budget (the array
    // is no trace: SMC's many live traces do not shrink it).
    let ok = bind_far(999).with_max_array_elems(1000).with_max_sites(2);
    assert!(sample_prior(&ok, &cfg).is_ok());
}

#[test]
fn the_total_output_width_is_bounded_before_labels_are_built() {
    let src = "model m {
      data n: int;
      for i in 0..n { a[i] ~ normal(0.0, 1.0); }
      for i in 0..n { b[i] ~ normal(0.0, 1.0); }
      output a; output b;
    }";
    let c = compile(src).unwrap_or_else(|d| panic!("{d}"));
    let half = i64::try_from(crate::MAX_OUTPUT_WIDTH / 2).unwrap_or(i64::MAX);
    let inputs: Inputs = [("n".to_string(), InputValue::Int(half + 1))].into();
    let errs = c.bind(&inputs).expect_err("over the total width");
    let msg = format!("{errs:?}");
    assert!(msg.contains("outputs") && msg.contains("at most"), "{msg}");
    let inputs: Inputs = [("n".to_string(), InputValue::Int(half))].into();
    assert_eq!(
        c.bind(&inputs)
            .map(|b| b.output_width())
            .unwrap_or_else(|e| panic!("{e:?}")),
        crate::MAX_OUTPUT_WIDTH
    );
}
