//! Statement lowering: destinations (slots, static and run-time arrays), sites, and the
//! control flow the data decides (unrolled loops, taken branches) or leaves to the run
//! (jumps), with the fused observation loop.

use probserve_runtime::{Address, SiteId};

use crate::errors::{self, index};
use crate::ir::{self, Dest, DistEx, Ex, Family, Mean, ObsTarget, St};

use super::expr::Val;
use super::lower::{ArrState, Lower, Res, Restart, to_reg};
use super::{AddrSpec, Failure, LoopFamily, MAX_UNROLLED_OPS, ObsLoop, Op, Predictor, Reg};

/// A destination being written.
#[derive(Debug, Clone, Copy)]
enum Place {
    Slot(u32),
    Static {
        arr: u32,
        idx: usize,
    },
    /// Run-time array `arr` at the checked index in register `idx`.
    Dynamic {
        arr: u32,
        idx: Reg,
    },
}

impl<'a> Lower<'a> {
    pub(super) fn block(&mut self, body: &'a [St]) -> Res {
        self.charge(body.len() as u64);
        for st in body {
            if self.terminated {
                break;
            }
            let mark = self.temp_top;
            self.stmt(st)?;
            self.temp_top = mark;
        }
        Ok(())
    }

    fn stmt(&mut self, st: &'a St) -> Res {
        match st {
            St::Assign(dest, e) => {
                let Some((place, _)) = self.dest(None, dest)? else {
                    return Ok(());
                };
                let v = self.expr(e)?;
                if !self.terminated {
                    let v = self.settle(place, v);
                    self.commit(place, v);
                }
            }
            St::Sample { site, dest, dist } => self.sample(*site, dest, dist)?,
            St::Observe { site, target, dist } => self.observe(*site, target, dist)?,
            St::Factor { site, value } => {
                let v = self.expr(value)?;
                if !self.terminated {
                    let value = self.reg_of(v);
                    self.emit(Op::Factor { site: *site, value });
                }
            }
            St::If(c, a, b) => self.if_stmt(c, a, b)?,
            St::For { var, lo, hi, body } => self.for_stmt(*var, lo, hi, body)?,
            St::ObsLoop(l) => {
                if !(self.opt && self.obs_loop(l)?) {
                    self.for_stmt(l.var, &l.lo, &l.hi, std::slice::from_ref(&l.body))?;
                }
            }
        }
        Ok(())
    }

    /// Evaluates a destination (its index, for arrays) and checks it; `None` when the
    /// run fails there. The address is the site's, at the index.
    fn dest(&mut self, site: Option<SiteId>, dest: &'a Dest) -> Res<Option<(Place, AddrSpec)>> {
        let base = Address::site(site.unwrap_or(SiteId(u32::MAX)));
        let (a, i) = match dest {
            Dest::Slot(s) => return Ok(Some((Place::Slot(*s), AddrSpec::Fixed(base)))),
            Dest::Arr(a, i) => (*a, i),
        };
        let iv = self.expr(i)?;
        if self.terminated {
            return Ok(None);
        }
        match self.arrays.get(a as usize) {
            Some(ArrState::Static(elems)) => {
                let Val::Const(x) = iv else {
                    return Err(Restart(a));
                };
                if self.dyn_depth > 0 {
                    return Err(Restart(a));
                }
                let Some(idx) = errors::write_index(x) else {
                    self.fail(Failure::Error(errors::bad_array_index(self.c, a, x)));
                    return Ok(None);
                };
                if elems.contains_key(&idx) {
                    self.fail(Failure::Error(errors::assigned_twice(self.c, a, idx)));
                    return Ok(None);
                }
                let addr = AddrSpec::Fixed(base.at_usize(idx));
                Ok(Some((Place::Static { arr: a, idx }, addr)))
            }
            Some(&ArrState::Dynamic(arr)) => {
                let idx = self.reg_of(iv);
                let dst = self.temp();
                self.emit(Op::ArrSlot { dst, arr, idx });
                let site = site.unwrap_or(SiteId(u32::MAX));
                let addr = AddrSpec::Indexed { site, idx: dst };
                Ok(Some((Place::Dynamic { arr, idx: dst }, addr)))
            }
            None => Ok(None),
        }
    }

    /// The register a value written to `p` is computed into.
    fn place_reg(&mut self, p: Place) -> Reg {
        match p {
            Place::Slot(s) => {
                if let Some(Some(r)) = self.out_slot.get(s as usize) {
                    return *r;
                }
                match self.slot_reg.get(s as usize) {
                    Some(Some(r)) => *r,
                    _ => {
                        let r = self.new_reg(f64::NAN);
                        if let Some(sr) = self.slot_reg.get_mut(s as usize) {
                            *sr = Some(r);
                        }
                        r
                    }
                }
            }
            Place::Static { arr, idx } => match self.out_arr.get(arr as usize) {
                Some(Some((base, n))) if idx < *n => base + to_reg(idx),
                _ => self.new_reg(f64::NAN),
            },
            Place::Dynamic { .. } => self.temp(),
        }
    }

    /// Where the value `v` written to `p` lives from now on: constants stay constants
    /// (put straight into the initial register file when `p` is an output), other
    /// slots' registers are shared, anything else is computed into `p`'s register.
    fn settle(&mut self, p: Place, v: Val) -> Val {
        if !self.opt {
            if matches!(p, Place::Dynamic { .. }) {
                return v;
            }
            let r = self.place_reg(p);
            self.place(v, r);
            return Val::Reg(r);
        }
        let out = match p {
            Place::Slot(s) => self.out_slot.get(s as usize).copied().flatten(),
            Place::Static { arr, idx } => match self.out_arr.get(arr as usize) {
                Some(Some((base, n))) if idx < *n => Some(base + to_reg(idx)),
                _ => None,
            },
            Place::Dynamic { .. } => return v,
        };
        match (v, out) {
            // Outputs are written by unconditional code only (top-level statements,
            // static arrays), so a constant can be in place before the run starts.
            (Val::Const(c), Some(r)) => {
                if let Some(x) = self.plan.init.get_mut(r as usize) {
                    *x = c;
                }
                v
            }
            (Val::Const(_), None) => v,
            (Val::Reg(r), None) if !self.is_temp(r) && matches!(p, Place::Slot(_)) => v,
            _ => {
                let r = self.place_reg(p);
                self.place(v, r);
                Val::Reg(r)
            }
        }
    }

    fn commit(&mut self, p: Place, v: Val) {
        match p {
            Place::Slot(s) => {
                if let Some(x) = self.slot_val.get_mut(s as usize) {
                    *x = v;
                }
            }
            Place::Static { arr, idx } => {
                if let Some(ArrState::Static(elems)) = self.arrays.get_mut(arr as usize) {
                    elems.insert(idx, v);
                }
            }
            Place::Dynamic { arr, idx } => {
                let src = self.reg_of(v);
                self.emit(Op::ArrPut { arr, idx, src });
            }
        }
    }

    fn sample(&mut self, site: SiteId, dest: &'a Dest, dist: &'a DistEx) -> Res {
        let Some((place, addr)) = self.dest(Some(site), dest)? else {
            return Ok(());
        };
        let addr = self.addr(addr);
        let Some(d) = self.dist(dist, addr)? else {
            return Ok(());
        };
        let dst = self.place_reg(place);
        self.emit(d.sample(dst, addr));
        self.commit(place, Val::Reg(dst));
        Ok(())
    }

    fn observe(&mut self, site: SiteId, target: &'a ObsTarget, dist: &'a DistEx) -> Res {
        let base = Address::site(site);
        let (addr, value) = match target {
            ObsTarget::Scalar(slot) => {
                let v = self.slot_val.get(*slot as usize).copied();
                (AddrSpec::Fixed(base), v.unwrap_or(Val::Const(f64::NAN)))
            }
            ObsTarget::Elem(vec, i) => {
                let iv = self.expr(i)?;
                if self.terminated {
                    return Ok(());
                }
                match iv {
                    Val::Const(x) if self.opt => match self.vec(*vec).get(index(x)) {
                        Some(&y) => (AddrSpec::Fixed(base.at_usize(index(x))), Val::Const(y)),
                        None => {
                            let e = errors::vec_index(self.c, self.data, *vec, x);
                            self.fail(Failure::Error(e));
                            return Ok(());
                        }
                    },
                    _ => {
                        let idx = self.reg_of(iv);
                        let dst = self.temp();
                        self.emit(Op::VecElem {
                            dst,
                            vec: *vec,
                            idx,
                        });
                        (AddrSpec::Indexed { site, idx }, Val::Reg(dst))
                    }
                }
            }
        };
        let addr = self.addr(addr);
        let Some(d) = self.dist(dist, addr)? else {
            return Ok(());
        };
        let value = self.reg_of(value);
        self.emit(d.observe(addr, value));
        Ok(())
    }

    fn if_stmt(&mut self, c: &'a Ex, a: &'a [St], b: &'a [St]) -> Res {
        let cv = self.expr(c)?;
        if self.terminated {
            return Ok(());
        }
        if self.opt
            && let Val::Const(x) = cv
        {
            return self.block(if x != 0.0 { a } else { b });
        }
        let c = self.reg_of(cv);
        let jz = self.emit(Op::JumpIfZero { c, to: 0 });
        self.dyn_depth += 1;
        let then_stops = self.branch(a)?;
        let jump = (!b.is_empty()).then(|| self.emit(Op::Jump { to: 0 }));
        self.land(jz);
        let else_stops = !b.is_empty() && self.branch(b)?;
        if let Some(j) = jump {
            self.land(j);
        }
        self.dyn_depth -= 1;
        self.terminated = then_stops && else_stops;
        Ok(())
    }

    /// One branch of a conditional, as a region of its own; true when it always fails.
    fn branch(&mut self, body: &'a [St]) -> Res<bool> {
        let saved = self.open_region(0);
        self.block(body)?;
        self.close_region(saved);
        Ok(std::mem::take(&mut self.terminated))
    }

    fn for_stmt(&mut self, var: u32, lo: &'a Ex, hi: &'a Ex, body: &'a [St]) -> Res {
        let lo = self.expr(lo)?;
        if self.terminated {
            return Ok(());
        }
        let hi = self.expr(hi)?;
        if self.terminated {
            return Ok(());
        }
        if self.opt
            && let (Val::Const(l), Val::Const(h)) = (lo, hi)
            && !(l.is_finite() && h.is_finite())
        {
            self.fail(Failure::Error(errors::loop_bounds(l, h)));
            return Ok(());
        }
        if self.opt
            && let (Val::Const(l), Val::Const(h)) = (lo, hi)
            && self.unrollable(l, h, body)
        {
            let mut i = l;
            while i < h && !self.terminated {
                self.charge(1);
                if let Some(v) = self.slot_val.get_mut(var as usize) {
                    *v = Val::Const(i);
                }
                self.block(body)?;
                i += 1.0;
            }
            return Ok(());
        }
        let (lo, hi) = (self.reg_of(lo), self.reg_of(hi));
        let v = self.place_reg(Place::Slot(var));
        if let Some(x) = self.slot_val.get_mut(var as usize) {
            *x = Val::Reg(v);
        }
        let init = self.emit(Op::LoopInit {
            var: v,
            lo,
            hi,
            exit: 0,
        });
        let body_at = to_reg(self.plan.ops.len());
        self.barrier = self.plan.ops.len();
        self.dyn_depth += 1;
        let saved = self.open_region(1);
        self.block(body)?;
        self.close_region(saved);
        self.dyn_depth -= 1;
        // The loop may run no iteration: what follows is reachable.
        self.terminated = false;
        self.emit(Op::LoopNext {
            var: v,
            hi,
            body: body_at,
        });
        self.land(init);
        Ok(())
    }

    /// Whether `for _ in l..h { body }` is unrolled: the bounds are exact and the plan
    /// stays under its size limit.
    fn unrollable(&self, l: f64, h: f64, body: &[St]) -> bool {
        const EXACT: f64 = 4_503_599_627_370_496.0; // 2^52: `i + 1.0` is exact below
        if !(l.abs() <= EXACT && h.abs() <= EXACT) {
            return false;
        }
        let trips = (h - l).max(0.0);
        let per = 1.0 + size(body) as f64;
        self.plan.ops.len() as f64 + trips * per <= MAX_UNROLLED_OPS as f64
    }

    /// `for i in lo..hi { y[i] ~ family(predictor); }` as one op, when that is
    /// indistinguishable from the loop: the predictor's operands and a normal's scale
    /// (evaluated once, before the loop, instead of per iteration) can fail nowhere.
    /// False when the loop must be lowered as written. A random intercept `theta[g[i]]`
    /// is fused only where the loop would not be unrolled (unrolled, `theta` lives in
    /// registers, which is as fast); it reads `theta` as a run-time array.
    fn obs_loop(&mut self, l: &'a ir::ObsLoop) -> Res<bool> {
        if matches!(l.mean, Mean::Any(_)) {
            return Ok(false);
        }
        let start = self.mark();
        let lo = self.expr(&l.lo)?;
        let hi = self.expr(&l.hi)?;
        let operands = self.mark();
        let predictor = match &l.mean {
            Mean::Affine { a, b, x } => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let (a, b) = (self.reg_of(a), self.reg_of(b));
                Predictor::Affine { a, b, x: *x }
            }
            Mean::Gather { arr, g } => {
                let body = std::slice::from_ref(&l.body);
                if let (Val::Const(lo), Val::Const(hi)) = (lo, hi)
                    && self.unrollable(lo, hi, body)
                {
                    self.rollback(start);
                    return Ok(false);
                }
                match self.arrays.get(*arr as usize) {
                    Some(&ArrState::Dynamic(dyn_arr)) => Predictor::Gather {
                        arr: dyn_arr,
                        ir_arr: *arr,
                        g: *g,
                    },
                    _ => return Err(Restart(*arr)),
                }
            }
            Mean::Any(_) => return Ok(false),
        };
        let scale = match &l.family {
            Family::Normal { scale } => Some(self.expr(scale)?),
            Family::BernoulliLogit | Family::PoissonLog => None,
        };
        if self.terminated || self.ops_since(operands).iter().any(|op| op.may_fail()) {
            self.rollback(start);
            return Ok(false);
        }
        let family = match &l.family {
            Family::Normal { .. } => {
                let scale = scale.unwrap_or(Val::Const(f64::NAN));
                LoopFamily::Normal {
                    scale: self.reg_of(scale),
                    normal: match scale {
                        Val::Const(s) => probserve_runtime::Normal::new(0.0, s).ok(),
                        Val::Reg(_) => None,
                    },
                }
            }
            Family::BernoulliLogit => LoopFamily::BernoulliLogit,
            Family::PoissonLog => LoopFamily::PoissonLog,
        };
        let spec = ObsLoop {
            lo: self.reg_of(lo),
            hi: self.reg_of(hi),
            site: l.site,
            y: l.y,
            predictor,
            family,
        };
        self.plan.obs_loops.push(spec);
        let l = to_reg(self.plan.obs_loops.len() - 1);
        self.emit(Op::ObsLoop { l });
        Ok(true)
    }
}

/// An upper estimate of the ops one run of `body` lowers to (loops counted once).
fn size(body: &[St]) -> usize {
    body.iter()
        .map(|st| match st {
            St::Assign(d, e) => 1 + dest_size(d) + ex_size(e),
            St::Sample { dest, dist, .. } => 2 + dest_size(dest) + dist_size(dist),
            St::Observe { target, dist, .. } => {
                let t = match target {
                    ObsTarget::Scalar(_) => 0,
                    ObsTarget::Elem(_, i) => 1 + ex_size(i),
                };
                1 + t + dist_size(dist)
            }
            St::Factor { value, .. } => 1 + ex_size(value),
            St::If(c, a, b) => 3 + ex_size(c) + size(a) + size(b),
            St::For { lo, hi, body, .. } => 3 + ex_size(lo) + ex_size(hi) + size(body),
            St::ObsLoop(l) => {
                3 + ex_size(&l.lo) + ex_size(&l.hi) + size(std::slice::from_ref(&l.body))
            }
        })
        .sum()
}

fn dest_size(d: &Dest) -> usize {
    match d {
        Dest::Slot(_) => 0,
        Dest::Arr(_, i) => 2 + ex_size(i),
    }
}

fn dist_size(d: &DistEx) -> usize {
    d.args.iter().map(ex_size).sum()
}

fn ex_size(e: &Ex) -> usize {
    match e {
        Ex::Const(_) | Ex::Slot(_) | Ex::Derived(_) => 0,
        Ex::VecElem(_, a) | Ex::ArrElem(_, a) | Ex::Call1(_, a) => 1 + ex_size(a),
        Ex::Call2(_, a, b) | Ex::And(a, b) | Ex::Or(a, b) => 3 + ex_size(a) + ex_size(b),
        Ex::Cond(c, a, b) => 4 + ex_size(c) + ex_size(a) + ex_size(b),
    }
}
