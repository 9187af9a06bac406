//! Differential test of the two lowerings of a bound program: random well-typed
//! programs with matching inputs (`support::programs`) are bound with
//! `Lowering::Optimized` and `Lowering::Plain`, and both must behave identically under
//! prior sampling, a single traced run, importance sampling and MCMC: the same draws
//! bit for bit (NaN patterns included), the same traces, or the same errors.
//!
//! The case count is `PROBSERVE_DIFF_CASES` (default 500), e.g.
//! `PROBSERVE_DIFF_CASES=20000 cargo test -p probserve-lang --test differential`.

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use probserve_lang::{BoundModel, CompiledModel, Lowering, compile};
use probserve_runtime::{
    Draws, ImportanceConfig, InferError, McmcConfig, Model, PriorConfig, PriorHandler, Trace,
    importance_sampling, mcmc, rng::stream_rng, sample_prior,
};

use support::Features;
use support::programs::{self, GenProgram};

fn cases() -> u32 {
    std::env::var("PROBSERVE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

fn prior_config() -> PriorConfig {
    PriorConfig {
        draws: 30,
        seed: 17,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn lowerings_agree(p in programs::program()) {
        check(&p)?;
    }
}

type Check = Result<(), TestCaseError>;

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

/// Compiles `p`, failing (with the source and diagnostics) if it does not compile.
fn compiled(p: &GenProgram) -> Result<CompiledModel, TestCaseError> {
    compile(&p.source).map_err(|d| {
        fail(format!(
            "generated program does not compile:\n{}\n{d}",
            p.source
        ))
    })
}

fn check(p: &GenProgram) -> Check {
    let model = compiled(p)?;
    let opt = model.bind_with(&p.inputs, Lowering::Optimized);
    let plain = model.bind_with(&p.inputs, Lowering::Plain);
    let (opt, plain) = match (opt, plain) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) if a == b => return Ok(()),
        (a, b) => return Err(fail(format!("binding differs: {a:?} vs {b:?}"))),
    };
    prop_assert_eq!(opt.output_labels(), plain.output_labels());
    compare_prior(&opt, &plain)?;
    for seed in 0..3 {
        compare_run(&opt, &plain, seed)?;
    }
    compare_importance(&opt, &plain)?;
    compare_mcmc(&opt, &plain)
}

/// Both `Ok` (compared by `same`) or both `Err` with the same message.
fn same_result<T>(
    what: &str,
    a: &Result<T, InferError>,
    b: &Result<T, InferError>,
    same: impl FnOnce(&T, &T) -> Check,
) -> Check {
    match (a, b) {
        (Ok(a), Ok(b)) => same(a, b),
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(()),
        (a, b) => Err(fail(format!(
            "{what}: optimized gives {}, plain gives {}",
            describe(a),
            describe(b)
        ))),
    }
}

fn describe<T>(r: &Result<T, InferError>) -> String {
    match r {
        Ok(_) => "success".to_string(),
        Err(e) => format!("error `{e}`"),
    }
}

/// The same numbers bit for bit.
fn same_bits(what: &str, a: &[f64], b: &[f64]) -> Check {
    if a.len() != b.len() {
        return Err(fail(format!("{what}: {} vs {} values", a.len(), b.len())));
    }
    match a
        .iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
    {
        None => Ok(()),
        Some(i) => Err(fail(format!("{what}[{i}]: {:?} vs {:?}", a[i], b[i]))),
    }
}

fn same_draws(what: &str, a: &Draws, b: &Draws) -> Check {
    prop_assert_eq!(&a.names, &b.names, "{} names", what);
    prop_assert_eq!((a.width, a.rows), (b.width, b.rows), "{} shape", what);
    same_bits(what, &a.values, &b.values)
}

fn compare_prior(opt: &BoundModel, plain: &BoundModel) -> Check {
    let (a, b) = (
        sample_prior(opt, &prior_config()),
        sample_prior(plain, &prior_config()),
    );
    same_result("sample_prior", &a, &b, |a, b| {
        same_draws("prior draws", &a.draws, &b.draws)?;
        same_bits(
            "prior log-likelihoods",
            &a.log_likelihoods,
            &b.log_likelihoods,
        )
    })
}

/// One run under the prior handler: the output values and the trace.
fn run_once(m: &BoundModel, seed: u64) -> (Result<Vec<f64>, String>, Trace) {
    let mut rng = stream_rng(seed, 0);
    let mut trace = Trace::new();
    let r = m.run(&mut PriorHandler::new(&mut rng, &mut trace));
    (
        r.map(|d| d.values().to_vec()).map_err(|e| e.to_string()),
        trace,
    )
}

fn compare_run(opt: &BoundModel, plain: &BoundModel, seed: u64) -> Check {
    let ((ra, ta), (rb, tb)) = (run_once(opt, seed), run_once(plain, seed));
    match (&ra, &rb) {
        (Ok(a), Ok(b)) => same_bits("run outputs", a, b)?,
        (Err(a), Err(b)) if a == b => return Ok(()),
        _ => return Err(fail(format!("run (seed {seed}): {ra:?} vs {rb:?}"))),
    }
    let (a, b) = (ta.records(), tb.records());
    prop_assert_eq!(a.len(), b.len(), "trace lengths");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        prop_assert_eq!(x.address, y.address, "trace[{}] address", k);
        prop_assert_eq!(x.kind, y.kind, "trace[{}] kind", k);
        same_bits(
            &format!("trace[{k}] value, log-prob"),
            &[x.value, x.log_prob],
            &[y.value, y.log_prob],
        )?;
        let (vx, vy) = (
            ta.vector_of(x).unwrap_or(&[]),
            tb.vector_of(y).unwrap_or(&[]),
        );
        same_bits(&format!("trace[{k}] vector"), vx, vy)?;
    }
    same_bits(
        "trace log-weights",
        &[ta.log_prior, ta.log_likelihood, ta.log_factor],
        &[tb.log_prior, tb.log_likelihood, tb.log_factor],
    )
}

fn compare_importance(opt: &BoundModel, plain: &BoundModel) -> Check {
    let cfg = ImportanceConfig {
        particles: 50,
        seed: 23,
        ..Default::default()
    };
    let (a, b) = (
        importance_sampling(opt, &cfg),
        importance_sampling(plain, &cfg),
    );
    same_result("importance_sampling", &a, &b, |a, b| {
        same_draws("importance draws", &a.draws, &b.draws)?;
        same_bits("log weights", &a.log_weights, &b.log_weights)?;
        same_bits("weights", &a.weights, &b.weights)?;
        same_bits(
            "log marginal likelihood, ess",
            &[a.log_marginal_likelihood, a.ess],
            &[b.log_marginal_likelihood, b.ess],
        )
    })
}

fn compare_mcmc(opt: &BoundModel, plain: &BoundModel) -> Check {
    let cfg = McmcConfig {
        chains: 1,
        threads: 1,
        warmup: 50,
        draws: 50,
        seed: 29,
        ..Default::default()
    };
    let (a, b) = (mcmc(opt, &cfg), mcmc(plain, &cfg));
    same_result("mcmc", &a, &b, |a, b| {
        prop_assert_eq!(a.chains.len(), b.chains.len());
        for (x, y) in a.chains.iter().zip(&b.chains) {
            same_draws("mcmc draws", &x.draws, &y.draws)?;
            same_bits(
                "acceptance rate",
                &[x.acceptance_rate],
                &[y.acceptance_rate],
            )?;
            prop_assert_eq!(x.sites.len(), y.sites.len(), "mcmc sites");
            for (s, t) in x.sites.iter().zip(&y.sites) {
                prop_assert_eq!(&s.address, &t.address);
                prop_assert_eq!((s.proposals, s.accepted), (t.proposals, t.accepted));
                same_bits(&format!("scale of {}", s.address), &[s.scale], &[t.scale])?;
            }
        }
        Ok(())
    })
}

/// The generator is not degenerate: its programs compile and bind, a healthy share
/// runs, some fail at run time, and every feature of the language appears (at least
/// 3 times in 300 programs).
/// Models past the generator's size: plans of over 1,024 registers (the growable
/// register file), loops too long to unroll, a run-time array read at data indices and
/// the fused observation loops (normal with a data and a latent scale, logistic,
/// Poisson).
#[test]
fn large_models_agree() {
    let n = 1500;
    let x: Vec<f64> = (0..n).map(|i| f64::from(i) / 300.0 - 2.5).collect();
    let y: Vec<f64> = x.iter().map(|v| 0.5 + 1.5 * v + (v * 7.0).sin()).collect();
    let g: Vec<i64> = (0..i64::from(n)).map(|i| i * 7 % 30).collect();
    let programs = [
        // 1,500 unrolled observations: a constant register per x[i].
        "model m { data x: real[]; data y: real[len(x)]; mu ~ normal(0.0, 3.0);
           for i in 0..len(y) { y[i] ~ normal(mu + x[i], 1.0); } output mu; }",
        // Fused, with a latent and with a data scale.
        "model m { data x: real[]; data y: real[len(x)]; a ~ normal(0.0, 3.0);
           b ~ normal(0.0, 3.0); s ~ half_normal(2.0);
           for i in 0..len(y) { y[i] ~ normal(a + b * x[i], s); } output a, b, s; }",
        "model m { data x: real[]; data y: real[len(x)]; a ~ normal(0.0, 3.0);
           for i in 0..len(y) { y[i] ~ normal(a + 2.0 * x[i], 0.5); } output a; }",
        // Logistic and Poisson regression likelihoods (fused when optimized).
        "model m { data x: real[]; data c: int[len(x)]; a ~ normal(0.0, 1.0);
           b ~ normal(0.0, 0.5); for i in 0..len(c) { c[i] ~ poisson(exp(a + b * x[i])); }
           output a, b; }",
        "model m { data x: real[]; data z: bool[len(x)]; a ~ normal(0.0, 1.0);
           b ~ normal(0.0, 1.0); for i in 0..len(z) { z[i] ~ bernoulli(inv_logit(x[i] * b + a)); }
           output a, b; }",
        // A random intercept in a loop of latent length (fused when optimized).
        "model m { data x: real[]; data y: real[len(x)]; data g: int[len(x)];
           s ~ half_normal(1.0); for j in 0..30 { th[j] ~ normal(0.0, 1.0); }
           k ~ binomial(len(y), 0.5); for i in 0..k { y[i] ~ normal(th[g[i]], s); }
           output s, k, th; }",
        // Group effects read at g[i]; 1,500 × 4 ops is over the unrolling limit.
        "model m { data x: real[]; data y: real[len(x)]; data g: int[len(x)];
           tau ~ half_normal(1.0);
           for j in 0..30 { eta[j] ~ normal(0.0, 1.0); let th[j] = tau * eta[j]; }
           for i in 0..len(y) { let m = th[g[i]] + 0.1 * x[i]; y[i] ~ normal(m, 1.0);
             factor(0.0 - 0.001 * m * m); }
           output tau, th; }",
    ];
    let c: Vec<i64> = x.iter().map(|v| ((v + 3.0) * 1.3) as i64).collect();
    let z: Vec<bool> = x.iter().map(|v| (v * 3.0).sin() > 0.0).collect();
    let inputs = probserve_lang::Inputs::from([
        ("x".to_string(), probserve_lang::InputValue::RealVec(x)),
        ("y".to_string(), probserve_lang::InputValue::RealVec(y)),
        ("g".to_string(), probserve_lang::InputValue::IntVec(g)),
        ("c".to_string(), probserve_lang::InputValue::IntVec(c)),
        ("z".to_string(), probserve_lang::InputValue::BoolVec(z)),
    ]);
    for src in programs {
        let model = compile(src).unwrap_or_else(|d| panic!("{d}"));
        let mut inputs = inputs.clone();
        inputs.retain(|k, _| model.data_decls().iter().any(|d| &d.name == k));
        let p = GenProgram {
            source: src.to_string(),
            inputs,
        };
        if let Err(e) = check(&p) {
            panic!("{src}: {e}");
        }
    }
}

#[test]
fn generator_covers_the_language() {
    const N: usize = 300;
    let mut runner = TestRunner::deterministic();
    let strategy = programs::tape();
    let mut total = Features::default();
    let (mut ok, mut run_errors) = (0, 0);
    for _ in 0..N {
        let tape = strategy.new_tree(&mut runner).expect("a tape").current();
        let (p, features) = programs::generate(&tape);
        total.merge(&features);
        let model = compiled(&p).unwrap_or_else(|e| panic!("{e}"));
        let bound = model
            .bind(&p.inputs)
            .unwrap_or_else(|e| panic!("generated inputs do not bind: {e:?}\n{p:?}"));
        match sample_prior(&bound, &prior_config()) {
            Ok(_) => ok += 1,
            Err(InferError::Model { .. }) => run_errors += 1,
            Err(e) => panic!("unexpected error `{e}` for\n{p:?}"),
        }
    }
    eprintln!("{N} programs: {ok} ran, {run_errors} failed at run time");
    for (k, v) in total.counts() {
        eprintln!("  {k}: {v}");
    }
    assert!(ok * 100 >= N * 40, "only {ok} of {N} programs ran");
    assert!(run_errors * 100 >= N * 2, "only {run_errors} of {N} failed");
    let mut want: Vec<String> = [
        "loop",
        "loop:nested",
        "loop:latent_bound",
        "loop:data_bound",
        "let:bound",
        "site:latent",
        "site:let",
        "site:nested_index",
        "site:outside_loop",
        "read:site",
        "read:site_risky",
        "read:vector",
        "index:risky",
        "write:risky",
        "if",
        "if:latent_cond",
        "if:else",
        "if:else_if",
        "factor",
        "factor:reject",
        "observe:scalar",
        "observe:vector",
        "output:scalar",
        "output:indexed",
        "param:invalid",
        "data:empty_vector",
        "data:real",
        "data:int",
        "data:bool",
        "data:real[]",
        "data:int[]",
        "data:bool[]",
        "data:vector<real>",
        "data:real[N]",
        "data:real[len]",
        "data:real[K]",
    ]
    .map(String::from)
    .to_vec();
    let ops = "+ - * / % neg ! && || == != < <= > >= ?:";
    want.extend(ops.split(' ').map(|o| format!("op:{o}")));
    let fns = "exp log log1p expm1 sqrt sin cos tanh lgamma floor ceil round inv_logit logit \
               log_inv_logit abs pow min max len sum mean sd min(v) max(v) dot";
    want.extend(fns.split_whitespace().map(|f| format!("fn:{f}")));
    let dists = "normal half_normal lognormal student_t cauchy exponential gamma inv_gamma beta \
                 uniform bernoulli binomial poisson categorical geometric neg_binomial";
    want.extend(dists.split_whitespace().map(|d| format!("dist:{d}")));
    let rare: Vec<&String> = want.iter().filter(|k| total.get(k) < 3).collect();
    assert!(rare.is_empty(), "generated fewer than 3 times: {rare:?}");
}
