//! Rollout commands (create, operator commands, controller transitions), each
//! committed as ONE store transaction and then applied in memory, as one unit
//! that runs on its own task: a caller that goes away (client cancel, deadline)
//! gets no answer but never leaves a command half done, committed in the store
//! and unknown in memory. Everything that can fail (plan checks, the routing
//! snapshot, serialization) runs before the commit; only infallible steps after.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use probserve_experiment::audit::Actor;
use probserve_experiment::metrics::RolloutMetrics;
use probserve_experiment::rollout::{Command, Phase, Rollout, Transition};
use probserve_store::validate::{STABLE_LABEL, normalize_version};
use probserve_store::{AuditEntry, LabelIs, LabelMove, RolloutWrite, StoreError};

use super::{
    Live, MAX_WINDOWS, RolloutError, RolloutEvent, Rollouts, StoredRollout, WINDOW_MS, actor_name,
    blocking, now,
};

/// The versions an active rollout keeps in use; a finished one holds nothing.
fn holds(model: &str, rollout: &Rollout) -> Vec<(String, String)> {
    if rollout.state.phase.is_terminal() {
        return Vec::new();
    }
    vec![
        (model.to_owned(), rollout.spec.baseline.clone()),
        (model.to_owned(), rollout.spec.candidate.clone()),
    ]
}

fn stored_value(model: &str, rollout: &Rollout) -> Result<serde_json::Value, RolloutError> {
    serde_json::to_value(StoredRollout {
        model: model.to_owned(),
        rollout: rollout.clone(),
    })
    .map_err(|e| RolloutError::Internal(e.to_string()))
}

impl Rollouts {
    /// Runs `unit` to completion on its own task and waits for it: dropping the
    /// returned future (client gone, deadline) does not stop the unit.
    async fn detached<T, F, Fut>(self: &Arc<Self>, unit: F) -> Result<T, RolloutError>
    where
        F: FnOnce(Arc<Self>) -> Fut,
        Fut: Future<Output = Result<T, RolloutError>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(unit(Arc::clone(self)))
            .await
            .map_err(|e| RolloutError::Internal(format!("rollout command task: {e}")))?
    }

    /// Creates a rollout, optionally started, in ONE store transaction: the
    /// rollout's state, its audit record, the versions it holds and the `stable`
    /// pin on the baseline if `stable` was unset, after checking inside the
    /// transaction that baseline and candidate exist and are not archived and
    /// that `stable` is the baseline. A refusal stores nothing. Runs to its end
    /// even if the caller goes away.
    pub async fn create(
        self: &Arc<Self>,
        model: String,
        rollout: Rollout,
        actor: Actor,
        reason: String,
        start: bool,
    ) -> Result<Rollout, RolloutError> {
        self.detached(move |this| async move {
            this.create_unit(model, rollout, actor, reason, start).await
        })
        .await
    }

    async fn create_unit(
        &self,
        model: String,
        mut rollout: Rollout,
        actor: Actor,
        reason: String,
        start: bool,
    ) -> Result<Rollout, RolloutError> {
        let _serial = self.commands.lock().await;
        let id = rollout.spec.id.clone();
        {
            let live = self.live.read();
            if live.get(&id).is_some() {
                return Err(RolloutError::AlreadyExists(format!(
                    "rollout {id:?} already exists"
                )));
            }
            if let Some(other) = live.active_of(&model) {
                return Err(RolloutError::AlreadyExists(format!(
                    "model {model:?} already has an active rollout {:?}",
                    other.rollout.spec.id
                )));
            }
        }
        if start {
            // Started in the same write: a crash cannot leave it created but pending.
            let t = rollout.command(Command::Start, actor.clone(), &reason, now(), None)?;
            rollout.apply(&t);
        }
        let (base, cand) = (
            rollout.spec.baseline.clone(),
            rollout.spec.candidate.clone(),
        );
        self.check_baseline_is_stable(&model, &base).await?;
        let write = RolloutWrite {
            id: id.clone(),
            expected_revision: None,
            value: stored_value(&model, &rollout)?,
            audit: AuditEntry {
                at_millis: now().0,
                actor: actor_name(&actor),
                subject: format!("rollout/{id}"),
                action: "create".into(),
                detail: serde_json::json!({
                    "reason": reason, "spec": rollout.spec, "started": start,
                }),
            },
            require_servable: vec![(model.clone(), base.clone()), (model.clone(), cand)],
            // Traffic outside the rollout (and all of it after a rollback) goes to
            // the baseline: `stable` must point at it (pinned here if unset), and
            // the transaction re-checks that against a concurrent label move.
            labels: vec![LabelMove {
                model: model.clone(),
                label: STABLE_LABEL.to_owned(),
                version: base.clone(),
                only_if_unset: true,
            }],
            require_labels: vec![LabelIs {
                model: model.clone(),
                label: STABLE_LABEL.to_owned(),
                version: base,
            }],
            holds: holds(&model, &rollout),
        };
        let snapshot = Arc::new(rollout.routing_snapshot()?);
        let s = Arc::clone(&self.store);
        let commit = blocking(move || s.commit_rollout(&write)).await??;
        self.live.write().put(
            id,
            Live {
                model: model.clone(),
                rollout: rollout.clone(),
                snapshot,
                store_revision: commit.revision,
                metrics: Arc::new(Mutex::new(RolloutMetrics::new(WINDOW_MS, MAX_WINDOWS))),
                shadow: Arc::default(),
            },
        );
        let _ = self.events.send(RolloutEvent {
            model,
            rollout: rollout.clone(),
            change: if start { "created, started" } else { "created" }.into(),
        });
        Ok(rollout)
    }

    /// A rollout starts from the version serving today: `stable` (what un-pinned
    /// traffic gets outside the rollout and after it) must be the baseline, or
    /// unset. Refused naming both versions; the commit re-checks it atomically.
    async fn check_baseline_is_stable(&self, model: &str, base: &str) -> Result<(), RolloutError> {
        let (s, m) = (Arc::clone(&self.store), model.to_owned());
        let Some(stable) = blocking(move || s.get_label(&m, STABLE_LABEL)).await?? else {
            return Ok(());
        };
        let base = normalize_version(base)?;
        if stable == base {
            return Ok(());
        }
        Err(RolloutError::Store(StoreError::precondition(format!(
            "the baseline must be the version model {model:?} serves today: its {STABLE_LABEL:?} \
             label points at {stable:?}, not at the baseline {base:?}; use {stable:?} as the \
             baseline, or move {STABLE_LABEL:?} to {base:?} with SetVersionLabel first"
        ))))
    }

    /// Applies an operator command: persist, then apply, then notify, as one unit
    /// that runs to its end even if the caller goes away.
    pub async fn command(
        self: &Arc<Self>,
        id: &str,
        command: Command,
        actor: Actor,
        reason: &str,
        expected_revision: u64,
    ) -> Result<Rollout, RolloutError> {
        let (id, reason) = (id.to_owned(), reason.to_owned());
        self.detached(move |this| async move {
            this.command_unit(&id, command, actor, &reason, expected_revision)
                .await
        })
        .await
    }

    async fn command_unit(
        &self,
        id: &str,
        command: Command,
        actor: Actor,
        reason: &str,
        expected_revision: u64,
    ) -> Result<Rollout, RolloutError> {
        let _serial = self.commands.lock().await;
        let (rollout, metrics) = {
            let live = self.live.read();
            let l = live
                .get(id)
                .ok_or_else(|| RolloutError::NotFound(id.to_owned()))?;
            if expected_revision != 0 && l.rollout.state.revision != expected_revision {
                return Err(RolloutError::StaleRevision {
                    id: id.to_owned(),
                    expected: expected_revision,
                    actual: l.rollout.state.revision,
                });
            }
            (
                l.rollout.clone(),
                (Arc::clone(&l.metrics), Arc::clone(&l.shadow)),
            )
        };
        let snapshot = {
            let (m, sh) = (metrics.0.lock(), metrics.1.lock());
            probserve_experiment::controller::evaluate(&rollout, &m, Some(&sh), now())
                .ok()
                .map(|e| e.snapshot)
        };
        let t = rollout.command(command, actor, reason, now(), snapshot)?;
        self.persist_and_apply(id, t).await
    }

    /// Evaluates one rollout and applies the controller's transition, if any, as
    /// one unit like [`Rollouts::command`]. Returns the action taken.
    pub async fn tick(self: &Arc<Self>, id: &str) -> Result<Option<String>, RolloutError> {
        let id = id.to_owned();
        self.detached(move |this| async move { this.tick_unit(&id).await })
            .await
    }

    /// Persists a transition (state, audit record, label moves and holds in one
    /// transaction), then applies it. Call with the command lock held.
    pub(super) async fn persist_and_apply(
        &self,
        id: &str,
        t: Transition,
    ) -> Result<Rollout, RolloutError> {
        let (model, mut rollout, store_revision) = {
            let live = self.live.read();
            let l = live
                .get(id)
                .ok_or_else(|| RolloutError::NotFound(id.to_owned()))?;
            (l.model.clone(), l.rollout.clone(), l.store_revision)
        };
        rollout.apply(&t);
        let detail =
            serde_json::to_value(&t.audit).map_err(|e| RolloutError::Internal(e.to_string()))?;
        let audit = AuditEntry {
            at_millis: t.audit.at.0,
            actor: actor_name(&t.audit.actor),
            subject: format!("rollout/{id}"),
            action: t.audit.action.clone(),
            detail: detail.clone(),
        };
        let phase = rollout.state.phase;
        let promoted = phase == Phase::Promoted && t.audit.from != Phase::Promoted;
        // A rollback after promotion: the candidate holds `stable`, and default
        // traffic must go back to the baseline with the state change.
        let unpromoted = t.audit.from == Phase::Promoted && phase != Phase::Promoted;
        let (base, cand) = (
            rollout.spec.baseline.clone(),
            rollout.spec.candidate.clone(),
        );
        // What the change needs to be servable, checked inside its transaction.
        // Pause, rollback, abort, the kill switch and overrides need nothing: they
        // must work whatever happened to the versions; only a rollback that moves
        // `stable` back needs a baseline it can point at.
        let require_servable = match &t.command {
            Command::Promote => vec![(model.clone(), cand.clone())],
            Command::Start | Command::Resume | Command::Advance => {
                vec![(model.clone(), base.clone()), (model.clone(), cand.clone())]
            }
            _ if promoted => vec![(model.clone(), cand.clone())],
            _ if unpromoted => vec![(model.clone(), base.clone())],
            _ => Vec::new(),
        };
        let stable = |version: String| LabelMove {
            model: model.clone(),
            label: STABLE_LABEL.to_owned(),
            version,
            only_if_unset: false,
        };
        let labels = if promoted {
            // Promotion makes the candidate the stable version for default routing.
            vec![stable(cand)]
        } else if unpromoted {
            vec![stable(base)]
        } else {
            Vec::new()
        };
        let write = RolloutWrite {
            id: id.to_owned(),
            expected_revision: Some(store_revision),
            value: stored_value(&model, &rollout)?,
            audit,
            require_servable,
            labels,
            require_labels: Vec::new(),
            holds: holds(&model, &rollout),
        };
        let snapshot = Arc::new(rollout.routing_snapshot()?);
        let s = Arc::clone(&self.store);
        let commit = blocking(move || s.commit_rollout(&write)).await??;
        self.live
            .write()
            .update(id, rollout.clone(), snapshot, commit.revision);
        tracing::info!(rollout = %id, action = %t.audit.action, from = ?t.audit.from, to = ?t.audit.to, reason = %t.audit.reason, "rollout changed");
        let _ = self.events.send(RolloutEvent {
            model,
            rollout: rollout.clone(),
            change: detail.to_string(),
        });
        Ok(rollout)
    }
}
