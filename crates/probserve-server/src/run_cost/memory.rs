//! The memory half of [`crate::run_cost`]: a request's memory estimated from its
//! bound plan before it runs ([`memory_plan`]: the draws kept, the traces alive
//! during the run, the summaries' working memory and the response), and the global
//! budget that running calls share ([`MemoryBudget`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use probserve_lang::StaticCost;

use crate::infer::Method;

/// Bytes one trace record takes (address, kind, value, log-density; measured
/// ≈ 105 B per site with the vector's growth slack).
pub const TRACE_SITE_BYTES: u64 = 112;
/// Encoded bytes of one output's summary, besides its name (14 fields).
pub const SUMMARY_BYTES: u64 = 160;
/// Bytes of working memory per kept draw of one output while summaries are built
/// (the column copy, a sorted copy, ranks and rank-normalized values for split
/// R-hat and ESS, the autocovariance buffers).
pub const SUMMARY_WORK_BYTES: u64 = 80;
/// Bytes of one run-time array element (an optional `f64`).
pub const ARRAY_ELEM_BYTES: u64 = 16;
/// A plan with run-time arrays gives them one part in this many of what is left of
/// the request's budget.
const ARRAY_SHARE: u64 = 8;
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
    /// Run-time arrays of the bound plan (their memory is set by the indices a run
    /// writes; they get a share of the budget, [`MemoryPlan::max_array_elems`]).
    pub arrays: usize,
}

/// The memory a request may use, decided before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Estimated peak bytes (what the global memory budget is charged).
    pub bytes: u64,
    /// The site budget of each run's trace (`usize::MAX` when the plan bounds it).
    pub max_sites: usize,
    /// The elements one run may keep in its run-time arrays, all together
    /// (`usize::MAX` when the plan has none).
    pub max_array_elems: usize,
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
            max_array_elems: usize::MAX,
            response_bytes: response,
        });
    }
    // Run-time arrays live in the running thread's frame, one run at a time (not
    // per particle): an eighth of what is left, whatever the method keeps alive.
    let array_room = if r.arrays > 0 {
        budget.saturating_sub(fixed_part) / ARRAY_SHARE
    } else {
        0
    };
    let max_array_elems = if r.arrays > 0 {
        usize::try_from(array_room / ARRAY_ELEM_BYTES).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    // Loops left in the plan: sites are bounded by the step budget and by what is
    // left of the request's budget, which the runtime then enforces per trace.
    let per_site = mul(live_traces, TRACE_SITE_BYTES);
    let room = budget.saturating_sub(fixed_part).saturating_sub(array_room) / per_site.max(1);
    let sites = room.min(r.step_limit.max(1)).min(usize::MAX as u64);
    // A budget that leaves less than the sites the plan visits outside its loops
    // refuses the request here rather than failing every run.
    if sites < r.cost.sites.saturating_add(1) || fixed_part > budget {
        let trace = mul(per_site, r.cost.sites.saturating_add(1));
        return Err(over(fixed_part.saturating_add(trace), trace));
    }
    Ok(MemoryPlan {
        bytes: fixed_part
            .saturating_add(mul(sites, per_site))
            .saturating_add(array_room),
        max_sites: sites as usize,
        max_array_elems,
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
    use crate::infer::Method;
    use probserve_lang::StaticCost;

    use crate::run_cost::fixed;

    const MIB: u64 = 1024 * 1024;

    fn req(method: &Method, width: usize, cost: StaticCost, max_draws: usize) -> MemoryRequest<'_> {
        MemoryRequest {
            method,
            width,
            name_bytes: width * 10,
            cost,
            step_limit: 10_000_000,
            max_draws,
            arrays: 0,
        }
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
    fn run_time_arrays_get_a_share_of_the_budget_whatever_smc_keeps_alive() {
        let unfixed = StaticCost {
            ops: 5,
            sites: 2,
            fixed: false,
        };
        let smc = Method::Smc {
            particles: 10_000,
            ess_threshold: 0.5,
        };
        let mut r = req(&smc, 1, unfixed, 0);
        r.arrays = 2;
        let p = memory_plan(&r, 256 * MIB, 4 * MIB).unwrap_or_else(|e| panic!("{e}"));
        // 20,002 live traces leave ~100 sites per trace; the arrays are per run.
        assert!(p.max_sites < 200, "{}", p.max_sites);
        assert!(p.max_array_elems > 1_000_000, "{}", p.max_array_elems);
        assert!(p.bytes <= 256 * MIB, "{}", p.bytes);
        r.arrays = 0;
        let none = memory_plan(&r, 256 * MIB, 4 * MIB).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none.max_array_elems, usize::MAX);
        assert!(none.max_sites > p.max_sites);
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
}
