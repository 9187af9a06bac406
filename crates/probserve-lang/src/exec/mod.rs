//! The executor: runs a slot-resolved program under any runtime [`Handler`].
//!
//! A run works on a flat `f64` slot array (on the stack for small programs, else a
//! per-thread [`Frame`] reused across runs) plus per-site-array buffers, so
//! steady-state runs allocate nothing. Distributions whose parameters the data
//! determines are built once at bind time ([`Prebuilt`]). Statements and loop
//! iterations count against a step budget; every [`CHECK_EVERY`] steps the request's
//! cancellation token is consulted.
//!
//! Expressions never fail: a bad index gives NaN and records a [`Fault`], which the
//! statement that evaluated it turns into a [`ModelError`] before any effect happens.

use std::cell::Cell;

use probserve_runtime::{
    Address, Bernoulli, Beta, Binomial, CancelToken, Cauchy, DistError, Exponential, Gamma,
    Geometric, HalfNormal, Handler, InverseGamma, LogNormal, ModelError, NegativeBinomial, Normal,
    Poisson, SiteId, StudentT, Uniform,
};

use crate::builtins::DistKind;
use crate::ir::{Dest, DistEx, Ex, ObsTarget, St};
use crate::model::Compiled;

/// Builds the distribution of `$d` from its arguments (`$e(k)` evaluates argument
/// `k`; `$normal(mu, sigma)` builds normals) and applies `$go` to the construction
/// result. Categorical tables are prebuilt at bind time and never dispatched here.
macro_rules! dispatch {
    ($d:expr, $e:ident, $normal:expr, $go:ident) => {
        match $d.kind {
            DistKind::Normal => {
                let mu = $e(0);
                $go!($normal(mu, $e(1)))
            }
            DistKind::HalfNormal => $go!(HalfNormal::new($e(0))),
            DistKind::LogNormal => $go!(LogNormal::new($e(0), $e(1))),
            DistKind::StudentT => $go!(StudentT::new($e(0), $e(1), $e(2))),
            DistKind::Cauchy => $go!(Cauchy::new($e(0), $e(1))),
            DistKind::Exponential => $go!(Exponential::new($e(0))),
            DistKind::Gamma => $go!(Gamma::new($e(0), $e(1))),
            DistKind::InvGamma => $go!(InverseGamma::new($e(0), $e(1))),
            DistKind::Beta => $go!(Beta::new($e(0), $e(1))),
            DistKind::Uniform => $go!(Uniform::new($e(0), $e(1))),
            DistKind::Bernoulli => $go!(Bernoulli::new($e(0))),
            DistKind::Binomial => {
                let n = $e(0);
                $go!(count(n).and_then(|n| Binomial::new(n, $e(1))))
            }
            DistKind::Poisson => $go!(Poisson::new($e(0))),
            DistKind::Geometric => $go!(Geometric::new($e(0))),
            DistKind::NegBinomial => $go!(NegativeBinomial::new($e(0), $e(1))),
            DistKind::Categorical => $go!(Err::<Normal, _>(
                probserve_runtime::DistError::InvalidDimension {
                    dist: "categorical",
                    param: "probs",
                    len: 0,
                }
            )),
        }
    };
}

mod data;
mod draw;
mod eval;
mod fused;

pub(crate) use data::{ArrayBuf, BoundData, Prebuilt, UNSET, eval_extent, prebuild, with_frame};
pub use draw::Draw;

/// How many steps pass between two looks at the cancellation token.
pub(crate) const CHECK_EVERY: u64 = 4096;

/// Programs with at most this many slots and no indexed sites run on a stack frame.
pub(crate) const STACK_SLOTS: usize = 32;

/// Largest index an indexed site may be written at.
const MAX_ARRAY_INDEX: usize = 1 << 24;

/// A run-time fault found while evaluating an expression (turned into a
/// [`ModelError`] by the statement that evaluated it).
#[derive(Debug, Clone, Copy)]
enum Fault {
    VecIndex { vec: u32, index: f64 },
    Unassigned { arr: u32, index: f64 },
}

/// Statement execution stopped; the reason is in `Run::error`. Zero-sized so that the
/// hot path returns a single flag.
struct Stop;

type Step = Result<(), Stop>;

/// One run of a program.
pub(crate) struct Run<'a, H> {
    c: &'a Compiled,
    data: &'a BoundData,
    slots: &'a mut [f64],
    arrays: &'a mut [ArrayBuf],
    h: &'a mut H,
    cancel: &'a CancelToken,
    limit: u64,
    steps: u64,
    next_check: u64,
    factor_count: u32,
    fault: Cell<Option<Fault>>,
    error: Option<ModelError>,
    last_normal: Cell<Option<Normal>>,
}

impl<H: Handler> Run<'_, H> {
    /// Executes the whole program.
    pub(crate) fn program(&mut self) -> Result<(), ModelError> {
        let body = &self.c.program.body;
        match self.block(body) {
            Ok(()) => Ok(()),
            Err(Stop) => Err(self
                .error
                .take()
                .unwrap_or_else(|| ModelError::Other("model run stopped".to_string()))),
        }
    }

    /// Counts `n` steps against the budget.
    #[inline]
    fn tick(&mut self, n: u64) -> Step {
        self.steps += n;
        if self.steps >= self.next_check {
            self.slow_check()?;
        }
        Ok(())
    }

    #[cold]
    fn slow_check(&mut self) -> Step {
        if self.steps > self.limit {
            return self.fail(ModelError::StepLimit { limit: self.limit });
        }
        if let Err(e) = self.cancel.check() {
            let msg = format!("model run stopped after {} steps: {e}", self.steps);
            return self.fail(ModelError::Other(msg));
        }
        self.next_check = self
            .steps
            .saturating_add(CHECK_EVERY)
            .min(self.limit.saturating_add(1));
        Ok(())
    }

    /// Runs a block; its statements are charged up front (a failing statement ends
    /// the run anyway).
    fn block(&mut self, body: &[St]) -> Step {
        self.tick(body.len() as u64)?;
        for st in body {
            self.stmt(st)?;
        }
        Ok(())
    }

    /// Turns a handler result into a step, keeping the error.
    #[inline]
    fn handled<T>(&mut self, r: Result<T, ModelError>) -> Result<T, Stop> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => self.fail(e),
        }
    }

    fn stmt(&mut self, st: &St) -> Step {
        match st {
            St::Assign(dest, e) => {
                let v = self.operand(e);
                let v = self.checked(v)?;
                self.store(dest, v, None)?;
            }
            St::Sample { site, dest, dist } => {
                let base = Address::site(*site);
                let (addr, idx) = match dest {
                    Dest::Slot(s) => {
                        let v = self.sample(base, dist)?;
                        if let Some(slot) = self.slots.get_mut(*s as usize) {
                            *slot = v;
                        }
                        return Ok(());
                    }
                    Dest::Arr(a, i) => {
                        let i = self.array_index(*a, i)?;
                        (base.at_usize(i), Some(i))
                    }
                };
                let v = self.sample(addr, dist)?;
                self.store(dest, v, idx)?;
            }
            St::Observe { site, target, dist } => {
                let base = Address::site(*site);
                let (addr, value) = match target {
                    ObsTarget::Scalar(slot) => (base, self.slot(*slot)),
                    ObsTarget::Elem(v, i) => {
                        let i = self.operand(i);
                        let x = self.vec_elem(*v, i);
                        (base.at_usize(index(i)), x)
                    }
                };
                self.observe(addr, dist, value)?;
            }
            St::Factor { site, value } => self.factor(*site, value)?,
            St::If(c, a, b) => {
                let c = self.operand(c);
                if self.checked(c)? != 0.0 {
                    self.block(a)?;
                } else {
                    self.block(b)?;
                }
            }
            St::For { var, lo, hi, body } => self.for_loop(*var, lo, hi, body)?,
            St::ObsLoop(l) => self.obs_loop(l)?,
        }
        Ok(())
    }

    /// `for var in lo..hi { body }` (kept out of `stmt` so that straight-line
    /// statements pay no register pressure for it).
    #[inline(never)]
    fn for_loop(&mut self, var: u32, lo: &Ex, hi: &Ex, body: &[St]) -> Step {
        let lo = self.operand(lo);
        let lo = self.checked(lo)?;
        let hi = self.operand(hi);
        let hi = self.checked(hi)?;
        let mut i = lo;
        while i < hi {
            self.tick(1)?;
            if let Some(s) = self.slots.get_mut(var as usize) {
                *s = i;
            }
            self.block(body)?;
            i += 1.0;
        }
        Ok(())
    }

    #[inline(never)]
    fn factor(&mut self, site: SiteId, value: &Ex) -> Step {
        let v = self.operand(value);
        let v = self.checked(v)?;
        let addr = Address::site(site).at(self.factor_count);
        self.factor_count = self.factor_count.wrapping_add(1);
        let r = self.h.factor(addr, v);
        self.handled(r)
    }

    /// Stores a value; `idx` is the already evaluated array index, if any.
    fn store(&mut self, dest: &Dest, v: f64, idx: Option<usize>) -> Step {
        match dest {
            Dest::Slot(s) => {
                if let Some(slot) = self.slots.get_mut(*s as usize) {
                    *slot = v;
                }
            }
            Dest::Arr(a, i) => {
                let i = match idx {
                    Some(i) => i,
                    None => self.array_index(*a, i)?,
                };
                let Some(buf) = self.arrays.get_mut(*a as usize) else {
                    return Ok(());
                };
                if buf.vals.len() <= i {
                    buf.vals.resize(i + 1, f64::from_bits(UNSET));
                }
                if buf.get(i).is_some() {
                    let msg = format!(
                        "`{}[{i}]` is assigned twice in one run",
                        self.array_name(*a)
                    );
                    return self.fail(ModelError::Other(msg));
                }
                if let Some(slot) = buf.vals.get_mut(i) {
                    // Canonical NaN, so that no stored value looks like `UNSET`.
                    *slot = if v.is_nan() { f64::NAN } else { v };
                }
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn array_index(&mut self, a: u32, i: &Ex) -> Result<usize, Stop> {
        let x = self.operand(i);
        let x = self.checked(x)?;
        if x >= 0.0 && x < MAX_ARRAY_INDEX as f64 {
            Ok(x as i64 as usize)
        } else {
            self.bad_array_index(a, x)
        }
    }

    #[cold]
    #[inline(never)]
    fn bad_array_index(&mut self, a: u32, x: f64) -> Result<usize, Stop> {
        let msg = format!(
            "index {x} of `{}` is out of range (0 to {})",
            self.array_name(a),
            MAX_ARRAY_INDEX - 1
        );
        self.fail(ModelError::Other(msg))
    }

    /// Runs a handler call on a normal built from a bind-time scale.
    #[inline(always)]
    fn normal_site<T>(
        &mut self,
        addr: Address,
        built: Result<Normal, DistError>,
        call: impl FnOnce(&mut H, &Normal) -> Result<T, ModelError>,
    ) -> Result<T, Stop> {
        if let Some(f) = self.fault.take() {
            return self.fail(self.fault_error(f));
        }
        let r = match built {
            Ok(n) => call(self.h, &n),
            Err(e) => Err(ModelError::dist_at(addr, e)),
        };
        self.handled(r)
    }

    fn sample(&mut self, addr: Address, d: &DistEx) -> Result<f64, Stop> {
        let args = &d.args;
        let data = self.data;
        match data.prebuilt.get(d.id as usize) {
            Some(Prebuilt::Full(dist)) => {
                let r = self.h.sample(addr, dist);
                return self.handled(r);
            }
            Some(Prebuilt::NormalScale(n)) => {
                let built = n.with_mean(self.arg(args, 0));
                return self.normal_site(addr, built, |h, d| h.sample(addr, d));
            }
            Some(Prebuilt::Normal(n)) => {
                let r = self.h.sample(addr, n);
                return self.handled(r);
            }
            Some(Prebuilt::NormalScales(t)) => {
                let mu = self.arg(args, 0);
                if let Some(n) = self.scale_at(args, t) {
                    let built = n.with_mean(mu);
                    return self.normal_site(addr, built, |h, d| h.sample(addr, d));
                }
            }
            _ => {}
        }
        let normal = |mu: f64, sigma: f64| self.normal(mu, sigma);
        let e = |k: usize| self.arg(args, k);
        macro_rules! go {
            ($dist:expr) => {{
                let dist = $dist;
                if let Some(f) = self.fault.take() {
                    return self.fail(self.fault_error(f));
                }
                let r = match dist {
                    Ok(dist) => self.h.sample(addr, &dist),
                    Err(err) => Err(ModelError::dist_at(addr, err)),
                };
                self.handled(r)
            }};
        }
        dispatch!(d, e, normal, go)
    }

    fn observe(&mut self, addr: Address, d: &DistEx, x: f64) -> Step {
        let args = &d.args;
        let data = self.data;
        match data.prebuilt.get(d.id as usize) {
            Some(Prebuilt::Full(dist)) => {
                self.checked(0.0)?;
                let r = self.h.observe(addr, dist, x);
                return self.handled(r);
            }
            Some(Prebuilt::NormalScale(n)) => {
                let built = n.with_mean(self.arg(args, 0));
                return self.normal_site(addr, built, |h, d| h.observe(addr, d, x));
            }
            Some(Prebuilt::Normal(n)) => {
                self.checked(0.0)?;
                let r = self.h.observe(addr, n, x);
                return self.handled(r);
            }
            Some(Prebuilt::NormalScales(t)) => {
                let mu = self.arg(args, 0);
                if let Some(n) = self.scale_at(args, t) {
                    let built = n.with_mean(mu);
                    return self.normal_site(addr, built, |h, d| h.observe(addr, d, x));
                }
            }
            _ => {}
        }
        let normal = |mu: f64, sigma: f64| self.normal(mu, sigma);
        let e = |k: usize| self.arg(args, k);
        macro_rules! go {
            ($dist:expr) => {{
                let dist = $dist;
                if let Some(f) = self.fault.take() {
                    return self.fail(self.fault_error(f));
                }
                let r = match dist {
                    Ok(dist) => self.h.observe(addr, &dist, x),
                    Err(err) => Err(ModelError::dist_at(addr, err)),
                };
                self.handled(r)
            }};
        }
        dispatch!(d, e, normal, go)
    }
}

/// `i` as a slice index: exact for valid indices, `usize::MAX` for negatives and NaN
/// (so `get` fails). Cheaper than the saturating `as usize`.
#[inline(always)]
fn index(i: f64) -> usize {
    if i >= 0.0 {
        i as i64 as usize
    } else {
        usize::MAX
    }
}

/// A binomial trial count: a non-negative integer.
fn count(n: f64) -> Result<u64, DistError> {
    if n >= 0.0 && n.fract() == 0.0 && n <= 2f64.powi(53) {
        Ok(n as u64)
    } else {
        Err(DistError::InvalidParameter {
            dist: "binomial",
            param: "n",
            value: n,
        })
    }
}
