//! Binding request data to a compiled model: validation, conversion and the
//! bind-time values (reductions, output lengths, categorical tables).

use std::collections::BTreeMap;
use std::sync::Arc;

use probserve_runtime::{CancelToken, Categorical, ModelError};

use crate::BoundModel;
use crate::builtins::DistKind;
use crate::errors::{self, index};
use crate::ir::{DerivedEx, Ex, OutputItem, for_each_dist};
use crate::model::{Compiled, CompiledModel, DataType, ElemType, Shape, VecSize};
use crate::plan;

/// Data bound for one request, converted to `f64`.
#[derive(Debug)]
pub(crate) struct BoundData {
    /// Values of the scalar data slots.
    pub(crate) scalars: Vec<f64>,
    /// Data vectors by vector index.
    pub(crate) vecs: Vec<Vec<f64>>,
    /// Bind-time reductions by derived index.
    pub(crate) derived: Vec<f64>,
}

/// Request data: field name to value.
pub type Inputs = BTreeMap<String, InputValue>;

/// One supplied data value.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A real scalar.
    Real(f64),
    /// An integer scalar (also accepted where a real is declared).
    Int(i64),
    /// A boolean scalar.
    Bool(bool),
    /// A real vector.
    RealVec(Vec<f64>),
    /// An integer vector (also accepted where a real vector is declared).
    IntVec(Vec<i64>),
    /// A boolean vector.
    BoolVec(Vec<bool>),
}

impl InputValue {
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            InputValue::Real(_) => "real",
            InputValue::Int(_) => "int",
            InputValue::Bool(_) => "bool",
            InputValue::RealVec(_) => "real vector",
            InputValue::IntVec(_) => "int vector",
            InputValue::BoolVec(_) => "bool vector",
        }
    }
}

/// A problem with one input field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A declared field was not supplied.
    #[error("missing field `{field}` (declared as {expected})")]
    Missing {
        /// Field name.
        field: String,
        /// Declared type.
        expected: DataType,
    },
    /// A supplied field is not declared by the model.
    #[error("unknown field `{field}`: the model declares no such data")]
    Unknown {
        /// Field name.
        field: String,
    },
    /// The value has the wrong type.
    #[error("field `{field}` must be {expected}, got {got}")]
    WrongType {
        /// Field name.
        field: String,
        /// Declared type.
        expected: DataType,
        /// The supplied value's type.
        got: &'static str,
    },
    /// A vector's length does not match its declared size.
    #[error("field `{field}` must have length {expected}{}, got {got}", size_name.as_ref().map(|n| format!(" (= {n})")).unwrap_or_default())]
    WrongLength {
        /// Field name.
        field: String,
        /// Required length.
        expected: usize,
        /// Supplied length.
        got: usize,
        /// The size data name, for `real[N]`.
        size_name: Option<String>,
    },
    /// A value is NaN or infinite.
    #[error("field `{field}`{} is not finite", index.map(|i| format!("[{i}]")).unwrap_or_default())]
    NonFinite {
        /// Field name.
        field: String,
        /// Element index for vectors.
        index: Option<usize>,
    },
    /// Any other problem with a field (a negative size, an invalid probability table, ...).
    #[error("field `{field}`: {message}")]
    Invalid {
        /// Field (or output) name.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl InputError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            InputError::Missing { field, .. }
            | InputError::Unknown { field }
            | InputError::WrongType { field, .. }
            | InputError::WrongLength { field, .. }
            | InputError::NonFinite { field, .. }
            | InputError::Invalid { field, .. } => field,
        }
    }
}

/// Largest number of values one run may output, all outputs together. The output
/// labels and registers are built while binding, before any memory budget of the
/// caller's applies, so the total is bounded here; a width this large already
/// needs tens of megabytes per response (a summary per value).
pub const MAX_OUTPUT_WIDTH: usize = 1 << 18;

/// Integers beyond this magnitude cannot be represented exactly as `f64`.
const MAX_EXACT_INT: i64 = 1 << 53;

/// How a bound model's program is lowered for execution.
///
/// Not a stable API: it exists so that tests can check the optimizing lowering
/// against the plain one on the same program and data.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowering {
    /// Data folded into constants, small loops unrolled, fused observation loops and
    /// bind-time distributions (what [`CompiledModel::bind`] uses).
    Optimized,
    /// A direct translation of every statement and expression, evaluated at run time.
    Plain,
}

impl CompiledModel {
    /// Validates `inputs` against the data declarations and binds them, giving a model
    /// the runtime's inference algorithms can run. Every problem is reported.
    pub fn bind(&self, inputs: &Inputs) -> Result<BoundModel, Vec<InputError>> {
        self.bind_with(inputs, Lowering::Optimized)
    }

    /// [`CompiledModel::bind`] with a chosen lowering (for differential tests).
    #[doc(hidden)]
    pub fn bind_with(
        &self,
        inputs: &Inputs,
        lowering: Lowering,
    ) -> Result<BoundModel, Vec<InputError>> {
        let c = &self.inner;
        let p = &c.program;
        let mut errors = Vec::new();
        for field in inputs.keys() {
            if !c.info.data.iter().any(|d| &d.name == field) {
                errors.push(InputError::Unknown {
                    field: field.clone(),
                });
            }
        }
        let n_vecs = c.info.data.iter().filter(|d| d.ty.is_vector()).count();
        let mut scalars = vec![f64::NAN; p.n_data_slots as usize];
        let mut vecs: Vec<Vec<f64>> = vec![Vec::new(); n_vecs];
        for (decl, &index) in c.info.data.iter().zip(&c.data_index) {
            let Some(value) = inputs.get(&decl.name) else {
                errors.push(InputError::Missing {
                    field: decl.name.clone(),
                    expected: decl.ty.clone(),
                });
                continue;
            };
            match convert(&decl.name, &decl.ty, value) {
                Ok(Converted::Scalar(x)) => {
                    if let Some(s) = scalars.get_mut(index as usize) {
                        *s = x;
                    }
                }
                Ok(Converted::Vector(v)) => {
                    if let Some(s) = vecs.get_mut(index as usize) {
                        *s = v;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            check_sizes(self, &scalars, &vecs, &mut errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let derived = p
            .derived
            .iter()
            .map(|d| match *d {
                DerivedEx::Reduce(r, v) => Ok(r.apply(vec_at(&vecs, v))),
                DerivedEx::Dot(a, b) => {
                    let (x, y) = (vec_at(&vecs, a), vec_at(&vecs, b));
                    if x.len() == y.len() {
                        Ok(x.iter().zip(y).map(|(a, b)| a * b).sum())
                    } else {
                        Err(InputError::Invalid {
                            field: vec_name(self, b).to_string(),
                            message: format!(
                                "`dot({}, {})` needs equal lengths, got {} and {}",
                                vec_name(self, a),
                                vec_name(self, b),
                                x.len(),
                                y.len()
                            ),
                        })
                    }
                }
            })
            .filter_map(|r| r.map_err(|e| errors.push(e)).ok())
            .collect();
        let data = BoundData {
            scalars,
            vecs,
            derived,
        };
        for_each_dist(&p.body, &mut |d| {
            if d.kind != DistKind::Categorical {
                return;
            }
            let probs = d.vec_arg.map_or(&[][..], |v| vec_at(&data.vecs, v));
            if let Err(e) = Categorical::new(probs) {
                let field = vec_name(self, d.vec_arg.unwrap_or(u32::MAX)).to_string();
                if !errors.iter().any(|x| x.field() == field) {
                    errors.push(InputError::Invalid {
                        field,
                        message: format!("not a valid probability table: {e}"),
                    });
                }
            }
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        // Sizes first, labels after: nothing proportional to the width is built
        // before the total is known to be within MAX_OUTPUT_WIDTH.
        let mut extents = Vec::with_capacity(p.outputs.len());
        let mut width = 0usize;
        for item in &p.outputs {
            match item {
                OutputItem::Scalar { .. } => {
                    extents.push(0);
                    width = width.saturating_add(1);
                }
                OutputItem::Array {
                    name, extents: ex, ..
                } => match eval_extent(c, &data, ex) {
                    Ok(n) if n <= MAX_OUTPUT_WIDTH => {
                        extents.push(n);
                        width = width.saturating_add(n);
                    }
                    Ok(n) => errors.push(InputError::Invalid {
                        field: name.clone(),
                        message: format!(
                            "output `{name}` would have {n} elements (at most \
                             {MAX_OUTPUT_WIDTH} values per run in all outputs)"
                        ),
                    }),
                    Err(msg) => errors.push(InputError::Invalid {
                        field: name.clone(),
                        message: format!("cannot size output `{name}`: {msg}"),
                    }),
                },
            }
        }
        if errors.is_empty() && width > MAX_OUTPUT_WIDTH {
            let sizes: Vec<String> = p
                .outputs
                .iter()
                .zip(&extents)
                .filter(|(_, n)| **n > 0)
                .map(|(item, n)| match item {
                    OutputItem::Scalar { name, .. } | OutputItem::Array { name, .. } => {
                        format!("`{name}` {n}")
                    }
                })
                .collect();
            errors.push(InputError::Invalid {
                field: "outputs".into(),
                message: format!(
                    "the outputs would have {width} values per run ({}), at most \
                     {MAX_OUTPUT_WIDTH}",
                    sizes.join(", ")
                ),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut labels = Vec::with_capacity(width);
        for (item, &n) in p.outputs.iter().zip(&extents) {
            match item {
                OutputItem::Scalar { name, .. } => labels.push(name.clone()),
                OutputItem::Array { name, .. } => {
                    labels.extend((0..n).map(|i| format!("{name}[{i}]")));
                }
            }
        }
        let plan = plan::lower(c, &data, &extents, lowering.into());
        Ok(BoundModel {
            compiled: Arc::clone(&self.inner),
            data: Arc::new(data),
            plan: Arc::new(plan),
            labels: labels.into(),
            step_limit: crate::DEFAULT_STEP_LIMIT,
            cancel: CancelToken::never(),
            max_sites: usize::MAX,
            max_array_elems: usize::MAX,
        })
    }
}

/// The length of an indexed output: the largest of its data-only extents.
fn eval_extent(c: &Compiled, data: &BoundData, extents: &[Ex]) -> Result<usize, String> {
    let mut n = 0usize;
    for e in extents {
        let v = eval_data(c, data, e).map_err(|e| e.to_string())?;
        if v.is_finite() && v > 0.0 {
            n = n.max(v as usize);
        }
    }
    Ok(n)
}

/// Evaluates a data-only expression (constants, data, bind-time reductions).
fn eval_data(c: &Compiled, data: &BoundData, e: &Ex) -> Result<f64, ModelError> {
    let ev = |e: &Ex| eval_data(c, data, e);
    Ok(match e {
        Ex::Const(x) => *x,
        Ex::Slot(s) => data.scalars.get(*s as usize).copied().unwrap_or(f64::NAN),
        Ex::Derived(d) => data.derived.get(*d as usize).copied().unwrap_or(f64::NAN),
        Ex::VecElem(v, i) => {
            let i = ev(i)?;
            match vec_at(&data.vecs, *v).get(index(i)) {
                Some(x) => *x,
                None => return Err(errors::vec_index(c, data, *v, i)),
            }
        }
        Ex::ArrElem(..) => f64::NAN,
        Ex::Call1(f, a) => f.apply(ev(a)?),
        Ex::Call2(f, a, b) => f.apply(ev(a)?, ev(b)?),
        Ex::And(a, b) => {
            if ev(a)? != 0.0 {
                ev(b)?
            } else {
                0.0
            }
        }
        Ex::Or(a, b) => {
            if ev(a)? != 0.0 {
                1.0
            } else {
                ev(b)?
            }
        }
        Ex::Cond(k, a, b) => {
            if ev(k)? != 0.0 {
                ev(a)?
            } else {
                ev(b)?
            }
        }
    })
}

enum Converted {
    Scalar(f64),
    Vector(Vec<f64>),
}

fn convert(field: &str, ty: &DataType, value: &InputValue) -> Result<Converted, InputError> {
    let wrong = || InputError::WrongType {
        field: field.to_string(),
        expected: ty.clone(),
        got: value.type_name(),
    };
    let non_finite = |index| InputError::NonFinite {
        field: field.to_string(),
        index,
    };
    let int = |x: i64, index: Option<usize>| {
        // `unsigned_abs`: `i64::MIN.abs()` wraps (or panics) and would pass.
        if x.unsigned_abs() <= MAX_EXACT_INT.unsigned_abs() {
            Ok(x as f64)
        } else {
            Err(InputError::Invalid {
                field: field.to_string(),
                message: format!(
                    "integer{} {x} is too large (at most 2^53 in magnitude)",
                    index.map(|i| format!(" at [{i}]")).unwrap_or_default()
                ),
            })
        }
    };
    let bool01 = |b: bool| f64::from(u8::from(b));
    match (&ty.shape, ty.elem, value) {
        (Shape::Scalar, ElemType::Real, InputValue::Real(x)) => {
            if x.is_finite() {
                Ok(Converted::Scalar(*x))
            } else {
                Err(non_finite(None))
            }
        }
        (Shape::Scalar, ElemType::Real | ElemType::Int, InputValue::Int(x)) => {
            int(*x, None).map(Converted::Scalar)
        }
        (Shape::Scalar, ElemType::Bool, InputValue::Bool(b)) => Ok(Converted::Scalar(bool01(*b))),
        (Shape::Vector(_), ElemType::Real, InputValue::RealVec(v)) => {
            match v.iter().position(|x| !x.is_finite()) {
                Some(i) => Err(non_finite(Some(i))),
                None => Ok(Converted::Vector(v.clone())),
            }
        }
        (Shape::Vector(_), ElemType::Real | ElemType::Int, InputValue::IntVec(v)) => v
            .iter()
            .enumerate()
            .map(|(i, x)| int(*x, Some(i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Converted::Vector),
        (Shape::Vector(_), ElemType::Bool, InputValue::BoolVec(v)) => {
            Ok(Converted::Vector(v.iter().map(|b| bool01(*b)).collect()))
        }
        _ => Err(wrong()),
    }
}

fn check_sizes(
    m: &CompiledModel,
    scalars: &[f64],
    vecs: &[Vec<f64>],
    errors: &mut Vec<InputError>,
) {
    let c = &m.inner;
    for (decl, &index) in c.info.data.iter().zip(&c.data_index) {
        let Shape::Vector(size) = &decl.ty.shape else {
            continue;
        };
        let got = vec_at(vecs, index).len();
        let (expected, size_name) = match size {
            VecSize::Any => continue,
            VecSize::Fixed(n) => (*n, None),
            VecSize::Named(n) => {
                let Some((d, &slot)) = c
                    .info
                    .data
                    .iter()
                    .zip(&c.data_index)
                    .find(|(d, _)| &d.name == n)
                else {
                    continue;
                };
                let value = scalars.get(slot as usize).copied().unwrap_or(f64::NAN);
                if value < 0.0 || !value.is_finite() {
                    errors.push(InputError::Invalid {
                        field: d.name.clone(),
                        message: format!(
                            "`{}` is the length of `{}` and cannot be negative (got {value})",
                            d.name, decl.name
                        ),
                    });
                    continue;
                }
                (value as usize, Some(n.clone()))
            }
            VecSize::SameAs(n) => {
                let Some((_, &v)) = c
                    .info
                    .data
                    .iter()
                    .zip(&c.data_index)
                    .find(|(d, _)| &d.name == n)
                else {
                    continue;
                };
                (vec_at(vecs, v).len(), Some(format!("len({n})")))
            }
        };
        if got != expected {
            errors.push(InputError::WrongLength {
                field: decl.name.clone(),
                expected,
                got,
                size_name,
            });
        }
    }
}

fn vec_at(vecs: &[Vec<f64>], v: u32) -> &[f64] {
    vecs.get(v as usize).map_or(&[], Vec::as_slice)
}

fn vec_name(m: &CompiledModel, v: u32) -> &str {
    m.inner
        .vec_names
        .get(v as usize)
        .map_or("?", String::as_str)
}
