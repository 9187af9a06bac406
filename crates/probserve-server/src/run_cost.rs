//! Cost-based dispatch: a learned per-version cost that decides whether an
//! inference is small enough to run inline on the async worker that received it.
//!
//! Handing a job to the CPU pool costs two thread wake-ups (there and back),
//! tens of microseconds under load on two cores — more than a 1-sample prior or
//! importance run of a small model costs itself. So each compiled version keeps an
//! estimate of nanoseconds per *work unit* (one draw or particle times one plus the
//! number of input values), measured on every run; a job whose predicted cost is
//! under the configured budget runs inline.
//!
//! The estimate is asymmetric because the measurement is wall time: a run that is
//! preempted (the CPU is shared with the network stack and other processes) looks
//! slower than it is, never faster. A faster sample lowers the estimate at once; a
//! slower one raises it by at most [`MAX_RISE`] per run, so a real slowdown is
//! learned within a few dozen runs while a preemption spike barely registers. (With
//! a plain moving average, spikes under load at concurrency 128 pushed a 1-sample
//! model over the budget onto the pool and back, and p99 rose from 10 to 23 ms.)
//!
//! Invariants:
//! * Unknown cost (a version's first run) never runs inline.
//! * MCMC never runs inline (it runs chains on threads of its own).
//! * An inline job takes no pool permit (one runs per async worker at most, and it
//!   should not queue behind long jobs); it is still panic-isolated and bounded by
//!   its step budget and deadline.
//! * The cost is measured inside the job, so hand-off and queueing delays never
//!   inflate it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::infer::Method;

/// Largest relative rise of the estimate from one slower run.
pub const MAX_RISE: f64 = 0.05;

/// The learned cost of one compiled version; shared by every request for it.
#[derive(Debug, Default)]
pub struct RunCost {
    /// `f64` bits of the estimated nanoseconds per work unit; 0 = not measured yet.
    ns_per_unit: AtomicU64,
}

/// Work units of a run: draws or particles × (1 + input values).
pub fn work_units(method: &Method, input_values: usize) -> Option<f64> {
    let n = match *method {
        Method::Prior { draws } => draws,
        Method::Importance { particles } | Method::Smc { particles, .. } => particles,
        Method::Mcmc { .. } => return None,
    };
    Some(n as f64 * (1.0 + input_values as f64))
}

impl RunCost {
    /// Predicted run time for `units` of work, if measured before.
    pub fn predict(&self, units: f64) -> Option<Duration> {
        let bits = self.ns_per_unit.load(Ordering::Relaxed);
        (bits != 0).then(|| Duration::from_nanos((f64::from_bits(bits) * units) as u64))
    }

    /// Folds in a measured run (`compute` for `units` of work). Concurrent updates
    /// may lose one another's measurement, which only slows learning.
    pub fn observe(&self, units: f64, compute: Duration) {
        if units.is_nan() || units <= 0.0 {
            return;
        }
        let sample = (compute.as_nanos() as f64 / units).max(f64::MIN_POSITIVE);
        let bits = self.ns_per_unit.load(Ordering::Relaxed);
        let next = if bits == 0 {
            sample
        } else {
            let old = f64::from_bits(bits);
            sample.min(old * (1.0 + MAX_RISE))
        };
        if next.is_finite() {
            self.ns_per_unit.store(next.to_bits(), Ordering::Relaxed);
        }
    }

    /// Whether `units` of work are predicted to fit in `budget`.
    pub fn fits(&self, units: Option<f64>, budget: Duration) -> bool {
        match units.and_then(|u| self.predict(u)) {
            Some(t) => !budget.is_zero() && t <= budget,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_cost_and_mcmc_never_fit() {
        let c = RunCost::default();
        let budget = Duration::from_millis(1);
        assert!(!c.fits(work_units(&Method::Prior { draws: 1 }, 0), budget));
        c.observe(1.0, Duration::from_nanos(500));
        assert!(c.fits(work_units(&Method::Prior { draws: 1 }, 0), budget));
        let mcmc = Method::Mcmc {
            chains: 1,
            warmup: 1,
            draws: 1,
            thin: 1,
        };
        assert!(!c.fits(work_units(&mcmc, 0), budget));
        assert!(!c.fits(work_units(&Method::Prior { draws: 1 }, 0), Duration::ZERO));
    }

    #[test]
    fn prediction_scales_with_work_and_follows_measurements() {
        let c = RunCost::default();
        c.observe(10.0, Duration::from_micros(10)); // 1 µs per unit
        let one = work_units(&Method::Importance { particles: 1 }, 0);
        let many = work_units(&Method::Importance { particles: 1000 }, 3);
        assert_eq!(
            c.predict(one.unwrap_or(0.0)),
            Some(Duration::from_micros(1))
        );
        assert!(c.fits(one, Duration::from_micros(50)));
        assert!(
            !c.fits(many, Duration::from_micros(50)),
            "4000 units ≈ 4 ms"
        );
        for _ in 0..100 {
            c.observe(1.0, Duration::from_micros(100)); // the model got slower
        }
        assert!(!c.fits(one, Duration::from_micros(50)));
        c.observe(0.0, Duration::from_secs(1)); // ignored
        c.observe(f64::NAN, Duration::from_secs(1)); // ignored
        assert!(c.predict(1.0).is_some());
    }

    #[test]
    fn a_preemption_spike_barely_moves_the_estimate_a_faster_run_lowers_it() {
        let c = RunCost::default();
        c.observe(1.0, Duration::from_micros(4));
        c.observe(1.0, Duration::from_millis(3)); // descheduled mid-run
        let after_spike = c.predict(1.0).unwrap_or(Duration::MAX);
        assert!(
            after_spike <= Duration::from_nanos(4_200),
            "{after_spike:?}"
        );
        c.observe(1.0, Duration::from_micros(2));
        assert_eq!(c.predict(1.0), Some(Duration::from_micros(2)));
    }
}
