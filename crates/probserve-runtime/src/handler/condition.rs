//! Conditioning: turn chosen latent sites into observations with given values.

use super::Handler;
use crate::address::{AddrMap, Address};
use crate::dist::{ScalarDist, VectorDist};
use crate::error::ModelError;

/// Values to condition on, by address.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    scalars: AddrMap<f64>,
    vectors: AddrMap<Vec<f64>>,
}

impl Conditions {
    /// No conditions.
    pub fn new() -> Self {
        Self::default()
    }
    /// Condition the scalar site `addr` on `value`.
    pub fn insert(&mut self, addr: Address, value: f64) -> &mut Self {
        self.scalars.insert(addr, value);
        self
    }
    /// Condition the vector site `addr` on `value`.
    pub fn insert_vector(&mut self, addr: Address, value: Vec<f64>) -> &mut Self {
        self.vectors.insert(addr, value);
        self
    }
    /// The scalar condition at `addr`.
    pub fn get(&self, addr: &Address) -> Option<f64> {
        self.scalars.get(addr).copied()
    }
    /// Number of conditioned sites.
    pub fn len(&self) -> usize {
        self.scalars.len() + self.vectors.len()
    }
    /// Whether nothing is conditioned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Wraps a handler: a `sample` at a conditioned address becomes an `observe` of the given value.
#[derive(Debug)]
pub struct ConditionHandler<'a, H> {
    /// The wrapped handler.
    pub inner: H,
    /// The conditions.
    pub conditions: &'a Conditions,
}

impl<'a, H: Handler> ConditionHandler<'a, H> {
    /// Wrap `inner`.
    pub fn new(inner: H, conditions: &'a Conditions) -> Self {
        ConditionHandler { inner, conditions }
    }
}

impl<H: Handler> Handler for ConditionHandler<'_, H> {
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError> {
        match self.conditions.scalars.get(&addr) {
            Some(&v) => {
                self.inner.observe(addr, dist, v)?;
                Ok(v)
            }
            None => self.inner.sample(addr, dist),
        }
    }
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: f64,
    ) -> Result<(), ModelError> {
        self.inner.observe(addr, dist, value)
    }
    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError> {
        self.inner.factor(addr, log_weight)
    }
    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        match self.conditions.vectors.get(&addr) {
            Some(v) => {
                self.inner.observe_vector(addr, dist, v)?;
                out.clear();
                out.extend_from_slice(v);
                Ok(())
            }
            None => self.inner.sample_vector(addr, dist, out),
        }
    }
    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError> {
        self.inner.observe_vector(addr, dist, value)
    }
}
