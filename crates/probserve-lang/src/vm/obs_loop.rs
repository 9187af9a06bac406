//! The fused observation loop `for i in lo..hi { y[i] ~ family(predictor); }` (a normal
//! with a fixed scale, bernoulli of `inv_logit`, poisson of `exp`; predictor
//! `a + b * x[i]` or a random intercept `theta[g[i]]`): the same handler calls, steps and
//! errors as the loop, without an op per iteration.

use probserve_runtime::{
    Address, Bernoulli, DistError, Handler, ModelError, Normal, Poisson, ScalarDist,
};

use crate::builtins::Fn1;
use crate::errors::{self, index};
use crate::plan::{LoopFamily, ObsLoop, Predictor};

use super::Machine;

impl<H: Handler, R: super::RegFile> Machine<'_, H, R> {
    /// Steps are charged per iteration as the loop charges them (the iteration and its
    /// one statement); errors are checked in the loop's order: `y[i]`, the predictor
    /// (`x[i]`; or `g[i]`, then `theta` at it), then the distribution (for a normal its
    /// mean, then its scale).
    ///
    /// Runs of iterations whose data indices are in range and that cannot reach the
    /// next budget check go through [`Machine::obs_batch`] (no index conversion, bounds
    /// check or tick per element); the rest one at a time.
    pub(super) fn obs_loop(&mut self, l: &ObsLoop) -> Result<(), ModelError> {
        let (lo, hi) = (self.get(l.lo), self.get(l.hi));
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(errors::loop_bounds(lo, hi));
        }
        let covariate = match l.predictor {
            Predictor::Affine { x, .. } => x,
            Predictor::Gather { g, .. } => g,
        };
        let safe_end = self.vec(l.y).len().min(self.vec(covariate).len()) as f64;
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

    /// Iterations `k0..k0 + n`, all with valid data indices and inside the budget;
    /// returns how many ran (`n`, or 0 if the range is not valid after all: the caller
    /// then takes the checked path).
    fn obs_batch(&mut self, l: &ObsLoop, k0: usize, n: usize) -> Result<usize, ModelError> {
        let Some(ys) = self.vec(l.y).get(k0..k0 + n) else {
            return Ok(0);
        };
        let scale = match l.family {
            LoopFamily::Normal { scale, .. } => self.get(scale),
            _ => f64::NAN,
        };
        let at = Address::site(l.site);
        let (h, arrays) = (&mut *self.h, &*self.arrays);
        match l.predictor {
            Predictor::Affine { a, b, x } => {
                let (a, b) = (self.regs.load(a), self.regs.load(b));
                let Some(xs) = self
                    .data
                    .vecs
                    .get(x as usize)
                    .and_then(|v| v.get(k0..k0 + n))
                else {
                    return Ok(0);
                };
                let etas = xs.iter().map(|&x| Ok(a + b * x));
                observe_all(h, at, k0, ys, etas, l.family, scale)?;
            }
            Predictor::Gather { arr, ir_arr, g } => {
                let Some(gs) = self
                    .data
                    .vecs
                    .get(g as usize)
                    .and_then(|v| v.get(k0..k0 + n))
                else {
                    return Ok(0);
                };
                let buf = arrays.get(arr as usize);
                let c = self.c;
                let etas = gs.iter().map(|&g| {
                    buf.and_then(|b| b.get(index(g)))
                        .ok_or_else(|| errors::unassigned(c, ir_arr, g))
                });
                observe_all(h, at, k0, ys, etas, l.family, scale)?;
            }
        }
        Ok(n)
    }

    /// One iteration at `i`, checking everything.
    fn obs_one(&mut self, l: &ObsLoop, i: f64) -> Result<(), ModelError> {
        let k = index(i);
        let Some(&y) = self.vec(l.y).get(k) else {
            return Err(errors::vec_index(self.c, self.data, l.y, i));
        };
        let eta = match l.predictor {
            Predictor::Affine { a, b, x } => match self.vec(x).get(k) {
                Some(&x) => self.get(a) + self.get(b) * x,
                None => return Err(errors::vec_index(self.c, self.data, x, i)),
            },
            Predictor::Gather { arr, ir_arr, g } => {
                let Some(&gk) = self.vec(g).get(k) else {
                    return Err(errors::vec_index(self.c, self.data, g, i));
                };
                let v = self.arrays.get(arr as usize).and_then(|b| b.get(index(gk)));
                v.ok_or_else(|| errors::unassigned(self.c, ir_arr, gk))?
            }
        };
        let scale = match l.family {
            LoopFamily::Normal { scale, .. } => self.get(scale),
            _ => f64::NAN,
        };
        let at = Address::site(l.site);
        observe_all(&mut *self.h, at, k, &[y], [Ok(eta)], l.family, scale)
    }
}

/// Observes `ys[j]` at `site[k0 + j]` under the family's distribution of `etas[j]`.
#[inline(always)]
fn observe_all<H: Handler>(
    h: &mut H,
    site: Address,
    k0: usize,
    ys: &[f64],
    etas: impl IntoIterator<Item = Result<f64, ModelError>>,
    family: LoopFamily,
    scale: f64,
) -> Result<(), ModelError> {
    let elems = ys.iter().zip(etas).enumerate();
    match family {
        LoopFamily::Normal { normal, .. } => {
            // The normal of the scale, built once: the same values and errors as
            // `Normal::new(mu, scale)` per element.
            let of_scale = normal.map_or_else(|| Normal::new(0.0, scale), Ok);
            let make = |mu: f64| match &of_scale {
                Ok(n) => n.with_mean(mu),
                Err(_) => Normal::new(mu, scale),
            };
            for (j, (&y, eta)) in elems {
                observe_with(h, site.at_usize(k0 + j), eta?, y, make)?;
            }
        }
        LoopFamily::BernoulliLogit => {
            for (j, (&y, eta)) in elems {
                observe_with(h, site.at_usize(k0 + j), eta?, y, bernoulli_logit)?;
            }
        }
        LoopFamily::PoissonLog => {
            for (j, (&y, eta)) in elems {
                observe_with(h, site.at_usize(k0 + j), eta?, y, poisson_log)?;
            }
        }
    }
    Ok(())
}

/// Observes `y` at `addr` under the distribution `make(eta)` builds.
#[inline(always)]
fn observe_with<H: Handler, D: ScalarDist>(
    h: &mut H,
    addr: Address,
    eta: f64,
    y: f64,
    make: impl FnOnce(f64) -> Result<D, DistError>,
) -> Result<(), ModelError> {
    let d = make(eta).map_err(|e| ModelError::dist_at(addr, e))?;
    h.observe(addr, &d, y)
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
