//! The program generator of the differential test: a proptest strategy for random,
//! well-typed programs of the model language with request data that fits them.
//!
//! Every decision is read from a [`Tape`] of random numbers that proptest generates and
//! shrinks; 0 is always the simplest option and an exhausted tape reads 0, so a shrunk
//! tape gives a smaller program. The generator builds a syntax tree while tracking
//! scopes, types, value ranges (positive scales, probabilities, counts), the concrete
//! data (lengths and sizes, so that indexes stay in range), and which indexed-site
//! elements are certainly written, so that the programs compile and most of them run.
//! A few percent of the choices are deliberately risky (parameters out of range,
//! indexes that may be out of range or unassigned, elements written twice), so that
//! run-time errors are exercised too.
//!
//! The generator is split by what it generates: [`stmts`] the statements and blocks,
//! [`loops`] the loops with the indexed sites and observations written in them,
//! [`exprs`] the expressions and [`dists`] the distribution arguments. This file holds
//! the entry points, the vocabulary (constants and distributions) and the generator's
//! state.

mod dists;
mod exprs;
mod loops;
mod stmts;

use std::fmt;

use probserve_lang::Inputs;
use proptest::prelude::*;

use super::{Data, Expr, Features, Kind, Sign, Size, Stmt, Tape, Ty, Var};

/// A generated program and request data that fits its declarations.
#[derive(Clone)]
pub struct GenProgram {
    pub source: String,
    pub inputs: Inputs,
}

impl fmt::Debug for GenProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source:\n{}inputs: {:?}", self.source, self.inputs)
    }
}

/// Random well-typed programs with matching inputs.
pub fn program() -> impl Strategy<Value = GenProgram> {
    tape().prop_map(|t| generate(&t).0)
}

/// The random decisions [`generate`] reads.
pub fn tape() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 0..1024)
}

/// The program the decisions `choices` describe, and what it contains.
pub fn generate(choices: &[u32]) -> (GenProgram, Features) {
    let mut g = Gen {
        tape: Tape::new(choices),
        data: Data::default(),
        scopes: vec![Scope::default()],
        sites: Vec::new(),
        loops: Vec::new(),
        observed: Vec::new(),
        outputs: Vec::new(),
        next: 0,
        budget: 25,
        f: Features::default(),
    };
    for _ in 0..g.tape.below(5) {
        let ty = *g.tape.pick(&[Ty::Real, Ty::Int, Ty::Bool]);
        if g.tape.chance(50) {
            g.data.new_scalar(&mut g.tape, ty, Sign::Any);
        } else {
            g.data.generic_vec(&mut g.tape, ty);
        }
    }
    let mut body = Vec::new();
    g.stmts(&mut body, 0, 14, 88);
    g.output(&mut body, true);
    for d in &g.data.decls {
        g.f.add(&format!("data:{}", d.ty(true)));
    }
    for _ in g.data.vecs.iter().filter(|v| v.len == 0) {
        g.f.add("data:empty_vector");
    }
    let source = g.data.render(&body);
    let inputs = std::mem::take(&mut g.data.inputs);
    (GenProgram { source, inputs }, g.f)
}

/// Percent of risky choices.
const RISK: u32 = 2;

const REALS: &[f64] = &[0.0, 1.0, 0.5, -1.0, 2.0, -2.5, 3.0, 0.25, 10.0, -0.75, 1e-3];
const INTS: &[i64] = &[0, 1, 2, 3, 5, -1, -2, 7, 10];
const SCALES: &[f64] = &[1.0, 0.5, 2.0, 1.5, 3.0, 0.25];
const PROBS: &[f64] = &[0.5, 0.25, 0.9, 0.1, 0.75];
const FN1: &str = "exp log log1p expm1 sqrt sin cos tanh lgamma floor ceil round inv_logit logit \
                   log_inv_logit abs";
const CMP: &[&str] = &["<", "<=", ">", ">=", "==", "!="];

type Dist = (&'static str, Ty, Sign);

/// The distributions: name, value type and value range.
const DISTS: &[Dist] = &[
    ("normal", Ty::Real, Sign::Any),
    ("half_normal", Ty::Real, Sign::Pos),
    ("lognormal", Ty::Real, Sign::Pos),
    ("student_t", Ty::Real, Sign::Any),
    ("cauchy", Ty::Real, Sign::Any),
    ("exponential", Ty::Real, Sign::Pos),
    ("gamma", Ty::Real, Sign::Pos),
    ("inv_gamma", Ty::Real, Sign::Pos),
    ("beta", Ty::Real, Sign::Unit),
    ("uniform", Ty::Real, Sign::Any),
    ("bernoulli", Ty::Bool, Sign::Any),
    ("binomial", Ty::Int, Sign::Count),
    ("poisson", Ty::Int, Sign::Count),
    ("categorical", Ty::Int, Sign::Count),
    ("geometric", Ty::Int, Sign::Count),
    ("neg_binomial", Ty::Int, Sign::Count),
];

/// An indexed site; `written` are the elements certainly written from here on.
#[derive(Debug, Clone)]
struct Site {
    name: String,
    ty: Ty,
    latent: bool,
    outputable: bool,
    written: Option<(i64, i64)>,
}

/// A loop's upper bound: its value when the data fixes it, a bound on it, whether it
/// is computed from data only, and the size of a vector declared to be as long.
#[derive(Debug, Clone)]
struct Bound {
    hi: Expr,
    exact: Option<i64>,
    max: Option<i64>,
    stat: bool,
    size: Option<Size>,
}

impl Bound {
    fn exact(hi: Expr, n: i64, size: Option<Size>) -> Bound {
        let (exact, max) = (Some(n), Some(n));
        Bound {
            hi,
            exact,
            max,
            stat: true,
            size,
        }
    }
}

/// An enclosing loop; `top` when it is a statement of the model's block, `pending` the
/// sites written at exactly its variable directly in its body.
#[derive(Debug, Clone)]
struct Loop {
    var: String,
    lo: i64,
    bound: Bound,
    top: bool,
    pending: Vec<usize>,
}

/// A block: its scalars, the site elements written in it in this iteration, and
/// whether it is a loop body.
#[derive(Debug, Clone, Default)]
struct Scope {
    vars: Vec<Var>,
    safe: Vec<(usize, Expr)>,
    loop_body: bool,
}

struct Gen<'t> {
    tape: Tape<'t>,
    data: Data,
    scopes: Vec<Scope>,
    sites: Vec<Site>,
    loops: Vec<Loop>,
    observed: Vec<String>,
    outputs: Vec<String>,
    next: usize,
    budget: usize,
    f: Features,
}

fn fits(have: Ty, want: Ty) -> bool {
    have == want || (have == Ty::Int && want == Ty::Real)
}

/// Whether data of type `data` may be observed from a distribution of `value`s.
fn observable(data: Ty, value: Ty) -> bool {
    match value {
        Ty::Real => fits(data, Ty::Real),
        Ty::Int => data == Ty::Int,
        Ty::Bool => matches!(data, Ty::Bool | Ty::Int),
    }
}

/// Whether the variable of `l` is a valid index into `len` elements.
fn safe_for(l: &Loop, len: usize) -> bool {
    (l.bound.max).is_some_and(|m| m <= l.lo || (l.lo >= 0 && m <= len as i64))
}

// Names, scopes and choices.
impl Gen<'_> {
    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn risky(&mut self) -> bool {
        self.tape.chance(RISK)
    }

    fn choose<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| self.tape.pick(items).clone())
    }

    fn declare(&mut self, var: Var) {
        self.scopes.last_mut().expect("a scope").vars.push(var);
    }

    /// The scalars in scope: data and the variables of the enclosing blocks.
    fn vars(&self) -> impl Iterator<Item = &Var> {
        let blocks = self.scopes.iter().flat_map(|s| s.vars.iter());
        self.data.scalars.iter().chain(blocks)
    }

    fn names_where(&self, pred: impl Fn(&Var) -> bool) -> Vec<String> {
        self.vars()
            .filter(|v| pred(v))
            .map(|v| v.name.clone())
            .collect()
    }
}
