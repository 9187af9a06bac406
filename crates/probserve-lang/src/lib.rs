//! The probserve model language: parser, semantic checks and compilation onto probserve-runtime.
//!
//! A model is source text such as
//!
//! ```text
//! model temperature_sensor {
//!   data reading: real;
//!   temp ~ normal(20.0, 5.0);
//!   reading ~ normal(temp, 1.0);   // data on the left of `~` is observed
//!   output temp;
//! }
//! ```
//!
//! [`compile`] turns it into an immutable [`CompiledModel`] (all names resolved to slot
//! indices, site names interned); [`CompiledModel::bind`] checks a request's data,
//! lowers the program onto it (everything the data decides is decided once: see
//! `plan`) and returns a [`BoundModel`], which implements the runtime's `Model` trait so
//! every inference algorithm runs it (a run is the `vm` executing the plan). The
//! language itself is described in `docs/language.md`.
//!
//! ```
//! use probserve_lang::{compile, InputValue, Inputs};
//! use probserve_runtime::{importance_sampling, ImportanceConfig};
//!
//! let model = compile(probserve_lang::builtin_model("temperature_sensor").unwrap()).unwrap();
//! let inputs = Inputs::from([("reading".to_string(), InputValue::Real(22.0))]);
//! let bound = model.bind(&inputs).unwrap();
//! let config = ImportanceConfig { particles: 2000, seed: 7, ..Default::default() };
//! let result = importance_sampling(&bound, &config).unwrap();
//! let temp = &result.summaries()[0];
//! assert!((temp.mean - 21.923).abs() < 0.5);
//! ```

mod ast;
mod bind;
mod bound;
mod budget;
mod builtins;
mod check;
pub mod diag;
mod draw;
mod errors;
mod fuse;
mod ir;
mod lexer;
mod model;
mod parser;
mod plan;
mod vm;

pub use bind::{InputError, InputValue, Inputs, Lowering, MAX_OUTPUT_WIDTH};
pub use bound::{BoundModel, DEFAULT_STEP_LIMIT};
pub use budget::{CompileBudget, CompileError};
pub use diag::{DiagKind, Diagnostic, Diagnostics, Span};
pub use draw::Draw;
pub use model::{
    CompiledModel, DataDecl, DataType, ElemType, LatentInfo, MAX_SOURCE_BYTES, ModelInfo, Shape,
    VecSize, compile, compile_with, validate, validate_with,
};
pub use plan::StaticCost;

/// The built-in example models: `(name, version, source)`.
pub fn builtin_models() -> &'static [(&'static str, &'static str, &'static str)] {
    BUILTIN_MODELS
}

/// The source of the built-in model called `name`, if there is one.
pub fn builtin_model(name: &str) -> Option<&'static str> {
    BUILTIN_MODELS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, s)| *s)
}

const BUILTIN_MODELS: &[(&str, &str, &str)] = &[
    (
        "temperature_sensor",
        "1.0.0",
        include_str!("../models/temperature_sensor.pm"),
    ),
    (
        "linear_regression",
        "1.0.0",
        include_str!("../models/linear_regression.pm"),
    ),
    (
        "beta_binomial",
        "1.0.0",
        include_str!("../models/beta_binomial.pm"),
    ),
    (
        "eight_schools",
        "1.0.0",
        include_str!("../models/eight_schools.pm"),
    ),
];
