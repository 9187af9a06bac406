//! The open-loop arrival schedule and coordinated-omission-corrected latency.
//!
//! In an open-loop run request `i` is *intended* to be sent at `i / rate` seconds after
//! the start, whatever happened to earlier requests. Its latency is measured from that
//! intended time, not from when the generator actually got round to sending it: if
//! the server (or the generator) stalls, every request queued behind the stall is
//! charged for its wait. Measuring from the actual send time instead would hide the
//! queueing ("coordinated omission"), because a stalled generator stops sending
//! exactly when latencies are bad.

use std::time::Duration;

use crate::BenchError;

/// A constant-rate arrival schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoopSchedule {
    rate: f64,
}

/// `x` (a time multiplied by the rate), or the nearest integer when `x` is within
/// noise of it: floating point, plus `Duration`'s nanosecond resolution times the
/// rate. Counts at exact multiples of the interval then come out exact.
fn snapped(x: f64, rate: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() < 1e-6 + 1.5e-9 * rate {
        r
    } else {
        x
    }
}

impl OpenLoopSchedule {
    /// A schedule of `rate` requests per second; `rate` must be finite and positive.
    pub fn new(rate: f64) -> Result<Self, BenchError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(BenchError::InvalidParameter {
                name: "rate",
                reason: format!("must be a positive number of requests per second, got {rate}"),
            });
        }
        Ok(Self { rate })
    }

    /// The arrival rate, requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When request `i` (0-based) is intended to be sent, after the start.
    pub fn intended_offset(&self, i: u64) -> Duration {
        // i as f64 is exact below 2^53 requests.
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// How many requests are due by `elapsed` (intended time `<= elapsed`).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        snapped(elapsed.as_secs_f64() * self.rate, self.rate).floor() as u64 + 1
    }

    /// How many requests a run of `duration` sends: those intended strictly before
    /// `duration`.
    pub fn count_within(&self, duration: Duration) -> u64 {
        snapped(duration.as_secs_f64() * self.rate, self.rate).ceil() as u64
    }
}

/// The latency charged to a call: from its intended send time to its completion,
/// both measured from the start of the run. A call completing "before" it was
/// intended (impossible, but clocks are clocks) is charged zero.
pub fn corrected_latency(intended: Duration, completed: Duration) -> Duration {
    completed.saturating_sub(intended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_rates() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(OpenLoopSchedule::new(r).is_err(), "{r}");
        }
    }

    #[test]
    fn offsets_are_evenly_spaced() {
        let s = OpenLoopSchedule::new(1000.0).unwrap();
        assert_eq!(s.intended_offset(0), Duration::ZERO);
        assert_eq!(s.intended_offset(1), Duration::from_millis(1));
        assert_eq!(s.intended_offset(2500), Duration::from_millis(2500));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.count_within(Duration::from_secs(2)), 2000);
        assert_eq!(s.count_within(Duration::from_micros(1500)), 2);
        assert!((s.rate() - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn latency_is_charged_from_the_intended_time() {
        // Request intended at 10 ms, sent late at 60 ms (generator stalled), done at 61 ms:
        // the service took 1 ms but the caller waited 51 ms.
        let intended = Duration::from_millis(10);
        let completed = Duration::from_millis(61);
        assert_eq!(
            corrected_latency(intended, completed),
            Duration::from_millis(51)
        );
        assert_eq!(
            corrected_latency(Duration::from_millis(5), Duration::from_millis(4)),
            Duration::ZERO
        );
    }

    proptest! {
        #[test]
        fn schedule_is_monotone_and_counts_agree(rate in 0.5f64..1e6, i in 0u64..1_000_000) {
            let s = OpenLoopSchedule::new(rate).unwrap();
            prop_assert!(s.intended_offset(i) <= s.intended_offset(i + 1));
            // Request i is due at its intended time, and a run ending half an interval
            // after it sends exactly i + 1 requests.
            prop_assert_eq!(s.due_by(s.intended_offset(i)), i + 1);
            let half = Duration::from_secs_f64(0.5 / rate);
            prop_assert_eq!(s.count_within(s.intended_offset(i) + half), i + 1);
        }
    }
}
