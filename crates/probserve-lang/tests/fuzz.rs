//! Fuzzing the front end and the executor with proptest: random strings, random token
//! soups and mutated valid programs must never panic, and programs that compile must
//! bind and run (or fail with an error) without panicking.
//!
//! The case count per property is `PROBSERVE_FUZZ_CASES` (default 2000); raise it for
//! longer campaigns, e.g. `PROBSERVE_FUZZ_CASES=200000 cargo test -p probserve-lang --test fuzz`.

use proptest::prelude::*;
use proptest::test_runner::Config;

use probserve_lang::{
    CompiledModel, ElemType, InputValue, Inputs, Shape, VecSize, builtin_models, compile,
};
use probserve_runtime::{ImportanceConfig, PriorConfig, importance_sampling, sample_prior};

fn cases() -> u32 {
    std::env::var("PROBSERVE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

const TOKENS: &[&str] = &[
    "model",
    "data",
    "let",
    "for",
    "in",
    "if",
    "else",
    "output",
    "factor",
    "true",
    "false",
    "real",
    "int",
    "bool",
    "vector",
    "<",
    ">",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    ":",
    "~",
    "?",
    "=",
    "..",
    "+",
    "-",
    "*",
    "/",
    "%",
    "!",
    "&&",
    "||",
    "==",
    "!=",
    "<=",
    ">=",
    "x",
    "y",
    "z",
    "i",
    "n",
    "mu",
    "sigma",
    "theta",
    "0",
    "1",
    "3",
    "2.5",
    "1e3",
    "-1",
    "normal",
    "half_normal",
    "bernoulli",
    "poisson",
    "binomial",
    "categorical",
    "beta",
    "gamma",
    "uniform",
    "len",
    "sum",
    "mean",
    "exp",
    "log",
    "pow",
    "min",
    "max",
    "dot",
    "//",
    "/*",
    "*/",
    "\n",
    "$",
    "é",
    "100000000",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.join(" "))
}

/// A model header plus token soup, so that more input reaches the statement parser.
fn framed_soup() -> impl Strategy<Value = String> {
    token_soup().prop_map(|s| format!("model m {{ data y: real[]; data n: int; {s} }}"))
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, &'static str),
    Duplicate(usize, usize),
    Replace(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..12).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(a, t)| Mutation::Replace(a, t)),
    ]
}

fn char_floor(s: &str, i: usize) -> usize {
    let mut i = i % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(src: &str, muts: &[Mutation]) -> String {
    let mut s = src.to_string();
    for m in muts {
        match m {
            Mutation::Delete(a, n) | Mutation::Duplicate(a, n) => {
                let start = char_floor(&s, *a);
                let end = char_floor(&s, (start + n).min(s.len()));
                if end > start {
                    let piece = s[start..end].to_string();
                    if matches!(m, Mutation::Delete(..)) {
                        s.replace_range(start..end, "");
                    } else {
                        s.insert_str(end, &piece);
                    }
                }
            }
            Mutation::Insert(a, t) => {
                let at = char_floor(&s, *a);
                s.insert_str(at, &format!(" {t} "));
            }
            Mutation::Replace(a, t) => {
                let start = char_floor(&s, *a);
                let end = s[start..]
                    .find(|c: char| c.is_whitespace())
                    .map_or(s.len(), |e| start + e);
                s.replace_range(start..end, t);
            }
        }
    }
    s
}

fn mutated_program() -> impl Strategy<Value = String> {
    let n = builtin_models().len();
    (0..n, prop::collection::vec(mutation(), 1..4)).prop_map(|(k, muts)| {
        let src = builtin_models()[k].2;
        apply(src, &muts)
    })
}

/// Plausible inputs for whatever the model declares.
fn inputs_for(m: &CompiledModel, len: usize, scalar: i64) -> Inputs {
    let mut out = Inputs::new();
    for d in m.data_decls() {
        let n = match &d.ty.shape {
            Shape::Scalar => None,
            Shape::Vector(VecSize::Fixed(n)) => Some((*n).min(64)),
            Shape::Vector(VecSize::Named(_) | VecSize::SameAs(_) | VecSize::Any) => Some(len),
        };
        let v = match (d.ty.elem, n) {
            (ElemType::Real, None) => InputValue::Real(scalar as f64 * 0.5),
            (ElemType::Int, None) => InputValue::Int(scalar),
            (ElemType::Bool, None) => InputValue::Bool(scalar % 2 == 0),
            (ElemType::Real, Some(n)) => {
                InputValue::RealVec((0..n).map(|i| i as f64 - 1.5).collect())
            }
            (ElemType::Int, Some(n)) => InputValue::IntVec((0..n as i64).collect()),
            (ElemType::Bool, Some(n)) => InputValue::BoolVec((0..n).map(|i| i % 2 == 0).collect()),
        };
        out.insert(d.name.clone(), v);
    }
    out
}

/// Compiles and, when that works, binds and runs a few draws under a small budget.
fn exercise(src: &str) {
    let Ok(m) = compile(src) else {
        return;
    };
    let _ = m.info();
    for (len, scalar) in [(3usize, 3i64), (0, 0), (8, -2)] {
        let Ok(b) = m.bind(&inputs_for(&m, len, scalar)) else {
            continue;
        };
        let b = b.with_step_limit(20_000);
        let _ = sample_prior(
            &b,
            &PriorConfig {
                draws: 3,
                seed: 1,
                ..Default::default()
            },
        );
        let _ = importance_sampling(
            &b,
            &ImportanceConfig {
                particles: 3,
                seed: 2,
                ..Default::default()
            },
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_strings_never_panic(s in any::<String>()) {
        exercise(&s);
    }

    #[test]
    fn ascii_noise_never_panics(s in "[ -~\n]{0,200}") {
        exercise(&s);
    }

    #[test]
    fn token_soups_never_panic(s in token_soup()) {
        exercise(&s);
    }

    #[test]
    fn framed_token_soups_never_panic(s in framed_soup()) {
        exercise(&s);
    }

    #[test]
    fn mutated_programs_never_panic(s in mutated_program()) {
        exercise(&s);
    }
}

#[test]
fn diagnostics_are_capped_on_garbage() {
    let src = "$".repeat(100_000);
    let d = compile(&src).expect_err("garbage");
    assert_eq!(d.errors.len(), probserve_lang::diag::MAX_ERRORS);
    assert!(d.more > 0);
    let too_big = " ".repeat(probserve_lang::MAX_SOURCE_BYTES + 1);
    assert!(
        compile(&too_big)
            .expect_err("too big")
            .to_string()
            .contains("at most")
    );
}

#[test]
fn long_operator_chains_are_rejected_not_overflowed() {
    let chain = vec!["x"; 5000].join(" + ");
    let src = format!("model m {{ x ~ normal(0, 1); let a = {chain}; output a; }}");
    let d = compile(&src).expect_err("too deep");
    assert!(d.to_string().contains("too deeply nested"), "{d}");
    let nots = format!("model m {{ let a = {}true; output a; }}", "!".repeat(5000));
    assert!(compile(&nots).is_err());
    let ternary = format!(
        "model m {{ let a = {}1.0; output a; }}",
        "true ? 1.0 : ".repeat(2000)
    );
    assert!(compile(&ternary).is_err());
}

#[test]
fn mutation_fuzzing_reaches_the_executor() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = mutated_program();
    let mut compiled = 0;
    let mut bound = 0;
    for _ in 0..500 {
        let src = strategy.new_tree(&mut runner).expect("value").current();
        if let Ok(m) = compile(&src) {
            compiled += 1;
            if m.bind(&inputs_for(&m, 3, 3)).is_ok() {
                bound += 1;
            }
        }
    }
    // Enough mutated programs stay valid for the run-time half of the fuzzing to matter.
    assert!(
        compiled >= 50 && bound >= 25,
        "compiled {compiled}, bound {bound}"
    );
}
