//! Mergeable, serializable latency sketch (DDSketch, relative accuracy 1 %).

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

use crate::error::ExperimentError;

/// Latency quantile sketch in milliseconds. Mergeable across replicas when all use
/// the default configuration.
#[derive(Clone, Serialize, Deserialize)]
pub struct LatencySketch {
    sketch: DDSketch,
}

impl std::fmt::Debug for LatencySketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencySketch")
            .field("count", &self.count())
            .finish()
    }
}

impl Default for LatencySketch {
    fn default() -> Self {
        Self {
            sketch: DDSketch::new(Config::defaults()),
        }
    }
}

/// p50/p95/p99 of a sketch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyQuantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl LatencySketch {
    /// Record one latency in ms (negative or non-finite values are ignored).
    pub fn add(&mut self, ms: f64) {
        if ms.is_finite() && ms >= 0.0 {
            self.sketch.add(ms);
        }
    }

    /// Number of recorded values.
    pub fn count(&self) -> usize {
        self.sketch.count()
    }

    /// Quantile `q` in [0, 1]; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.sketch.quantile(q).ok().flatten()
    }

    /// p50/p95/p99, `None` when empty.
    pub fn quantiles(&self) -> Option<LatencyQuantiles> {
        Some(LatencyQuantiles {
            p50: self.quantile(0.5)?,
            p95: self.quantile(0.95)?,
            p99: self.quantile(0.99)?,
        })
    }

    /// Merge another sketch into this one.
    ///
    /// # Errors
    /// [`ExperimentError::Merge`] when the sketches were built with different configs.
    pub fn merge(&mut self, other: &LatencySketch) -> Result<(), ExperimentError> {
        self.sketch
            .merge(&other.sketch)
            .map_err(|e| ExperimentError::Merge(e.to_string()))
    }
}
