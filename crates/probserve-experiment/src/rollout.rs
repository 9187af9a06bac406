//! The rollout state machine. Phases: pending → running(step) ⇄ paused → promoted |
//! rolled back | aborted. Commands never mutate: [`Rollout::command`] returns a
//! [`Transition`] (next state + [`AuditRecord`]) or a typed [`RolloutError`] for an
//! illegal command; the caller persists the transition, then calls [`Rollout::apply`].
//!
//! | command | allowed from |
//! |---|---|
//! | start | pending |
//! | advance | running, paused (not at the last step) |
//! | pause | running |
//! | resume | paused |
//! | promote | running, paused |
//! | rollback | running, paused; promoted when the baseline is kept warm |
//! | abort | pending, running, paused |
//! | approve(step) | any non-terminal phase |
//! | kill switch, overrides | any non-terminal phase (a kill switch is always allowed while the rollout routes traffic) |
//!
//! Overrides are bounded: keys of at most [`MAX_OVERRIDE_KEY_BYTES`] bytes, at
//! most [`MAX_OVERRIDES`] per rollout.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::audit::{Actor, AuditRecord, MetricsSnapshot};
use crate::clock::Timestamp;
use crate::error::{ExperimentError, RolloutError};
use crate::plan::RolloutSpec;
use crate::routing::{RoutingSnapshot, ShadowRoute};

/// Longest routing key an override may name, in bytes.
pub const MAX_OVERRIDE_KEY_BYTES: usize = 256;
/// Most overrides one rollout holds.
pub const MAX_OVERRIDES: usize = 10_000;

/// Lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Created, not started.
    Pending,
    /// Running the current step.
    Running,
    /// Held by an operator or by the controller (e.g. SRM); routing stays as it was.
    Paused,
    /// The candidate is the new stable version.
    Promoted,
    /// All traffic back on the baseline.
    RolledBack,
    /// Stopped by an operator; all traffic on the baseline.
    Aborted,
}

impl Phase {
    /// Promoted, rolled back or aborted.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Promoted | Phase::RolledBack | Phase::Aborted)
    }
}

/// Mutable state of a rollout (persisted next to the spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Phase.
    pub phase: Phase,
    /// Current step index.
    pub step: usize,
    /// When the rollout started.
    pub started_at: Option<Timestamp>,
    /// When the current step started.
    pub step_started_at: Option<Timestamp>,
    /// Steps a human has approved.
    pub approvals: BTreeSet<usize>,
    /// Kill switch.
    pub kill_switch: bool,
    /// Per-key overrides (routing key → version).
    pub overrides: BTreeMap<String, String>,
    /// Why the rollout is paused, rolled back or aborted, if it is.
    pub hold_reason: Option<String>,
    /// Incremented on every transition.
    pub revision: u64,
}

impl Default for RolloutState {
    fn default() -> Self {
        Self {
            phase: Phase::Pending,
            step: 0,
            started_at: None,
            step_started_at: None,
            approvals: BTreeSet::new(),
            kill_switch: false,
            overrides: BTreeMap::new(),
            hold_reason: None,
            revision: 0,
        }
    }
}

/// Operator commands (the controller issues the same ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Begin step 0.
    Start,
    /// Go to the next step.
    Advance,
    /// Hold.
    Pause,
    /// Continue after a hold.
    Resume,
    /// Make the candidate the stable version.
    Promote,
    /// Send all traffic back to the baseline.
    Rollback,
    /// Stop without promoting.
    Abort,
    /// Approve a step's manual gate.
    Approve {
        /// Step index.
        step: usize,
    },
    /// Turn the kill switch on or off.
    KillSwitch {
        /// New value.
        on: bool,
    },
    /// Pin a routing key to a version.
    SetOverride {
        /// Routing key.
        key: String,
        /// Version (baseline or candidate).
        version: String,
    },
    /// Remove a key's override.
    ClearOverride {
        /// Routing key.
        key: String,
    },
}

impl Command {
    /// Short name used in audit records and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Advance => "advance",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::Rollback => "rollback",
            Command::Abort => "abort",
            Command::Approve { .. } => "approve",
            Command::KillSwitch { .. } => "kill_switch",
            Command::SetOverride { .. } => "set_override",
            Command::ClearOverride { .. } => "clear_override",
        }
    }
}

/// A state change to persist, then apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The command that made it.
    pub command: Command,
    /// State after the transition.
    pub next: RolloutState,
    /// Audit record.
    pub audit: AuditRecord,
}

/// A rollout: spec plus state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// The plan.
    pub spec: RolloutSpec,
    /// Where it is.
    pub state: RolloutState,
}

impl Rollout {
    /// A pending rollout.
    ///
    /// # Errors
    /// An invalid spec.
    pub fn new(spec: RolloutSpec) -> Result<Self, ExperimentError> {
        spec.validate()?;
        Ok(Self {
            spec,
            state: RolloutState::default(),
        })
    }

    /// Compute the transition for `cmd` without changing anything.
    ///
    /// # Errors
    /// [`RolloutError::IllegalTransition`] (e.g. promoting an aborted rollout),
    /// [`RolloutError::AtLastStep`], [`RolloutError::NoSuchStep`],
    /// [`RolloutError::UnknownVersion`].
    pub fn command(
        &self,
        cmd: Command,
        actor: Actor,
        reason: impl Into<String>,
        now: Timestamp,
        metrics: Option<MetricsSnapshot>,
    ) -> Result<Transition, RolloutError> {
        let s = &self.state;
        let mut next = s.clone();
        let illegal = || RolloutError::IllegalTransition {
            command: cmd.name(),
            phase: s.phase,
        };
        let last = self.spec.steps.len().saturating_sub(1);
        match &cmd {
            Command::Start => {
                if s.phase != Phase::Pending {
                    return Err(illegal());
                }
                next.phase = Phase::Running;
                next.step = 0;
                next.started_at = Some(now);
                next.step_started_at = Some(now);
            }
            Command::Advance => {
                if !matches!(s.phase, Phase::Running | Phase::Paused) {
                    return Err(illegal());
                }
                if s.step >= last {
                    return Err(RolloutError::AtLastStep);
                }
                next.phase = Phase::Running;
                next.step = s.step + 1;
                next.step_started_at = Some(now);
                next.hold_reason = None;
            }
            Command::Pause => {
                if s.phase != Phase::Running {
                    return Err(illegal());
                }
                next.phase = Phase::Paused;
                next.hold_reason = Some(reason_string(&cmd, &actor));
            }
            Command::Resume => {
                if s.phase != Phase::Paused {
                    return Err(illegal());
                }
                next.phase = Phase::Running;
                next.hold_reason = None;
            }
            Command::Promote => {
                if !matches!(s.phase, Phase::Running | Phase::Paused) {
                    return Err(illegal());
                }
                next.phase = Phase::Promoted;
                next.hold_reason = None;
            }
            Command::Rollback => {
                let ok = matches!(s.phase, Phase::Running | Phase::Paused)
                    || (s.phase == Phase::Promoted && self.spec.keep_baseline_warm);
                if !ok {
                    return Err(illegal());
                }
                next.phase = Phase::RolledBack;
                next.hold_reason = None;
            }
            Command::Abort => {
                if !matches!(s.phase, Phase::Pending | Phase::Running | Phase::Paused) {
                    return Err(illegal());
                }
                next.phase = Phase::Aborted;
                next.hold_reason = None;
            }
            Command::Approve { step } => {
                if s.phase.is_terminal() {
                    return Err(illegal());
                }
                if *step >= self.spec.steps.len() {
                    return Err(RolloutError::NoSuchStep {
                        step: *step,
                        steps: self.spec.steps.len(),
                    });
                }
                next.approvals.insert(*step);
            }
            Command::KillSwitch { on } => {
                if s.phase.is_terminal() {
                    return Err(illegal());
                }
                next.kill_switch = *on;
            }
            Command::SetOverride { key, version } => {
                if s.phase.is_terminal() {
                    return Err(illegal());
                }
                if key.is_empty() || key.len() > MAX_OVERRIDE_KEY_BYTES {
                    return Err(RolloutError::Limit {
                        field: "routing_key",
                        reason: format!(
                            "must be 1 to {MAX_OVERRIDE_KEY_BYTES} bytes, got {}",
                            key.len()
                        ),
                    });
                }
                if *version != self.spec.baseline && *version != self.spec.candidate {
                    return Err(RolloutError::UnknownVersion(version.clone()));
                }
                if !s.overrides.contains_key(key) && s.overrides.len() >= MAX_OVERRIDES {
                    return Err(RolloutError::Limit {
                        field: "routing_key",
                        reason: format!(
                            "the rollout already has {MAX_OVERRIDES} overrides, the most it holds; clear some first"
                        ),
                    });
                }
                next.overrides.insert(key.clone(), version.clone());
            }
            Command::ClearOverride { key } => {
                if s.phase.is_terminal() {
                    return Err(illegal());
                }
                next.overrides.remove(key);
            }
        }
        next.revision = s.revision + 1;
        let mut reason = reason.into();
        if reason.is_empty() {
            reason = reason_string(&cmd, &actor);
        }
        if matches!(cmd, Command::Pause | Command::Rollback | Command::Abort) {
            next.hold_reason = Some(reason.clone());
        }
        let audit = AuditRecord {
            rollout_id: self.spec.id.clone(),
            at: now,
            actor,
            action: cmd.name().to_owned(),
            from: s.phase,
            to: next.phase,
            step_from: s.step,
            step_to: next.step,
            reason,
            metrics,
            revision: next.revision,
        };
        Ok(Transition {
            command: cmd,
            next,
            audit,
        })
    }

    /// Apply a transition computed by [`Rollout::command`] (after persisting it).
    pub fn apply(&mut self, t: &Transition) {
        self.state = t.next.clone();
    }

    /// Compute and apply in one go (for callers that persist afterwards or not at all).
    ///
    /// # Errors
    /// As [`Rollout::command`].
    pub fn execute(
        &mut self,
        cmd: Command,
        actor: Actor,
        reason: impl Into<String>,
        now: Timestamp,
    ) -> Result<Transition, RolloutError> {
        let t = self.command(cmd, actor, reason, now, None)?;
        self.apply(&t);
        Ok(t)
    }

    /// The routing snapshot for the current state.
    ///
    /// Running or paused: the current step's routing. Promoted: everything on the
    /// candidate. Pending, rolled back, aborted: everything on the baseline. The kill
    /// switch sends everything to the baseline (to the candidate once promoted without
    /// a warm baseline, since the baseline may be unloaded).
    ///
    /// # Errors
    /// An invalid step (cannot happen for a validated spec).
    pub fn routing_snapshot(&self) -> Result<RoutingSnapshot, ExperimentError> {
        let spec = &self.spec;
        let (stable, exposure, arms, shadow) = match self.state.phase {
            Phase::Running | Phase::Paused => {
                let st = spec
                    .steps
                    .get(self.state.step)
                    .ok_or_else(|| ExperimentError::config("step", "state points past the plan"))?;
                let shadow = (st.mirror_bps > 0).then(|| ShadowRoute {
                    version: spec.candidate.clone(),
                    mirror_bps: st.mirror_bps,
                });
                (
                    spec.baseline.clone(),
                    st.exposure_bps,
                    st.arms.clone(),
                    shadow,
                )
            }
            Phase::Promoted => (spec.candidate.clone(), 0, Vec::new(), None),
            Phase::Pending | Phase::RolledBack | Phase::Aborted => {
                (spec.baseline.clone(), 0, Vec::new(), None)
            }
        };
        let mut snap = RoutingSnapshot::new(&spec.id, &spec.seed, stable, exposure, arms, shadow)?;
        if self.state.kill_switch {
            snap.kill_switch = true;
            if self.state.phase == Phase::Promoted && !spec.keep_baseline_warm {
                snap.stable = spec.candidate.clone();
            } else {
                snap.stable = spec.baseline.clone();
            }
        }
        if !self.state.phase.is_terminal() {
            snap.overrides = self.state.overrides.clone();
        }
        Ok(snap)
    }
}

fn reason_string(cmd: &Command, actor: &Actor) -> String {
    match actor {
        Actor::Operator(who) => format!("{} by {who}", cmd.name()),
        Actor::Controller => format!("{} by controller", cmd.name()),
    }
}
