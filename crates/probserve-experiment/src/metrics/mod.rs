//! Per-arm metrics: request counts, errors, timeouts, a latency sketch, a summary of
//! the model's outputs, and named outcome metrics (binary or continuous), kept both
//! cumulatively and in fixed time windows. Everything merges by addition, so several
//! replicas' aggregates can be summed, and everything serializes.

pub mod latency;
pub mod moments;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::ExperimentError;
pub use latency::{LatencyQuantiles, LatencySketch};
pub use moments::{Moments, Proportion};

/// One served call, as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observation {
    /// Latency in milliseconds.
    pub latency_ms: f64,
    /// The call failed.
    pub error: bool,
    /// The call hit its deadline (counted separately from errors).
    pub timeout: bool,
    /// Posterior mean of the primary output, when the call succeeded.
    pub output_mean: Option<f64>,
    /// Posterior sd of the primary output, when the call succeeded.
    pub output_sd: Option<f64>,
}

/// An outcome metric's aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// 0/1 outcome (conversion, click).
    Binary(Proportion),
    /// Real-valued outcome.
    Continuous(Moments),
}

/// Aggregates for one arm over some period.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArmMetrics {
    /// Calls served.
    pub requests: u64,
    /// Failed calls.
    pub errors: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Latency sketch (ms).
    pub latency: LatencySketch,
    /// Posterior means of the primary output.
    pub output_mean: Moments,
    /// Posterior sds of the primary output.
    pub output_sd: Moments,
    /// Named outcome metrics.
    pub outcomes: BTreeMap<String, Outcome>,
}

/// Most distinct outcome metrics one arm records (each costs memory for the
/// rollout's lifetime, so a caller cannot create them without bound).
pub const MAX_OUTCOME_METRICS: usize = 32;
/// Longest outcome metric name, in bytes.
pub const MAX_OUTCOME_METRIC_BYTES: usize = 64;

impl ArmMetrics {
    /// Record one call.
    pub fn record(&mut self, obs: &Observation) {
        self.requests += 1;
        self.errors += u64::from(obs.error);
        self.timeouts += u64::from(obs.timeout);
        self.latency.add(obs.latency_ms);
        if let Some(m) = obs.output_mean {
            self.output_mean.add(m);
        }
        if let Some(s) = obs.output_sd {
            self.output_sd.add(s);
        }
    }

    /// Record an outcome value; `binary` metrics take 0 or 1.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidInput`] for a non-finite value, a binary value other
    /// than 0/1, or a metric already recorded with the other kind.
    pub fn record_outcome(
        &mut self,
        metric: &str,
        value: f64,
        binary: bool,
    ) -> Result<(), ExperimentError> {
        if !value.is_finite() {
            return Err(ExperimentError::input(format!(
                "outcome `{metric}` is not finite"
            )));
        }
        if metric.is_empty() || metric.len() > MAX_OUTCOME_METRIC_BYTES {
            return Err(ExperimentError::input(format!(
                "outcome metric names must be 1 to {MAX_OUTCOME_METRIC_BYTES} bytes, got {}",
                metric.len()
            )));
        }
        if !self.outcomes.contains_key(metric) && self.outcomes.len() >= MAX_OUTCOME_METRICS {
            return Err(ExperimentError::input(format!(
                "an arm records at most {MAX_OUTCOME_METRICS} distinct outcome metrics"
            )));
        }
        let entry = self.outcomes.entry(metric.to_owned()).or_insert_with(|| {
            if binary {
                Outcome::Binary(Proportion::default())
            } else {
                Outcome::Continuous(Moments::default())
            }
        });
        match entry {
            Outcome::Binary(p) if binary => {
                if value != 0.0 && value != 1.0 {
                    return Err(ExperimentError::input(format!(
                        "binary outcome `{metric}` must be 0 or 1"
                    )));
                }
                p.add(value == 1.0);
            }
            Outcome::Continuous(m) if !binary => m.add(value),
            _ => {
                return Err(ExperimentError::input(format!(
                    "outcome `{metric}` recorded with two kinds"
                )));
            }
        }
        Ok(())
    }

    /// Merge an already-aggregated outcome (a batch from a replica or a simulation).
    ///
    /// # Errors
    /// [`ExperimentError::Merge`] when the metric exists with the other kind.
    pub fn merge_outcome(
        &mut self,
        metric: &str,
        outcome: &Outcome,
    ) -> Result<(), ExperimentError> {
        match (self.outcomes.get_mut(metric), outcome) {
            (None, _) => {
                self.outcomes.insert(metric.to_owned(), *outcome);
            }
            (Some(Outcome::Binary(a)), Outcome::Binary(b)) => a.merge(b),
            (Some(Outcome::Continuous(a)), Outcome::Continuous(b)) => a.merge(b),
            _ => {
                return Err(ExperimentError::Merge(format!(
                    "outcome `{metric}` has two kinds"
                )));
            }
        }
        Ok(())
    }

    /// Error rate as a proportion.
    pub fn error_counts(&self) -> Proportion {
        Proportion::new(self.errors, self.requests)
    }

    /// Timeout rate as a proportion.
    pub fn timeout_counts(&self) -> Proportion {
        Proportion::new(self.timeouts, self.requests)
    }

    /// Merge another aggregate into this one.
    ///
    /// # Errors
    /// [`ExperimentError::Merge`] if the latency sketches or outcome kinds disagree.
    pub fn merge(&mut self, other: &ArmMetrics) -> Result<(), ExperimentError> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.timeouts += other.timeouts;
        self.latency.merge(&other.latency)?;
        self.output_mean.merge(&other.output_mean);
        self.output_sd.merge(&other.output_sd);
        for (name, o) in &other.outcomes {
            self.merge_outcome(name, o)?;
        }
        Ok(())
    }
}

/// One arm's cumulative aggregate plus recent fixed windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowedArm {
    /// Everything since the rollout started.
    pub cumulative: ArmMetrics,
    /// Recent windows, oldest first: (window start, aggregate).
    pub windows: VecDeque<(Timestamp, ArmMetrics)>,
    /// Window length in ms.
    pub window_ms: u64,
    /// Windows kept.
    pub max_windows: usize,
}

impl WindowedArm {
    /// Empty arm with `max_windows` windows of `window_ms` each.
    pub fn new(window_ms: u64, max_windows: usize) -> Self {
        Self {
            cumulative: ArmMetrics::default(),
            windows: VecDeque::new(),
            window_ms: window_ms.max(1),
            max_windows,
        }
    }

    fn window_at(&mut self, now: Timestamp) -> &mut ArmMetrics {
        // max(1): a deserialized arm could carry window_ms = 0.
        let w = self.window_ms.max(1);
        let start = Timestamp(now.0 - now.0 % w);
        let need_new = self.windows.back().is_none_or(|(s, _)| *s < start);
        if need_new {
            self.windows.push_back((start, ArmMetrics::default()));
            while self.windows.len() > self.max_windows.max(1) {
                self.windows.pop_front();
            }
        }
        // Non-empty: a window was pushed above if there was none.
        &mut self
            .windows
            .back_mut()
            .expect("a window was just ensured")
            .1
    }

    /// Record one call at `now`.
    pub fn record(&mut self, now: Timestamp, obs: &Observation) {
        self.cumulative.record(obs);
        self.window_at(now).record(obs);
    }

    /// Record an outcome at `now`.
    ///
    /// # Errors
    /// As [`ArmMetrics::record_outcome`].
    pub fn record_outcome(
        &mut self,
        now: Timestamp,
        metric: &str,
        value: f64,
        binary: bool,
    ) -> Result<(), ExperimentError> {
        self.cumulative.record_outcome(metric, value, binary)?;
        self.window_at(now).record_outcome(metric, value, binary)
    }

    /// Merge an aggregated outcome at `now`.
    ///
    /// # Errors
    /// As [`ArmMetrics::merge_outcome`].
    pub fn merge_outcome(
        &mut self,
        now: Timestamp,
        metric: &str,
        outcome: &Outcome,
    ) -> Result<(), ExperimentError> {
        self.cumulative.merge_outcome(metric, outcome)?;
        self.window_at(now).merge_outcome(metric, outcome)
    }

    /// Calls recorded in the windows that started at or after `since` (cheap: no merge).
    pub fn requests_since(&self, since: Timestamp) -> u64 {
        self.windows
            .iter()
            .filter(|(s, _)| *s >= since)
            .map(|(_, w)| w.requests)
            .sum()
    }

    /// Aggregate of the windows that started at or after `since`.
    ///
    /// # Errors
    /// [`ExperimentError::Merge`] on inconsistent windows.
    pub fn since(&self, since: Timestamp) -> Result<ArmMetrics, ExperimentError> {
        let mut out = ArmMetrics::default();
        for (s, w) in &self.windows {
            if *s >= since {
                out.merge(w)?;
            }
        }
        Ok(out)
    }
}

/// Metrics of all arms of one rollout, keyed by version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RolloutMetrics {
    /// Per-version aggregates.
    pub arms: BTreeMap<String, WindowedArm>,
    /// Window length for new arms (ms); 0 means 60 000.
    pub window_ms: u64,
    /// Windows kept for new arms; 0 means 60.
    pub max_windows: usize,
}

impl RolloutMetrics {
    /// Empty metrics with the given window layout.
    pub fn new(window_ms: u64, max_windows: usize) -> Self {
        Self {
            arms: BTreeMap::new(),
            window_ms,
            max_windows,
        }
    }

    fn arm_mut(&mut self, version: &str) -> &mut WindowedArm {
        if !self.arms.contains_key(version) {
            let w = if self.window_ms == 0 {
                60_000
            } else {
                self.window_ms
            };
            let k = if self.max_windows == 0 {
                60
            } else {
                self.max_windows
            };
            self.arms.insert(version.to_owned(), WindowedArm::new(w, k));
        }
        self.arms
            .get_mut(version)
            .expect("inserted above if missing")
    }

    /// Record one call served by `version`.
    pub fn record(&mut self, version: &str, now: Timestamp, obs: &Observation) {
        self.arm_mut(version).record(now, obs);
    }

    /// Record an outcome for a call served by `version`.
    ///
    /// # Errors
    /// As [`ArmMetrics::record_outcome`].
    pub fn record_outcome(
        &mut self,
        version: &str,
        now: Timestamp,
        metric: &str,
        value: f64,
        binary: bool,
    ) -> Result<(), ExperimentError> {
        self.arm_mut(version)
            .record_outcome(now, metric, value, binary)
    }

    /// Merge an aggregated outcome for `version` at `now`.
    ///
    /// # Errors
    /// As [`ArmMetrics::merge_outcome`].
    pub fn merge_outcome(
        &mut self,
        version: &str,
        now: Timestamp,
        metric: &str,
        outcome: &Outcome,
    ) -> Result<(), ExperimentError> {
        self.arm_mut(version).merge_outcome(now, metric, outcome)
    }

    /// Cumulative aggregate of `version` (empty if never seen).
    pub fn cumulative(&self, version: &str) -> ArmMetrics {
        self.arms
            .get(version)
            .map(|a| a.cumulative.clone())
            .unwrap_or_default()
    }

    /// Borrow the cumulative aggregate of `version`.
    pub fn cumulative_ref(&self, version: &str) -> Option<&ArmMetrics> {
        self.arms.get(version).map(|a| &a.cumulative)
    }

    /// Merge another replica's metrics into these.
    ///
    /// # Errors
    /// [`ExperimentError::Merge`] on inconsistent aggregates.
    pub fn merge(&mut self, other: &RolloutMetrics) -> Result<(), ExperimentError> {
        for (v, arm) in &other.arms {
            let mine = self.arm_mut(v);
            mine.cumulative.merge(&arm.cumulative)?;
            for (start, w) in &arm.windows {
                match mine.windows.iter_mut().find(|(s, _)| s == start) {
                    Some((_, m)) => m.merge(w)?,
                    None => {
                        let pos = mine
                            .windows
                            .iter()
                            .position(|(s, _)| s > start)
                            .unwrap_or(mine.windows.len());
                        mine.windows.insert(pos, (*start, w.clone()));
                    }
                }
            }
            while mine.windows.len() > mine.max_windows.max(1) {
                mine.windows.pop_front();
            }
        }
        Ok(())
    }
}
