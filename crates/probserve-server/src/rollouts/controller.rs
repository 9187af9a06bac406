//! The controller loop: on a fixed interval, evaluate every running rollout
//! (guardrails → rollback, gates → advance, sequential test → promote, SRM → pause)
//! and persist-then-apply the engine's transition (each as one uncancellable unit,
//! see `commands.rs`); save metric aggregates.

use std::sync::Arc;
use std::time::Duration;

use probserve_experiment::controller::evaluate;
use probserve_experiment::rollout::Phase;

use super::{Rollouts, now};

impl Rollouts {
    /// Evaluates one rollout and applies the controller's transition, if any.
    /// Returns the action taken. Run through [`Rollouts::tick`], which keeps it
    /// whole.
    pub(super) async fn tick_unit(&self, id: &str) -> Result<Option<String>, super::RolloutError> {
        let _serial = self.commands.lock().await;
        let eval = {
            let live = self.live.read();
            let Some(l) = live.get(id) else {
                return Ok(None);
            };
            if !matches!(l.rollout.state.phase, Phase::Running) {
                return Ok(None);
            }
            let (m, shadow) = (l.metrics.lock(), l.shadow.lock());
            evaluate(&l.rollout, &m, Some(&shadow), now())?
        };
        if eval.srm_alert {
            tracing::warn!(rollout = %id, "sample ratio mismatch: the split is not what the plan says");
        }
        match eval.transition {
            Some(t) => {
                let action = t.audit.action.clone();
                self.persist_and_apply(id, t).await?;
                Ok(Some(action))
            }
            None => Ok(None),
        }
    }
}

/// Runs the controller every `interval` until `shutdown` resolves.
pub fn spawn_controller(
    rollouts: Arc<Rollouts>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => break,
            }
            // Only active rollouts can change on their own.
            let ids: Vec<String> = rollouts.live.read().active.values().cloned().collect();
            for id in ids {
                if let Err(e) = rollouts.tick(&id).await {
                    tracing::warn!(rollout = %id, error = %e, "controller evaluation failed");
                }
            }
            if let Err(e) = rollouts.save_metrics().await {
                tracing::warn!(error = %e, "saving rollout metrics failed");
            }
        }
        if let Err(e) = rollouts.save_metrics().await {
            tracing::warn!(error = %e, "saving rollout metrics at shutdown failed");
        }
    })
}
