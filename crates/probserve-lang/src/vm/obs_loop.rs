//! The fused observation loop `for i in lo..hi { y[i] ~ family(a + b * x[i]); }` (a
//! normal with a fixed scale, bernoulli of `inv_logit`, poisson of `exp`): the same
//! handler calls, steps and errors as the loop, without an op per iteration.

use probserve_runtime::{
    Address, Bernoulli, DistError, Handler, ModelError, Normal, Poisson, ScalarDist,
};

use crate::builtins::Fn1;
use crate::errors::{self, index};
use crate::plan::{LoopFamily, ObsLoop};

use super::Machine;

impl<H: Handler, R: super::RegFile> Machine<'_, H, R> {
    /// Steps are charged per iteration as the loop charges them (the iteration and its
    /// one statement); errors are checked in the loop's order: `y[i]`, `x[i]`, then the
    /// distribution (for a normal its mean, then its scale).
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
        let (a, b) = (self.get(l.a), self.get(l.b));
        let (ys, xs) = (self.vec(l.y), self.vec(l.x));
        let (Some(ys), Some(xs)) = (ys.get(k0..k0 + n), xs.get(k0..k0 + n)) else {
            return Ok(0);
        };
        let base = Address::site(l.site);
        let elems = ys.iter().zip(xs).enumerate();
        let at = |j: usize| base.at_usize(k0 + j);
        match l.family {
            LoopFamily::Normal { scale, normal } => {
                let of_scale = normal.map_or_else(|| Normal::new(0.0, self.get(scale)), Ok);
                let scale = self.get(scale);
                let make = |mu: f64| match &of_scale {
                    Ok(n) => n.with_mean(mu),
                    Err(_) => Normal::new(mu, scale),
                };
                for (j, (&y, &x)) in elems {
                    self.observe_with(at(j), a + b * x, y, make)?;
                }
            }
            LoopFamily::BernoulliLogit => {
                for (j, (&y, &x)) in elems {
                    self.observe_with(at(j), a + b * x, y, bernoulli_logit)?;
                }
            }
            LoopFamily::PoissonLog => {
                for (j, (&y, &x)) in elems {
                    self.observe_with(at(j), a + b * x, y, poisson_log)?;
                }
            }
        }
        Ok(n)
    }

    /// One iteration at `i`, checking everything.
    fn obs_one(&mut self, l: &ObsLoop, i: f64) -> Result<(), ModelError> {
        let (a, b) = (self.get(l.a), self.get(l.b));
        let (ys, xs) = (self.vec(l.y), self.vec(l.x));
        let k = index(i);
        let Some(&y) = ys.get(k) else {
            return Err(errors::vec_index(self.c, self.data, l.y, i));
        };
        let Some(&x) = xs.get(k) else {
            return Err(errors::vec_index(self.c, self.data, l.x, i));
        };
        let addr = Address::site(l.site).at_usize(k);
        let eta = a + b * x;
        match l.family {
            LoopFamily::Normal { scale, normal } => {
                let scale = self.get(scale);
                let make = |mu: f64| match &normal {
                    Some(n) => n.with_mean(mu),
                    None => Normal::new(mu, scale),
                };
                self.observe_with(addr, eta, y, make)
            }
            LoopFamily::BernoulliLogit => self.observe_with(addr, eta, y, bernoulli_logit),
            LoopFamily::PoissonLog => self.observe_with(addr, eta, y, poisson_log),
        }
    }

    /// Observes `y` at `addr` under the distribution `make(eta)` builds.
    #[inline(always)]
    fn observe_with<D: ScalarDist>(
        &mut self,
        addr: Address,
        eta: f64,
        y: f64,
        make: impl FnOnce(f64) -> Result<D, DistError>,
    ) -> Result<(), ModelError> {
        let d = make(eta).map_err(|e| ModelError::dist_at(addr, e))?;
        self.h.observe(addr, &d, y)
    }
}

/// `bernoulli(inv_logit(eta))`, with the language's `inv_logit`.
#[inline(always)]
fn bernoulli_logit(eta: f64) -> Result<Bernoulli, DistError> {
    Bernoulli::new(Fn1::InvLogit.apply(eta))
}

/// `poisson(exp(eta))`, with the language's `exp`.
#[inline(always)]
fn poisson_log(eta: f64) -> Result<Poisson, DistError> {
    Poisson::new(Fn1::Exp.apply(eta))
}
