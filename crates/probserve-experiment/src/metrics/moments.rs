//! Sufficient statistics (n, Σx, Σx²) of a continuous quantity, and binary counts.
//! Every test in [`crate::stats`] needs only these; both merge by addition.

use serde::{Deserialize, Serialize};

/// Running n, Σx and Σx² of a continuous observation.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Moments {
    /// Number of observations.
    pub n: u64,
    /// Σx.
    pub sum: f64,
    /// Σx².
    pub sum_sq: f64,
}

impl Moments {
    /// From raw sums.
    pub fn new(n: u64, sum: f64, sum_sq: f64) -> Self {
        Self { n, sum, sum_sq }
    }

    /// From a slice of observations.
    pub fn from_slice(xs: &[f64]) -> Self {
        let mut m = Self::default();
        for &x in xs {
            m.add(x);
        }
        m
    }

    /// Add one observation (non-finite values are ignored).
    pub fn add(&mut self, x: f64) {
        if x.is_finite() {
            self.n += 1;
            self.sum += x;
            self.sum_sq += x * x;
        }
    }

    /// Merge another aggregate into this one.
    pub fn merge(&mut self, other: &Moments) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    /// Sample mean (NaN when empty).
    pub fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// Sample variance with n−1 denominator (NaN when n < 2; clamped at 0).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            return f64::NAN;
        }
        let n = self.n as f64;
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }
}

/// Counts of a binary outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Proportion {
    /// Trials.
    pub n: u64,
    /// Successes.
    pub successes: u64,
}

impl Proportion {
    /// From counts.
    pub fn new(successes: u64, n: u64) -> Self {
        Self { n, successes }
    }

    /// Record one trial.
    pub fn add(&mut self, success: bool) {
        self.n += 1;
        self.successes += u64::from(success);
    }

    /// Merge.
    pub fn merge(&mut self, other: &Proportion) {
        self.n += other.n;
        self.successes += other.successes;
    }

    /// Observed rate (NaN when n = 0).
    pub fn rate(&self) -> f64 {
        self.successes as f64 / self.n as f64
    }
}
