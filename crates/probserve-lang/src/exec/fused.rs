//! Native execution of the fused statement forms of [`crate::fuse`].

use probserve_runtime::{Address, Handler};

use crate::ir::{Mean, ObsLoop};

use super::{Prebuilt, Run, Step, index};

impl<H: Handler> Run<'_, H> {
    /// `for var in lo..hi { y[var] ~ normal(mean, scale); }` with the scale evaluated
    /// and its normalizer computed once. Steps are charged per iteration exactly as the
    /// unfused loop charges them (the iteration plus its one statement), so budget and
    /// cancellation behave the same. Any iteration the fast path cannot take (a bad
    /// index, a fault, an invalid mean or scale) runs the original statement, which
    /// reports exactly the error the unfused loop would.
    pub(super) fn obs_loop(&mut self, l: &ObsLoop) -> Step {
        let lo = self.operand(&l.lo);
        let lo = self.checked(lo)?;
        let hi = self.operand(&l.hi);
        let hi = self.checked(hi)?;
        if lo >= hi || lo.is_nan() || hi.is_nan() {
            return Ok(());
        }
        let data = self.data;
        let ys = data.vecs.get(l.y as usize).map_or(&[][..], Vec::as_slice);
        // The loop body writes no slot, so the scale is the same in every iteration.
        let scale = match data.prebuilt.get(l.dist as usize) {
            Some(Prebuilt::NormalScale(n)) => Some(*n),
            _ => {
                let s = self.operand(&l.scale);
                match self.fault.take() {
                    None => self.normal(0.0, s).ok(),
                    Some(_) => None,
                }
            }
        };
        let (a, b, xs) = match &l.mean {
            Mean::Affine { a, b, x } => (
                self.operand(a),
                self.operand(b),
                data.vecs.get(*x as usize).map_or(&[][..], Vec::as_slice),
            ),
            Mean::Any(_) => (f64::NAN, f64::NAN, &[][..]),
        };
        let base = Address::site(l.site);
        let mut i = lo;
        while i < hi {
            self.tick(2)?;
            if let Some(s) = self.slots.get_mut(l.var as usize) {
                *s = i;
            }
            let k = index(i);
            if let (Some(n), Some(&y)) = (scale.as_ref(), ys.get(k)) {
                let mu = match &l.mean {
                    Mean::Affine { .. } => xs.get(k).map(|&x| a + b * x),
                    Mean::Any(e) => {
                        let m = self.operand(e);
                        self.fault.take().is_none().then_some(m)
                    }
                };
                if let Some(Ok(d)) = mu.map(|m| n.with_mean(m)) {
                    let r = self.h.observe(base.at_usize(k), &d, y);
                    self.handled(r)?;
                    i += 1.0;
                    continue;
                }
            }
            self.stmt(&l.body)?;
            i += 1.0;
        }
        Ok(())
    }
}
