//! Rollouts in the server: the experiment engine's state held in memory for routing,
//! persisted in the store before every change takes effect, driven by operator
//! commands and by the controller loop, and streamed to watchers.
//!
//! Invariants:
//! - A state change is written to the store before it is applied in memory or
//!   routed on, as ONE transaction per command ([`Store::commit_rollout`]): state,
//!   audit record, the `stable` label it moves, the versions it holds, and the
//!   checks that can fail (baseline and candidate exist and are not archived, the
//!   baseline is `stable` at creation, the revision is current). A refused command
//!   writes nothing, so memory and store never disagree and the rollout keeps
//!   accepting Pause, Rollback and the kill switch.
//! - A command runs to its end on its own task (`commands.rs`): the caller going
//!   away (client cancel, deadline) never stops it between the store commit and
//!   the in-memory update, and nothing that can fail runs after the commit.
//! - Commands are serialized (one at a time), so the revision check never races
//!   with ourselves; a conflict means another writer and is ABORTED.
//! - At most one active (pending, running, paused) rollout per model, indexed by
//!   model: routing an Infer call costs the same however many rollouts exist.
//! - While a rollout is active, `stable` is its baseline and only its own writes
//!   move it (the store refuses other moves): promotion moves it to the candidate,
//!   a rollback after promotion moves it back.
//! - Routing reads an immutable snapshot (`Arc<RoutingSnapshot>`) and never blocks on
//!   a command; anonymous calls draw from the request's seed, so the same request
//!   with the same seed is routed the same way. Every call a running rollout routes
//!   reports the rollout's reason: a call the split leaves on the baseline is
//!   `Split`, not `Default` (which means "no rollout").

mod commands;
mod controller;
pub mod convert;
mod shadow;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use probserve_experiment::audit::Actor;
use probserve_experiment::metrics::{Observation, RolloutMetrics};
use probserve_experiment::rollout::{Phase, Rollout};
use probserve_experiment::routing::{Decision, Reason, RoutingSnapshot, route};
use probserve_experiment::shadow::ShadowStats;
use probserve_experiment::{ExperimentError, Timestamp};
use probserve_store::{Store, StoreError};
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

impl Live {
    fn routes(&self) -> bool {
        matches!(self.rollout.state.phase, Phase::Running | Phase::Paused)
    }
}

/// Every rollout in memory, with the active one of each model indexed.
#[derive(Default)]
struct LiveSet {
    by_id: BTreeMap<String, Live>,
    /// model → its active (pending, running, paused) rollout. Stores written
    /// before commands were single transactions can hold a stray pending rollout
    /// next to a running one: the running one is indexed.
    active: HashMap<String, String>,
}

impl LiveSet {
    fn get(&self, id: &str) -> Option<&Live> {
        self.by_id.get(id)
    }

    /// The active rollout of `model`, if any.
    fn active_of(&self, model: &str) -> Option<&Live> {
        self.active.get(model).and_then(|id| self.by_id.get(id))
    }

    /// Adds or replaces a rollout, keeping the index in step.
    fn put(&mut self, id: String, live: Live) {
        let model = live.model.clone();
        self.by_id.insert(id, live);
        self.reindex(&model);
    }

    /// Applies a committed change to a rollout in memory.
    fn update(&mut self, id: &str, rollout: Rollout, snapshot: Arc<RoutingSnapshot>, rev: u64) {
        let Some(l) = self.by_id.get_mut(id) else {
            return;
        };
        let (was_active, now_active) = (
            !l.rollout.state.phase.is_terminal(),
            !rollout.state.phase.is_terminal(),
        );
        let routed_before = l.routes();
        l.rollout = rollout;
        l.snapshot = snapshot;
        l.store_revision = rev;
        let model = l.model.clone();
        if was_active != now_active || routed_before != l.routes() {
            self.reindex(&model);
        }
    }

    /// Builds the whole index in one pass (at load).
    fn rebuild_index(&mut self) {
        self.active.clear();
        for (id, l) in &self.by_id {
            if l.rollout.state.phase.is_terminal() {
                continue;
            }
            let better = match self.active.get(&l.model).and_then(|i| self.by_id.get(i)) {
                None => true,
                Some(current) => l.routes() && !current.routes(),
            };
            if better {
                self.active.insert(l.model.clone(), id.clone());
            }
        }
    }

    /// Recomputes the index entry of one model: a routing (running, paused)
    /// rollout before a pending one. Scans only when a rollout starts, stops or
    /// is added, never per call.
    fn reindex(&mut self, model: &str) {
        let best = self
            .by_id
            .iter()
            .filter(|(_, l)| l.model == model && !l.rollout.state.phase.is_terminal())
            .max_by_key(|(_, l)| l.routes())
            .map(|(id, _)| id.clone());
        match best {
            Some(id) => self.active.insert(model.to_owned(), id),
            None => self.active.remove(model),
        };
    }
}

/// All rollouts of this server.
pub struct Rollouts {
    store: Arc<dyn Store>,
    live: RwLock<LiveSet>,
    commands: tokio::sync::Mutex<()>,
    events: broadcast::Sender<RolloutEvent>,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts")
            .field("count", &self.live.read().by_id.len())
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
        let mut live = LiveSet::default();
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
            live.by_id.insert(
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
        live.rebuild_index();
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

    /// Rollouts as (model, rollout): of one model (`""`: all), active ones only
    /// or all.
    pub fn list(&self, model: &str, active_only: bool) -> Vec<(String, Rollout)> {
        let live = self.live.read();
        let pick = |l: &Live| (l.model.clone(), l.rollout.clone());
        if active_only {
            return match model {
                "" => live
                    .active
                    .values()
                    .filter_map(|id| live.by_id.get(id))
                    .map(pick)
                    .collect(),
                m => live.active_of(m).map(pick).into_iter().collect(),
            };
        }
        live.by_id
            .values()
            .filter(|l| model.is_empty() || l.model == model)
            .map(pick)
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
        // Only a running or paused rollout routes.
        let l = live.active_of(model).filter(|l| l.routes())?;
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
        {
            let live = self.live.read();
            for id in live.active.values() {
                let Some(l) = live.by_id.get(id) else {
                    continue;
                };
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
