//! Every model in `docs/language.md` compiles, and the error example there is what
//! the compiler prints.

use probserve_lang::compile;

const DOC: &str = include_str!("../../../docs/language.md");

/// Fenced blocks without a language tag (tagged ones, like the grammar, are prose).
fn code_blocks() -> Vec<&'static str> {
    DOC.split("```")
        .skip(1)
        .step_by(2)
        .filter(|b| b.starts_with('\n'))
        .map(str::trim)
        .collect()
}

#[test]
fn documented_models_compile() {
    let models: Vec<&str> = code_blocks()
        .into_iter()
        .filter(|b| b.starts_with("model"))
        .collect();
    assert!(models.len() >= 6, "found {} models", models.len());
    for m in models {
        if let Err(d) = compile(m) {
            panic!("documented model does not compile:\n{m}\n{d}");
        }
    }
}

#[test]
fn documented_error_matches_the_compiler() {
    let src = "model temperature_sensor {\n  data reading: real;\n\n  temp ~ normal(20.0, 5.0);\n  reading ~ normal(tmp, 1.0);\n  output temp;\n}";
    let rendered = compile(src).expect_err("typo").to_string();
    let documented = code_blocks()
        .into_iter()
        .find(|b| b.starts_with("error: undefined name"))
        .expect("error example in docs");
    assert_eq!(rendered, documented);
}
