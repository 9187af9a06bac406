//! Built-in functions and distributions: names, signatures and evaluation.

/// Value types the checker reasons about (vectors only exist as data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Real,
    Int,
    Bool,
    RealVec,
    IntVec,
    BoolVec,
    /// The type of an expression that already produced an error (suppresses cascades).
    Error,
}

impl Ty {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Real => "real",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::RealVec => "real[]",
            Ty::IntVec => "int[]",
            Ty::BoolVec => "bool[]",
            Ty::Error => "<error>",
        }
    }

    /// Whether a value of type `self` may be used where `want` is expected
    /// (ints are accepted as reals).
    pub(crate) fn fits(self, want: Ty) -> bool {
        self == want
            || self == Ty::Error
            || want == Ty::Error
            || (self == Ty::Int && want == Ty::Real)
    }

    pub(crate) fn is_numeric(self) -> bool {
        matches!(self, Ty::Real | Ty::Int | Ty::Error)
    }

    pub(crate) fn is_vector(self) -> bool {
        matches!(self, Ty::RealVec | Ty::IntVec | Ty::BoolVec)
    }
}

/// One-argument scalar operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fn1 {
    Neg,
    Not,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Abs,
    InvLogit,
    Logit,
    LogInvLogit,
    Floor,
    Ceil,
    Round,
    Sin,
    Cos,
    Tanh,
    Lgamma,
}

impl Fn1 {
    #[inline(always)]
    pub(crate) fn apply(self, x: f64) -> f64 {
        match self {
            Fn1::Neg => -x,
            Fn1::Not => f64::from(u8::from(x == 0.0)),
            Fn1::Exp => x.exp(),
            Fn1::Log => x.ln(),
            Fn1::Log1p => x.ln_1p(),
            Fn1::Expm1 => x.exp_m1(),
            Fn1::Sqrt => x.sqrt(),
            Fn1::Abs => x.abs(),
            Fn1::InvLogit => inv_logit(x),
            Fn1::Logit => (x / (1.0 - x)).ln(),
            Fn1::LogInvLogit => {
                if x >= 0.0 {
                    -(-x).exp().ln_1p()
                } else {
                    x - x.exp().ln_1p()
                }
            }
            Fn1::Floor => x.floor(),
            Fn1::Ceil => x.ceil(),
            Fn1::Round => x.round(),
            Fn1::Sin => x.sin(),
            Fn1::Cos => x.cos(),
            Fn1::Tanh => x.tanh(),
            Fn1::Lgamma => probserve_runtime::math::ln_gamma(x),
        }
    }
}

fn inv_logit(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Two-argument scalar operations (arithmetic, comparisons, `pow`, `min`, `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fn2 {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Min,
    Max,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Fn2 {
    #[inline]
    pub(crate) fn apply(self, a: f64, b: f64) -> f64 {
        let bool = |c: bool| f64::from(u8::from(c));
        match self {
            Fn2::Add => a + b,
            Fn2::Sub => a - b,
            Fn2::Mul => a * b,
            Fn2::Div => a / b,
            Fn2::Rem => a % b,
            Fn2::Pow => a.powf(b),
            Fn2::Min => a.min(b),
            Fn2::Max => a.max(b),
            Fn2::Lt => bool(a < b),
            Fn2::Le => bool(a <= b),
            Fn2::Gt => bool(a > b),
            Fn2::Ge => bool(a >= b),
            Fn2::Eq => bool(a == b),
            Fn2::Ne => bool(a != b),
        }
    }
}

/// Reductions over a data vector, computed once at bind time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reduce {
    Len,
    Sum,
    Mean,
    Sd,
    Min,
    Max,
}

impl Reduce {
    pub(crate) fn apply(self, v: &[f64]) -> f64 {
        let n = v.len() as f64;
        match self {
            Reduce::Len => n,
            Reduce::Sum => v.iter().sum(),
            Reduce::Mean => v.iter().sum::<f64>() / n,
            Reduce::Sd => {
                let m = v.iter().sum::<f64>() / n;
                (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
            }
            Reduce::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
            Reduce::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// A built-in function as the checker sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Builtin {
    /// Scalar function of one real; `int_preserving` keeps ints int (`abs`).
    Scalar1(Fn1, bool),
    /// Scalar function of two reals; `int_preserving` keeps two ints int (`min`, `max`).
    Scalar2(Fn2, bool),
    /// `len`, `sum`, `mean`, `sd`: one data vector.
    Reduction(Reduce),
    /// `min`/`max`: two scalars, or one data vector.
    MinMax(Fn2, Reduce),
    /// `dot(x, y)`.
    Dot,
}

pub(crate) fn function(name: &str) -> Option<Builtin> {
    use Builtin::*;
    Some(match name {
        "exp" => Scalar1(Fn1::Exp, false),
        "log" => Scalar1(Fn1::Log, false),
        "log1p" => Scalar1(Fn1::Log1p, false),
        "expm1" => Scalar1(Fn1::Expm1, false),
        "sqrt" => Scalar1(Fn1::Sqrt, false),
        "abs" => Scalar1(Fn1::Abs, true),
        "inv_logit" => Scalar1(Fn1::InvLogit, false),
        "logit" => Scalar1(Fn1::Logit, false),
        "log_inv_logit" => Scalar1(Fn1::LogInvLogit, false),
        "floor" => Scalar1(Fn1::Floor, false),
        "ceil" => Scalar1(Fn1::Ceil, false),
        "round" => Scalar1(Fn1::Round, false),
        "sin" => Scalar1(Fn1::Sin, false),
        "cos" => Scalar1(Fn1::Cos, false),
        "tanh" => Scalar1(Fn1::Tanh, false),
        "lgamma" => Scalar1(Fn1::Lgamma, false),
        "pow" => Scalar2(Fn2::Pow, false),
        "min" => MinMax(Fn2::Min, Reduce::Min),
        "max" => MinMax(Fn2::Max, Reduce::Max),
        "len" => Reduction(Reduce::Len),
        "sum" => Reduction(Reduce::Sum),
        "mean" => Reduction(Reduce::Mean),
        "sd" => Reduction(Reduce::Sd),
        "dot" => Dot,
        _ => return None,
    })
}

/// Every built-in function name (for documentation and "did you mean" hints).
pub(crate) const FUNCTION_NAMES: &[&str] = &[
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "abs",
    "inv_logit",
    "logit",
    "log_inv_logit",
    "floor",
    "ceil",
    "round",
    "sin",
    "cos",
    "tanh",
    "lgamma",
    "pow",
    "min",
    "max",
    "len",
    "sum",
    "mean",
    "sd",
    "dot",
];

/// The distributions of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DistKind {
    Normal,
    HalfNormal,
    LogNormal,
    StudentT,
    Cauchy,
    Exponential,
    Gamma,
    InvGamma,
    Beta,
    Uniform,
    Bernoulli,
    Binomial,
    Poisson,
    Categorical,
    Geometric,
    NegBinomial,
}

/// Parameter kinds of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Real(&'static str),
    Int(&'static str),
    /// A real data vector.
    Vector(&'static str),
}

/// Signature of a distribution: parameters and the type of its values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DistSig {
    pub(crate) kind: DistKind,
    pub(crate) name: &'static str,
    pub(crate) params: &'static [Param],
    pub(crate) value: Ty,
}

use Param::{Int as I, Real as R, Vector as V};

/// The distribution table.
pub(crate) const DISTRIBUTIONS: &[DistSig] = &[
    sig(DistKind::Normal, "normal", &[R("mu"), R("sigma")], Ty::Real),
    sig(DistKind::HalfNormal, "half_normal", &[R("sigma")], Ty::Real),
    sig(
        DistKind::LogNormal,
        "lognormal",
        &[R("mu"), R("sigma")],
        Ty::Real,
    ),
    sig(
        DistKind::StudentT,
        "student_t",
        &[R("nu"), R("loc"), R("scale")],
        Ty::Real,
    ),
    sig(
        DistKind::Cauchy,
        "cauchy",
        &[R("loc"), R("scale")],
        Ty::Real,
    ),
    sig(DistKind::Exponential, "exponential", &[R("rate")], Ty::Real),
    sig(DistKind::Gamma, "gamma", &[R("shape"), R("rate")], Ty::Real),
    sig(
        DistKind::InvGamma,
        "inv_gamma",
        &[R("shape"), R("scale")],
        Ty::Real,
    ),
    sig(DistKind::Beta, "beta", &[R("a"), R("b")], Ty::Real),
    sig(DistKind::Uniform, "uniform", &[R("lo"), R("hi")], Ty::Real),
    sig(DistKind::Bernoulli, "bernoulli", &[R("p")], Ty::Bool),
    sig(DistKind::Binomial, "binomial", &[I("n"), R("p")], Ty::Int),
    sig(DistKind::Poisson, "poisson", &[R("rate")], Ty::Int),
    sig(DistKind::Categorical, "categorical", &[V("probs")], Ty::Int),
    sig(DistKind::Geometric, "geometric", &[R("p")], Ty::Int),
    sig(
        DistKind::NegBinomial,
        "neg_binomial",
        &[R("r"), R("p")],
        Ty::Int,
    ),
];

const fn sig(kind: DistKind, name: &'static str, params: &'static [Param], value: Ty) -> DistSig {
    DistSig {
        kind,
        name,
        params,
        value,
    }
}

pub(crate) fn distribution(name: &str) -> Option<&'static DistSig> {
    DISTRIBUTIONS.iter().find(|d| d.name == name)
}

/// Names longer than this get no "did you mean" hint.
const MAX_SUGGEST_LEN: usize = 64;

/// The closest known name within edit distance 2, for "did you mean" hints.
///
/// Candidates whose length differs by more than 2 are skipped before any distance
/// is computed, and long names are not searched, so a hint costs at most a few
/// thousand character comparisons per candidate.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if name.len() > MAX_SUGGEST_LEN {
        return None;
    }
    candidates
        .into_iter()
        .filter(|c| c.len().abs_diff(name.len()) <= 2 * 4 && c.len() <= MAX_SUGGEST_LEN + 8)
        .map(|c| {
            crate::diag::work(name.len() * c.len() + 1);
            (edit_distance(name, c), c)
        })
        .filter(|(d, _)| *d <= 2 && *d < name.len().max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("nromal", DISTRIBUTIONS.iter().map(|d| d.name)),
            Some("normal")
        );
        assert_eq!(
            suggest("zzzzzz", DISTRIBUTIONS.iter().map(|d| d.name)),
            None
        );
    }

    #[test]
    fn stable_inv_logit() {
        assert!((Fn1::InvLogit.apply(0.0) - 0.5).abs() < 1e-15);
        assert!(Fn1::InvLogit.apply(-800.0) >= 0.0);
        assert!((Fn1::LogInvLogit.apply(0.0) - 0.5f64.ln()).abs() < 1e-12);
    }
}
