//! The data of a generated program: its `data` declarations, request inputs that fit
//! them, and what the generator knows about them (the values of scalars, the lengths
//! and value ranges of vectors), with the generator's description of scalar names
//! ([`Var`]: type, kind and range).

use probserve_lang::{InputValue, Inputs};

use super::Tape;
use super::syntax::{Stmt, Ty, render_block};

/// The size part of a data declaration.
#[derive(Debug, Clone, PartialEq)]
pub enum Size {
    Scalar,
    /// `T[]`.
    Any,
    /// `vector<real>`.
    VectorReal,
    /// `T[8]`.
    Fixed(usize),
    /// `T[N]` for an int data `N`.
    Named(String),
    /// `T[len(x)]`.
    LenOf(String),
}

/// `data name: type;`, written after the statements when `at_end` (declarations are
/// hoisted).
#[derive(Debug, Clone)]
pub struct DataDecl {
    pub name: String,
    pub elem: Ty,
    pub size: Size,
    pub at_end: bool,
}

impl DataDecl {
    /// The declared type; with `generic`, sizes are written `K`, `N` and `len`.
    pub fn ty(&self, generic: bool) -> String {
        let e = self.elem.name();
        match &self.size {
            Size::Scalar => e.to_string(),
            Size::Any => format!("{e}[]"),
            Size::VectorReal => "vector<real>".to_string(),
            Size::Fixed(_) if generic => format!("{e}[K]"),
            Size::Named(_) if generic => format!("{e}[N]"),
            Size::LenOf(_) if generic => format!("{e}[len]"),
            Size::Fixed(n) => format!("{e}[{n}]"),
            Size::Named(n) => format!("{e}[{n}]"),
            Size::LenOf(x) => format!("{e}[len({x})]"),
        }
    }
}

/// What is known about a value: a real > 0, a real in (0, 1), an int ≥ 0, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Any,
    Pos,
    Unit,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Data,
    Let,
    Latent,
    LoopVar,
}

/// A scalar name; `stat` when its value is computed from data only, `known` the value
/// of int data and of the `let`s of loop bounds.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub ty: Ty,
    pub kind: Kind,
    pub sign: Sign,
    pub stat: bool,
    pub known: Option<i64>,
}

impl Var {
    pub fn new(name: &str, ty: Ty, kind: Kind, sign: Sign) -> Var {
        let (name, stat) = (name.to_string(), kind == Kind::Data);
        Var {
            name,
            ty,
            kind,
            sign,
            stat,
            known: None,
        }
    }
}

/// A data vector; `observed` once a loop observes its elements.
#[derive(Debug, Clone)]
pub struct DataVec {
    pub name: String,
    pub elem: Ty,
    pub len: usize,
    pub sign: Sign,
    pub observed: bool,
}

/// The data of a generated program: its declarations, request inputs that fit them,
/// and what the generator knows about them (scalar values, vector lengths and ranges).
#[derive(Debug, Default)]
pub struct Data {
    pub decls: Vec<DataDecl>,
    pub inputs: Inputs,
    pub scalars: Vec<Var>,
    pub vecs: Vec<DataVec>,
    next: usize,
}

impl Data {
    /// Declares `name` and supplies `values` (one for a scalar; bools as 0 and 1).
    /// Integral reals are sometimes supplied as ints, and some declarations are written
    /// after the statements.
    fn declare(
        &mut self,
        t: &mut Tape<'_>,
        prefix: &str,
        elem: Ty,
        size: Size,
        values: Vec<f64>,
    ) -> String {
        self.next += 1;
        let name = format!("{prefix}{}", self.next);
        let integral = values.iter().all(|x| x.fract() == 0.0);
        let as_int = elem == Ty::Int || (elem == Ty::Real && integral && t.chance(30));
        let first = values.first().copied().unwrap_or(0.0);
        let input = match (size == Size::Scalar, elem) {
            (true, Ty::Bool) => InputValue::Bool(first != 0.0),
            (true, _) if as_int => InputValue::Int(first as i64),
            (true, _) => InputValue::Real(first),
            (false, Ty::Bool) => InputValue::BoolVec(values.iter().map(|&x| x != 0.0).collect()),
            (false, _) if as_int => InputValue::IntVec(values.iter().map(|&x| x as i64).collect()),
            (false, _) => InputValue::RealVec(values),
        };
        let at_end = t.chance(10);
        self.inputs.insert(name.clone(), input);
        self.decls.push(DataDecl {
            name: name.clone(),
            elem,
            size,
            at_end,
        });
        name
    }

    /// A value of type `ty` in the range `sign` (bools as 0 and 1).
    pub fn value(t: &mut Tape<'_>, ty: Ty, sign: Sign) -> f64 {
        match (ty, sign) {
            (Ty::Bool, _) => f64::from(t.below(2)),
            (Ty::Int, Sign::Count) => f64::from(t.below(13)),
            (Ty::Int, _) => f64::from(t.below(16)) - 3.0,
            (Ty::Real, Sign::Pos) => f64::from(t.below(20) + 1) / 4.0,
            (Ty::Real, Sign::Unit) => f64::from(t.below(19) + 1) / 20.0,
            (Ty::Real, _) => f64::from(t.below(41)) / 4.0 - 5.0,
        }
    }

    /// A new scalar of type `ty` with a value in the range `sign`.
    pub fn new_scalar(&mut self, t: &mut Tape<'_>, ty: Ty, sign: Sign) -> String {
        let x = Data::value(t, ty, sign);
        self.scalar(t, ty, sign, x)
    }

    /// A new scalar with value `x`.
    pub fn scalar(&mut self, t: &mut Tape<'_>, ty: Ty, sign: Sign, x: f64) -> String {
        let name = self.declare(t, "d", ty, Size::Scalar, vec![x]);
        let sign = match ty {
            Ty::Int if x >= 0.0 => Sign::Count,
            Ty::Int => Sign::Any,
            _ => sign,
        };
        let mut var = Var::new(&name, ty, Kind::Data, sign);
        var.known = (ty == Ty::Int).then_some(x as i64);
        self.scalars.push(var);
        name
    }

    /// A new vector of `len` values in the range `sign`.
    pub fn vector(
        &mut self,
        t: &mut Tape<'_>,
        elem: Ty,
        sign: Sign,
        len: usize,
        size: Size,
    ) -> usize {
        let values = (0..len).map(|_| Data::value(t, elem, sign)).collect();
        let name = self.declare(t, "x", elem, size, values);
        let observed = false;
        self.vecs.push(DataVec {
            name,
            elem,
            len,
            sign,
            observed,
        });
        self.vecs.len() - 1
    }

    /// A vector of random length, declared `T[]`, `T[8]`, `T[N]`, `T[len(x)]` or
    /// `vector<real>`.
    pub fn generic_vec(&mut self, t: &mut Tape<'_>, elem: Ty) -> usize {
        let sign = match elem {
            Ty::Int => Sign::Count,
            Ty::Bool => Sign::Any,
            Ty::Real => *t.pick(&[Sign::Any, Sign::Pos, Sign::Unit]),
        };
        let len = t.below_usize(13);
        let size = match t.below(6) {
            0 if elem == Ty::Real => Size::VectorReal,
            0 | 1 => Size::Any,
            2 => {
                let len = *t.pick(&[8, 3, 1, 0]);
                return self.vector(t, elem, sign, len, Size::Fixed(len));
            }
            3 | 4 if !self.vecs.is_empty() => {
                let k = t.below_usize(self.vecs.len());
                let (name, len) = (self.vecs[k].name.clone(), self.vecs[k].len);
                return self.vector(t, elem, sign, len, Size::LenOf(name));
            }
            _ => {
                let known = Some(len as i64);
                match self.scalars.iter().find(|v| v.known == known) {
                    Some(v) if t.chance(50) => Size::Named(v.name.clone()),
                    _ => Size::Named(self.scalar(t, Ty::Int, Sign::Count, len as f64)),
                }
            }
        };
        self.vector(t, elem, sign, len, size)
    }

    /// A valid categorical table (non-negative weights with a positive sum).
    pub fn weights(&mut self, t: &mut Tape<'_>) -> usize {
        let positive =
            (self.vecs.iter()).position(|v| v.len > 0 && matches!(v.sign, Sign::Pos | Sign::Unit));
        match positive {
            Some(k) if t.chance(50) => return k,
            _ => {}
        }
        let len = 1 + t.below_usize(5);
        let mut w: Vec<f64> = (0..len)
            .map(|_| *t.pick(&[1.0, 0.0, 0.5, 2.0, 0.25]))
            .collect();
        if w.iter().sum::<f64>() <= 0.0 {
            w[0] = 1.0;
        }
        let size = if t.chance(50) {
            Size::Fixed(len)
        } else {
            Size::Any
        };
        let name = self.declare(t, "w", Ty::Real, size, w);
        let (elem, sign, observed) = (Ty::Real, Sign::Any, false);
        self.vecs.push(DataVec {
            name,
            elem,
            len,
            sign,
            observed,
        });
        self.vecs.len() - 1
    }

    /// The model `gen` with these declarations and `body`.
    pub fn render(&self, body: &[Stmt]) -> String {
        let decls = |at_end: bool| -> String {
            (self.decls.iter().filter(|d| d.at_end == at_end))
                .map(|d| format!("  data {}: {};\n", d.name, d.ty(false)))
                .collect()
        };
        let mut out = format!("model gen {{\n{}", decls(false));
        render_block(&mut out, body, 1);
        format!("{out}{}}}\n", decls(true))
    }
}
