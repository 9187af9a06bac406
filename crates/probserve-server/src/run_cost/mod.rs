//! The predicted cost of a run, in time and in memory, known before it starts.
//!
//! **Time: cost-based dispatch.** A learned per-version cost decides whether an
//! inference is small enough to run inline on the async worker that received it.
//! Handing a job to the CPU pool costs two thread wake-ups (there and back),
//! tens of microseconds under load on two cores — more than a 1-sample prior or
//! importance run of a small model costs itself. So each compiled version keeps an
//! estimate of nanoseconds per *work unit*, measured on every run; a job whose
//! predicted cost is under the configured budget runs inline. A work unit is one
//! draw or particle times one plus the ops of the *bound* plan
//! ([`probserve_lang::BoundModel::static_cost`]), which bounds a run's work only
//! when no loop is left in the plan: a plan whose loop length the data (or the
//! latents) sets has no work-unit count and never runs inline, however cheap the
//! version's earlier runs were.
//!
//! The estimate is asymmetric because the measurement is wall time: a run that is
//! preempted (the CPU is shared with the network stack and other processes) looks
//! slower than it is, never faster. A faster sample lowers the estimate at once; a
//! slower one raises it by at most [`MAX_RISE`] per run, so a real slowdown is
//! learned within a few dozen runs while a preemption spike barely registers. (With
//! a plain moving average, spikes under load at concurrency 128 pushed a 1-sample
//! model over the budget onto the pool and back, and p99 rose from 10 to 23 ms.)
//!
//! **Memory: the request's budget** ([`memory_plan`]): the draws kept, the traces
//! alive during the run, the summaries' working memory and the response, computed
//! from the method, the bound plan's output width and sites before anything runs.
//! A request over `max_request_memory_bytes`, or whose response cannot fit
//! `max_message_bytes`, is refused naming the option to lower; a plan whose sites
//! the data sets gets a site budget ([`MemoryPlan::max_sites`]) that the runtime
//! enforces inside the run.
//!
//! Invariants:
//! * Unknown cost (a version's first run of a method) never runs inline.
//! * MCMC and SMC never run inline: their work is a multiple of the draws that
//!   the data sets (warm-up, tempering steps, rejuvenation moves).
//! * Nothing over [`MAX_INLINE_UNITS`] runs inline, whatever its estimate.
//! * A plan with a loop left in it never runs inline.
//! * An inline job takes no pool permit (one runs per async worker at most, and it
//!   should not queue behind long jobs); it is still panic-isolated and bounded by
//!   its step budget and deadline.
//! * The cost is measured inside the job, so hand-off and queueing delays never
//!   inflate it.

mod memory;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use probserve_lang::StaticCost;

use crate::infer::Method;

pub use memory::{
    ARRAY_ELEM_BYTES, MemoryBudget, MemoryError, MemoryPlan, MemoryRequest, MemoryWaitError,
    PER_DRAW_BYTES, SUMMARY_BYTES, SUMMARY_WORK_BYTES, TRACE_SITE_BYTES, memory_plan, mib,
};

/// Largest relative rise of the estimate from one slower run.
pub const MAX_RISE: f64 = 0.05;

/// Most work units a run may have to run inline, whatever its measured cost: an
/// estimate learned on cheap runs (a branch on a latent skipped the costly part)
/// can mislead by at most the ratio of the costliest op to the cheapest, times this.
pub const MAX_INLINE_UNITS: f64 = 65_536.0;

/// The methods that may run inline, each with an estimate of its own (a prior run
/// and an importance run of the same version cost differently per unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostKind {
    /// Prior sampling.
    Prior = 0,
    /// Importance sampling.
    Importance = 1,
}

/// The learned cost of one compiled version; shared by every request for it.
#[derive(Debug, Default)]
pub struct RunCost {
    /// `f64` bits of the estimated nanoseconds per work unit, per [`CostKind`];
    /// 0 = not measured yet.
    ns_per_unit: [AtomicU64; 2],
}

/// The work of one run, for dispatch: which estimate applies and how many units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    /// The estimate that applies.
    pub kind: CostKind,
    /// Draws or particles × (1 + the bound plan's ops).
    pub units: f64,
}

/// The work of a run, or `None` (never inline) for SMC and MCMC (their work is
/// a multiple of the particles or draws that the data set: tempering steps,
/// rejuvenation moves, warm-up) and for a plan whose work the data sets.
pub fn work_units(method: &Method, cost: &StaticCost) -> Option<Work> {
    if !cost.fixed {
        return None;
    }
    let (kind, n) = match *method {
        Method::Prior { draws } => (CostKind::Prior, draws),
        Method::Importance { particles } => (CostKind::Importance, particles),
        Method::Smc { .. } | Method::Mcmc { .. } => return None,
    };
    Some(Work {
        kind,
        units: n as f64 * (1.0 + cost.ops as f64),
    })
}

static INLINE_RUNS: AtomicU64 = AtomicU64::new(0);
static POOL_RUNS: AtomicU64 = AtomicU64::new(0);

/// Counts one dispatch decision (exported as `probserve_inference_inline` and
/// `probserve_inference_pool`).
pub fn count_dispatch(inline: bool) {
    let c = if inline { &INLINE_RUNS } else { &POOL_RUNS };
    c.fetch_add(1, Ordering::Relaxed);
}

/// Runs dispatched inline and to the pool since start.
pub fn dispatch_counts() -> (u64, u64) {
    (
        INLINE_RUNS.load(Ordering::Relaxed),
        POOL_RUNS.load(Ordering::Relaxed),
    )
}

impl RunCost {
    fn slot(&self, kind: CostKind) -> &AtomicU64 {
        match kind {
            CostKind::Prior => &self.ns_per_unit[0],
            CostKind::Importance => &self.ns_per_unit[1],
        }
    }

    /// Predicted run time for `work`, if its kind was measured before.
    pub fn predict(&self, work: Work) -> Option<Duration> {
        let bits = self.slot(work.kind).load(Ordering::Relaxed);
        (bits != 0).then(|| Duration::from_nanos((f64::from_bits(bits) * work.units) as u64))
    }

    /// Folds in a measured run (`compute` for `work`). Concurrent updates may lose
    /// one another's measurement, which only slows learning.
    pub fn observe(&self, work: Work, compute: Duration) {
        let units = work.units;
        if units.is_nan() || units <= 0.0 {
            return;
        }
        let slot = self.slot(work.kind);
        let sample = (compute.as_nanos() as f64 / units).max(f64::MIN_POSITIVE);
        let bits = slot.load(Ordering::Relaxed);
        let next = if bits == 0 {
            sample
        } else {
            let old = f64::from_bits(bits);
            sample.min(old * (1.0 + MAX_RISE))
        };
        if next.is_finite() {
            slot.store(next.to_bits(), Ordering::Relaxed);
        }
    }

    /// Whether `work` is predicted to fit in `budget` (and is small enough to be
    /// trusted to: at most [`MAX_INLINE_UNITS`]).
    pub fn fits(&self, work: Option<Work>, budget: Duration) -> bool {
        let Some(work) = work.filter(|w| w.units <= MAX_INLINE_UNITS) else {
            return false;
        };
        match self.predict(work) {
            Some(t) => !budget.is_zero() && t <= budget,
            None => false,
        }
    }
}

/// A fixed plan of `ops` ops and one site (for the tests of both halves).
#[cfg(test)]
fn fixed(ops: u64) -> StaticCost {
    StaticCost {
        ops,
        sites: 1,
        fixed: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prior(units: f64) -> Work {
        Work {
            kind: CostKind::Prior,
            units,
        }
    }

    fn importance(units: f64) -> Work {
        Work {
            kind: CostKind::Importance,
            units,
        }
    }

    #[test]
    fn a_plan_with_a_loop_never_runs_inline_whatever_it_cost_before() {
        let c = RunCost::default();
        let budget = Duration::from_millis(1);
        let method = Method::Prior { draws: 300 };
        // Warm-up runs of the same version with the loop unrolled away (n = 0).
        for _ in 0..10 {
            c.observe(prior(301.0), Duration::from_nanos(300));
        }
        assert!(c.fits(work_units(&method, &fixed(0)), budget));
        let looped = StaticCost {
            ops: 12,
            sites: 1,
            fixed: false,
        };
        assert_eq!(work_units(&method, &looped), None);
        assert!(!c.fits(work_units(&method, &looped), budget));
        // An unrolled loop counts every op: 16k ops × 300 draws is not tiny.
        assert!(!c.fits(work_units(&method, &fixed(16_000)), budget));
    }

    #[test]
    fn smc_never_runs_inline_and_each_method_learns_its_own_cost() {
        let c = RunCost::default();
        let budget = Duration::from_millis(1);
        // Cheap prior runs teach the prior estimate only.
        for _ in 0..10 {
            c.observe(prior(2.0), Duration::from_nanos(2));
        }
        let smc = Method::Smc {
            particles: 10,
            ess_threshold: 0.5,
        };
        assert_eq!(work_units(&smc, &fixed(1)), None);
        assert!(!c.fits(work_units(&smc, &fixed(1)), budget));
        let imp = Method::Importance { particles: 10 };
        assert!(
            !c.fits(work_units(&imp, &fixed(1)), budget),
            "importance has not been measured"
        );
        c.observe(importance(20.0), Duration::from_micros(20));
        assert_eq!(c.predict(importance(1.0)), Some(Duration::from_micros(1)));
        assert_eq!(c.predict(prior(1.0)), Some(Duration::from_nanos(1)));
    }

    #[test]
    fn nothing_over_the_unit_cap_runs_inline_however_cheap_it_looked() {
        let c = RunCost::default();
        c.observe(prior(1.0), Duration::from_nanos(1));
        let big = work_units(&Method::Prior { draws: 100_000 }, &fixed(0));
        assert!(c.predict(prior(100_000.0)).unwrap_or(Duration::MAX) < Duration::from_millis(1));
        assert!(!c.fits(big, Duration::from_secs(1)));
    }

    #[test]
    fn unknown_cost_and_mcmc_never_fit() {
        let c = RunCost::default();
        let budget = Duration::from_millis(1);
        assert!(!c.fits(work_units(&Method::Prior { draws: 1 }, &fixed(0)), budget));
        c.observe(prior(1.0), Duration::from_nanos(500));
        assert!(c.fits(work_units(&Method::Prior { draws: 1 }, &fixed(0)), budget));
        let mcmc = Method::Mcmc {
            chains: 1,
            warmup: 1,
            draws: 1,
            thin: 1,
        };
        assert!(!c.fits(work_units(&mcmc, &fixed(0)), budget));
        assert!(!c.fits(
            work_units(&Method::Prior { draws: 1 }, &fixed(0)),
            Duration::ZERO
        ));
    }

    #[test]
    fn prediction_scales_with_work_and_follows_measurements() {
        let c = RunCost::default();
        c.observe(importance(10.0), Duration::from_micros(10)); // 1 µs per unit
        let one = work_units(&Method::Importance { particles: 1 }, &fixed(0));
        let many = work_units(&Method::Importance { particles: 1000 }, &fixed(3));
        assert_eq!(
            c.predict(one.unwrap_or(importance(0.0))),
            Some(Duration::from_micros(1))
        );
        assert!(c.fits(one, Duration::from_micros(50)));
        assert!(
            !c.fits(many, Duration::from_micros(50)),
            "4000 units ≈ 4 ms"
        );
        for _ in 0..100 {
            c.observe(importance(1.0), Duration::from_micros(100)); // the model got slower
        }
        assert!(!c.fits(one, Duration::from_micros(50)));
        c.observe(importance(0.0), Duration::from_secs(1)); // ignored
        c.observe(importance(f64::NAN), Duration::from_secs(1)); // ignored
        assert!(c.predict(importance(1.0)).is_some());
    }

    #[test]
    fn a_preemption_spike_barely_moves_the_estimate_a_faster_run_lowers_it() {
        let c = RunCost::default();
        c.observe(prior(1.0), Duration::from_micros(4));
        c.observe(prior(1.0), Duration::from_millis(3)); // descheduled mid-run
        let after_spike = c.predict(prior(1.0)).unwrap_or(Duration::MAX);
        assert!(
            after_spike <= Duration::from_nanos(4_200),
            "{after_spike:?}"
        );
        c.observe(prior(1.0), Duration::from_micros(2));
        assert_eq!(c.predict(prior(1.0)), Some(Duration::from_micros(2)));
    }
}
