//! Handlers interpret a model's `sample` / `observe` / `factor` effects.
//!
//! Handlers are generic (monomorphized per model), write into reusable [`Trace`] buffers and
//! never allocate per site on the fixed-structure fast path.

mod basic;
mod condition;

pub use basic::{PriorHandler, PriorPredictiveHandler, ReplayHandler, ScoreHandler};
pub use condition::{ConditionHandler, Conditions};

use crate::address::{AddrMap, Address};
use crate::dist::{Bernoulli, ScalarDist, VectorDist};
use crate::error::ModelError;
use crate::trace::{Record, SiteKind, Trace};

/// Interprets the effects of a model run.
pub trait Handler {
    /// A latent scalar choice at `addr`; returns its value.
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError>;

    /// Condition on `value` having been drawn from `dist` at `addr`.
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: f64,
    ) -> Result<(), ModelError>;

    /// Add `log_weight` to the run's log weight (`−∞` allowed; NaN and `+∞` are errors).
    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError>;

    /// A latent vector choice at `addr`, written into `out` (resized to the distribution's dimension).
    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError>;

    /// Condition on a vector `value` drawn from `dist` at `addr`.
    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError>;

    /// A Bernoulli choice as a `bool`.
    fn sample_bool(&mut self, addr: Address, dist: &Bernoulli) -> Result<bool, ModelError> {
        Ok(self.sample(addr, dist)? != 0.0)
    }
}

/// Check a log-density: NaN or `+∞` is an error naming `addr`; `−∞` (zero density) is fine.
#[inline]
pub fn check_log_prob(addr: Address, lp: f64) -> Result<f64, ModelError> {
    if lp.is_nan() || lp == f64::INFINITY {
        return Err(ModelError::NonFinite {
            address: addr,
            what: "log-density",
        });
    }
    Ok(lp)
}

/// Check a drawn value: NaN is an error naming `addr`.
#[inline]
pub fn check_value(addr: Address, x: f64) -> Result<f64, ModelError> {
    if x.is_nan() {
        return Err(ModelError::NonFinite {
            address: addr,
            what: "value",
        });
    }
    Ok(x)
}

/// Check a factor: NaN or `+∞` is an error naming `addr`.
#[inline]
pub fn check_factor(addr: Address, lw: f64) -> Result<f64, ModelError> {
    if lw.is_nan() || lw == f64::INFINITY {
        return Err(ModelError::NonFinite {
            address: addr,
            what: "factor",
        });
    }
    Ok(lw)
}

pub(crate) fn check_vector(addr: Address, x: &[f64]) -> Result<(), ModelError> {
    if x.iter().any(|v| v.is_nan()) {
        return Err(ModelError::NonFinite {
            address: addr,
            what: "value",
        });
    }
    Ok(())
}

/// Finds the records of a base trace as a new run revisits them: positional match first (the
/// fixed-structure fast path), a lazily built address index otherwise.
#[derive(Debug)]
pub(crate) struct BaseCursor<'a> {
    pub(crate) base: &'a Trace,
    pos: usize,
    index: Option<AddrMap<u32>>,
    /// Set once any lookup missed the positional fast path.
    pub(crate) diverged: bool,
}

impl<'a> BaseCursor<'a> {
    pub(crate) fn new(base: &'a Trace) -> Self {
        BaseCursor {
            base,
            pos: 0,
            index: None,
            diverged: false,
        }
    }

    /// The base record at `addr` with the given kind, if any.
    #[inline]
    pub(crate) fn find(&mut self, addr: &Address, kind: SiteKind) -> Option<&'a Record> {
        let records = self.base.records();
        if let Some(r) = records.get(self.pos)
            && r.address == *addr
            && r.kind == kind
        {
            self.pos += 1;
            return Some(r);
        }
        self.diverged = true;
        let index = self.index.get_or_insert_with(|| {
            let mut m = AddrMap::with_capacity_and_hasher(records.len(), Default::default());
            for (i, r) in records.iter().enumerate() {
                m.entry(r.address)
                    .or_insert(u32::try_from(i).unwrap_or(u32::MAX));
            }
            m
        });
        let i = *index.get(addr)? as usize;
        self.pos = i + 1;
        records.get(i).filter(|r| r.kind == kind)
    }

    /// Whether the run visited exactly the base's sites in the same order so far.
    pub(crate) fn same_structure(&self, visited: usize) -> bool {
        !self.diverged && visited == self.base.records().len() && self.pos == visited
    }
}
