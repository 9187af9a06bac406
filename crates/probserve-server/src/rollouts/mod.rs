//! Rollouts in the server: the experiment engine's state held in memory for routing,
//! persisted in the store before every change takes effect, driven by operator
//! commands and by the controller loop, and streamed to watchers.
//!
//! Invariants:
//! - A state change is written to the store before it is applied in memory or
//!   routed on, as ONE transaction per command ([`Store::commit_rollout`]): state,
//!   audit record, the `stable` label it moves, and the checks that can fail
//!   (baseline and candidate exist and are not archived, the revision is current).
//!   A refused command writes nothing, so memory and store never disagree and the
//!   rollout keeps accepting Pause, Rollback and the kill switch.
//! - Commands are serialized (one at a time), so the revision check never races
//!   with ourselves; a conflict means another writer and is ABORTED.
//! - At most one active (pending, running, paused) rollout per model.
//! - Routing reads an immutable snapshot (`Arc<RoutingSnapshot>`) and never blocks on
//!   a command; anonymous calls draw from the request's seed, so the same request
//!   with the same seed is routed the same way. Every call a running rollout routes
//!   reports the rollout's reason: a call the split leaves on the baseline is
//!   `Split`, not `Default` (which means "no rollout").

mod controller;
pub mod convert;
mod shadow;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use probserve_experiment::audit::Actor;
use probserve_experiment::metrics::{Observation, RolloutMetrics};
use probserve_experiment::rollout::{Command, Phase, Rollout, Transition};
use probserve_experiment::routing::{Decision, Reason, RoutingSnapshot, route};
use probserve_experiment::shadow::ShadowStats;
use probserve_experiment::{ExperimentError, Timestamp};
use probserve_store::validate::STABLE_LABEL;
use probserve_store::{AuditEntry, LabelMove, RolloutWrite, Store, StoreError};
use rand::SeedableRng as _;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use controller::spawn_controller;
pub use shadow::{MAX_MIRRORS_IN_FLIGHT, Mirror, MirrorLimit, SideOutcome};

/// Blob namespaces of the persisted evidence.
const METRIC_BLOBS: &str = "rollout-metrics";
const SHADOW_BLOBS: &str = "rollout-shadow";

/// Metric windows: one minute each, one hour kept.
const WINDOW_MS: u64 = 60_000;
const MAX_WINDOWS: usize = 60;

/// What is persisted per rollout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRollout {
    /// The model both versions belong to.
    pub model: String,
    /// Plan and state.
    pub rollout: Rollout,
}

/// A change, as sent to watchers.
#[derive(Debug, Clone)]
pub struct RolloutEvent {
    /// The model.
    pub model: String,
    /// The rollout after the change.
    pub rollout: Rollout,
    /// What happened (the audit record as JSON).
    pub change: String,
}

/// Why a rollout operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Unknown rollout.
    #[error("rollout {0:?} not found")]
    NotFound(String),
    /// The engine refused the plan or a statistic's input.
    #[error(transparent)]
    Engine(#[from] ExperimentError),
    /// The command is not allowed now (wrong phase, last step, unknown version).
    #[error(transparent)]
    Command(#[from] probserve_experiment::RolloutError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The id is taken or the model already has an active rollout.
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller's view is stale.
    #[error("rollout {id:?} is at revision {actual}, not {expected}")]
    StaleRevision {
        /// Rollout.
        id: String,
        /// What the caller expected.
        expected: u64,
        /// What it is.
        actual: u64,
    },
    /// Serialization or a blocking task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

struct Live {
    model: String,
    rollout: Rollout,
    snapshot: Arc<RoutingSnapshot>,
    store_revision: u64,
    metrics: Arc<Mutex<RolloutMetrics>>,
    /// Comparisons of mirrored calls (shadow strategy or steps with `mirror_bps`).
    shadow: Arc<Mutex<ShadowStats>>,
}

/// All rollouts of this server.
pub struct Rollouts {
    store: Arc<dyn Store>,
    live: RwLock<BTreeMap<String, Live>>,
    commands: tokio::sync::Mutex<()>,
    events: broadcast::Sender<RolloutEvent>,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts")
            .field("count", &self.live.read().len())
            .finish()
    }
}

/// Milliseconds since the Unix epoch as the engine's timestamp.
pub fn now() -> Timestamp {
    Timestamp(crate::catalog::unix_millis())
}

fn actor_name(a: &Actor) -> String {
    match a {
        Actor::Operator(n) => n.clone(),
        Actor::Controller => "controller".to_owned(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RolloutError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RolloutError::Internal(e.to_string()))
}

/// A routing decision made by a rollout.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The rollout.
    pub rollout_id: String,
    /// The decision.
    pub decision: Decision,
    /// `baseline` or `candidate`.
    pub arm: &'static str,
    /// Where to mirror the call, if the decision says so.
    pub mirror: Option<Mirror>,
    /// Where to record the call's observation.
    metrics: Arc<Mutex<RolloutMetrics>>,
}

impl Routed {
    /// Records how the call went, for guardrails and analysis.
    pub fn record(&self, obs: &Observation) {
        self.metrics
            .lock()
            .record(&self.decision.version, now(), obs);
    }
}

impl Rollouts {
    /// Loads every rollout from the store.
    pub async fn load(store: Arc<dyn Store>) -> Result<Arc<Self>, RolloutError> {
        let s = Arc::clone(&store);
        let entries = blocking(move || s.list_rollouts()).await??;
        let mut live = BTreeMap::new();
        for e in entries {
            let stored: StoredRollout = serde_json::from_value(e.value)
                .map_err(|err| RolloutError::Internal(format!("rollout {}: {err}", e.id)))?;
            let snapshot = Arc::new(stored.rollout.routing_snapshot()?);
            let s = Arc::clone(&store);
            let id = e.id.clone();
            let metrics = blocking(move || s.get_blob(METRIC_BLOBS, &id)).await??;
            let metrics = metrics
                .and_then(|b| serde_json::from_slice::<RolloutMetrics>(&b).ok())
                .unwrap_or_else(|| RolloutMetrics::new(WINDOW_MS, MAX_WINDOWS));
            let (s, id) = (Arc::clone(&store), e.id.clone());
            let shadow = blocking(move || s.get_blob(SHADOW_BLOBS, &id)).await??;
            let shadow = shadow
                .and_then(|b| serde_json::from_slice::<ShadowStats>(&b).ok())
                .unwrap_or_default();
            live.insert(
                e.id,
                Live {
                    model: stored.model,
                    rollout: stored.rollout,
                    snapshot,
                    store_revision: e.revision,
                    metrics: Arc::new(Mutex::new(metrics)),
                    shadow: Arc::new(Mutex::new(shadow)),
                },
            );
        }
        let (events, _) = broadcast::channel(256);
        Ok(Arc::new(Self {
            store,
            live: RwLock::new(live),
            commands: tokio::sync::Mutex::new(()),
            events,
        }))
    }

    /// Subscribes to changes of every rollout.
    pub fn subscribe(&self) -> broadcast::Receiver<RolloutEvent> {
        self.events.subscribe()
    }

    /// (model, rollout) of one rollout.
    pub fn get(&self, id: &str) -> Option<(String, Rollout)> {
        self.live
            .read()
            .get(id)
            .map(|l| (l.model.clone(), l.rollout.clone()))
    }

    /// All rollouts as (model, rollout).
    pub fn list(&self) -> Vec<(String, Rollout)> {
        self.live
            .read()
            .values()
            .map(|l| (l.model.clone(), l.rollout.clone()))
            .collect()
    }

    /// Routes a call to `model` if a rollout is active for it.
    pub fn route(
        &self,
        model: &str,
        key: Option<&str>,
        attributes: &std::collections::HashMap<String, String>,
        seed: u64,
    ) -> Option<Routed> {
        let live = self.live.read();
        // Only a running or paused rollout routes. (Stores written before commands
        // were single transactions can hold a stray pending rollout next to it.)
        let l = live.values().find(|l| {
            l.model == model && matches!(l.rollout.state.phase, Phase::Running | Phase::Paused)
        })?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x05ee_d0fa_1100);
        let mut decision = route(&l.snapshot, key, attributes, &mut rng);
        if decision.reason == Reason::Default {
            // Inside a running rollout the split left this call on the baseline.
            decision.reason = Reason::Split;
        }
        let arm = if decision.version == l.rollout.spec.candidate {
            "candidate"
        } else {
            "baseline"
        };
        let mirror = decision.shadow.as_ref().map(|v| Mirror {
            version: v.clone(),
            stats: Arc::clone(&l.shadow),
            k: l.rollout.spec.shadow.k,
        });
        Some(Routed {
            rollout_id: l.rollout.spec.id.clone(),
            decision,
            arm,
            mirror,
            metrics: Arc::clone(&l.metrics),
        })
    }

    /// Creates a rollout, optionally started, in ONE store transaction: the
    /// rollout's state, its audit record and the `stable` pin on the baseline
    /// (unless an operator set `stable`), after checking inside the transaction that
    /// baseline and candidate exist and are not archived. A refusal stores nothing.
    pub async fn create(
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
            if live.contains_key(&id) {
                return Err(RolloutError::AlreadyExists(format!(
                    "rollout {id:?} already exists"
                )));
            }
            if let Some(other) = live
                .values()
                .find(|l| l.model == model && !l.rollout.state.phase.is_terminal())
            {
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
        let value = serde_json::to_value(StoredRollout {
            model: model.clone(),
            rollout: rollout.clone(),
        })
        .map_err(|e| RolloutError::Internal(e.to_string()))?;
        let (base, cand) = (
            rollout.spec.baseline.clone(),
            rollout.spec.candidate.clone(),
        );
        let write = RolloutWrite {
            id: id.clone(),
            expected_revision: None,
            value,
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
            // Traffic outside the rollout (and all of it after a rollback) goes to the
            // baseline: pin `stable` to it unless an operator already set it.
            labels: vec![LabelMove {
                model: model.clone(),
                label: STABLE_LABEL.to_owned(),
                version: base,
                only_if_unset: true,
            }],
            require_labels: Vec::new(),
            holds: Vec::new(),
        };
        let s = Arc::clone(&self.store);
        let commit = blocking(move || s.commit_rollout(&write)).await??;
        let snapshot = Arc::new(rollout.routing_snapshot()?);
        self.live.write().insert(
            id.clone(),
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

    /// Applies an operator command: persist, then apply, then notify.
    pub async fn command(
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

    /// Persists a transition (state + audit in one transaction), then applies it.
    async fn persist_and_apply(&self, id: &str, t: Transition) -> Result<Rollout, RolloutError> {
        let (model, mut rollout, store_revision) = {
            let live = self.live.read();
            let l = live
                .get(id)
                .ok_or_else(|| RolloutError::NotFound(id.to_owned()))?;
            (l.model.clone(), l.rollout.clone(), l.store_revision)
        };
        rollout.apply(&t);
        let value = serde_json::to_value(StoredRollout {
            model: model.clone(),
            rollout: rollout.clone(),
        })
        .map_err(|e| RolloutError::Internal(e.to_string()))?;
        let detail =
            serde_json::to_value(&t.audit).map_err(|e| RolloutError::Internal(e.to_string()))?;
        let audit = AuditEntry {
            at_millis: t.audit.at.0,
            actor: actor_name(&t.audit.actor),
            subject: format!("rollout/{id}"),
            action: t.audit.action.clone(),
            detail: detail.clone(),
        };
        let promoted = rollout.state.phase == Phase::Promoted && t.audit.from != Phase::Promoted;
        let (base, cand) = (
            rollout.spec.baseline.clone(),
            rollout.spec.candidate.clone(),
        );
        // What the change needs to be servable, checked inside its transaction.
        // Pause, rollback, abort, the kill switch and overrides need nothing: they
        // must work whatever happened to the versions.
        let require_servable = match &t.command {
            Command::Promote => vec![(model.clone(), cand.clone())],
            Command::Start | Command::Resume | Command::Advance => {
                vec![(model.clone(), base), (model.clone(), cand.clone())]
            }
            _ if promoted => vec![(model.clone(), cand.clone())],
            _ => Vec::new(),
        };
        // Promotion makes the candidate the stable version for default routing.
        let labels = if promoted {
            vec![LabelMove {
                model: model.clone(),
                label: STABLE_LABEL.to_owned(),
                version: cand,
                only_if_unset: false,
            }]
        } else {
            Vec::new()
        };
        let write = RolloutWrite {
            id: id.to_owned(),
            expected_revision: Some(store_revision),
            value,
            audit,
            require_servable,
            labels,
            require_labels: Vec::new(),
            holds: Vec::new(),
        };
        let s = Arc::clone(&self.store);
        let commit = blocking(move || s.commit_rollout(&write)).await??;
        let snapshot = Arc::new(rollout.routing_snapshot()?);
        if let Some(l) = self.live.write().get_mut(id) {
            l.rollout = rollout.clone();
            l.snapshot = snapshot;
            l.store_revision = commit.revision;
        }
        tracing::info!(rollout = %id, action = %t.audit.action, from = ?t.audit.from, to = ?t.audit.to, reason = %t.audit.reason, "rollout changed");
        let _ = self.events.send(RolloutEvent {
            model,
            rollout: rollout.clone(),
            change: detail.to_string(),
        });
        Ok(rollout)
    }

    /// The metrics of a rollout (a copy).
    pub fn metrics(&self, id: &str) -> Option<RolloutMetrics> {
        self.live.read().get(id).map(|l| l.metrics.lock().clone())
    }

    /// The shadow comparisons of a rollout (a copy).
    pub fn shadow_stats(&self, id: &str) -> Option<ShadowStats> {
        self.live.read().get(id).map(|l| l.shadow.lock().clone())
    }

    /// Records an outcome for a routing key; returns the version it counted for.
    pub fn record_outcome(
        &self,
        id: &str,
        key: &str,
        metric: &str,
        value: f64,
    ) -> Result<String, RolloutError> {
        let live = self.live.read();
        let l = live
            .get(id)
            .ok_or_else(|| RolloutError::NotFound(id.to_owned()))?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let d = route(
            &l.snapshot,
            Some(key),
            &BTreeMap::<String, String>::new(),
            &mut rng,
        );
        let binary = match &l.rollout.spec.primary_metric {
            Some(p) if p.name == metric => p.binary,
            _ => value == 0.0 || value == 1.0,
        };
        l.metrics
            .lock()
            .record_outcome(&d.version, now(), metric, value, binary)?;
        Ok(d.version)
    }

    /// Persists every rollout's metric aggregates and shadow comparisons (so a
    /// restart keeps the evidence).
    pub async fn save_metrics(&self) -> Result<(), RolloutError> {
        let mut blobs: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
        for (id, l) in self.live.read().iter() {
            if l.rollout.state.phase.is_terminal() {
                continue;
            }
            if let Ok(b) = serde_json::to_vec(&*l.metrics.lock()) {
                blobs.push((METRIC_BLOBS, id.clone(), b));
            }
            let shadow = l.shadow.lock();
            if shadow.shadow_calls > 0
                && let Ok(b) = serde_json::to_vec(&*shadow)
            {
                blobs.push((SHADOW_BLOBS, id.clone(), b));
            }
        }
        let s = Arc::clone(&self.store);
        blocking(move || {
            for (namespace, id, b) in blobs {
                s.put_blob(namespace, &id, &b)?;
            }
            Ok::<_, StoreError>(())
        })
        .await??;
        Ok(())
    }
}
