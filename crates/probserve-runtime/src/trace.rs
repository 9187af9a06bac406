//! Execution traces: every site visited in one run, with its value and log-density, and the log
//! weight split into prior, likelihood and factor parts; plus a pool that recycles trace buffers.

use crate::address::{AddrSet, Address};
use crate::error::ModelError;

/// What kind of site a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    /// A latent random choice (`sample`).
    Latent,
    /// An observation (`observe`).
    Observed,
    /// A `factor` term.
    Factor,
}

/// One visited site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// The site address.
    pub address: Address,
    /// Latent, observed or factor.
    pub kind: SiteKind,
    /// The scalar value (the log-weight for a factor; NaN for vector sites).
    pub value: f64,
    /// Log-density of the value (the log-weight itself for a factor).
    pub log_prob: f64,
    vec_off: u32,
    vec_len: u32,
}

impl Record {
    /// Whether this site holds a vector (read it with [`Trace::vector_of`]).
    pub fn is_vector(&self) -> bool {
        self.vec_len > 0
    }
}

/// The record of one model run.
///
/// A trace holds at most [`Trace::max_sites`] records (its memory budget, about
/// 100 bytes each): pushes beyond it are dropped and mark the trace overflowed, and
/// [`Trace::check_room`] then fails with [`ModelError::SiteLimit`]. The handlers
/// check it after every push, so the run stops at the first site over the budget;
/// [`Trace::check_unique`] checks it too.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    records: Vec<Record>,
    vectors: Vec<f64>,
    /// Sum of latent log-densities.
    pub log_prior: f64,
    /// Sum of observation log-densities.
    pub log_likelihood: f64,
    /// Sum of factors.
    pub log_factor: f64,
    max_sites: usize,
    overflowed: bool,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            records: Vec::new(),
            vectors: Vec::new(),
            log_prior: 0.0,
            log_likelihood: 0.0,
            log_factor: 0.0,
            max_sites: usize::MAX,
            overflowed: false,
        }
    }
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty trace holding at most `max_sites` records.
    pub fn with_max_sites(max_sites: usize) -> Self {
        Trace {
            max_sites,
            ..Self::default()
        }
    }

    /// Most records this trace holds.
    pub fn max_sites(&self) -> usize {
        self.max_sites
    }

    /// Sets the most records this trace holds (takes effect for later pushes).
    pub fn set_max_sites(&mut self, max_sites: usize) {
        self.max_sites = max_sites;
    }

    /// Error if a push was dropped because the trace was full.
    #[inline]
    pub fn check_room(&self) -> Result<(), ModelError> {
        if self.overflowed {
            return Err(ModelError::SiteLimit {
                limit: self.max_sites,
            });
        }
        Ok(())
    }

    /// Whether there is room for one more record (marks the trace overflowed if not).
    #[inline(always)]
    fn room(&mut self) -> bool {
        if self.records.len() < self.max_sites {
            return true;
        }
        self.overflowed = true;
        false
    }

    /// Remove every record, keeping the allocations (and the site budget).
    pub fn clear(&mut self) {
        self.records.clear();
        self.vectors.clear();
        self.log_prior = 0.0;
        self.log_likelihood = 0.0;
        self.log_factor = 0.0;
        self.overflowed = false;
    }

    /// Total log weight: prior + likelihood + factors.
    #[inline]
    pub fn log_weight(&self) -> f64 {
        self.log_prior + self.log_likelihood + self.log_factor
    }

    /// Likelihood + factors: the importance weight under a prior proposal.
    #[inline]
    pub fn log_likelihood_and_factors(&self) -> f64 {
        self.log_likelihood + self.log_factor
    }

    /// All records in visit order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of latent sites.
    pub fn latent_count(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.kind == SiteKind::Latent)
            .count()
    }

    /// The record at `address` (linear scan).
    pub fn get(&self, address: &Address) -> Option<&Record> {
        self.records.iter().find(|r| r.address == *address)
    }

    /// The scalar value at `address`.
    pub fn value(&self, address: &Address) -> Option<f64> {
        self.get(address)
            .filter(|r| !r.is_vector())
            .map(|r| r.value)
    }

    /// The vector value at `address`.
    pub fn vector(&self, address: &Address) -> Option<&[f64]> {
        self.get(address).and_then(|r| self.vector_of(r))
    }

    /// The vector value held by `record` (which must come from this trace).
    pub fn vector_of(&self, record: &Record) -> Option<&[f64]> {
        if !record.is_vector() {
            return None;
        }
        let start = record.vec_off as usize;
        self.vectors.get(start..start + record.vec_len as usize)
    }

    /// Append a latent scalar.
    #[inline]
    pub fn push_latent(&mut self, address: Address, value: f64, log_prob: f64) {
        if !self.room() {
            return;
        }
        self.log_prior += log_prob;
        self.records.push(Record {
            address,
            kind: SiteKind::Latent,
            value,
            log_prob,
            vec_off: 0,
            vec_len: 0,
        });
    }

    /// Append an observed scalar.
    #[inline]
    pub fn push_observed(&mut self, address: Address, value: f64, log_prob: f64) {
        if !self.room() {
            return;
        }
        self.log_likelihood += log_prob;
        self.records.push(Record {
            address,
            kind: SiteKind::Observed,
            value,
            log_prob,
            vec_off: 0,
            vec_len: 0,
        });
    }

    /// Append a factor.
    #[inline]
    pub fn push_factor(&mut self, address: Address, log_weight: f64) {
        if !self.room() {
            return;
        }
        self.log_factor += log_weight;
        self.records.push(Record {
            address,
            kind: SiteKind::Factor,
            value: log_weight,
            log_prob: log_weight,
            vec_off: 0,
            vec_len: 0,
        });
    }

    /// Append a vector site (latent or observed).
    pub fn push_vector(&mut self, address: Address, kind: SiteKind, value: &[f64], log_prob: f64) {
        if !self.room() {
            return;
        }
        match kind {
            SiteKind::Latent => self.log_prior += log_prob,
            SiteKind::Observed => self.log_likelihood += log_prob,
            SiteKind::Factor => self.log_factor += log_prob,
        }
        let vec_off = u32::try_from(self.vectors.len()).unwrap_or(u32::MAX);
        let vec_len = u32::try_from(value.len()).unwrap_or(u32::MAX).max(1);
        self.vectors.extend_from_slice(value);
        if value.is_empty() {
            self.vectors.push(f64::NAN);
        }
        self.records.push(Record {
            address,
            kind,
            value: f64::NAN,
            log_prob,
            vec_off,
            vec_len,
        });
    }

    /// Error if any address occurs twice.
    pub fn check_unique(&self) -> Result<(), ModelError> {
        self.check_room()?;
        let n = self.records.len();
        if n <= 24 {
            for i in 1..n {
                let a = self.records[i].address;
                if self.records[..i].iter().any(|r| r.address == a) {
                    return Err(ModelError::DuplicateAddress(a));
                }
            }
            return Ok(());
        }
        let mut seen = AddrSet::with_capacity_and_hasher(n, Default::default());
        for r in &self.records {
            if !seen.insert(r.address) {
                return Err(ModelError::DuplicateAddress(r.address));
            }
        }
        Ok(())
    }

    /// Like [`Trace::check_unique`], but skips the check when the address sequence equals the one
    /// last verified through the same `cache` (the common case for fixed-structure models).
    pub fn check_unique_cached(&self, cache: &mut Vec<Address>) -> Result<(), ModelError> {
        self.check_room()?;
        if cache.len() == self.records.len()
            && cache
                .iter()
                .zip(&self.records)
                .all(|(a, r)| *a == r.address)
        {
            return Ok(());
        }
        self.check_unique()?;
        cache.clear();
        cache.extend(self.records.iter().map(|r| r.address));
        Ok(())
    }
}

/// Hit/miss counts of a [`TracePool`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Takes served from a recycled trace.
    pub hits: u64,
    /// Takes that had to allocate a new trace.
    pub misses: u64,
}

impl PoolStats {
    /// `hits / (hits + misses)`, or 0 when nothing was taken.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// A free list of cleared traces, so runs reuse buffers instead of allocating.
#[derive(Debug, Default)]
pub struct TracePool {
    free: Vec<Trace>,
    stats: PoolStats,
    /// Site budget of every trace taken (`None` = unlimited).
    max_sites: Option<usize>,
}

impl TracePool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty pool whose traces hold at most `max_sites` records each.
    pub fn with_max_sites(max_sites: usize) -> Self {
        TracePool {
            max_sites: Some(max_sites),
            ..Self::default()
        }
    }

    /// A cleared trace: recycled when available, otherwise new.
    pub fn take(&mut self) -> Trace {
        let mut t = match self.free.pop() {
            Some(t) => {
                self.stats.hits += 1;
                t
            }
            None => {
                self.stats.misses += 1;
                Trace::new()
            }
        };
        if let Some(m) = self.max_sites {
            t.max_sites = m;
        }
        t
    }

    /// A trace holding a copy of `src`, reusing a recycled buffer when possible.
    pub fn take_copy(&mut self, src: &Trace) -> Trace {
        let mut t = self.take();
        t.clone_from(src);
        t
    }

    /// Return a trace to the pool (it is cleared).
    pub fn give(&mut self, mut trace: Trace) {
        trace.clear();
        self.free.push(trace);
    }

    /// Hit/miss counts so far.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_weights_and_lookup() {
        let mut t = Trace::new();
        t.push_latent(Address::new("mu"), 1.0, -1.0);
        t.push_observed(Address::new("y").at(0), 2.0, -2.0);
        t.push_factor(Address::new("f"), -0.5);
        t.push_vector(Address::new("w"), SiteKind::Latent, &[0.25, 0.75], -0.1);
        assert_eq!(t.log_prior, -1.1);
        assert_eq!(t.log_likelihood, -2.0);
        assert_eq!(t.log_factor, -0.5);
        assert!((t.log_weight() - -3.6).abs() < 1e-12);
        assert_eq!(t.value(&Address::new("mu")), Some(1.0));
        assert_eq!(t.vector(&Address::new("w")), Some(&[0.25, 0.75][..]));
        assert_eq!(t.latent_count(), 2);
        assert!(t.check_unique().is_ok());
        t.push_latent(Address::new("mu"), 0.0, 0.0);
        assert_eq!(
            t.check_unique(),
            Err(ModelError::DuplicateAddress(Address::new("mu")))
        );
    }

    #[test]
    fn unique_check_large_and_cached() {
        let mut t = Trace::new();
        for i in 0..100 {
            t.push_observed(Address::new("y").at(i), 0.0, 0.0);
        }
        let mut cache = Vec::new();
        assert!(t.check_unique_cached(&mut cache).is_ok());
        assert_eq!(cache.len(), 100);
        assert!(t.check_unique_cached(&mut cache).is_ok());
        t.push_observed(Address::new("y").at(5), 0.0, 0.0);
        assert!(t.check_unique_cached(&mut cache).is_err());
    }

    #[test]
    fn a_full_trace_drops_pushes_and_reports_the_site_limit() {
        let mut t = Trace::with_max_sites(2);
        t.push_latent(Address::new("a"), 1.0, 0.0);
        t.push_observed(Address::new("b"), 1.0, 0.0);
        assert!(t.check_unique().is_ok());
        t.push_factor(Address::new("c"), 0.0);
        t.push_vector(Address::new("d"), SiteKind::Latent, &[1.0; 100], 0.0);
        assert_eq!(t.records().len(), 2);
        assert_eq!(t.check_unique(), Err(ModelError::SiteLimit { limit: 2 }));
        let mut cache = Vec::new();
        assert_eq!(
            t.check_unique_cached(&mut cache),
            Err(ModelError::SiteLimit { limit: 2 })
        );
        t.clear();
        assert!(t.check_room().is_ok());
        let mut pool = TracePool::with_max_sites(3);
        assert_eq!(pool.take().max_sites(), 3);
    }

    #[test]
    fn pool_counts_hits() {
        let mut pool = TracePool::new();
        let t = pool.take();
        pool.give(t);
        let _t = pool.take();
        let s = pool.stats();
        assert_eq!((s.hits, s.misses), (1, 1));
        assert_eq!(s.hit_ratio(), 0.5);
    }
}
