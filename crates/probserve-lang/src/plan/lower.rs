//! The lowering's state ([`Lower`]): registers and scratch registers, constants, the op
//! list with its rewrite barrier and rollback marks, and the straight-line regions whose
//! steps are charged up front. Statements are lowered in `stmt`, expressions in `expr`.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::bind::BoundData;
use crate::ir::OutputItem;
use crate::model::Compiled;

use super::expr::Val;
use super::{AddrSpec, Failure, Op, Options, Plan, Reg, SMALL_REGS};

/// Lowering found that IR array `.0` cannot live in registers: start again with it as
/// a run-time array.
pub(super) struct Restart(pub(super) u32);

pub(super) type Res<T = ()> = Result<T, Restart>;

/// Lowers `c`'s program on `data`; `extents` are the bind-time lengths of the output
/// items (0 for scalars).
pub(crate) fn lower(c: &Compiled, data: &BoundData, extents: &[usize], opts: Options) -> Plan {
    let mut dynamic = vec![!opts.optimize; c.program.n_arrays as usize];
    let mut restarts = 0;
    loop {
        let mut l = Lower::new(c, data, extents, opts, &dynamic);
        match l.program() {
            Ok(()) => {
                let plan = l.finish();
                debug_assert_eq!(plan.check(), Ok(()), "ill-formed plan: {plan:#?}");
                return plan;
            }
            // Each restart makes one more array dynamic, and after a few all of them (a
            // bound on binding time); with all arrays dynamic no restart is raised.
            Err(Restart(a)) => {
                restarts += 1;
                match dynamic.get_mut(a as usize) {
                    Some(d) if !*d && restarts <= MAX_RESTARTS => *d = true,
                    _ => dynamic.fill(true),
                }
            }
        }
    }
}

/// Restarts (each making one more indexed site a run-time array) before every site is
/// made one.
const MAX_RESTARTS: usize = 4;

/// Maps keyed by small integers, hashed fast and the same way in every process (binding
/// is on the request path; nothing iterates these maps, so order never matters).
pub(super) type FastMap<K, V> = HashMap<K, V, FixedState>;

/// Where an indexed site's elements live.
#[derive(Debug)]
pub(super) enum ArrState {
    /// In registers (or constants), by index; written only by unconditional code.
    Static(FastMap<usize, Val>),
    /// In run-time array `.0`.
    Dynamic(u32),
}

/// A point to roll the op list back to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    ops: usize,
    failures: usize,
    temp_top: usize,
    barrier: usize,
    terminated: bool,
}

pub(super) struct Lower<'a> {
    pub(super) c: &'a Compiled,
    pub(super) data: &'a BoundData,
    pub(super) opt: bool,
    pub(super) plan: Plan,
    pub(super) consts: FastMap<u64, Reg>,
    pub(super) is_temp: Vec<bool>,
    pub(super) temp_pool: Vec<Reg>,
    pub(super) temp_top: usize,
    /// Current value of each IR slot.
    pub(super) slot_val: Vec<Val>,
    pub(super) slot_reg: Vec<Option<Reg>>,
    /// Output register of each IR slot that is an output.
    pub(super) out_slot: Vec<Option<Reg>>,
    /// First output register and length of each IR array that is an output.
    pub(super) out_arr: Vec<Option<(Reg, usize)>>,
    pub(super) arrays: Vec<ArrState>,
    /// Nesting depth of conditional code and loops that are not unrolled.
    pub(super) dyn_depth: u32,
    /// The code being lowered is unreachable (a failure was emitted before it).
    pub(super) terminated: bool,
    /// Ops before this index cannot be rewritten (a jump may land at it).
    pub(super) barrier: usize,
    /// The `Tick` op of the current straight-line region and its charge so far.
    pub(super) region: Option<usize>,
    pub(super) region_steps: u64,
}

impl<'a> Lower<'a> {
    fn new(
        c: &'a Compiled,
        data: &'a BoundData,
        extents: &[usize],
        opts: Options,
        dynamic: &[bool],
    ) -> Self {
        let p = &c.program;
        let mut plan = Plan {
            entry_steps: 0,
            ops: Vec::new(),
            init: Vec::new(),
            addrs: Vec::new(),
            normals: Vec::new(),
            dists: Vec::new(),
            dyn_dists: Vec::new(),
            obs_loops: Vec::new(),
            failures: Vec::new(),
            arrays: Vec::new(),
            width: 0,
            small_init: None,
        };
        let mut out_slot = vec![None; p.n_slots as usize];
        let mut out_arr = vec![None; p.n_arrays as usize];
        for (item, &n) in p.outputs.iter().zip(extents) {
            let base = to_reg(plan.init.len());
            match item {
                OutputItem::Scalar { slot, .. } => {
                    let v = data.scalars.get(*slot as usize).copied();
                    plan.init.push(v.unwrap_or(f64::NAN));
                    if let Some(o) = out_slot.get_mut(*slot as usize) {
                        *o = Some(base);
                    }
                }
                OutputItem::Array { arr, .. } => {
                    plan.init.resize(plan.init.len() + n, f64::NAN);
                    if let Some(o) = out_arr.get_mut(*arr as usize) {
                        *o = Some((base, n));
                    }
                }
            }
        }
        plan.width = plan.init.len();
        let arrays = (0..p.n_arrays)
            .map(|a| {
                if dynamic.get(a as usize).copied().unwrap_or(true) {
                    plan.arrays.push(a);
                    ArrState::Dynamic(to_reg(plan.arrays.len() - 1))
                } else {
                    ArrState::Static(FastMap::default())
                }
            })
            .collect();
        let mut l = Lower {
            c,
            data,
            opt: opts.optimize,
            is_temp: vec![false; plan.init.len()],
            plan,
            consts: FastMap::default(),
            temp_pool: Vec::new(),
            temp_top: 0,
            slot_val: vec![Val::Const(f64::NAN); p.n_slots as usize],
            slot_reg: vec![None; p.n_slots as usize],
            out_slot,
            out_arr,
            arrays,
            dyn_depth: 0,
            terminated: false,
            barrier: 0,
            region: None,
            region_steps: 0,
        };
        for (s, &x) in data.scalars.iter().enumerate() {
            let v = if l.opt {
                Val::Const(x)
            } else {
                Val::Reg(l.new_reg(x))
            };
            if let Some(slot) = l.slot_val.get_mut(s) {
                *slot = v;
            }
        }
        l
    }

    fn program(&mut self) -> Res {
        let c = self.c;
        // The top level is a region whose charge is paid when the run starts.
        self.block(&c.program.body)?;
        self.plan.entry_steps = self.region_steps;
        for (ir_arr, out) in self.out_arr.clone().into_iter().enumerate() {
            if let (Some((dst, n)), Some(ArrState::Dynamic(arr))) = (out, self.arrays.get(ir_arr)) {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                self.emit(Op::ArrOut { arr: *arr, dst, n });
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Plan {
        let init = &self.plan.init;
        if init.len() <= SMALL_REGS {
            let mut small = [0.0; SMALL_REGS];
            if let Some(head) = small.get_mut(..init.len()) {
                head.copy_from_slice(init);
            }
            self.plan.small_init = Some(small);
        }
        self.plan
    }

    // ------------------------------------------------------------ registers and ops

    pub(super) fn new_reg(&mut self, init: f64) -> Reg {
        self.plan.init.push(init);
        self.is_temp.push(false);
        to_reg(self.plan.init.len() - 1)
    }

    /// A scratch register, free again when the current statement ends.
    pub(super) fn temp(&mut self) -> Reg {
        let r = match self.temp_pool.get(self.temp_top) {
            Some(&r) => r,
            None => {
                let r = self.new_reg(f64::NAN);
                if let Some(t) = self.is_temp.get_mut(r as usize) {
                    *t = true;
                }
                self.temp_pool.push(r);
                r
            }
        };
        self.temp_top += 1;
        r
    }

    /// The register holding `v` (constants get a shared register of their own).
    pub(super) fn reg_of(&mut self, v: Val) -> Reg {
        match v {
            Val::Reg(r) => r,
            Val::Const(c) => match self.consts.get(&c.to_bits()) {
                Some(&r) => r,
                None => {
                    let r = self.new_reg(c);
                    self.consts.insert(c.to_bits(), r);
                    r
                }
            },
        }
    }

    pub(super) fn emit(&mut self, op: Op) -> usize {
        self.plan.ops.push(op);
        self.plan.ops.len() - 1
    }

    /// Points the jump at `at` to the next op to be emitted.
    pub(super) fn land(&mut self, at: usize) {
        let here = to_reg(self.plan.ops.len());
        if let Some(op) = self.plan.ops.get_mut(at) {
            match op {
                Op::Jump { to } | Op::JumpIfZero { to, .. } => *to = here,
                Op::LoopInit { exit, .. } => *exit = here,
                _ => {}
            }
        }
        self.barrier = self.plan.ops.len();
    }

    /// The last op, if it may be rewritten.
    pub(super) fn last_op(&mut self) -> Option<&mut Op> {
        if self.plan.ops.len() <= self.barrier {
            return None;
        }
        self.plan.ops.last_mut()
    }

    pub(super) fn is_temp(&self, r: Reg) -> bool {
        self.is_temp.get(r as usize).copied().unwrap_or(false)
    }

    /// Makes register `dst` hold `v`: by retargeting the op that just computed it
    /// into a scratch register, or by a copy.
    pub(super) fn place(&mut self, v: Val, dst: Reg) {
        if let Val::Reg(r) = v {
            if r == dst {
                return;
            }
            if self.is_temp(r)
                && let Some(d) = self.last_op().and_then(Op::dst_mut)
                && *d == r
            {
                *d = dst;
                return;
            }
        }
        let src = self.reg_of(v);
        self.emit(Op::Copy { dst, src });
    }

    pub(super) fn fail(&mut self, f: Failure) {
        self.plan.failures.push(f);
        let err = to_reg(self.plan.failures.len() - 1);
        self.emit(Op::Fail { err });
        self.terminated = true;
    }

    pub(super) fn mark(&self) -> Mark {
        Mark {
            ops: self.plan.ops.len(),
            failures: self.plan.failures.len(),
            temp_top: self.temp_top,
            barrier: self.barrier,
            terminated: self.terminated,
        }
    }

    /// Forgets everything emitted since `m` (expressions change nothing else).
    pub(super) fn rollback(&mut self, m: Mark) {
        self.plan.ops.truncate(m.ops);
        self.plan.failures.truncate(m.failures);
        self.temp_top = m.temp_top;
        self.barrier = m.barrier;
        self.terminated = m.terminated;
    }

    pub(super) fn ops_since(&self, m: Mark) -> &[Op] {
        self.plan.ops.get(m.ops..).unwrap_or(&[])
    }

    pub(super) fn addr(&mut self, a: AddrSpec) -> u32 {
        self.plan.addrs.push(a);
        to_reg(self.plan.addrs.len() - 1)
    }

    pub(super) fn vec(&self, v: u32) -> &'a [f64] {
        self.data.vecs.get(v as usize).map_or(&[], Vec::as_slice)
    }

    // ------------------------------------------------------------ step charges

    /// Charges `n` steps: to the current region, or (plain) with a tick of their own.
    pub(super) fn charge(&mut self, n: u64) {
        if self.opt {
            self.region_steps += n;
        } else if n > 0 {
            self.emit(Op::Tick(u32::try_from(n).unwrap_or(u32::MAX)));
        }
    }

    /// Starts a straight-line region charged `steps` up front.
    pub(super) fn open_region(&mut self, steps: u64) -> (Option<usize>, u64) {
        if !self.opt {
            self.charge(steps);
            return (None, 0);
        }
        let at = self.emit(Op::Tick(0));
        (
            self.region.replace(at),
            std::mem::replace(&mut self.region_steps, steps),
        )
    }

    pub(super) fn close_region(&mut self, saved: (Option<usize>, u64)) {
        if let Some(at) = self.region
            && let Some(op) = self.plan.ops.get_mut(at)
        {
            *op = Op::Tick(u32::try_from(self.region_steps).unwrap_or(u32::MAX));
        }
        (self.region, self.region_steps) = saved;
    }
}

/// A table index as a `u32` (tables never get near 2^32 entries: sources are capped
/// at 1 MiB and unrolling at [`super::MAX_UNROLLED_OPS`]).
pub(super) fn to_reg(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
