//! The controller: a pure function of (spec, state, metrics, now) that decides what a
//! running rollout should do next, with the evidence for the audit log. The server
//! calls [`evaluate`] (or [`evaluate_all`]) on an interval, persists each returned
//! transition, then applies it.
//!
//! Order of checks for a running rollout (a paused one gets only step 1, because its
//! routing stays in place):
//! 1. guardrails vs baseline (after the minimum sample) → **rollback** on a breach;
//! 2. sample-ratio mismatch over the current step → **pause** and alert (never rollback);
//! 3. the step's sequential test on the primary metric, if the step is decided by test:
//!    significantly worse → **rollback**, significantly better → gate passed,
//!    undecided past `max_duration_ms` → **pause** as inconclusive;
//! 4. the step's gates (duration, samples per arm, thresholds, shadow criteria, manual
//!    approval) → **advance**, or **promote** after the last step (if auto-promote).
//!
//! Every look at the primary metric uses the anytime-valid mSPRT, so checking every
//! few seconds keeps the false-decision rate at α.

use serde::{Deserialize, Serialize};

use crate::audit::{Actor, ArmSnapshot, MetricsSnapshot};
use crate::clock::Timestamp;
use crate::error::ExperimentError;
use crate::guardrails;
use crate::metrics::{ArmMetrics, Outcome, RolloutMetrics};
use crate::plan::{RolloutSpec, Step, ThresholdMetric};
use crate::rollout::{Command, Phase, Rollout, Transition};
use crate::shadow::ShadowStats;
use crate::stats::bayes;
use crate::stats::sequential::{self, SequentialResult};
use crate::stats::srm::{SrmResult, srm_check};
use crate::stats::welch::Effect;

/// What the controller decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// Not running: nothing to do.
    Idle,
    /// Stay in the step; the reasons are the gates not yet met.
    Hold(Vec<String>),
    /// Move to the next step.
    Advance,
    /// Promote the candidate.
    Promote,
    /// Roll back, with the reason.
    Rollback(String),
    /// Pause for a human, with the reason (SRM, inconclusive test).
    Pause(String),
}

/// The controller's answer for one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rollout id.
    pub rollout_id: String,
    /// Decision.
    pub verdict: Verdict,
    /// Evidence.
    pub snapshot: MetricsSnapshot,
    /// The transition to persist and apply, when the verdict changes state.
    pub transition: Option<Transition>,
    /// The SRM check flagged a mismatch (alert the operator).
    pub srm_alert: bool,
}

fn outcome_of<'a>(m: &'a ArmMetrics, name: &str) -> Option<&'a Outcome> {
    m.outcomes.get(name)
}

fn primary_test(
    spec: &RolloutSpec,
    base: &ArmMetrics,
    cand: &ArmMetrics,
) -> Option<SequentialResult> {
    let pm = spec.primary_metric.as_ref()?;
    match (outcome_of(base, &pm.name)?, outcome_of(cand, &pm.name)?) {
        (Outcome::Binary(a), Outcome::Binary(b)) => {
            sequential::proportions(*a, *b, &spec.sequential).ok()
        }
        (Outcome::Continuous(a), Outcome::Continuous(b)) => {
            sequential::means(a, b, Effect::Absolute, &spec.sequential).ok()
        }
        _ => None,
    }
}

fn threshold_value(
    t: &ThresholdMetric,
    cand: &ArmMetrics,
    shadow: Option<&ShadowStats>,
    spec: &RolloutSpec,
) -> Option<f64> {
    match t {
        ThresholdMetric::ErrorRate => (cand.requests > 0).then(|| cand.error_counts().rate()),
        ThresholdMetric::TimeoutRate => (cand.requests > 0).then(|| cand.timeout_counts().rate()),
        ThresholdMetric::P95LatencyMs => cand.latency.quantile(0.95),
        ThresholdMetric::OutcomeMean(name) => match outcome_of(cand, name)? {
            Outcome::Binary(p) => (p.n > 0).then(|| p.rate()),
            Outcome::Continuous(m) => (m.n > 0).then(|| m.mean()),
        },
        ThresholdMetric::ShadowAgreement => {
            let r = shadow?.report(&spec.shadow);
            r.agreement_rate.is_finite().then_some(r.agreement_rate)
        }
    }
}

#[allow(clippy::too_many_arguments)] // private helper; the arguments are the evaluation's parts
fn gates(
    spec: &RolloutSpec,
    step: &Step,
    rollout: &Rollout,
    base: &ArmMetrics,
    cand: &ArmMetrics,
    shadow: Option<&ShadowStats>,
    snapshot: &mut MetricsSnapshot,
    now: Timestamp,
) -> Vec<String> {
    let st = &rollout.state;
    let mut pending = Vec::new();
    let since = st.step_started_at.map_or(0, |t| now.millis_since(t));
    if since < step.min_duration_ms {
        pending.push(format!(
            "step time {since} ms < {} ms",
            step.min_duration_ms
        ));
    }
    let serves_candidate = step.exposure_bps > 0;
    if serves_candidate
        && (base.requests < step.min_samples_per_arm || cand.requests < step.min_samples_per_arm)
    {
        pending.push(format!(
            "samples {}/{} < {} per arm",
            base.requests, cand.requests, step.min_samples_per_arm
        ));
    }
    for t in &step.thresholds {
        match threshold_value(&t.metric, cand, shadow, spec) {
            None => pending.push(format!("{:?}: no data", t.metric)),
            Some(v) => {
                if t.min.is_some_and(|m| v < m) || t.max.is_some_and(|m| v > m) {
                    pending.push(format!(
                        "{:?} = {v:.4} outside [{:?}, {:?}]",
                        t.metric, t.min, t.max
                    ));
                }
            }
        }
    }
    if step.require_shadow_criteria {
        match shadow {
            None => pending.push("no shadow comparisons yet".to_owned()),
            Some(s) => {
                let r = s.report(&spec.shadow);
                pending.extend(r.blockers.iter().map(|b| format!("shadow: {b}")));
                snapshot.shadow = Some(r);
            }
        }
    }
    if step.manual_approval && !st.approvals.contains(&st.step) {
        pending.push("awaiting manual approval".to_owned());
    }
    pending
}

/// Evaluate one rollout at `now`. `metrics` are the rollout's (merged) per-version
/// metrics; `shadow` the shadow comparison aggregate, if the step mirrors.
///
/// # Errors
/// Only for an internally inconsistent rollout (state pointing past its plan).
pub fn evaluate(
    rollout: &Rollout,
    metrics: &RolloutMetrics,
    shadow: Option<&ShadowStats>,
    now: Timestamp,
) -> Result<Evaluation, ExperimentError> {
    let spec = &rollout.spec;
    let mut snapshot = MetricsSnapshot::default();
    let mut eval = Evaluation {
        rollout_id: spec.id.clone(),
        verdict: Verdict::Idle,
        snapshot: MetricsSnapshot::default(),
        transition: None,
        srm_alert: false,
    };
    let paused = rollout.state.phase == Phase::Paused;
    if rollout.state.phase != Phase::Running && !paused {
        return Ok(eval);
    }
    let step = spec
        .steps
        .get(rollout.state.step)
        .ok_or_else(|| ExperimentError::config("step", "state points past the plan"))?;
    let empty = ArmMetrics::default();
    let base = metrics.cumulative_ref(&spec.baseline).unwrap_or(&empty);
    let cand = metrics.cumulative_ref(&spec.candidate).unwrap_or(&empty);
    snapshot
        .arms
        .insert(spec.baseline.clone(), ArmSnapshot::of(base));
    snapshot
        .arms
        .insert(spec.candidate.clone(), ArmSnapshot::of(cand));

    // 1. Guardrails.
    let g = guardrails::evaluate(&spec.guardrails, base, cand);
    let breach = g.reason();
    snapshot.guardrails = Some(g);

    // 2. SRM over the current step (only when both versions are served by the split).
    let share = spec.candidate_share(step);
    if let Some(started) = rollout
        .state
        .step_started_at
        .filter(|_| breach.is_none() && share > 0.0 && share < 1.0)
    {
        snapshot.srm = step_srm(spec, metrics, started, share);
    }

    // 3. Sequential decision (plus the Bayesian view for a binary primary metric).
    let seq = primary_test(spec, base, cand);
    snapshot.sequential = seq;
    snapshot.bayes = spec.primary_metric.as_ref().and_then(|pm| {
        match (outcome_of(base, &pm.name)?, outcome_of(cand, &pm.name)?) {
            (Outcome::Binary(a), Outcome::Binary(b)) => {
                bayes::binary(*a, *b, None, spec.sequential.alpha).ok()
            }
            _ => None,
        }
    });

    let verdict = if let Some(reason) = breach {
        Verdict::Rollback(reason)
    } else if paused {
        // A paused rollout keeps its routing, so guardrails keep watching it; nothing else moves.
        Verdict::Hold(vec![format!(
            "paused: {}",
            rollout
                .state
                .hold_reason
                .as_deref()
                .unwrap_or("by operator")
        )])
    } else if snapshot.srm.is_some_and(|s| s.mismatch) {
        eval.srm_alert = true;
        let p = snapshot.srm.map_or(f64::NAN, |s| s.p_value);
        Verdict::Pause(format!(
            "sample ratio mismatch (p = {p:.2e}): holding the rollout"
        ))
    } else {
        let mut pending = gates(spec, step, rollout, base, cand, shadow, &mut snapshot, now);
        let mut decided_better = false;
        let mut worse = None;
        if step.decide_by_test {
            let higher = spec
                .primary_metric
                .as_ref()
                .is_none_or(|p| p.higher_is_better);
            match seq {
                Some(s) if s.reject => {
                    let better = (s.effect > 0.0) == higher;
                    if better {
                        decided_better = true;
                    } else {
                        worse = Some(format!(
                            "primary metric significantly worse: effect {:.5}, CS ({:.5}, {:.5}), p = {:.2e}",
                            s.effect, s.ci.0, s.ci.1, s.p_value
                        ));
                    }
                }
                _ => pending.push("sequential test undecided".to_owned()),
            }
        }
        let since = rollout
            .state
            .step_started_at
            .map_or(0, |t| now.millis_since(t));
        let samples_ok =
            base.requests >= step.min_samples_per_arm && cand.requests >= step.min_samples_per_arm;
        if let Some(w) = worse.filter(|_| samples_ok || step.min_samples_per_arm == 0) {
            Verdict::Rollback(w)
        } else if pending.is_empty() {
            if rollout.state.step + 1 < spec.steps.len() {
                Verdict::Advance
            } else if spec.auto_promote {
                Verdict::Promote
            } else {
                Verdict::Hold(vec!["last step passed; awaiting promote".to_owned()])
            }
        } else if step.decide_by_test
            && !decided_better
            && step.max_duration_ms.is_some_and(|m| since >= m)
        {
            Verdict::Pause(
                "inconclusive: sequential test undecided at the step's maximum duration".to_owned(),
            )
        } else {
            Verdict::Hold(pending)
        }
    };

    let cmd = match &verdict {
        Verdict::Advance => Some((Command::Advance, "step gates passed".to_owned())),
        Verdict::Promote => Some((Command::Promote, "all steps passed".to_owned())),
        Verdict::Rollback(r) => Some((Command::Rollback, r.clone())),
        Verdict::Pause(r) => Some((Command::Pause, r.clone())),
        Verdict::Idle | Verdict::Hold(_) => None,
    };
    if let Some((cmd, reason)) = cmd {
        let t = rollout
            .command(cmd, Actor::Controller, reason, now, Some(snapshot.clone()))
            .map_err(|e| ExperimentError::config("state", e.to_string()))?;
        eval.transition = Some(t);
    }
    eval.verdict = verdict;
    eval.snapshot = snapshot;
    Ok(eval)
}

fn step_srm(
    spec: &RolloutSpec,
    metrics: &RolloutMetrics,
    started: Timestamp,
    share: f64,
) -> Option<SrmResult> {
    let count = |v: &str| -> u64 {
        metrics.arms.get(v).map_or(0, |arm| {
            // Only whole windows inside the step: round the start up to a window boundary.
            let w = arm.window_ms.max(1);
            arm.requests_since(Timestamp(started.0.div_ceil(w) * w))
        })
    };
    let (b, c) = (count(&spec.baseline), count(&spec.candidate));
    if b + c == 0 {
        return None;
    }
    srm_check(&[b, c], &[1.0 - share, share], &spec.srm).ok()
}

/// Evaluate many rollouts; returns one [`Evaluation`] per rollout, in order.
/// `inputs` pairs each rollout with its metrics and optional shadow stats.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_all<'a, I>(inputs: I, now: Timestamp) -> Result<Vec<Evaluation>, ExperimentError>
where
    I: IntoIterator<Item = (&'a Rollout, &'a RolloutMetrics, Option<&'a ShadowStats>)>,
{
    inputs
        .into_iter()
        .map(|(r, m, s)| evaluate(r, m, s, now))
        .collect()
}
