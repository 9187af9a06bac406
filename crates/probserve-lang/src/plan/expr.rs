//! Expression and distribution lowering: constant folding, scratch registers, the
//! multiply-add and select peepholes, and bind-time distributions.

use probserve_runtime::{Categorical, Dist, DistError, Normal};

use crate::builtins::{DistKind, Fn2};
use crate::errors::{self, index};
use crate::ir::{DistEx, Ex};
use crate::vm::with_dist;

use super::lower::{ArrState, Lower, Res, Restart, to_reg};
use super::{DynDist, Failure, Op, Reg};

/// A value while lowering: known now, or in a register at run time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Val {
    Const(f64),
    Reg(Reg),
}

const NAN: Val = Val::Const(f64::NAN);

/// One side of a choice: an expression or a constant.
#[derive(Clone, Copy)]
enum Arm<'a> {
    Ex(&'a Ex),
    K(f64),
}

/// How a site op gets its distribution.
#[derive(Debug, Clone, Copy)]
pub(super) enum DistOp {
    Normal(u32),
    NormalMean(u32, Reg),
    NormalDyn(Reg, Reg),
    BernoulliDyn(Reg),
    Dist(u32),
    Dyn(u32),
}

impl DistOp {
    pub(super) fn sample(self, dst: Reg, addr: u32) -> Op {
        match self {
            DistOp::Normal(n) => Op::SampleNormal { dst, addr, n },
            DistOp::NormalMean(n, mu) => Op::SampleNormalMean { dst, addr, n, mu },
            DistOp::NormalDyn(mu, sigma) => Op::SampleNormalDyn {
                dst,
                addr,
                mu,
                sigma,
            },
            DistOp::BernoulliDyn(p) => Op::SampleBernoulliDyn { dst, addr, p },
            DistOp::Dist(d) => Op::SampleDist { dst, addr, d },
            DistOp::Dyn(x) => Op::SampleDyn { dst, addr, x },
        }
    }

    pub(super) fn observe(self, addr: u32, value: Reg) -> Op {
        match self {
            DistOp::Normal(n) => Op::ObserveNormal { addr, value, n },
            DistOp::NormalMean(n, mu) => Op::ObserveNormalMean { addr, value, n, mu },
            DistOp::NormalDyn(mu, sigma) => Op::ObserveNormalDyn {
                addr,
                value,
                mu,
                sigma,
            },
            DistOp::BernoulliDyn(p) => Op::ObserveBernoulliDyn { addr, value, p },
            DistOp::Dist(d) => Op::ObserveDist { addr, value, d },
            DistOp::Dyn(x) => Op::ObserveDyn { addr, value, x },
        }
    }
}

impl Op {
    /// The register a value-computing op writes.
    pub(super) fn dst_mut(&mut self) -> Option<&mut Reg> {
        match self {
            Op::Copy { dst, .. }
            | Op::Add { dst, .. }
            | Op::Sub { dst, .. }
            | Op::Mul { dst, .. }
            | Op::Div { dst, .. }
            | Op::AddMul { dst, .. }
            | Op::MulAdd { dst, .. }
            | Op::Un { dst, .. }
            | Op::Bin { dst, .. }
            | Op::Select { dst, .. }
            | Op::VecElem { dst, .. }
            | Op::ArrLoad { dst, .. } => Some(dst),
            _ => None,
        }
    }

    /// Whether the op can end a run with an error.
    pub(super) fn may_fail(&self) -> bool {
        !matches!(
            self,
            Op::Copy { .. }
                | Op::Add { .. }
                | Op::Sub { .. }
                | Op::Mul { .. }
                | Op::Div { .. }
                | Op::AddMul { .. }
                | Op::MulAdd { .. }
                | Op::Un { .. }
                | Op::Bin { .. }
                | Op::Select { .. }
                | Op::Jump { .. }
                | Op::JumpIfZero { .. }
        )
    }
}

impl<'a> Lower<'a> {
    /// Lowers an expression. A failure it is sure to hit is emitted as [`Op::Fail`]
    /// (the caller then stops: `terminated` is set). Leaves, most operands, are
    /// resolved here; everything else in [`Lower::compound`].
    #[inline]
    pub(super) fn expr(&mut self, e: &'a Ex) -> Res<Val> {
        match e {
            Ex::Const(c) => Ok(Val::Const(*c)),
            Ex::Slot(s) => Ok(self.slot_val.get(*s as usize).copied().unwrap_or(NAN)),
            Ex::Derived(d) => Ok(Val::Const(
                self.data
                    .derived
                    .get(*d as usize)
                    .copied()
                    .unwrap_or(f64::NAN),
            )),
            _ => self.compound(e),
        }
    }

    #[inline(never)]
    fn compound(&mut self, e: &'a Ex) -> Res<Val> {
        Ok(match e {
            Ex::Const(_) | Ex::Slot(_) | Ex::Derived(_) => self.expr(e)?,
            Ex::VecElem(v, i) => {
                let iv = self.expr(i)?;
                if self.terminated {
                    return Ok(NAN);
                }
                match iv {
                    Val::Const(x) if self.opt => match self.vec(*v).get(index(x)) {
                        Some(&y) => Val::Const(y),
                        None => {
                            let e = errors::vec_index(self.c, self.data, *v, x);
                            self.fail(Failure::Error(e));
                            NAN
                        }
                    },
                    _ => {
                        let idx = self.reg_of(iv);
                        let dst = self.temp();
                        self.emit(Op::VecElem { dst, vec: *v, idx });
                        Val::Reg(dst)
                    }
                }
            }
            Ex::ArrElem(a, i) => {
                let iv = self.expr(i)?;
                if self.terminated {
                    return Ok(NAN);
                }
                match self.arrays.get(*a as usize) {
                    Some(ArrState::Static(elems)) => {
                        let Val::Const(x) = iv else {
                            return Err(Restart(*a));
                        };
                        match elems.get(&index(x)) {
                            Some(&v) => v,
                            None => {
                                self.fail(Failure::Error(errors::unassigned(self.c, *a, x)));
                                NAN
                            }
                        }
                    }
                    Some(&ArrState::Dynamic(arr)) => {
                        let idx = self.reg_of(iv);
                        let dst = self.temp();
                        self.emit(Op::ArrLoad { dst, arr, idx });
                        Val::Reg(dst)
                    }
                    None => NAN,
                }
            }
            Ex::Call1(f, a) => {
                let av = self.expr(a)?;
                match av {
                    _ if self.terminated => NAN,
                    Val::Const(x) if self.opt => Val::Const(f.apply(x)),
                    _ => {
                        let a = self.reg_of(av);
                        let dst = self.temp();
                        self.emit(Op::Un { f: *f, dst, a });
                        Val::Reg(dst)
                    }
                }
            }
            Ex::Call2(f, a, b) => {
                let av = self.expr(a)?;
                if self.terminated {
                    return Ok(NAN);
                }
                let bv = self.expr(b)?;
                match (av, bv) {
                    _ if self.terminated => NAN,
                    (Val::Const(x), Val::Const(y)) if self.opt => Val::Const(f.apply(x, y)),
                    _ => self.binary(*f, av, bv),
                }
            }
            Ex::And(a, b) => self.choose(a, Arm::Ex(b), Arm::K(0.0))?,
            Ex::Or(a, b) => self.choose(a, Arm::K(1.0), Arm::Ex(b))?,
            Ex::Cond(c, a, b) => self.choose(c, Arm::Ex(a), Arm::Ex(b))?,
        })
    }

    fn binary(&mut self, f: Fn2, av: Val, bv: Val) -> Val {
        let (a, b) = (self.reg_of(av), self.reg_of(bv));
        if self.opt
            && f == Fn2::Add
            && let Some(Op::Mul { dst, a: x, b: y }) = self.last_op().copied()
            && self.is_temp(dst)
        {
            // `p + x*y` or `x*y + p` right after the multiply: one op doing the same
            // operations with the operands in the same order.
            let fused = if bv == Val::Reg(dst) {
                Some(Op::AddMul { dst, a, b: x, c: y })
            } else if av == Val::Reg(dst) {
                Some(Op::MulAdd {
                    dst,
                    a: x,
                    b: y,
                    c: b,
                })
            } else {
                None
            };
            if let Some(op) = fused
                && let Some(last) = self.last_op()
            {
                *last = op;
                return Val::Reg(dst);
            }
        }
        let dst = self.temp();
        self.emit(match f {
            Fn2::Add => Op::Add { dst, a, b },
            Fn2::Sub => Op::Sub { dst, a, b },
            Fn2::Mul => Op::Mul { dst, a, b },
            Fn2::Div => Op::Div { dst, a, b },
            _ => Op::Bin { f, dst, a, b },
        });
        Val::Reg(dst)
    }

    fn arm(&mut self, arm: Arm<'a>) -> Res<Val> {
        match arm {
            Arm::Ex(e) => self.expr(e),
            Arm::K(k) => Ok(Val::Const(k)),
        }
    }

    /// `c != 0 ? then : els`, evaluating only the side taken: folded when `c` is known,
    /// a select when both sides are values that need no op, else jumps.
    fn choose(&mut self, c: &'a Ex, then: Arm<'a>, els: Arm<'a>) -> Res<Val> {
        let cv = self.expr(c)?;
        if self.terminated {
            return Ok(NAN);
        }
        if self.opt {
            if let Val::Const(x) = cv {
                return self.arm(if x != 0.0 { then } else { els });
            }
            let start = self.mark();
            let a = self.arm(then)?;
            let b = self.arm(els)?;
            if !self.terminated && self.ops_since(start).is_empty() {
                let (c, a, b) = (self.reg_of(cv), self.reg_of(a), self.reg_of(b));
                let dst = self.temp();
                self.emit(Op::Select { dst, c, a, b });
                return Ok(Val::Reg(dst));
            }
            self.rollback(start);
        }
        let c = self.reg_of(cv);
        let dst = self.temp();
        let jz = self.emit(Op::JumpIfZero { c, to: 0 });
        let a = self.arm(then)?;
        let then_stops = std::mem::take(&mut self.terminated);
        if !then_stops {
            self.place(a, dst);
        }
        let j = self.emit(Op::Jump { to: 0 });
        self.land(jz);
        let b = self.arm(els)?;
        let else_stops = std::mem::take(&mut self.terminated);
        if !else_stops {
            self.place(b, dst);
        }
        self.land(j);
        self.terminated = then_stops && else_stops;
        Ok(Val::Reg(dst))
    }

    /// Lowers a distribution's arguments and decides how its site op gets it; `None`
    /// when the run fails there (`addr` is the site's address, for the error).
    pub(super) fn dist(&mut self, d: &'a DistEx, addr: u32) -> Res<Option<DistOp>> {
        if d.kind == DistKind::Categorical {
            // The table is data; `bind` has checked it.
            let probs = d.vec_arg.map_or(&[][..], |v| self.vec(v));
            return Ok(match Categorical::new(probs) {
                Ok(cat) => Some(self.push_dist(Dist::Categorical(cat))),
                Err(e) => {
                    self.fail(Failure::Dist(addr, e));
                    None
                }
            });
        }
        let mut args = [NAN; 3];
        for (slot, a) in args.iter_mut().zip(d.args.iter()) {
            *slot = self.expr(a)?;
            if self.terminated {
                return Ok(None);
            }
        }
        let known = |k: usize| match args.get(k) {
            Some(Val::Const(x)) => Some(*x),
            _ => None,
        };
        if self.opt {
            let n_args = d.args.len();
            if (0..n_args).all(|k| known(k).is_some()) {
                let value = |k: usize| known(k).unwrap_or(f64::NAN);
                let normal = Normal::new;
                macro_rules! to_dist {
                    ($d:expr) => {
                        $d.map(Dist::from)
                    };
                }
                let built: Result<Dist, DistError> = with_dist!(d.kind, value, normal, to_dist);
                return Ok(match built {
                    Ok(Dist::Normal(n)) => {
                        self.plan.normals.push(n);
                        Some(DistOp::Normal(to_reg(self.plan.normals.len() - 1)))
                    }
                    Ok(dist) => Some(self.push_dist(dist)),
                    Err(e) => {
                        self.fail(Failure::Dist(addr, e));
                        None
                    }
                });
            }
            if d.kind == DistKind::Normal
                && let Some(sigma) = known(1)
                && let Ok(n) = Normal::new(0.0, sigma)
            {
                let mu = self.reg_of(args[0]);
                self.plan.normals.push(n);
                let n = to_reg(self.plan.normals.len() - 1);
                return Ok(Some(DistOp::NormalMean(n, mu)));
            }
        }
        // Arguments past the distribution's arity are never read: they reuse the first
        // argument's register (a run-time distribution has at least one argument).
        let first = self.reg_of(args[0]);
        let mut regs = [first; 3];
        for (r, v) in regs.iter_mut().zip(args).take(d.args.len()).skip(1) {
            *r = self.reg_of(v);
        }
        // The two most common families get ops of their own (no table, no dispatch).
        match d.kind {
            DistKind::Normal => return Ok(Some(DistOp::NormalDyn(regs[0], regs[1]))),
            DistKind::Bernoulli => return Ok(Some(DistOp::BernoulliDyn(regs[0]))),
            _ => {}
        }
        self.plan.dyn_dists.push(DynDist {
            kind: d.kind,
            args: regs,
        });
        Ok(Some(DistOp::Dyn(to_reg(self.plan.dyn_dists.len() - 1))))
    }

    fn push_dist(&mut self, d: Dist) -> DistOp {
        self.plan.dists.push(d);
        DistOp::Dist(to_reg(self.plan.dists.len() - 1))
    }
}
