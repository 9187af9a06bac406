//! The fused observation loop `for i in lo..hi { y[i] ~ normal(a + b * x[i], scale); }`:
//! the same handler calls, steps and errors as the loop, without an op per iteration.

use probserve_runtime::{Address, Handler, ModelError};

use crate::errors::{self, index};
use crate::plan::ObsLoop;

use super::Machine;
use super::dist::cached_normal;

impl<H: Handler, R: super::RegFile> Machine<'_, H, R> {
    /// Steps are charged per iteration as the loop charges them (the iteration and its
    /// one statement); errors are checked in the loop's order: `y[i]`, `x[i]`, then the
    /// normal (its mean, then its scale).
    pub(super) fn obs_loop(&mut self, l: &ObsLoop) -> Result<(), ModelError> {
        let (lo, hi) = (self.get(l.lo), self.get(l.hi));
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(errors::loop_bounds(lo, hi));
        }
        let (a, b, scale) = (self.get(l.a), self.get(l.b), self.get(l.scale));
        let (ys, xs) = (self.vec(l.y), self.vec(l.x));
        let base = Address::site(l.site);
        let mut i = lo;
        while i < hi {
            self.tick(2)?;
            let k = index(i);
            let Some(&y) = ys.get(k) else {
                return Err(errors::vec_index(self.c, self.data, l.y, i));
            };
            let Some(&x) = xs.get(k) else {
                return Err(errors::vec_index(self.c, self.data, l.x, i));
            };
            let mu = a + b * x;
            let addr = base.at_usize(k);
            let d = match &l.normal {
                Some(n) => n.with_mean(mu),
                None => cached_normal(&mut self.last_normal, mu, scale),
            };
            let d = d.map_err(|e| ModelError::dist_at(addr, e))?;
            self.h.observe(addr, &d, y)?;
            i += 1.0;
        }
        Ok(())
    }
}
