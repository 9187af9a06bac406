//! Expression evaluation and output collection (independent of the handler).

use std::cell::Cell;

use probserve_runtime::{CancelToken, DistError, ModelError, Normal};

use crate::ir::{Ex, OutputItem};
use crate::model::Compiled;

use super::draw::INLINE;
use super::{ArrayBuf, BoundData, CHECK_EVERY, Draw, Fault, Run, Stop, index};

impl<'a, H> Run<'a, H> {
    pub(crate) fn new(
        c: &'a Compiled,
        data: &'a BoundData,
        slots: &'a mut [f64],
        arrays: &'a mut [ArrayBuf],
        h: &'a mut H,
        cancel: &'a CancelToken,
        limit: u64,
    ) -> Self {
        Self {
            c,
            data,
            slots,
            arrays,
            h,
            cancel,
            limit,
            steps: 0,
            next_check: CHECK_EVERY.min(limit.saturating_add(1)),
            factor_count: 0,
            fault: Cell::new(None),
            error: None,
            last_normal: Cell::new(None),
        }
    }

    pub(super) fn array_name(&self, a: u32) -> &str {
        self.c
            .array_names
            .get(a as usize)
            .map_or("?", String::as_str)
    }

    #[inline]
    pub(super) fn slot(&self, s: u32) -> f64 {
        self.slots.get(s as usize).copied().unwrap_or(f64::NAN)
    }

    #[inline]
    pub(super) fn vec_elem(&self, v: u32, i: f64) -> f64 {
        let vec = self
            .data
            .vecs
            .get(v as usize)
            .map_or(&[][..], Vec::as_slice);
        match vec.get(index(i)) {
            Some(x) => *x,
            _ => {
                self.fault.set(Some(Fault::VecIndex { vec: v, index: i }));
                f64::NAN
            }
        }
    }

    /// Evaluates an expression, reading slots, constants and operations on leaves
    /// without a call (they are most operands).
    #[inline(always)]
    pub(super) fn operand(&self, e: &Ex) -> f64 {
        match e {
            Ex::Call2(f, a, b) => f.apply(self.leaf(a), self.leaf(b)),
            _ => self.leaf(e),
        }
    }

    /// Like [`Run::operand`] one level down: leaves and data-vector elements at a slot
    /// index are read inline.
    #[inline(always)]
    fn leaf(&self, e: &Ex) -> f64 {
        match e {
            Ex::Slot(s) => self.slot(*s),
            Ex::Const(c) => *c,
            Ex::VecElem(v, i) => match **i {
                Ex::Slot(s) => self.vec_elem(*v, self.slot(s)),
                _ => self.eval(e),
            },
            Ex::ArrElem(a, i) => match **i {
                Ex::Slot(s) => self.arr_elem(*a, self.slot(s)),
                _ => self.eval(e),
            },
            _ => self.eval(e),
        }
    }

    /// Element `i` of indexed site `a`, which must have been written in this run.
    #[inline]
    fn arr_elem(&self, a: u32, i: f64) -> f64 {
        let buf = self.arrays.get(a as usize);
        match buf.and_then(|b| b.get(index(i))) {
            Some(v) => v,
            _ => {
                self.fault.set(Some(Fault::Unassigned { arr: a, index: i }));
                f64::NAN
            }
        }
    }

    /// Argument `k` of a distribution (the checker guarantees the count).
    #[inline(always)]
    pub(super) fn arg(&self, args: &[Ex], k: usize) -> f64 {
        match args.get(k) {
            Some(x) => self.operand(x),
            None => f64::NAN,
        }
    }

    /// The bind-time normal of `normal(mean, s[i])` at the current `i`, if `i` is a
    /// valid index with a valid scale (otherwise the caller takes the general path,
    /// which reports any problem exactly as an unprepared site would).
    #[inline(always)]
    pub(super) fn scale_at<'t>(
        &self,
        args: &[Ex],
        table: &'t [Option<Normal>],
    ) -> Option<&'t Normal> {
        let Some(Ex::VecElem(_, idx)) = args.get(1) else {
            return None;
        };
        let i = self.leaf(idx);
        table.get(index(i))?.as_ref()
    }

    /// A normal distribution, reusing the normalizer of the last one built when the
    /// scale is the same (a loop over observations usually shares one scale).
    #[inline(always)]
    pub(super) fn normal(&self, mu: f64, sigma: f64) -> Result<Normal, DistError> {
        match self.last_normal.get() {
            Some(n) if n.sigma() == sigma => n.with_mean(mu),
            _ => {
                let n = Normal::new(mu, sigma)?;
                self.last_normal.set(Some(n));
                Ok(n)
            }
        }
    }

    /// Evaluates an expression. Faults (bad index, unassigned element) give NaN and
    /// are recorded for [`Run::checked`] to report.
    pub(crate) fn eval(&self, e: &Ex) -> f64 {
        match e {
            Ex::Const(c) => *c,
            Ex::Slot(s) => self.slot(*s),
            Ex::Derived(d) => self
                .data
                .derived
                .get(*d as usize)
                .copied()
                .unwrap_or(f64::NAN),
            Ex::VecElem(v, i) => self.vec_elem(*v, self.leaf(i)),
            Ex::ArrElem(a, i) => self.arr_elem(*a, self.leaf(i)),
            Ex::Call1(f, a) => f.apply(self.operand(a)),
            Ex::Call2(f, a, b) => f.apply(self.leaf(a), self.leaf(b)),
            Ex::And(a, b) => {
                if self.operand(a) != 0.0 {
                    self.operand(b)
                } else {
                    0.0
                }
            }
            Ex::Or(a, b) => {
                if self.operand(a) != 0.0 {
                    1.0
                } else {
                    self.operand(b)
                }
            }
            Ex::Cond(c, a, b) => {
                if self.operand(c) != 0.0 {
                    self.operand(a)
                } else {
                    self.operand(b)
                }
            }
        }
    }

    /// Evaluates and reports any fault as a model error.
    pub(crate) fn eval_checked(&self, e: &Ex) -> Result<f64, ModelError> {
        let v = self.eval(e);
        match self.fault.take() {
            None => Ok(v),
            Some(f) => Err(self.fault_error(f)),
        }
    }

    pub(super) fn fault_error(&self, f: Fault) -> ModelError {
        match f {
            Fault::VecIndex { vec, index } => {
                let name = self
                    .c
                    .vec_names
                    .get(vec as usize)
                    .map_or("?", String::as_str);
                let len = self.data.vecs.get(vec as usize).map_or(0, Vec::len);
                ModelError::Other(format!(
                    "index {index} is out of range for `{name}` (length {len})"
                ))
            }
            Fault::Unassigned { arr, index } => ModelError::Other(format!(
                "`{}[{index}]` is read before it is assigned",
                self.array_name(arr)
            )),
        }
    }

    /// `v`, unless an evaluation since the last check faulted.
    #[inline]
    pub(super) fn checked(&mut self, v: f64) -> Result<f64, Stop> {
        match self.fault.take() {
            None => Ok(v),
            Some(f) => self.fail(self.fault_error(f)),
        }
    }

    #[cold]
    pub(super) fn fail<T>(&mut self, e: ModelError) -> Result<T, Stop> {
        self.error = Some(e);
        Err(Stop)
    }

    /// The outputs of the finished run (`extents` and `width` from bind time).
    #[inline(always)]
    pub(crate) fn outputs(&self, extents: &[usize], width: usize) -> Draw {
        let items = self.c.program.outputs.iter().zip(extents);
        let mut draw = Draw::empty();
        if width <= INLINE {
            let (vals, len) = (&mut draw.vals, &mut draw.len);
            for (item, &n) in items {
                self.write_item(item, n, &mut |v| {
                    if let Some(x) = vals.get_mut(*len) {
                        *x = v;
                        *len += 1;
                    }
                });
            }
        } else {
            let heap = &mut draw.heap;
            heap.reserve_exact(width);
            for (item, &n) in items {
                self.write_item(item, n, &mut |v| heap.push(v));
            }
        }
        draw
    }

    #[inline]
    fn write_item(&self, item: &OutputItem, n: usize, push: &mut impl FnMut(f64)) {
        match item {
            OutputItem::Scalar { slot, .. } => push(self.slot(*slot)),
            OutputItem::Array { arr, .. } => {
                let buf = self.arrays.get(*arr as usize);
                for i in 0..n {
                    let v = buf.and_then(|b| b.get(i)).unwrap_or(f64::NAN);
                    push(v);
                }
            }
        }
    }
}
