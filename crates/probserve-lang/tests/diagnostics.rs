//! Compile errors: every error kind, with line, column, message and snippet.

use probserve_lang::{DiagKind, Diagnostics, compile, validate};

/// Compiles `src` and asserts the errors, in order: (kind, line, column, message part).
fn check(src: &str, expected: &[(DiagKind, usize, usize, &str)]) -> Diagnostics {
    let d = match compile(src) {
        Ok(_) => panic!("expected errors, compiled fine:\n{src}"),
        Err(d) => d,
    };
    let got: Vec<_> = d
        .iter()
        .map(|e| (e.kind, e.line, e.column, e.message.clone()))
        .collect();
    assert_eq!(got.len(), expected.len(), "errors:\n{d}");
    for (g, e) in got.iter().zip(expected) {
        assert_eq!((g.0, g.1, g.2), (e.0, e.1, e.2), "error {g:?}\nall:\n{d}");
        assert!(g.3.contains(e.3), "message {:?} lacks {:?}", g.3, e.3);
    }
    d
}

#[test]
fn snippet_shows_line_and_caret() {
    let d = check(
        "model m {\n  data y: real;\n  y ~ normal(tmp, 1.0);\n}",
        &[(DiagKind::UndefinedName, 3, 14, "undefined name `tmp`")],
    );
    let e = &d.errors[0];
    assert_eq!(
        e.snippet,
        "  |\n3 |   y ~ normal(tmp, 1.0);\n  |              ^^^"
    );
    let text = d.to_string();
    assert!(text.contains("error: undefined name `tmp`"), "{text}");
    assert!(text.contains("--> line 3, column 14"), "{text}");
    assert!(text.ends_with("1 error"), "{text}");
}

#[test]
fn lex_errors() {
    check(
        "model m {\n  x ~ normal(0, 1) $;\n  y ~ normal(0, 1e);\n}",
        &[
            (DiagKind::Lex, 2, 20, "unexpected character `$`"),
            (DiagKind::Lex, 3, 17, "missing exponent"),
        ],
    );
    check(
        "model m { /* open",
        &[
            (DiagKind::Lex, 1, 11, "unterminated block comment"),
            (DiagKind::Syntax, 1, 18, "expected `}` to close the model"),
        ],
    );
}

#[test]
fn syntax_errors_are_recovered_per_statement() {
    check(
        "model m {\n  x ~ normal(0, 1)\n  let y = 2;\n  z ~ ;\n  for i in 0..3 { w[i] ~ normal(0, 1) }\n}",
        &[
            (DiagKind::Syntax, 2, 19, "expected `;`, found `let`"),
            (
                DiagKind::Syntax,
                4,
                7,
                "expected a distribution name, found `;`",
            ),
            (DiagKind::Syntax, 5, 38, "expected `;`, found `}`"),
        ],
    );
    check(
        "mdl m { }",
        &[(DiagKind::Syntax, 1, 1, "expected `model`, found `mdl`")],
    );
    check(
        "model m {\n  x ~ normal(0, 1);\n",
        &[(DiagKind::Syntax, 3, 1, "expected `}` to close the model")],
    );
    check(
        "model m { } extra",
        &[(
            DiagKind::Syntax,
            1,
            13,
            "unexpected text after the end of the model",
        )],
    );
    check(
        "model m { let a = (1 + ; }",
        &[(DiagKind::Syntax, 1, 24, "expected an expression, found `;`")],
    );
    check(
        "model m { data x: vector<text>; }",
        &[(DiagKind::Syntax, 1, 30, "expected `real`, `int` or `bool`")],
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!(
        "model m {{ let a = {}1{}; }}",
        "(".repeat(500),
        ")".repeat(500)
    );
    let d = compile(&src).expect_err("too deep");
    assert!(d.errors[0].message.contains("too deeply nested"), "{d}");
    let src = format!(
        "model m {{ {} }}",
        "if true { ".repeat(300) + &"}".repeat(300)
    );
    assert!(compile(&src).is_err());
    // Long prefix chains are read in a loop, not recursively.
    let src = format!("model m {{ let a = {}1; output a; }}", "-".repeat(10_000));
    assert!(compile(&src).is_ok());
}

#[test]
fn undefined_names_with_suggestions() {
    check(
        "model m {\n  mu ~ normal(0, 1);\n  x ~ normal(mo, sigma);\n  output x, nope;\n}",
        &[
            (DiagKind::UndefinedName, 3, 14, "did you mean `mu`?"),
            (DiagKind::UndefinedName, 3, 18, "undefined name `sigma`"),
            (DiagKind::UndefinedName, 4, 13, "undefined name `nope`"),
        ],
    );
    // Names declared inside a block are not visible after it.
    check(
        "model m {\n  if true { let a = 1.0; }\n  let b = a;\n}",
        &[(DiagKind::UndefinedName, 3, 11, "undefined name `a`")],
    );
}

#[test]
fn duplicates() {
    check(
        "model m {\n  data y: real;\n  data y: int;\n  let a = 1;\n  let a = 2;\n  y ~ normal(0, 1);\n  y ~ normal(1, 1);\n  output a, a;\n}",
        &[
            (
                DiagKind::Duplicate,
                3,
                8,
                "`y` is already declared (line 2)",
            ),
            (
                DiagKind::Duplicate,
                5,
                7,
                "`a` is already declared (line 4)",
            ),
            (
                DiagKind::Duplicate,
                7,
                3,
                "`y` is already observed (line 6)",
            ),
            (DiagKind::Duplicate, 8, 13, "`a` is already an output"),
        ],
    );
}

#[test]
fn type_mismatches() {
    check(
        "model m {\n  data flag: bool;\n  data k: int;\n  b ~ bernoulli(0.5);\n  let q = b + 1;\n  if 1 { }\n  let c = flag ? 1.0 : true;\n  x ~ normal(0, 1);\n  let i = k[0];\n  k ~ normal(x, 1);\n  flag ~ normal(0, 1);\n}",
        &[
            (
                DiagKind::TypeMismatch,
                5,
                11,
                "`+` needs numbers, found bool and int",
            ),
            (
                DiagKind::TypeMismatch,
                6,
                6,
                "an `if` condition must be a bool; found int",
            ),
            (
                DiagKind::TypeMismatch,
                7,
                11,
                "different types: real and bool",
            ),
            (
                DiagKind::TypeMismatch,
                9,
                11,
                "`k` is a int and cannot be indexed",
            ),
            (
                DiagKind::TypeMismatch,
                11,
                3,
                "`flag` is bool data but `normal` produces real values",
            ),
        ],
    );
    check(
        "model m {\n  data y: int[];\n  for i in 0..len(y) { y[i] ~ normal(0, 1); }\n  x ~ normal(0, 1);\n  let j = y[x];\n  n ~ poisson(3.0);\n  z ~ binomial(2.5, 0.3);\n  w ~ categorical(x);\n}",
        &[
            (
                DiagKind::TypeMismatch,
                5,
                13,
                "an index must be an int, found real",
            ),
            (
                DiagKind::TypeMismatch,
                7,
                16,
                "parameter `n` of `binomial` must be int, found real",
            ),
            (
                DiagKind::TypeMismatch,
                8,
                19,
                "parameter `probs` of `categorical` must be a real data vector",
            ),
        ],
    );
}

#[test]
fn arity_and_unknown_functions() {
    check(
        "model m {\n  x ~ normal(0);\n  y ~ nromal(0, 1);\n  let a = pow(2.0);\n  let b = foo(1);\n  let c = normal(0, 1);\n  let d = max(1, 2, 3);\n}",
        &[
            (
                DiagKind::Arity,
                2,
                7,
                "`normal` takes 2 arguments (mu, sigma), found 1",
            ),
            (
                DiagKind::UnknownFunction,
                3,
                7,
                "unknown distribution `nromal`; did you mean `normal`?",
            ),
            (DiagKind::Arity, 4, 11, "`pow` takes 2 arguments, found 1"),
            (DiagKind::UnknownFunction, 5, 11, "unknown function `foo`"),
            (
                DiagKind::UnknownFunction,
                6,
                11,
                "`normal` is a distribution",
            ),
            (
                DiagKind::Arity,
                7,
                11,
                "`max` takes 1 data vector or 2 numbers, found 3",
            ),
        ],
    );
}

#[test]
fn observing_names_that_are_not_data() {
    check(
        "model m {\n  data y: real[];\n  let a = 1.0;\n  a ~ normal(0, 1);\n  t ~ normal(0, 1);\n  t ~ normal(1, 1);\n  y ~ normal(0, 1);\n  for i in 0..3 { i ~ normal(0, 1); z ~ normal(0, 1); }\n  a[0] ~ normal(0, 1);\n}",
        &[
            (
                DiagKind::BadTarget,
                4,
                3,
                "cannot observe `a`: it is a `let` value, not data",
            ),
            (DiagKind::BadTarget, 6, 3, "`t` is already sampled (line 5)"),
            (DiagKind::BadTarget, 7, 3, "`y` is a data vector"),
            (DiagKind::BadTarget, 8, 19, "it is a loop variable"),
            (
                DiagKind::BadTarget,
                8,
                37,
                "`z` is sampled inside a `for` loop",
            ),
            (DiagKind::BadTarget, 9, 3, "`a` is not a data vector"),
        ],
    );
}

#[test]
fn misplaced_statements() {
    check(
        "model m {\n  for i in 0..2 {\n    data x: real;\n  }\n  if true { output q; }\n}",
        &[
            (DiagKind::Misplaced, 3, 5, "only allowed at the top level"),
            (DiagKind::Misplaced, 5, 13, "only allowed at the top level"),
        ],
    );
}

#[test]
fn indexed_outputs_need_data_sized_loops() {
    check(
        "model m {\n  data n: int;\n  k ~ poisson(3.0);\n  for i in 0..k { z[i] ~ normal(0, 1); }\n  output z;\n}",
        &[(DiagKind::Invalid, 5, 10, "cannot output `z`")],
    );
    // A loop bound from data, a data-only `let` or `len` sizes the output.
    let ok = "model m {\n  data y: real[];\n  let n = len(y) - 1;\n  for i in 0..n { z[i] ~ normal(0, 1); }\n  output z;\n}";
    assert!(validate(ok).is_ok());
}

#[test]
fn sizes_of_data_vectors() {
    check(
        "model m {\n  data x: real[N];\n  data r: real;\n  data y: real[r];\n  data w: real[len(q)];\n}",
        &[
            (DiagKind::UndefinedName, 2, 16, "undefined size `N`"),
            (
                DiagKind::TypeMismatch,
                4,
                16,
                "must be an `int` data declaration",
            ),
            (DiagKind::UndefinedName, 5, 20, "undefined name `q`"),
        ],
    );
}

#[test]
fn validate_describes_the_model() {
    let info =
        validate(probserve_lang::builtin_model("eight_schools").expect("model")).expect("valid");
    assert_eq!(info.name, "eight_schools");
    let data: Vec<String> = info
        .data
        .iter()
        .map(|d| format!("{}: {}", d.name, d.ty))
        .collect();
    assert_eq!(data, ["y: real[8]", "sigma: real[8]"]);
    let latents: Vec<(&str, bool)> = info
        .latents
        .iter()
        .map(|l| (l.name.as_str(), l.indexed))
        .collect();
    assert_eq!(
        latents,
        [("mu", false), ("tau", false), ("theta_raw", true)]
    );
    assert_eq!(info.outputs, ["mu", "tau", "theta"]);
}

#[test]
fn builtin_models_compile() {
    let models = probserve_lang::builtin_models();
    assert_eq!(models.len(), 4);
    for (name, version, src) in models {
        let m = compile(src).unwrap_or_else(|d| panic!("{name}: {d}"));
        assert_eq!(m.name(), *name);
        assert!(semver_like(version));
    }
}

fn semver_like(v: &str) -> bool {
    v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok())
}
