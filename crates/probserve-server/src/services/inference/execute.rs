//! The execute stage of an inference: bind the inputs to the resolved version,
//! budget the request's memory, dispatch the run (inline when it is tiny by plan and
//! by measurement, else on the CPU pool) under the call's deadline and cancel token.
//!
//! Infer, every InferStream item and every shadow mirror run through here, so no
//! run escapes the budgets: the memory estimate is made from the bound plan before
//! anything runs and held from the global budget while it runs (waiting no longer
//! than a call may queue), plans whose sites the data sets get a site budget, and
//! the memory of the encoded response stays held ([`ResponseHold`]) until the
//! response has been handed to the transport.

use std::time::{Duration, Instant};

use probserve_lang::{BoundModel, Inputs};
use probserve_runtime::CancelToken;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Code, Status};

use super::Inference;
use super::request::{Violations, input_violation};
use crate::catalog::ResolvedModel;
use crate::infer::{self, Method, RunOutput};
use crate::run_cost;
use crate::services::status::{invalid_argument, with_reason};

/// One run to execute.
pub(super) struct Job<'a> {
    /// The version that serves.
    pub(super) resolved: &'a ResolvedModel,
    /// The request's inputs.
    pub(super) inputs: &'a Inputs,
    /// The method with its options.
    pub(super) method: &'a Method,
    /// The seed.
    pub(super) seed: u64,
    /// The call's deadline (also carried by `cancel`).
    pub(super) deadline: Instant,
    /// Draws returned per output (0 = none).
    pub(super) max_draws: usize,
    /// Whether a tiny run may execute on the async worker (never for mirrors).
    pub(super) allow_inline: bool,
}

/// A finished run.
pub(super) struct Executed {
    /// What the run produced.
    pub(super) out: RunOutput,
    /// Time waiting for a pool worker.
    pub(super) queued: Duration,
    /// Time running.
    pub(super) compute: Duration,
    /// The memory of the response, held until it is sent.
    pub(super) hold: ResponseHold,
}

/// Memory of the global inference budget held for a response until it has been
/// handed to the transport (an InferStream item waiting for a slow reader keeps
/// it; everything else the run used is released when the run ends).
#[derive(Debug, Default)]
pub struct ResponseHold {
    /// Released when dropped.
    _held: Option<OwnedSemaphorePermit>,
}

/// RESOURCE_EXHAUSTED / MEMORY_BUDGET for a request over a memory budget.
pub(super) fn memory_error(e: impl std::fmt::Display) -> Status {
    with_reason(Code::ResourceExhausted, e.to_string(), "MEMORY_BUDGET")
}

/// INVALID_ARGUMENT with one field violation per input problem.
fn bind_error(errs: &[probserve_lang::InputError]) -> Status {
    let v: Violations = errs.iter().map(input_violation).collect();
    invalid_argument(
        format!(
            "inputs do not match the model's data declarations: {} problem(s)",
            v.len()
        ),
        v,
    )
}

impl Inference {
    /// Binds, budgets and runs `job`; errors are the call's status.
    pub(super) async fn execute(
        &self,
        job: Job<'_>,
        cancel: &CancelToken,
    ) -> Result<Executed, Status> {
        let bound = job
            .resolved
            .compiled
            .bind(job.inputs)
            .map_err(|e| bind_error(&e))?
            .with_cancel(cancel.clone());
        let static_cost = bound.static_cost();
        let memory = self.memory_plan(&bound, static_cost, job.method, job.max_draws)?;
        let bound = bound
            .with_max_sites(memory.max_sites)
            .with_max_array_elems(memory.max_array_elems);
        let mut held = match self
            .memory
            .acquire(memory.bytes, job.deadline, self.pool.queue_limit())
            .await
        {
            Ok(p) => p,
            Err(e @ run_cost::MemoryWaitError::Deadline { .. }) => {
                return Err(Status::deadline_exceeded(e.to_string()));
            }
            Err(e @ run_cost::MemoryWaitError::Shed { .. }) => {
                return Err(super::overloaded(e.to_string()));
            }
            Err(e) => return Err(memory_error(e)),
        };
        let work = run_cost::work_units(job.method, &static_cost);
        let inline = job.allow_inline && job.resolved.cost.fits(work, self.inline_budget);
        run_cost::count_dispatch(inline);
        let (method, seed, max_draws) = (job.method.clone(), job.seed, job.max_draws);
        let run_cancel = cancel.clone();
        // The job times itself: the learned cost must not include hand-off delays.
        let run = move || {
            let t = Instant::now();
            infer::run(&bound, &method, seed, &run_cancel, max_draws).map(|o| (o, t.elapsed()))
        };
        let result = if inline {
            self.pool.run_inline(run)
        } else {
            self.pool.run(job.deadline, run).await
        };
        let ((out, compute), queued) =
            result.map_err(|e| super::run_error(e, cancel, job.deadline))?;
        if let Some(w) = work {
            job.resolved.cost.observe(w, compute);
        }
        // Keep only the response's share of the estimate (the draws, traces and
        // summaries are freed now).
        let kib = usize::try_from(memory.response_bytes.div_ceil(1024)).unwrap_or(usize::MAX);
        let hold = ResponseHold {
            _held: held.split(kib.min(held.num_permits())),
        };
        Ok(Executed {
            out,
            queued,
            compute,
            hold,
        })
    }

    /// The request's memory, decided from the bound plan before anything runs.
    fn memory_plan(
        &self,
        bound: &BoundModel,
        cost: probserve_lang::StaticCost,
        method: &Method,
        max_draws: usize,
    ) -> Result<run_cost::MemoryPlan, Status> {
        run_cost::memory_plan(
            &run_cost::MemoryRequest {
                method,
                width: bound.output_width(),
                name_bytes: bound.output_labels().iter().map(String::len).sum(),
                cost,
                step_limit: bound.step_limit(),
                max_draws,
                arrays: bound.run_time_arrays(),
            },
            self.memory.request,
            self.memory.max_message,
        )
        .map_err(memory_error)
    }
}
