//! The plan: a bound model's program lowered to a flat list of register operations.
//!
//! [`lower()`] runs once per request, when the data is bound. It turns the slot-resolved
//! tree of [`crate::ir`] into straight-line [`Op`]s over one `f64` register file, with
//! everything the data decides already decided:
//!
//! - data scalars, bind-time reductions and any expression of them are constants;
//!   an `if` on data keeps only its taken branch;
//! - a `for` loop whose bounds the data fixes is unrolled while the plan stays under
//!   [`MAX_UNROLLED_OPS`]; indexed sites whose every index is then a constant live in
//!   registers, with their addresses built at bind time;
//! - distributions whose parameters are known are built once (a normal whose scale is
//!   known keeps its normalizer), and a fused likelihood loop (linear, logistic or
//!   Poisson regression, a random intercept) is one native op;
//! - whatever depends on latents becomes ops; conditional code and loops the data does
//!   not fix become jumps.
//!
//! # Invariants
//!
//! - **Same numbers as the plain lowering.** [`Lowering::Plain`] translates every
//!   statement and expression directly; the optimized plan performs the same
//!   floating-point operations in the same order on every run, makes the same handler
//!   calls at the same addresses and fails with the same errors. Only the step budget
//!   is charged earlier: straight-line code pays for all its statements where it starts.
//! - **Errors happen where they would.** A problem found while lowering (an index out
//!   of range, an invalid bind-time distribution) becomes a [`Op::Fail`] at the point
//!   the run would reach it, never an error of binding.
//! - **Outputs are registers `0..width`**, in output order; every other register is
//!   written before it is read, except constants, which the initial register file holds.
//! - **Static arrays are written only by unconditional code**, so whether an element is
//!   set is known while lowering; any other indexed site is a run-time array.

mod check;
mod expr;
mod lower;
mod stmt;
#[cfg(test)]
mod tests;

use probserve_runtime::{Address, Dist, DistError, ModelError, Normal, SiteId};

use crate::Lowering;
use crate::builtins::{DistKind, Fn1, Fn2};

pub(crate) use lower::lower;

/// An index into the register file.
pub(crate) type Reg = u32;

/// Largest number of ops loop unrolling may grow a plan to.
pub(crate) const MAX_UNROLLED_OPS: usize = 16_384;

/// Plans with at most this many registers (and no run-time arrays) run on a stack
/// register file copied whole from [`Plan::small_init`].
pub(crate) const SMALL_REGS: usize = 8;

/// Largest index an indexed site may be written at.
pub(crate) const MAX_ARRAY_INDEX: usize = 1 << 24;

/// One operation of a plan. Register operands are [`Reg`]s; `addr`, `n`, `d`, `x`,
/// `l` and `err` index the plan's side tables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    /// Charge `n` steps against the budget.
    Tick(u32),
    Copy {
        dst: Reg,
        src: Reg,
    },
    Add {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Sub {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Mul {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    Div {
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `dst = a + b * c` (a multiply, then an add: no fused rounding).
    AddMul {
        dst: Reg,
        a: Reg,
        b: Reg,
        c: Reg,
    },
    /// `dst = a * b + c`.
    MulAdd {
        dst: Reg,
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Un {
        f: Fn1,
        dst: Reg,
        a: Reg,
    },
    Bin {
        f: Fn2,
        dst: Reg,
        a: Reg,
        b: Reg,
    },
    /// `dst = c != 0 ? a : b` (both operands already computed).
    Select {
        dst: Reg,
        c: Reg,
        a: Reg,
        b: Reg,
    },
    /// `dst = data vector vec[idx]`, or fail with an index error.
    VecElem {
        dst: Reg,
        vec: u32,
        idx: Reg,
    },
    /// `dst = run-time array arr[idx]`, or fail (bad index, unassigned element).
    ArrLoad {
        dst: Reg,
        arr: u32,
        idx: Reg,
    },
    /// Check that `idx` is a valid, not yet written index of run-time array `arr` and
    /// store it, as an exact integer, in `dst`.
    ArrSlot {
        dst: Reg,
        arr: u32,
        idx: Reg,
    },
    /// Run-time array `arr[idx] = src`, `idx` checked by [`Op::ArrSlot`].
    ArrPut {
        arr: u32,
        idx: Reg,
        src: Reg,
    },
    /// Copy the first `n` elements of run-time array `arr` to registers `dst..dst+n`
    /// (NaN where unwritten).
    ArrOut {
        arr: u32,
        dst: Reg,
        n: u32,
    },
    Jump {
        to: u32,
    },
    /// Jump when `c == 0` (false); NaN counts as true.
    JumpIfZero {
        c: Reg,
        to: u32,
    },
    /// Fail unless `lo` and `hi` are finite; `var = lo`; skip the loop (to `exit`)
    /// unless `var < hi`.
    LoopInit {
        var: Reg,
        lo: Reg,
        hi: Reg,
        exit: u32,
    },
    /// `var += 1`; back to `body` while `var < hi`.
    LoopNext {
        var: Reg,
        hi: Reg,
        body: u32,
    },
    /// Sample from bind-time normal `n`.
    SampleNormal {
        dst: Reg,
        addr: u32,
        n: u32,
    },
    /// Sample from bind-time normal `n` with mean `mu`.
    SampleNormalMean {
        dst: Reg,
        addr: u32,
        n: u32,
        mu: Reg,
    },
    /// Sample from bind-time distribution `d`.
    SampleDist {
        dst: Reg,
        addr: u32,
        d: u32,
    },
    /// Sample from `normal(mu, sigma)`, both from registers.
    SampleNormalDyn {
        dst: Reg,
        addr: u32,
        mu: Reg,
        sigma: Reg,
    },
    /// Sample from `bernoulli(p)`, `p` from a register.
    SampleBernoulliDyn {
        dst: Reg,
        addr: u32,
        p: Reg,
    },
    /// Sample from run-time distribution `x`.
    SampleDyn {
        dst: Reg,
        addr: u32,
        x: u32,
    },
    ObserveNormal {
        addr: u32,
        value: Reg,
        n: u32,
    },
    ObserveNormalMean {
        addr: u32,
        value: Reg,
        n: u32,
        mu: Reg,
    },
    ObserveDist {
        addr: u32,
        value: Reg,
        d: u32,
    },
    ObserveNormalDyn {
        addr: u32,
        value: Reg,
        mu: Reg,
        sigma: Reg,
    },
    ObserveBernoulliDyn {
        addr: u32,
        value: Reg,
        p: Reg,
    },
    ObserveDyn {
        addr: u32,
        value: Reg,
        x: u32,
    },
    /// `factor(value)` at `site[k]`, `k` the run's factor count.
    Factor {
        site: SiteId,
        value: Reg,
    },
    /// Fused observation loop `l`.
    ObsLoop {
        l: u32,
    },
    /// Stop the run with failure `err`.
    Fail {
        err: u32,
    },
}

/// The address of a site op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AddrSpec {
    /// Known when lowering.
    Fixed(Address),
    /// `site[regs[idx]]`, the index checked before the op runs.
    Indexed { site: SiteId, idx: Reg },
}

/// A distribution built at run time from registers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DynDist {
    pub(crate) kind: DistKind,
    pub(crate) args: [Reg; 3],
}

/// A failure found while lowering, raised when the run reaches it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    Error(ModelError),
    /// A bind-time distribution that cannot be built, at the address of its site.
    Dist(u32, DistError),
}

/// `for i in lo..hi { y[i] ~ family(predictor); }`, run natively.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ObsLoop {
    pub(crate) lo: Reg,
    pub(crate) hi: Reg,
    pub(crate) site: SiteId,
    /// Observed data vector.
    pub(crate) y: u32,
    pub(crate) predictor: Predictor,
    pub(crate) family: LoopFamily,
}

/// The linear predictor of element `i` of a fused observation loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Predictor {
    /// `a + b * x[i]` with covariate data vector `x`.
    Affine { a: Reg, b: Reg, x: u32 },
    /// `arr[g[i]]`: run-time array `arr` (IR array `ir_arr`, for errors) at the group
    /// in data vector `g`.
    Gather { arr: u32, ir_arr: u32, g: u32 },
}

/// The distribution of a fused observation loop, given the predictor `a + b * x[i]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum LoopFamily {
    /// `normal(eta, scale)`; `normal` is the normal of the scale when it is known at
    /// bind time and valid.
    Normal { scale: Reg, normal: Option<Normal> },
    /// `bernoulli(inv_logit(eta))`.
    BernoulliLogit,
    /// `poisson(exp(eta))`.
    PoissonLog,
}

/// A lowered program, ready to run on one request's data.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Steps charged when a run starts (the straight-line code at the top level).
    pub(crate) entry_steps: u64,
    pub(crate) ops: Vec<Op>,
    /// The register file every run starts from: constants, NaN elsewhere.
    pub(crate) init: Vec<f64>,
    pub(crate) addrs: Vec<AddrSpec>,
    pub(crate) normals: Vec<Normal>,
    pub(crate) dists: Vec<Dist>,
    pub(crate) dyn_dists: Vec<DynDist>,
    pub(crate) obs_loops: Vec<ObsLoop>,
    pub(crate) failures: Vec<Failure>,
    /// Run-time arrays: IR array id of each.
    pub(crate) arrays: Vec<u32>,
    /// Output values per run (registers `0..width`).
    pub(crate) width: usize,
    /// `init` padded with zeros, when it has at most [`SMALL_REGS`] registers.
    pub(crate) small_init: Option<[f64; SMALL_REGS]>,
}

impl Plan {
    /// The number of registers.
    pub(crate) fn n_regs(&self) -> usize {
        self.init.len()
    }
}

/// The error of failure `f` (indexed addresses resolved by `addr`).
pub(crate) fn failure_error(f: Option<&Failure>, addr: impl FnOnce(u32) -> Address) -> ModelError {
    match f {
        Some(Failure::Error(e)) => e.clone(),
        Some(Failure::Dist(a, e)) => ModelError::dist_at(addr(*a), e.clone()),
        None => ModelError::Other("model run stopped".to_string()),
    }
}

/// What the lowering does (see [`Lowering`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) optimize: bool,
}

impl From<Lowering> for Options {
    fn from(l: Lowering) -> Self {
        Options {
            optimize: l == Lowering::Optimized,
        }
    }
}

/// What one run of a plan costs, known at bind time (see
/// [`crate::BoundModel::static_cost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticCost {
    /// Upper bound on the operations one run executes (each op once, plus the
    /// elements of fused observation loops, run-time array copies and bind-time
    /// categorical distributions) when [`StaticCost::fixed`]; otherwise the ops of
    /// the plan, a lower bound only.
    pub ops: u64,
    /// Upper bound on the trace records (sites) of one run when fixed.
    pub sites: u64,
    /// True when no loop and no run-time array is left in the plan: the run's work
    /// and memory do not depend on anything but the plan, so `ops` and `sites` bound
    /// them. False when a loop whose length the data or the latents set (or one
    /// beyond the unrolling limit) stays, or when a run-time array does (its
    /// elements are written at indices computed during the run, so its memory is
    /// bounded only by the run's site budget, [`crate::BoundModel::with_max_sites`]).
    pub fixed: bool,
}

impl Plan {
    /// The static cost of one run over bound data vectors `vecs`.
    pub(crate) fn static_cost(&self, vecs: &[Vec<f64>]) -> StaticCost {
        let len = |v: u32| vecs.get(v as usize).map_or(0, Vec::len) as u64;
        let max_vec = vecs.iter().map(Vec::len).max().unwrap_or(0) as u64;
        let (mut ops, mut sites, mut fixed) = (0u64, 0u64, self.arrays.is_empty());
        for (pc, op) in self.ops.iter().enumerate() {
            ops = ops.saturating_add(1);
            match *op {
                Op::LoopInit { .. } | Op::LoopNext { .. } => fixed = false,
                Op::Jump { to } | Op::JumpIfZero { to, .. } if to as usize <= pc => fixed = false,
                Op::ArrOut { n, .. } => ops = ops.saturating_add(u64::from(n)),
                Op::ObsLoop { l } => {
                    // Every iteration reads y[i]; one past its end fails the run.
                    let trips = self
                        .obs_loops
                        .get(l as usize)
                        .map_or(0, |o| len(o.y).saturating_add(1));
                    ops = ops.saturating_add(trips.saturating_mul(2));
                    sites = sites.saturating_add(trips);
                }
                Op::SampleDist { d, .. } | Op::ObserveDist { d, .. } => {
                    sites += 1;
                    if let Some(Dist::Categorical(c)) = self.dists.get(d as usize) {
                        ops = ops.saturating_add(c.probs().len() as u64);
                    }
                }
                Op::SampleDyn { x, .. } | Op::ObserveDyn { x, .. } => {
                    sites += 1;
                    let kind = self.dyn_dists.get(x as usize).map(|d| d.kind);
                    if kind == Some(DistKind::Categorical) {
                        ops = ops.saturating_add(max_vec);
                    }
                }
                Op::SampleNormal { .. }
                | Op::SampleNormalMean { .. }
                | Op::SampleNormalDyn { .. }
                | Op::SampleBernoulliDyn { .. }
                | Op::ObserveNormal { .. }
                | Op::ObserveNormalMean { .. }
                | Op::ObserveNormalDyn { .. }
                | Op::ObserveBernoulliDyn { .. }
                | Op::Factor { .. } => sites += 1,
                _ => {}
            }
        }
        StaticCost { ops, sites, fixed }
    }
}
