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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use probserve_lang::StaticCost;

use crate::infer::Method;

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

/// Bytes one trace record takes (address, kind, value, log-density; measured
/// ≈ 105 B per site with the vector's growth slack).
pub const TRACE_SITE_BYTES: u64 = 112;
/// Encoded bytes of one output's summary, besides its name (14 fields).
pub const SUMMARY_BYTES: u64 = 160;
/// Bytes of working memory per kept draw of one output while summaries are built
/// (the column copy, a sorted copy, ranks and rank-normalized values for split
/// R-hat and ESS, the autocovariance buffers).
pub const SUMMARY_WORK_BYTES: u64 = 80;
/// Bytes kept per draw besides its outputs (weights, log-likelihoods, indices).
pub const PER_DRAW_BYTES: u64 = 32;

/// What the memory budget needs to know of a request.
#[derive(Debug, Clone)]
pub struct MemoryRequest<'a> {
    /// The method with its options.
    pub method: &'a Method,
    /// Output values per draw (the bound plan's width).
    pub width: usize,
    /// Total bytes of the output names.
    pub name_bytes: usize,
    /// The bound plan's static cost.
    pub cost: StaticCost,
    /// The per-run step budget (bounds the sites of a plan with loops).
    pub step_limit: u64,
    /// Draws returned per output (0 = none).
    pub max_draws: usize,
}

/// The memory a request may use, decided before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Estimated peak bytes (what the global memory budget is charged).
    pub bytes: u64,
    /// The site budget of each run's trace (`usize::MAX` when the plan bounds it).
    pub max_sites: usize,
    /// Estimated encoded response size.
    pub response_bytes: u64,
}

/// A request refused by the memory budget.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The estimate is over the per-request budget.
    #[error(
        "the request needs about {} of memory, over the per-request budget of {} \
         (max_request_memory_bytes): lower {lower}",
        mib(*needed),
        mib(*budget)
    )]
    Request {
        /// Estimated bytes.
        needed: u64,
        /// The budget.
        budget: u64,
        /// What to lower, and why.
        lower: String,
    },
    /// The response could not fit one message.
    #[error(
        "the response would be about {}, over the message limit of {} \
         (max_message_bytes): lower {lower}",
        mib(*needed),
        mib(*budget)
    )]
    Response {
        /// Estimated encoded bytes.
        needed: u64,
        /// The limit.
        budget: u64,
        /// What to lower, and why.
        lower: String,
    },
}

/// `bytes` as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Decides the memory of one request before it runs: refuses it when the draws it
/// keeps, its traces, the summaries' working memory and its response would exceed
/// `budget` bytes, or its response `max_message` bytes; otherwise returns the
/// estimate and, for a plan whose sites the data sets, the site budget per trace
/// that keeps it inside.
pub fn memory_plan(
    r: &MemoryRequest<'_>,
    budget: u64,
    max_message: u64,
) -> Result<MemoryPlan, MemoryError> {
    let (kept, live_traces, samples_option) = match *r.method {
        Method::Prior { draws } => (draws as u64, 2u64, "num_samples"),
        Method::Importance { particles } => (particles as u64, 2, "num_samples"),
        // Each particle keeps its trace, and resampling copies them.
        Method::Smc { particles, .. } => {
            (particles as u64, 2 * particles as u64 + 2, "num_samples")
        }
        Method::Mcmc { chains, draws, .. } => (
            (chains as u64).saturating_mul(draws as u64),
            3,
            "num_samples or num_chains",
        ),
    };
    let width = r.width as u64;
    let returned = (r.max_draws as u64).min(kept);
    let mul = |a: u64, b: u64| a.saturating_mul(b);
    // The response: one summary per output, the returned draws (packed doubles).
    let response = mul(width, SUMMARY_BYTES + 16)
        .saturating_add(mul(r.name_bytes as u64, if returned > 0 { 2 } else { 1 }))
        .saturating_add(mul(mul(returned, width), 8))
        .saturating_add(1024);
    let width_hint = || format!("the model's output size ({} values per draw)", r.width);
    if response > max_message {
        let draws_part = mul(mul(returned, width), 8);
        let lower = if draws_part > response / 2 {
            format!(
                "max_draws ({returned} draws of {} outputs returned) or set return_draws = false",
                r.width
            )
        } else {
            width_hint()
        };
        return Err(MemoryError::Response {
            needed: response,
            budget: max_message,
            lower,
        });
    }
    let draws = mul(mul(kept, width), 8).saturating_add(mul(kept, PER_DRAW_BYTES));
    let summaries = mul(kept, SUMMARY_WORK_BYTES).saturating_add(mul(width, 256));
    // The response is built (columns, summaries), then encoded: twice its size.
    let fixed_part = draws
        .saturating_add(summaries)
        .saturating_add(mul(response, 2))
        .saturating_add(mul(mul(returned, width), 8));
    let over = |needed: u64, trace: u64| {
        let draws_kept = mul(mul(kept, width), 8);
        let lower = if trace > draws_kept.max(response) {
            "the loop lengths set by the inputs (sites per run) or num_samples".to_owned()
        } else if draws_kept >= response {
            format!(
                "{samples_option} ({kept} kept draws × {} outputs), or the model's output size",
                r.width
            )
        } else {
            width_hint()
        };
        MemoryError::Request {
            needed,
            budget,
            lower,
        }
    };
    if r.cost.fixed {
        let trace = mul(
            mul(live_traces, r.cost.sites.saturating_add(1)),
            TRACE_SITE_BYTES,
        );
        let bytes = fixed_part.saturating_add(trace);
        if bytes > budget {
            return Err(over(bytes, trace));
        }
        return Ok(MemoryPlan {
            bytes,
            max_sites: usize::MAX,
            response_bytes: response,
        });
    }
    // Loops left in the plan: sites are bounded by the step budget and by what is
    // left of the request's budget, which the runtime then enforces per trace.
    let per_site = mul(live_traces, TRACE_SITE_BYTES);
    let room = budget.saturating_sub(fixed_part) / per_site.max(1);
    let sites = room.min(r.step_limit.max(1)).min(usize::MAX as u64);
    // A budget that leaves less than the sites the plan visits outside its loops
    // refuses the request here rather than failing every run.
    if sites < r.cost.sites.saturating_add(1) || fixed_part > budget {
        let trace = mul(per_site, r.cost.sites.saturating_add(1));
        return Err(over(fixed_part.saturating_add(trace), trace));
    }
    Ok(MemoryPlan {
        bytes: fixed_part.saturating_add(mul(sites, per_site)),
        max_sites: sites as usize,
        response_bytes: response,
    })
}

/// The memory budgets of Infer calls: per request, per response, and a global
/// total that running calls share (a semaphore counted in KiB).
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    /// Largest estimate of one request, bytes.
    pub request: u64,
    /// Largest encoded response, bytes.
    pub max_message: u64,
    total_kib: u32,
    permits: Arc<Semaphore>,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        Self::new(256 << 20, 1 << 30, 4 << 20)
    }
}

/// Why a call did not get its memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryWaitError {
    /// The estimate is larger than the whole budget: refused at once.
    #[error(
        "the request needs about {}, more than all inference may use ({}, \
         max_inference_memory_bytes)",
        mib(*needed),
        mib(*total)
    )]
    OverTotal {
        /// The estimate.
        needed: u64,
        /// The total budget.
        total: u64,
    },
    /// The deadline passed while running calls held the memory.
    #[error("deadline exceeded while waiting for {} of inference memory", mib(*needed))]
    Deadline {
        /// The estimate.
        needed: u64,
    },
    /// Running calls held the memory for longer than a call may queue: overload,
    /// shed like a full CPU queue.
    #[error(
        "waited {waited_ms} ms (max_queue_ms) for {} of inference memory held by \
         running calls",
        mib(*needed)
    )]
    Shed {
        /// The estimate.
        needed: u64,
        /// How long the call waited.
        waited_ms: u64,
    },
}

impl MemoryBudget {
    /// Budgets of `request` bytes per call, `total` bytes for all running calls
    /// (at most 4 TiB) and `max_message` bytes per response.
    pub fn new(request: u64, total: u64, max_message: u64) -> Self {
        let total_kib = u32::try_from(total / 1024).unwrap_or(u32::MAX).max(1);
        Self {
            request,
            max_message,
            total_kib,
            permits: Arc::new(Semaphore::new(total_kib as usize)),
        }
    }

    /// Bytes not held by running calls now.
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * 1024
    }

    /// Holds `bytes` of the total until the returned permit is dropped, waiting
    /// for running calls to release theirs until `deadline`, but never longer than
    /// `max_wait` (a call's queue time is bounded the same way on the CPU pool).
    ///
    /// # Errors
    /// More than the total, the deadline passed, or `max_wait` did first.
    pub async fn acquire(
        &self,
        bytes: u64,
        deadline: Instant,
        max_wait: Duration,
    ) -> Result<OwnedSemaphorePermit, MemoryWaitError> {
        let kib = bytes.div_ceil(1024).max(1);
        let over = || MemoryWaitError::OverTotal {
            needed: bytes,
            total: u64::from(self.total_kib) * 1024,
        };
        let kib = u32::try_from(kib).map_err(|_| over())?;
        if kib > self.total_kib {
            return Err(over());
        }
        // The common case costs one atomic operation.
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_many_owned(kib) {
            return Ok(p);
        }
        let started = Instant::now();
        let shed_at = started.checked_add(max_wait).unwrap_or(deadline);
        let until = shed_at.min(deadline);
        let wait = Arc::clone(&self.permits).acquire_many_owned(kib);
        match tokio::time::timeout_at(until.into(), wait).await {
            Ok(Ok(p)) => Ok(p),
            Err(_) if until < deadline => Err(MemoryWaitError::Shed {
                needed: bytes,
                waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => Err(MemoryWaitError::Deadline { needed: bytes }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(ops: u64) -> StaticCost {
        StaticCost {
            ops,
            sites: 1,
            fixed: true,
        }
    }

    const MIB: u64 = 1024 * 1024;

    fn req(method: &Method, width: usize, cost: StaticCost, max_draws: usize) -> MemoryRequest<'_> {
        MemoryRequest {
            method,
            width,
            name_bytes: width * 10,
            cost,
            step_limit: 10_000_000,
            max_draws,
        }
    }

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
    fn thousand_outputs_by_a_million_samples_are_refused_naming_num_samples() {
        let m = Method::Prior { draws: 1_000_000 };
        let e = memory_plan(&req(&m, 1000, fixed(1000), 0), 256 * MIB, 4 * MIB);
        let Err(MemoryError::Request { needed, lower, .. }) = e else {
            panic!("{e:?}");
        };
        assert!(needed >= 8_000_000_000, "{needed}");
        assert!(lower.contains("num_samples"), "{lower}");
        let mcmc = Method::Mcmc {
            chains: 16,
            warmup: 10,
            draws: 1_000_000,
            thin: 1,
        };
        let e = memory_plan(&req(&mcmc, 10, fixed(10), 0), 256 * MIB, 4 * MIB);
        assert!(
            matches!(&e, Err(MemoryError::Request { lower, .. }) if lower.contains("num_chains")),
            "{e:?}"
        );
        // The same request with few samples fits, and its estimate is what it keeps.
        let small = Method::Prior { draws: 1000 };
        let p = memory_plan(&req(&small, 1000, fixed(1000), 0), 256 * MIB, 4 * MIB)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.bytes >= 8_000_000 && p.bytes < 32 * MIB, "{}", p.bytes);
        assert_eq!(p.max_sites, usize::MAX);
    }

    #[test]
    fn a_response_over_the_message_limit_is_refused_before_running() {
        let m = Method::Prior { draws: 10 };
        let e = memory_plan(&req(&m, 1_000_000, fixed(1_000_000), 0), 256 * MIB, 4 * MIB);
        assert!(
            matches!(&e, Err(MemoryError::Response { lower, .. }) if lower.contains("output size")),
            "{e:?}"
        );
        let m = Method::Prior { draws: 100_000 };
        let e = memory_plan(&req(&m, 100, fixed(100), 100_000), 256 * MIB, 4 * MIB);
        assert!(
            matches!(&e, Err(MemoryError::Response { lower, .. }) if lower.contains("max_draws")),
            "{e:?}"
        );
        assert!(memory_plan(&req(&m, 100, fixed(100), 1000), 256 * MIB, 4 * MIB).is_ok());
    }

    #[tokio::test]
    async fn the_global_budget_is_shared_and_an_estimate_over_it_is_refused_at_once() {
        let b = MemoryBudget::new(8 * MIB, 10 * MIB, 4 * MIB);
        let soon = Instant::now() + Duration::from_secs(60);
        let long = Duration::from_secs(60);
        let over = b.acquire(11 * MIB, soon, long).await;
        assert!(
            matches!(over, Err(MemoryWaitError::OverTotal { .. })),
            "{over:?}"
        );
        let first = b.acquire(8 * MIB, soon, long).await;
        assert!(first.is_ok());
        assert_eq!(b.available(), 2 * MIB);
        // A second call waits for the first; past its deadline it gives up.
        let second = b.acquire(8 * MIB, Instant::now(), long).await;
        assert!(
            matches!(second, Err(MemoryWaitError::Deadline { .. })),
            "{second:?}"
        );
        // With a long deadline it waits only as long as a call may queue: shed.
        let third = b.acquire(8 * MIB, soon, Duration::from_millis(5)).await;
        assert!(
            matches!(third, Err(MemoryWaitError::Shed { .. })),
            "{third:?}"
        );
        drop(first);
        assert!(b.acquire(8 * MIB, soon, long).await.is_ok());
        assert_eq!(b.available(), 10 * MIB);
    }

    #[test]
    fn loops_get_a_site_budget_inside_the_request_budget() {
        let looped = StaticCost {
            ops: 20,
            sites: 2,
            fixed: false,
        };
        let m = Method::Prior { draws: 1000 };
        let p = memory_plan(&req(&m, 1, looped, 0), 256 * MIB, 4 * MIB)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            p.max_sites < 10_000_000 && p.max_sites > 100_000,
            "{}",
            p.max_sites
        );
        assert!(p.bytes <= 256 * MIB, "{}", p.bytes);
        // With a small step budget the step budget bounds the sites.
        let mut r = req(&m, 1, looped, 0);
        r.step_limit = 1000;
        assert_eq!(
            memory_plan(&r, 256 * MIB, 4 * MIB).map(|p| p.max_sites),
            Ok(1000)
        );
        // SMC keeps every particle's trace: the per-trace budget shrinks with them.
        let smc = Method::Smc {
            particles: 100_000,
            ess_threshold: 0.5,
        };
        let p = memory_plan(&req(&smc, 1, looped, 0), 256 * MIB, 4 * MIB)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.max_sites < 100, "{}", p.max_sites);
        assert!(p.bytes <= 256 * MIB);
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
