//! Shadow mirroring from the Infer handler: after the primary answer is final, the
//! same inputs, method and seed run against the mirror version in a background task
//! on the CPU pool, and the comparison is recorded for the rollout
//! (`crate::rollouts::Mirror`).

use std::time::{Duration, Instant};

use probserve_lang::Inputs;
use probserve_runtime::CancelToken;

use super::Inference;
use super::execute::Job;
use crate::infer::{CancelOnDrop, Method};
use crate::rollouts::{Mirror, SideOutcome};

/// What a mirrored run repeats of the primary call.
pub(super) struct MirrorCall {
    pub(super) model: String,
    pub(super) inputs: Inputs,
    pub(super) method: Method,
    pub(super) seed: u64,
    /// The primary call's deadline budget, applied afresh to the mirror.
    pub(super) budget: Duration,
}

impl Inference {
    /// Runs the call against the mirror version in the background (on the CPU pool,
    /// never inline) and records the comparison; dropped when too many mirrors are
    /// in flight. Nothing here can affect the primary call's answer.
    pub(super) fn spawn_mirror(&self, mirror: Mirror, call: MirrorCall, primary: SideOutcome) {
        let Some(permit) = self.mirrors.try_acquire() else {
            tracing::debug!(version = %mirror.version, "mirror dropped: too many in flight");
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let first_output = this.mirror_run(&mirror.version, call, started).await;
            mirror.record(
                &primary,
                &SideOutcome {
                    latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                    first_output,
                },
            );
            drop(permit);
        });
    }

    /// The mirror's first output (mean, sd), or `None` if any step failed or an
    /// output was not finite. The run goes through the same execute stage as the
    /// primary call (memory budget, site budget, the pool; never inline).
    async fn mirror_run(
        &self,
        version: &str,
        c: MirrorCall,
        started: Instant,
    ) -> Option<(f64, f64)> {
        let deadline = started.checked_add(c.budget).unwrap_or(started);
        let resolved = self.catalog.resolve(&c.model, Some(version)).await.ok()?;
        let cancel = CancelToken::new().with_deadline(deadline);
        let _guard = CancelOnDrop(cancel.clone());
        let job = Job {
            resolved: &resolved,
            inputs: &c.inputs,
            method: &c.method,
            seed: c.seed,
            deadline,
            max_draws: 0,
            allow_inline: false,
        };
        let done = self.execute(job, &cancel).await.ok()?;
        if !done.out.non_finite.is_empty() {
            return None;
        }
        done.out.summaries.first().map(|s| (s.mean, s.sd))
    }
}
