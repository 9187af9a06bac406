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
    ///
    /// Runs of iterations whose indices are in range for both vectors and that cannot
    /// reach the next budget check go through [`Machine::obs_batch`] (no index
    /// conversion, bounds check or tick per element); the rest one at a time.
    pub(super) fn obs_loop(&mut self, l: &ObsLoop) -> Result<(), ModelError> {
        let (lo, hi) = (self.get(l.lo), self.get(l.hi));
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(errors::loop_bounds(lo, hi));
        }
        let (ys, xs) = (self.vec(l.y), self.vec(l.x));
        let safe_end = ys.len().min(xs.len()) as f64;
        let mut i = lo;
        while i < hi {
            // Loop variables are exact integers (int bounds, unit steps).
            let room = self.next_check.saturating_sub(self.steps).saturating_sub(1) / 2;
            if i >= 0.0 && i < safe_end && room > 0 {
                let n = (hi.min(safe_end) - i).ceil().min(room as f64);
                let done = self.obs_batch(l, i as usize, n as usize)?;
                if done > 0 {
                    self.steps += 2 * done as u64;
                    i += done as f64;
                    continue;
                }
            }
            self.tick(2)?;
            self.obs_one(l, i)?;
            i += 1.0;
        }
        Ok(())
    }

    /// Iterations `k0..k0 + n`, all with valid indices and inside the budget; returns
    /// how many ran (`n`, or 0 if the range is not valid after all: the caller then
    /// takes the checked path).
    fn obs_batch(&mut self, l: &ObsLoop, k0: usize, n: usize) -> Result<usize, ModelError> {
        let (a, b, scale) = (self.get(l.a), self.get(l.b), self.get(l.scale));
        let (ys, xs) = (self.vec(l.y), self.vec(l.x));
        let (Some(ys), Some(xs)) = (ys.get(k0..k0 + n), xs.get(k0..k0 + n)) else {
            return Ok(0);
        };
        let base = Address::site(l.site);
        for (j, (&y, &x)) in ys.iter().zip(xs).enumerate() {
            let mu = a + b * x;
            let addr = base.at_usize(k0 + j);
            let d = match &l.normal {
                Some(normal) => normal.with_mean(mu),
                None => cached_normal(&mut self.last_normal, mu, scale),
            };
            let d = d.map_err(|e| ModelError::dist_at(addr, e))?;
            self.h.observe(addr, &d, y)?;
        }
        Ok(n)
    }

    /// One iteration at `i`, checking everything.
    fn obs_one(&mut self, l: &ObsLoop, i: f64) -> Result<(), ModelError> {
        let (a, b, scale) = (self.get(l.a), self.get(l.b), self.get(l.scale));
        let (ys, xs) = (self.vec(l.y), self.vec(l.x));
        let k = index(i);
        let Some(&y) = ys.get(k) else {
            return Err(errors::vec_index(self.c, self.data, l.y, i));
        };
        let Some(&x) = xs.get(k) else {
            return Err(errors::vec_index(self.c, self.data, l.x, i));
        };
        let mu = a + b * x;
        let addr = Address::site(l.site).at_usize(k);
        let d = match &l.normal {
            Some(n) => n.with_mean(mu),
            None => cached_normal(&mut self.last_normal, mu, scale),
        };
        let d = d.map_err(|e| ModelError::dist_at(addr, e))?;
        self.h.observe(addr, &d, y)
    }
}
