//! The slot-resolved program the checker produces and binding lowers (see `crate::plan`).
//!
//! Every variable is a slot index into one per-run `f64` array (ints and bools are
//! stored as exact `f64`s), data vectors are indices into the bound data, indexed
//! sites are indices into per-run arrays, and every site name is interned as a
//! [`SiteId`] at compile time. Nothing here is looked up by string while sampling.

use probserve_runtime::SiteId;

use crate::builtins::{DistKind, Fn1, Fn2, Reduce};

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ex {
    Const(f64),
    /// A scalar slot (data, `let`, latent or loop variable).
    Slot(u32),
    /// A value computed once from the data at bind time (`len(x)`, `sum(x)`, ...).
    Derived(u32),
    /// Element of a data vector.
    VecElem(u32, Box<Ex>),
    /// Element of an indexed site array (latent or indexed `let`).
    ArrElem(u32, Box<Ex>),
    Call1(Fn1, Box<Ex>),
    Call2(Fn2, Box<Ex>, Box<Ex>),
    And(Box<Ex>, Box<Ex>),
    Or(Box<Ex>, Box<Ex>),
    Cond(Box<Ex>, Box<Ex>, Box<Ex>),
}

/// Calls `f` on every distribution of the statements, depth first.
pub(crate) fn for_each_dist<'a>(body: &'a [St], f: &mut impl FnMut(&'a DistEx)) {
    for st in body {
        match st {
            St::Sample { dist, .. } | St::Observe { dist, .. } => f(dist),
            St::If(_, a, b) => {
                for_each_dist(a, f);
                for_each_dist(b, f);
            }
            St::For { body, .. } => for_each_dist(body, f),
            St::ObsLoop(l) => for_each_dist(std::slice::from_ref(&l.body), f),
            St::Assign(..) | St::Factor { .. } => {}
        }
    }
}

/// A distribution with compiled parameter expressions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DistEx {
    pub(crate) kind: DistKind,
    pub(crate) args: Box<[Ex]>,
    /// The data vector argument (`categorical(probs)`).
    pub(crate) vec_arg: Option<u32>,
}

/// Where a sampled or assigned value goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dest {
    Slot(u32),
    Arr(u32, Ex),
}

/// The observed value of an observation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ObsTarget {
    /// A scalar data slot; the address is the bare site.
    Scalar(u32),
    /// Element of a data vector; the address is `site[index]`.
    Elem(u32, Ex),
}

/// A compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum St {
    /// `let x = e;` or `let a[i] = e;`.
    Assign(Dest, Ex),
    /// `x ~ d;` (latent): the address is `site` (plus the index for arrays).
    Sample {
        site: SiteId,
        dest: Dest,
        dist: DistEx,
    },
    /// `y ~ d;` with `y` data: scalar data slot, or vector element.
    Observe {
        site: SiteId,
        target: ObsTarget,
        dist: DistEx,
    },
    /// `factor(e);`: the address is `site[k]` with `k` the run's factor counter.
    Factor {
        site: SiteId,
        value: Ex,
    },
    If(Ex, Vec<St>, Vec<St>),
    For {
        var: u32,
        lo: Ex,
        hi: Ex,
        body: Vec<St>,
    },
    /// A `for` loop whose only statement observes `y[var]` under a generalized-linear
    /// family (normal with a scale the loop does not change, bernoulli of `inv_logit`,
    /// poisson of `exp`): run natively (see `crate::fuse`).
    ObsLoop(Box<ObsLoop>),
}

/// A fused observation loop: `for var in lo..hi { y[var] ~ family(mean); }`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ObsLoop {
    pub(crate) var: u32,
    pub(crate) lo: Ex,
    pub(crate) hi: Ex,
    /// The original observation, run as is whenever the fast path does not apply (it
    /// then reports exactly the error the unfused loop would).
    pub(crate) body: St,
    pub(crate) site: SiteId,
    /// The observed data vector.
    pub(crate) y: u32,
    pub(crate) mean: Mean,
    pub(crate) family: Family,
}

/// The distribution of a fused observation, given its mean (linear predictor).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Family {
    /// `normal(mean, scale)`; the scale expression does not mention the loop variable.
    Normal { scale: Ex },
    /// `bernoulli(inv_logit(mean))`.
    BernoulliLogit,
    /// `poisson(exp(mean))`.
    PoissonLog,
}

/// The mean of a fused observation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mean {
    /// `a + b * x[var]` (in any operand order) with `a`, `b` constants or slots other
    /// than the loop variable.
    Affine { a: Ex, b: Ex, x: u32 },
    /// `arr[g[var]]`: an indexed site read at the group given by data vector `g` (a
    /// random intercept).
    Gather { arr: u32, g: u32 },
    /// Any other expression.
    Any(Ex),
}

/// A bind-time value derived from the data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DerivedEx {
    Reduce(Reduce, u32),
    Dot(u32, u32),
}

/// One declared output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OutputItem {
    /// A scalar slot.
    Scalar { name: String, slot: u32 },
    /// An indexed site array, expanded to `name[0..extent]`; `extents` are the data-only
    /// loop bounds of its write sites (the extent is their maximum at bind time).
    Array {
        name: String,
        arr: u32,
        extents: Vec<Ex>,
    },
}

/// A checked, slot-resolved program.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Program {
    pub(crate) body: Vec<St>,
    pub(crate) n_slots: u32,
    /// Data scalars occupy slots `0..n_data_slots`, in declaration order of scalar data.
    pub(crate) n_data_slots: u32,
    pub(crate) n_arrays: u32,
    pub(crate) derived: Vec<DerivedEx>,
    pub(crate) outputs: Vec<OutputItem>,
    /// Interned site names, indexed by `SiteId`.
    pub(crate) sites: Vec<String>,
}
