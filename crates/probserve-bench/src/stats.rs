//! Latency and outcome recording: HDR histograms in microseconds, overall and per
//! time window, mergeable so that shards recorded concurrently can be combined.
//!
//! Only successful calls enter the latency histograms (for an overload run that is
//! "p99 of admitted calls"); shed calls (`RESOURCE_EXHAUSTED`) and other failures are
//! counted per status code.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::BenchError;

/// The gRPC status code of a shed call.
pub const CODE_RESOURCE_EXHAUSTED: i32 = 8;

/// Largest latency a histogram tracks exactly (one hour, in µs); larger ones saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// The outcome of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded; the encoded size of the response.
    Ok {
        /// Encoded response size in bytes.
        response_bytes: usize,
    },
    /// Failed with this gRPC status code.
    Failed {
        /// google.rpc.Code numbering.
        code: i32,
    },
}

fn histogram(sigfig: u8) -> Histogram<u64> {
    // Cannot fail: the bounds and precision are constants hdrhistogram accepts
    // (low = 1, high >= 2 * low, sigfig in 2..=3 at every call site).
    Histogram::new_with_bounds(1, MAX_MICROS, sigfig).expect("constant histogram bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Counts and latencies of one time window.
#[derive(Debug, Clone)]
struct Window {
    latency: Histogram<u64>,
    ok: u64,
    shed: u64,
    errors: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            latency: histogram(2),
            ok: 0,
            shed: 0,
            errors: 0,
        }
    }
}

/// Latency percentiles of successful calls, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Successful calls.
    pub count: u64,
    /// Smallest latency.
    pub min: u64,
    /// Mean latency.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest latency.
    pub max: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One window's counts and percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Window start, seconds after the start of measurement.
    pub start_secs: f64,
    /// Successful calls sent in the window.
    pub ok: u64,
    /// Shed calls.
    pub shed: u64,
    /// Other failures.
    pub errors: u64,
    /// Median latency of successful calls (µs; 2 significant digits).
    pub p50_us: u64,
    /// 99th percentile (µs; 2 significant digits).
    pub p99_us: u64,
}

/// Records outcomes and latencies; calls are placed in windows by when they were
/// (intended to be) sent, relative to the start of measurement.
#[derive(Debug, Clone)]
pub struct Recorder {
    window: Duration,
    latency: Histogram<u64>,
    ok: u64,
    shed: u64,
    errors: BTreeMap<i32, u64>,
    response_bytes: u64,
    windows: Vec<Window>,
}

impl Recorder {
    /// An empty recorder with windows of `window` (zero is treated as one second).
    pub fn new(window: Duration) -> Self {
        Self {
            window: if window.is_zero() {
                Duration::from_secs(1)
            } else {
                window
            },
            latency: histogram(3),
            ok: 0,
            shed: 0,
            errors: BTreeMap::new(),
            response_bytes: 0,
            windows: Vec::new(),
        }
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn window_index(&self, at: Duration) -> usize {
        usize::try_from(at.as_nanos() / self.window.as_nanos().max(1)).unwrap_or(usize::MAX)
    }

    /// Records one call sent (or intended to be sent) at `at` after the start of
    /// measurement, which took `latency`.
    pub fn record(&mut self, at: Duration, latency: Duration, outcome: Outcome) {
        let idx = self.window_index(at);
        // Bound the window vector: a call "sent" absurdly late lands in the last window.
        let idx = idx.min(1 << 20);
        if self.windows.len() <= idx {
            self.windows.resize_with(idx + 1, Window::new);
        }
        let w = &mut self.windows[idx];
        match outcome {
            Outcome::Ok { response_bytes } => {
                let us = micros(latency);
                self.latency.saturating_record(us);
                w.latency.saturating_record(us);
                self.ok += 1;
                w.ok += 1;
                self.response_bytes = self
                    .response_bytes
                    .saturating_add(u64::try_from(response_bytes).unwrap_or(u64::MAX));
            }
            Outcome::Failed { code } if code == CODE_RESOURCE_EXHAUSTED => {
                self.shed += 1;
                w.shed += 1;
            }
            Outcome::Failed { code } => {
                *self.errors.entry(code).or_default() += 1;
                w.errors += 1;
            }
        }
    }

    /// Adds `other`'s calls to this recorder. Both must use the same window length.
    pub fn merge(&mut self, other: &Recorder) -> Result<(), BenchError> {
        if self.window != other.window {
            return Err(BenchError::Merge(format!(
                "window lengths differ: {:?} vs {:?}",
                self.window, other.window
            )));
        }
        self.latency
            .add(&other.latency)
            .map_err(|e| BenchError::Merge(format!("{e:?}")))?;
        self.ok += other.ok;
        self.shed += other.shed;
        for (code, n) in &other.errors {
            *self.errors.entry(*code).or_default() += n;
        }
        self.response_bytes = self.response_bytes.saturating_add(other.response_bytes);
        if self.windows.len() < other.windows.len() {
            self.windows.resize_with(other.windows.len(), Window::new);
        }
        for (mine, theirs) in self.windows.iter_mut().zip(&other.windows) {
            mine.latency
                .add(&theirs.latency)
                .map_err(|e| BenchError::Merge(format!("{e:?}")))?;
            mine.ok += theirs.ok;
            mine.shed += theirs.shed;
            mine.errors += theirs.errors;
        }
        Ok(())
    }

    /// Successful calls.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Shed calls (`RESOURCE_EXHAUSTED`).
    pub fn shed(&self) -> u64 {
        self.shed
    }

    /// Other failures by status code.
    pub fn errors(&self) -> &BTreeMap<i32, u64> {
        &self.errors
    }

    /// All calls recorded.
    pub fn total(&self) -> u64 {
        self.ok + self.shed + self.errors.values().sum::<u64>()
    }

    /// Mean encoded response size of successful calls, bytes.
    pub fn mean_response_bytes(&self) -> f64 {
        if self.ok == 0 {
            0.0
        } else {
            self.response_bytes as f64 / self.ok as f64
        }
    }

    /// Latency percentiles of all successful calls.
    pub fn latency(&self) -> LatencySummary {
        LatencySummary::of(&self.latency)
    }

    /// Per-window counts and percentiles.
    pub fn windows(&self) -> Vec<WindowSummary> {
        self.windows
            .iter()
            .enumerate()
            .map(|(i, w)| WindowSummary {
                start_secs: (self.window * u32::try_from(i).unwrap_or(u32::MAX)).as_secs_f64(),
                ok: w.ok,
                shed: w.shed,
                errors: w.errors,
                p50_us: if w.latency.is_empty() {
                    0
                } else {
                    w.latency.value_at_quantile(0.5)
                },
                p99_us: if w.latency.is_empty() {
                    0
                } else {
                    w.latency.value_at_quantile(0.99)
                },
            })
            .collect()
    }

    /// Latency percentiles of the successful calls sent in `[from, to)` (window
    /// granularity: a window counts when its start lies in the range; 2 significant
    /// digits).
    pub fn segment(&self, from: Duration, to: Duration) -> LatencySummary {
        let mut h = histogram(2);
        for (i, w) in self.windows.iter().enumerate() {
            let start = self.window * u32::try_from(i).unwrap_or(u32::MAX);
            if start >= from && start < to {
                // Same bounds and precision: cannot fail; a failure would only
                // under-count this segment.
                let _ = h.add(&w.latency);
            }
        }
        LatencySummary::of(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OK: Outcome = Outcome::Ok {
        response_bytes: 100,
    };

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn counts_and_classifies_outcomes() {
        let mut r = Recorder::new(Duration::from_secs(1));
        r.record(at(0), at(2), OK);
        r.record(
            at(10),
            at(4),
            Outcome::Ok {
                response_bytes: 300,
            },
        );
        r.record(at(1500), at(1), Outcome::Failed { code: 8 });
        r.record(at(2500), at(1), Outcome::Failed { code: 4 });
        r.record(at(2600), at(1), Outcome::Failed { code: 4 });
        assert_eq!((r.ok(), r.shed(), r.total()), (2, 1, 5));
        assert_eq!(r.errors().get(&4), Some(&2));
        assert!((r.mean_response_bytes() - 200.0).abs() < 1e-9);
        let l = r.latency();
        assert_eq!(l.count, 2);
        assert_eq!(l.min, 2000);
        // 3 significant digits: 4000 is reported as the top of its bucket.
        assert!((4000..=4004).contains(&l.max), "{l:?}");
        let w = r.windows();
        assert_eq!(w.len(), 3);
        assert_eq!((w[0].ok, w[1].shed, w[2].errors), (2, 1, 2));
        assert_eq!(w[2].start_secs, 2.0);
        assert_eq!(r.segment(at(0), at(1000)).count, 2);
        assert_eq!(r.segment(at(1000), at(3000)).count, 0);
    }

    #[test]
    fn zero_latency_is_recorded_as_one_microsecond() {
        let mut r = Recorder::new(Duration::ZERO);
        assert_eq!(r.window(), Duration::from_secs(1));
        r.record(at(0), Duration::ZERO, OK);
        assert_eq!(r.latency().min, 1);
    }

    #[test]
    fn merge_rejects_different_windows() {
        let mut a = Recorder::new(Duration::from_secs(1));
        let b = Recorder::new(Duration::from_secs(2));
        assert!(a.merge(&b).is_err());
    }

    proptest! {
        /// Recording calls split over several shards and merging gives exactly the
        /// result of recording them all in one recorder.
        #[test]
        fn merge_equals_single_recorder(
            calls in proptest::collection::vec((0u64..5_000, 1u64..2_000_000, 0u8..4, 0usize..3), 0..400)
        ) {
            let window = Duration::from_millis(700);
            let mut single = Recorder::new(window);
            let mut shards = vec![Recorder::new(window); 3];
            for &(at_ms, lat_us, kind, shard) in &calls {
                let outcome = match kind {
                    0 | 1 => Outcome::Ok { response_bytes: lat_us as usize % 97 },
                    2 => Outcome::Failed { code: CODE_RESOURCE_EXHAUSTED },
                    _ => Outcome::Failed { code: 14 },
                };
                let (t, l) = (Duration::from_millis(at_ms), Duration::from_micros(lat_us));
                single.record(t, l, outcome);
                shards[shard].record(t, l, outcome);
            }
            let mut merged = Recorder::new(window);
            for s in &shards {
                merged.merge(s).unwrap();
            }
            prop_assert_eq!(merged.latency(), single.latency());
            prop_assert_eq!(merged.windows(), single.windows());
            prop_assert_eq!(merged.errors(), single.errors());
            prop_assert_eq!((merged.ok(), merged.shed()), (single.ok(), single.shed()));
            prop_assert_eq!(merged.mean_response_bytes(), single.mean_response_bytes());
            prop_assert_eq!(merged.segment(Duration::ZERO, Duration::from_secs(2)),
                            single.segment(Duration::ZERO, Duration::from_secs(2)));
        }
    }
}
