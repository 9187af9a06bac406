//! The machine: runs a bound model's [`Plan`] under any runtime [`Handler`].
//!
//! A run starts from a copy of the plan's initial register file (on the stack for
//! small plans, else in a per-thread frame reused across runs), executes the ops in
//! order (jumps for conditionals and loops the data did not fix) and returns
//! registers `0..width` as its outputs, appended to the sampler's buffer. Steady-state
//! runs allocate nothing (the frame and its run-time arrays grow once per thread). Ticks
//! count steps against the budget; every [`CHECK_EVERY`] steps the request's
//! cancellation token is consulted.

mod dist;
mod frame;
mod obs_loop;
mod regs;

use probserve_runtime::{Address, Bernoulli, CancelToken, Handler, ModelError, Normal, SiteId};

use crate::BoundModel;
use crate::bind::BoundData;
use crate::draw::OutputSink;
use crate::errors::{self, index, write_index};
use crate::model::Compiled;
use crate::plan::{AddrSpec, Op, Plan, failure_error};

pub(crate) use dist::{count, with_dist};
pub(crate) use frame::ArrayBuf;
use frame::Regs;
use regs::{RegFile, SmallFile};

/// How many steps pass between two looks at the cancellation token.
pub(crate) const CHECK_EVERY: u64 = 4096;

/// Runs `m` once under `h` and appends its outputs to `out` (inlined, with the
/// interpreter [`Machine::exec`], into each inference loop).
#[inline(always)]
pub(crate) fn run<H: Handler>(
    m: &BoundModel,
    h: &mut H,
    out: &mut impl OutputSink,
) -> Result<(), ModelError> {
    let plan = &*m.plan;
    let width = plan.width;
    if plan.arrays.is_empty()
        && let Some(init) = &plan.small_init
    {
        let mut machine = Machine::new(m, SmallFile(*init), &mut [], h);
        machine.exec()?;
        out.put(machine.regs.0.get(..width).unwrap_or(&[]));
        return Ok(());
    }
    frame::with_frame(plan, |regs, arrays| match regs {
        Regs::Fixed(file) => {
            let mut machine = Machine::new(m, file, arrays, h);
            machine.exec()?;
            out.put(machine.regs.get(..width).unwrap_or(&[]));
            Ok(())
        }
        Regs::Grown(regs) => {
            let mut machine = Machine::new(m, regs, arrays, h);
            machine.exec()?;
            out.put(machine.regs.get(..width).unwrap_or(&[]));
            Ok(())
        }
    })
}

/// One run of a plan on register file `R`.
struct Machine<'a, H, R> {
    c: &'a Compiled,
    data: &'a BoundData,
    plan: &'a Plan,
    regs: R,
    arrays: &'a mut [ArrayBuf],
    h: &'a mut H,
    cancel: &'a CancelToken,
    limit: u64,
    /// Largest index + 1 a run-time array may be written at: the run's array budget
    /// shared among the plan's run-time arrays.
    max_array_len: usize,
    steps: u64,
    next_check: u64,
    factors: u32,
    /// The last normal built at run time (a loop usually reuses its scale).
    last_normal: Option<Normal>,
}

impl<'a, H: Handler, R: RegFile> Machine<'a, H, R> {
    #[inline(always)]
    fn new(m: &'a BoundModel, regs: R, arrays: &'a mut [ArrayBuf], h: &'a mut H) -> Self {
        Machine {
            c: &m.compiled,
            data: &m.data,
            plan: &m.plan,
            regs,
            arrays,
            h,
            cancel: &m.cancel,
            limit: m.step_limit,
            max_array_len: m.max_array_elems / m.plan.arrays.len().max(1),
            steps: 0,
            next_check: CHECK_EVERY.min(m.step_limit.saturating_add(1)),
            factors: 0,
            last_normal: None,
        }
    }

    #[inline(always)]
    fn get(&self, r: u32) -> f64 {
        self.regs.load(r)
    }

    #[inline(always)]
    fn set(&mut self, r: u32, v: f64) {
        self.regs.store(r, v);
    }

    #[inline(always)]
    fn addr(&self, a: u32) -> Address {
        match self.plan.addrs.get(a as usize) {
            Some(AddrSpec::Fixed(x)) => *x,
            Some(&AddrSpec::Indexed { site, idx }) => {
                Address::site(site).at_usize(index(self.get(idx)))
            }
            None => Address::site(SiteId(u32::MAX)),
        }
    }

    #[inline(always)]
    fn vec(&self, v: u32) -> &'a [f64] {
        self.data.vecs.get(v as usize).map_or(&[], Vec::as_slice)
    }

    /// Counts `n` steps against the budget.
    #[inline(always)]
    fn tick(&mut self, n: u64) -> Result<(), ModelError> {
        self.steps += n;
        if self.steps >= self.next_check {
            self.slow_check()?;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn slow_check(&mut self) -> Result<(), ModelError> {
        if self.steps > self.limit {
            return Err(ModelError::StepLimit { limit: self.limit });
        }
        if let Err(e) = self.cancel.check() {
            let msg = format!("model run stopped after {} steps: {e}", self.steps);
            return Err(ModelError::Other(msg));
        }
        self.next_check = self
            .steps
            .saturating_add(CHECK_EVERY)
            .min(self.limit.saturating_add(1));
        Ok(())
    }

    /// Inlined into each `run` (per handler and register file), so a run of a small
    /// model pays no call and prologue: 3 % fewer instructions on the temperature
    /// model for 28 KB more server binary.
    #[inline(always)]
    fn exec(&mut self) -> Result<(), ModelError> {
        let plan = self.plan;
        self.tick(plan.entry_steps)?;
        // Straight-line code walks the ops with an iterator (no index checks); a jump
        // restarts it at the target.
        let mut ops = plan.ops.iter();
        let jump = |to: u32| plan.ops.get(to as usize..).unwrap_or(&[]).iter();
        while let Some(op) = ops.next() {
            match *op {
                Op::Tick(n) => self.tick(u64::from(n))?,
                Op::Copy { dst, src } => self.set(dst, self.get(src)),
                Op::Add { dst, a, b } => self.set(dst, self.get(a) + self.get(b)),
                Op::Sub { dst, a, b } => self.set(dst, self.get(a) - self.get(b)),
                Op::Mul { dst, a, b } => self.set(dst, self.get(a) * self.get(b)),
                Op::Div { dst, a, b } => self.set(dst, self.get(a) / self.get(b)),
                Op::AddMul { dst, a, b, c } => {
                    self.set(dst, self.get(a) + self.get(b) * self.get(c));
                }
                Op::MulAdd { dst, a, b, c } => {
                    self.set(dst, self.get(a) * self.get(b) + self.get(c));
                }
                Op::Un { f, dst, a } => self.set(dst, f.apply(self.get(a))),
                Op::Bin { f, dst, a, b } => self.set(dst, f.apply(self.get(a), self.get(b))),
                Op::Select { dst, c, a, b } => {
                    let v = if self.get(c) != 0.0 {
                        self.get(a)
                    } else {
                        self.get(b)
                    };
                    self.set(dst, v);
                }
                Op::VecElem { dst, vec, idx } => {
                    let i = self.get(idx);
                    match self.vec(vec).get(index(i)) {
                        Some(&y) => self.set(dst, y),
                        None => return Err(errors::vec_index(self.c, self.data, vec, i)),
                    }
                }
                Op::ArrLoad { dst, arr, idx } => {
                    let i = self.get(idx);
                    let v = self.arrays.get(arr as usize).and_then(|b| b.get(index(i)));
                    match v {
                        Some(v) => self.set(dst, v),
                        None => return Err(errors::unassigned(self.c, self.ir_array(arr), i)),
                    }
                }
                Op::ArrSlot { dst, arr, idx } => {
                    let x = self.get(idx);
                    let Some(i) = write_index(x) else {
                        return Err(errors::bad_array_index(self.c, self.ir_array(arr), x));
                    };
                    // The run's array budget bounds its run-time arrays: their
                    // elements are stored densely up to the largest index written.
                    if i >= self.max_array_len {
                        return Err(ModelError::SiteLimit {
                            limit: self.max_array_len,
                        });
                    }
                    let set = self.arrays.get(arr as usize).and_then(|b| b.get(i));
                    if set.is_some() {
                        return Err(errors::assigned_twice(self.c, self.ir_array(arr), i));
                    }
                    self.set(dst, i as f64);
                }
                Op::ArrPut { arr, idx, src } => {
                    let (i, v) = (index(self.get(idx)), self.get(src));
                    if let Some(buf) = self.arrays.get_mut(arr as usize) {
                        buf.put(i, v);
                    }
                }
                Op::ArrOut { arr, dst, n } => {
                    for k in 0..n {
                        let v = self
                            .arrays
                            .get(arr as usize)
                            .and_then(|b| b.get(k as usize));
                        self.set(dst + k, v.unwrap_or(f64::NAN));
                    }
                }
                Op::Jump { to } => ops = jump(to),
                Op::JumpIfZero { c, to } => {
                    if self.get(c) == 0.0 {
                        ops = jump(to);
                    }
                }
                Op::LoopInit { var, lo, hi, exit } => {
                    let (v, hi) = (self.get(lo), self.get(hi));
                    if !(v.is_finite() && hi.is_finite()) {
                        return Err(errors::loop_bounds(v, hi));
                    }
                    self.set(var, v);
                    if v >= hi {
                        ops = jump(exit);
                    }
                }
                Op::LoopNext { var, hi, body } => {
                    let v = self.get(var) + 1.0;
                    self.set(var, v);
                    if v < self.get(hi) {
                        ops = jump(body);
                    }
                }
                Op::SampleNormal { dst, addr, n } => {
                    let a = self.addr(addr);
                    let v = self.h.sample(a, table(&plan.normals, n)?)?;
                    self.set(dst, v);
                }
                Op::SampleNormalMean { dst, addr, n, mu } => {
                    let a = self.addr(addr);
                    let d = table(&plan.normals, n)?.with_mean(self.get(mu));
                    let v = self
                        .h
                        .sample(a, &d.map_err(|e| ModelError::dist_at(a, e))?)?;
                    self.set(dst, v);
                }
                Op::SampleDist { dst, addr, d } => {
                    let a = self.addr(addr);
                    let v = self.h.sample(a, table(&plan.dists, d)?)?;
                    self.set(dst, v);
                }
                Op::SampleNormalDyn {
                    dst,
                    addr,
                    mu,
                    sigma,
                } => {
                    let a = self.addr(addr);
                    let d = self.normal(self.get(mu), self.get(sigma), a)?;
                    let v = self.h.sample(a, &d)?;
                    self.set(dst, v);
                }
                Op::SampleBernoulliDyn { dst, addr, p } => {
                    let a = self.addr(addr);
                    let d = Bernoulli::new(self.get(p)).map_err(|e| ModelError::dist_at(a, e))?;
                    let v = self.h.sample(a, &d)?;
                    self.set(dst, v);
                }
                Op::SampleDyn { dst, addr, x } => {
                    let v = self.sample_dyn(addr, x)?;
                    self.set(dst, v);
                }
                Op::ObserveNormal { addr, value, n } => {
                    let a = self.addr(addr);
                    self.h
                        .observe(a, table(&plan.normals, n)?, self.get(value))?;
                }
                Op::ObserveNormalMean { addr, value, n, mu } => {
                    let a = self.addr(addr);
                    let d = table(&plan.normals, n)?.with_mean(self.get(mu));
                    let d = d.map_err(|e| ModelError::dist_at(a, e))?;
                    self.h.observe(a, &d, self.get(value))?;
                }
                Op::ObserveDist { addr, value, d } => {
                    let a = self.addr(addr);
                    self.h.observe(a, table(&plan.dists, d)?, self.get(value))?;
                }
                Op::ObserveNormalDyn {
                    addr,
                    value,
                    mu,
                    sigma,
                } => {
                    let a = self.addr(addr);
                    let d = self.normal(self.get(mu), self.get(sigma), a)?;
                    self.h.observe(a, &d, self.get(value))?;
                }
                Op::ObserveBernoulliDyn { addr, value, p } => {
                    let a = self.addr(addr);
                    let d = Bernoulli::new(self.get(p)).map_err(|e| ModelError::dist_at(a, e))?;
                    self.h.observe(a, &d, self.get(value))?;
                }
                Op::ObserveDyn { addr, value, x } => self.observe_dyn(addr, value, x)?,
                Op::Factor { site, value } => {
                    let v = self.get(value);
                    let a = Address::site(site).at(self.factors);
                    self.factors = self.factors.wrapping_add(1);
                    self.h.factor(a, v)?;
                }
                Op::ObsLoop { l } => self.obs_loop(table(&plan.obs_loops, l)?)?,
                Op::Fail { err } => {
                    let f = plan.failures.get(err as usize);
                    return Err(failure_error(f, |a| self.addr(a)));
                }
            }
        }
        Ok(())
    }

    /// The IR array id of run-time array `arr` (for error messages).
    fn ir_array(&self, arr: u32) -> u32 {
        self.plan
            .arrays
            .get(arr as usize)
            .copied()
            .unwrap_or(u32::MAX)
    }
}

/// Entry `i` of one of the plan's tables (the lowering only emits valid indices).
#[inline(always)]
fn table<T>(t: &[T], i: u32) -> Result<&T, ModelError> {
    t.get(i as usize)
        .ok_or_else(|| ModelError::Other(format!("internal: plan table index {i} out of range")))
}
