//! The basic handlers: prior sampling, replay, scoring and prior-predictive simulation.

use super::{BaseCursor, Handler, check_factor, check_log_prob, check_value, check_vector};
use crate::address::Address;
use crate::dist::{ScalarDist, VectorDist};
use crate::error::ModelError;
use crate::trace::{SiteKind, Trace};
use rand::Rng;

fn observe_into<D: ScalarDist + ?Sized>(
    trace: &mut Trace,
    addr: Address,
    dist: &D,
    value: f64,
) -> Result<(), ModelError> {
    let lp = check_log_prob(addr, dist.log_prob(value))?;
    trace.push_observed(addr, value, lp);
    trace.check_room()?;
    Ok(())
}

fn observe_vector_into<D: VectorDist + ?Sized>(
    trace: &mut Trace,
    addr: Address,
    dist: &D,
    value: &[f64],
) -> Result<(), ModelError> {
    let lp = check_log_prob(addr, dist.log_prob(value))?;
    trace.push_vector(addr, SiteKind::Observed, value, lp);
    trace.check_room()?;
    Ok(())
}

fn factor_into(trace: &mut Trace, addr: Address, lw: f64) -> Result<(), ModelError> {
    trace.push_factor(addr, check_factor(addr, lw)?);
    trace.check_room()?;
    Ok(())
}

fn fresh_vector<D: VectorDist + ?Sized, R: Rng + ?Sized>(
    rng: &mut R,
    addr: Address,
    dist: &D,
    out: &mut Vec<f64>,
) -> Result<f64, ModelError> {
    out.clear();
    out.resize(dist.dim(), 0.0);
    dist.sample_into(rng, out);
    check_vector(addr, out)?;
    check_log_prob(addr, dist.log_prob(out))
}

/// Samples every latent site from its prior and scores observations.
#[derive(Debug)]
pub struct PriorHandler<'a, R: ?Sized> {
    /// Random source.
    pub rng: &'a mut R,
    /// Output trace (appended to; clear it first).
    pub trace: &'a mut Trace,
}

impl<'a, R: Rng + ?Sized> PriorHandler<'a, R> {
    /// A prior handler writing into `trace`.
    pub fn new(rng: &'a mut R, trace: &'a mut Trace) -> Self {
        PriorHandler { rng, trace }
    }
}

impl<R: Rng + ?Sized> Handler for PriorHandler<'_, R> {
    #[inline]
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError> {
        let x = check_value(addr, dist.sample(self.rng))?;
        let lp = check_log_prob(addr, dist.log_prob(x))?;
        self.trace.push_latent(addr, x, lp);
        self.trace.check_room()?;
        Ok(x)
    }
    #[inline]
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: f64,
    ) -> Result<(), ModelError> {
        observe_into(self.trace, addr, dist, value)
    }
    #[inline]
    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError> {
        factor_into(self.trace, addr, log_weight)
    }
    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        let lp = fresh_vector(self.rng, addr, dist, out)?;
        self.trace.push_vector(addr, SiteKind::Latent, out, lp);
        self.trace.check_room()?;
        Ok(())
    }
    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError> {
        observe_vector_into(self.trace, addr, dist, value)
    }
}

/// Like [`PriorHandler`], but observations are simulated from their distributions instead of
/// using the data; the simulated values are recorded as observed sites.
#[derive(Debug)]
pub struct PriorPredictiveHandler<'a, R: ?Sized> {
    /// Random source.
    pub rng: &'a mut R,
    /// Output trace.
    pub trace: &'a mut Trace,
}

impl<R: Rng + ?Sized> Handler for PriorPredictiveHandler<'_, R> {
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError> {
        PriorHandler {
            rng: &mut *self.rng,
            trace: &mut *self.trace,
        }
        .sample(addr, dist)
    }
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        _value: f64,
    ) -> Result<(), ModelError> {
        let x = check_value(addr, dist.sample(self.rng))?;
        observe_into(self.trace, addr, dist, x)
    }
    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError> {
        factor_into(self.trace, addr, log_weight)
    }
    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        PriorHandler {
            rng: &mut *self.rng,
            trace: &mut *self.trace,
        }
        .sample_vector(addr, dist, out)
    }
    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError> {
        let mut buf = vec![0.0; value.len().max(dist.dim())];
        let lp = fresh_vector(self.rng, addr, dist, &mut buf)?;
        self.trace.push_vector(addr, SiteKind::Observed, &buf, lp);
        self.trace.check_room()?;
        Ok(())
    }
}

/// Replays latent values from a base trace; latent sites missing from it are drawn from the prior.
#[derive(Debug)]
pub struct ReplayHandler<'a, R: ?Sized> {
    cursor: BaseCursor<'a>,
    /// Random source for sites missing from the base.
    pub rng: &'a mut R,
    /// Output trace.
    pub trace: &'a mut Trace,
    /// How many latent sites were drawn fresh.
    pub fresh: usize,
}

impl<'a, R: Rng + ?Sized> ReplayHandler<'a, R> {
    /// Replay `base`, writing the re-scored run into `trace`.
    pub fn new(base: &'a Trace, rng: &'a mut R, trace: &'a mut Trace) -> Self {
        ReplayHandler {
            cursor: BaseCursor::new(base),
            rng,
            trace,
            fresh: 0,
        }
    }
}

impl<R: Rng + ?Sized> Handler for ReplayHandler<'_, R> {
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError> {
        let x = match self.cursor.find(&addr, SiteKind::Latent) {
            Some(r) if !r.is_vector() => r.value,
            _ => {
                self.fresh += 1;
                check_value(addr, dist.sample(self.rng))?
            }
        };
        let lp = check_log_prob(addr, dist.log_prob(x))?;
        self.trace.push_latent(addr, x, lp);
        self.trace.check_room()?;
        Ok(x)
    }
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: f64,
    ) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Observed);
        observe_into(self.trace, addr, dist, value)
    }
    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Factor);
        factor_into(self.trace, addr, log_weight)
    }
    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        let base = self.cursor.base;
        let lp = match self
            .cursor
            .find(&addr, SiteKind::Latent)
            .and_then(|r| base.vector_of(r))
        {
            Some(v) if v.len() == dist.dim() => {
                out.clear();
                out.extend_from_slice(v);
                check_log_prob(addr, dist.log_prob(out))?
            }
            _ => {
                self.fresh += 1;
                fresh_vector(self.rng, addr, dist, out)?
            }
        };
        self.trace.push_vector(addr, SiteKind::Latent, out, lp);
        self.trace.check_room()?;
        Ok(())
    }
    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Observed);
        observe_vector_into(self.trace, addr, dist, value)
    }
}

/// Scores a complete base trace under the model; a latent site missing from it is an error.
#[derive(Debug)]
pub struct ScoreHandler<'a> {
    cursor: BaseCursor<'a>,
    /// Output trace.
    pub trace: &'a mut Trace,
}

impl<'a> ScoreHandler<'a> {
    /// Score `base`, writing into `trace`.
    pub fn new(base: &'a Trace, trace: &'a mut Trace) -> Self {
        ScoreHandler {
            cursor: BaseCursor::new(base),
            trace,
        }
    }
}

impl Handler for ScoreHandler<'_> {
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError> {
        let x = match self.cursor.find(&addr, SiteKind::Latent) {
            Some(r) if !r.is_vector() => r.value,
            _ => return Err(ModelError::MissingValue(addr)),
        };
        let lp = check_log_prob(addr, dist.log_prob(x))?;
        self.trace.push_latent(addr, x, lp);
        self.trace.check_room()?;
        Ok(x)
    }
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: f64,
    ) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Observed);
        observe_into(self.trace, addr, dist, value)
    }
    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Factor);
        factor_into(self.trace, addr, log_weight)
    }
    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        let base = self.cursor.base;
        let Some(v) = self
            .cursor
            .find(&addr, SiteKind::Latent)
            .and_then(|r| base.vector_of(r))
        else {
            return Err(ModelError::MissingValue(addr));
        };
        if v.len() != dist.dim() {
            return Err(ModelError::Shape {
                address: addr,
                expected: dist.dim(),
                got: v.len(),
            });
        }
        out.clear();
        out.extend_from_slice(v);
        let lp = check_log_prob(addr, dist.log_prob(out))?;
        self.trace.push_vector(addr, SiteKind::Latent, out, lp);
        self.trace.check_room()?;
        Ok(())
    }
    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Observed);
        observe_vector_into(self.trace, addr, dist, value)
    }
}
