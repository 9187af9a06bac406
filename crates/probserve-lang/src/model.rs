//! The public face of a compiled model: [`compile`], [`validate`], [`CompiledModel`]
//! and the descriptions of its data, latents and outputs.

use std::fmt;
use std::sync::Arc;

use crate::budget::{CompileBudget, CompileError};
use crate::diag::{DiagKind, Diagnostics, Sink, Span};
use crate::ir;

/// Element type of a data declaration or latent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    /// A real number (`f64`).
    Real,
    /// An integer (exact up to 2^53).
    Int,
    /// A boolean (reported as 0/1 in outputs).
    Bool,
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElemType::Real => "real",
            ElemType::Int => "int",
            ElemType::Bool => "bool",
        })
    }
}

/// The length rule of a data vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VecSize {
    /// `real[]` / `vector<real>`: any length, taken from the supplied data.
    Any,
    /// `real[8]`: exactly this length.
    Fixed(usize),
    /// `real[N]`: the length must equal the value of the `int` data `N`.
    Named(String),
    /// `real[len(x)]`: the length must equal the length of data vector `x`.
    SameAs(String),
}

/// Scalar or vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One value.
    Scalar,
    /// A vector with the given length rule.
    Vector(VecSize),
}

/// The declared type of a data field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataType {
    /// Element type.
    pub elem: ElemType,
    /// Scalar or vector.
    pub shape: Shape,
}

impl DataType {
    /// True for vectors.
    pub fn is_vector(&self) -> bool {
        matches!(self.shape, Shape::Vector(_))
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shape {
            Shape::Scalar => write!(f, "{}", self.elem),
            Shape::Vector(VecSize::Any) => write!(f, "{}[]", self.elem),
            Shape::Vector(VecSize::Fixed(n)) => write!(f, "{}[{n}]", self.elem),
            Shape::Vector(VecSize::Named(n)) => write!(f, "{}[{n}]", self.elem),
            Shape::Vector(VecSize::SameAs(n)) => write!(f, "{}[len({n})]", self.elem),
        }
    }
}

/// One `data name: type;` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DataDecl {
    /// Field name, as the request must supply it.
    pub name: String,
    /// Declared type.
    pub ty: DataType,
}

/// One latent (sampled, not observed) site of the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LatentInfo {
    /// Site name (addresses are `name` or `name[i]`).
    pub name: String,
    /// Value type.
    pub ty: ElemType,
    /// True for indexed sites (`z[i] ~ ...`).
    pub indexed: bool,
}

/// A description of a model, as [`validate`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The name after `model`.
    pub name: String,
    /// Data declarations in source order.
    pub data: Vec<DataDecl>,
    /// Latent sites in source order.
    pub latents: Vec<LatentInfo>,
    /// Declared outputs in order (indexed sites are expanded per request, see
    /// [`crate::BoundModel::output_labels`]).
    pub outputs: Vec<String>,
}

/// Everything compilation produced, shared by all bound models.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) info: ModelInfo,
    pub(crate) program: ir::Program,
    /// For each data declaration: its slot (scalar) or vector index (vector).
    pub(crate) data_index: Vec<u32>,
    /// Name of each indexed site array, by array id.
    pub(crate) array_names: Vec<String>,
    /// Name of each data vector, by vector index.
    pub(crate) vec_names: Vec<String>,
}

/// A checked and compiled model: immutable, `Send + Sync`, cheap to clone (an `Arc`).
///
/// Bind request data with [`CompiledModel::bind`] to get a runnable
/// [`crate::BoundModel`].
#[derive(Debug, Clone)]
pub struct CompiledModel {
    pub(crate) inner: Arc<Compiled>,
}

impl CompiledModel {
    /// The model's name (after `model`).
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// The data the model expects, in source order.
    pub fn data_decls(&self) -> &[DataDecl] {
        &self.inner.info.data
    }

    /// The declared outputs (indexed sites unexpanded: `theta`, not `theta[0]`).
    pub fn output_names(&self) -> &[String] {
        &self.inner.info.outputs
    }

    /// The latent sites.
    pub fn latents(&self) -> &[LatentInfo] {
        &self.inner.info.latents
    }

    /// A full description (what [`validate`] returns).
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }
}

/// Largest model source [`compile`] accepts.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Parses, checks and compiles `source`.
///
/// On failure the errors found are returned at once (the first
/// [`crate::diag::MAX_ERRORS`], the rest counted), each with line, column and a
/// rendered snippet.
pub fn compile(source: &str) -> Result<CompiledModel, Diagnostics> {
    match compile_with(source, &CompileBudget::unlimited()) {
        Ok(m) => Ok(m),
        Err(CompileError::Invalid(d)) => Err(d),
        // An unlimited budget never fires; say so rather than panic if it did.
        Err(e) => {
            let mut sink = Sink::new(source);
            sink.error(DiagKind::Invalid, Span::new(0, 0), e.to_string());
            Err(sink.finish())
        }
    }
}

/// [`compile`] under a time budget: the source size is checked before any work, and
/// the budget between phases and inside their loops, so compilation stops soon after
/// the deadline passes or the cancel token fires.
///
/// # Errors
/// [`CompileError::Invalid`] with the diagnostics; [`CompileError::OverBudget`] or
/// [`CompileError::Cancelled`] when the budget ran out first.
pub fn compile_with(source: &str, budget: &CompileBudget) -> Result<CompiledModel, CompileError> {
    let mut sink = Sink::with_budget(source, budget);
    if source.len() > MAX_SOURCE_BYTES {
        sink.error(
            DiagKind::Invalid,
            Span::new(0, 0),
            format!(
                "model source is {} bytes; at most {MAX_SOURCE_BYTES} are accepted",
                source.len()
            ),
        );
        return Err(CompileError::Invalid(sink.finish()));
    }
    let fail = |sink: Sink<'_>| {
        let (diagnostics, meter) = sink.split();
        meter.error().unwrap_or(CompileError::Invalid(diagnostics))
    };
    sink.meter().phase("lexing");
    let tokens = crate::lexer::lex(source, &mut sink);
    if sink.meter().check() {
        return Err(fail(sink));
    }
    sink.meter().phase("parsing");
    let ast = crate::parser::parse(source, &tokens, &mut sink);
    drop(tokens);
    // Semantic checks on a partly parsed program would report names from the broken
    // statements as undefined, so they run only on a clean parse.
    let Some(ast) = ast.filter(|_| !sink.has_errors() && !sink.meter().check()) else {
        return Err(fail(sink));
    };
    sink.meter().phase("checking");
    let checked = crate::check::check(&ast, &mut sink);
    if sink.has_errors() || sink.meter().check() {
        return Err(fail(sink));
    }
    let info = ModelInfo {
        name: ast.name.name.clone(),
        data: checked.data,
        latents: checked.latents,
        outputs: checked.output_names,
    };
    let mut program = checked.program;
    crate::fuse::fuse(&mut program.body);
    let vec_names = info
        .data
        .iter()
        .filter(|d| d.ty.is_vector())
        .map(|d| d.name.clone())
        .collect();
    Ok(CompiledModel {
        inner: Arc::new(Compiled {
            vec_names,
            info,
            array_names: checked.array_names,
            program,
            data_index: checked.data_index,
        }),
    })
}

/// Checks `source` like [`compile`] and describes the model.
pub fn validate(source: &str) -> Result<ModelInfo, Diagnostics> {
    compile(source).map(|m| m.inner.info.clone())
}

/// [`validate`] under a time budget (see [`compile_with`]).
///
/// # Errors
/// As [`compile_with`].
pub fn validate_with(source: &str, budget: &CompileBudget) -> Result<ModelInfo, CompileError> {
    compile_with(source, budget).map(|m| m.inner.info.clone())
}
