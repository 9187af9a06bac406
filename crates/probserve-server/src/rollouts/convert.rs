//! Conversions between the proto's rollout messages and the experiment engine's
//! types, with the defaults the proto documents. Values outside the documented
//! ranges are refused naming the field, never coerced.

use probserve_experiment::controller::{Evaluation, Verdict};
use probserve_experiment::plan::{MAX_STEPS, PrimaryMetric, RolloutSpec, Strategy};
use probserve_experiment::rollout::{Phase, Rollout};
use probserve_experiment::shadow::{ShadowConfig, ShadowStats};
use probserve_experiment::{ExperimentError, Timestamp};
use probserve_proto::v1 as pb;

/// Default canary steps: 5 → 25 → 50 → 100 %, one minute each.
const DEFAULT_CANARY: &[(u32, u64)] = &[
    (500, 60_000),
    (2_500, 60_000),
    (5_000, 60_000),
    (10_000, 60_000),
];
/// Default calls per arm before a step may advance.
const DEFAULT_MIN_SAMPLES: u64 = 200;

/// Most calls per arm guardrails may wait for before they can act.
const MAX_GUARDRAIL_MIN_SAMPLES: u64 = 1_000_000;

/// Longest step duration accepted: one year.
const MAX_STEP_SECONDS: i64 = 365 * 24 * 3600;

/// A step's `min_duration` in milliseconds; unset is 0. Negative, over-long or
/// malformed durations are refused, naming the field.
fn duration_ms(d: Option<&prost_types::Duration>) -> Result<u64, ExperimentError> {
    let Some(d) = d else { return Ok(0) };
    let bad = |reason: String| ExperimentError::InvalidConfig {
        field: "steps.min_duration",
        reason,
    };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(bad(format!(
            "must not be negative, got {}s {}ns",
            d.seconds, d.nanos
        )));
    }
    if d.seconds > MAX_STEP_SECONDS {
        return Err(bad(format!(
            "{} s exceeds the limit of {MAX_STEP_SECONDS} s (a year)",
            d.seconds
        )));
    }
    if d.nanos > 999_999_999 {
        return Err(bad(format!("nanos must be below 10^9, got {}", d.nanos)));
    }
    // Both in range now: seconds ≤ 3.2e7, so the product cannot overflow.
    Ok(d.seconds.unsigned_abs() * 1000 + u64::from(d.nanos.unsigned_abs()) / 1_000_000)
}

/// A guardrail ratio: 0 (unset) keeps the default, anything else must be finite
/// and positive.
fn ratio(field: &'static str, v: f64, default: f64) -> Result<f64, ExperimentError> {
    if v == 0.0 {
        Ok(default)
    } else if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(ExperimentError::InvalidConfig {
            field,
            reason: format!("must be a finite positive ratio (or 0 for the default), got {v}"),
        })
    }
}

fn to_duration(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn to_timestamp(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(|t| prost_types::Timestamp {
        seconds: (t.0 / 1000) as i64,
        nanos: ((t.0 % 1000) * 1_000_000) as i32,
    })
}

/// Builds and validates the engine's plan from the proto's, applying defaults.
pub fn spec_from_proto(id: &str, p: &pb::RolloutSpec) -> Result<RolloutSpec, ExperimentError> {
    let (base, cand) = (p.baseline_version.as_str(), p.candidate_version.as_str());
    let min_samples = p
        .steps
        .first()
        .map(|s| s.min_samples_per_arm)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MIN_SAMPLES);
    if p.steps.len() > MAX_STEPS {
        return Err(ExperimentError::InvalidConfig {
            field: "steps",
            reason: format!("{} steps exceeds the limit of {MAX_STEPS}", p.steps.len()),
        });
    }
    let steps: Vec<(u32, u64)> = if p.steps.is_empty() {
        DEFAULT_CANARY.to_vec()
    } else {
        p.steps
            .iter()
            .map(|s| Ok((s.candidate_bps, duration_ms(s.min_duration.as_ref())?)))
            .collect::<Result<_, ExperimentError>>()?
    };
    let strategy =
        pb::RolloutStrategy::try_from(p.strategy).map_err(|_| ExperimentError::InvalidConfig {
            field: "strategy",
            reason: format!("unknown strategy {}", p.strategy),
        })?;
    let mut spec = match strategy {
        pb::RolloutStrategy::Shadow => {
            let mirror = p
                .steps
                .first()
                .map(|s| s.mirror_bps)
                .filter(|b| *b > 0)
                .unwrap_or(10_000);
            RolloutSpec::shadow(id, base, cand, mirror)?
        }
        pb::RolloutStrategy::Canary | pb::RolloutStrategy::Unspecified => {
            RolloutSpec::canary(id, base, cand, &steps, min_samples)?
        }
        pb::RolloutStrategy::Rolling => RolloutSpec::rolling(id, base, cand, &steps)?,
        pb::RolloutStrategy::AbTest => {
            // No steps: the default 50/50 split. A step sets it, and both arms
            // must get traffic.
            let cand_bps = match p.steps.first().map(|s| s.candidate_bps) {
                None => 5_000,
                Some(b) if (1..10_000).contains(&b) => b,
                Some(b) => {
                    return Err(ExperimentError::InvalidConfig {
                        field: "steps.candidate_bps",
                        reason: format!(
                            "an A/B test splits traffic between both arms: 1 to 9999 basis \
                             points, got {b} (omit the steps for 50/50)"
                        ),
                    });
                }
            };
            let name = if p.primary_metric.is_empty() {
                "conversion".to_owned()
            } else {
                p.primary_metric.clone()
            };
            RolloutSpec::ab_test(
                id,
                base,
                cand,
                (10_000 - cand_bps, cand_bps),
                PrimaryMetric {
                    name,
                    binary: true,
                    higher_is_better: true,
                },
                min_samples,
            )?
        }
        pb::RolloutStrategy::BlueGreen => RolloutSpec::blue_green(id, base, cand)?,
    };
    // Per-step gates the constructors do not take.
    if matches!(
        strategy,
        pb::RolloutStrategy::Canary
            | pb::RolloutStrategy::Rolling
            | pb::RolloutStrategy::Unspecified
    ) {
        for (st, ps) in spec.steps.iter_mut().zip(&p.steps) {
            st.manual_approval |= ps.manual_approval;
            if ps.min_samples_per_arm > 0 {
                st.min_samples_per_arm = ps.min_samples_per_arm;
            }
            if ps.mirror_bps > 0 {
                st.mirror_bps = ps.mirror_bps;
            }
        }
    }
    if let Some(g) = &p.guardrails {
        let cfg = &mut spec.guardrails;
        cfg.max_error_rate_ratio = ratio(
            "guardrails.max_error_rate_ratio",
            g.max_error_rate_ratio,
            cfg.max_error_rate_ratio,
        )?;
        cfg.max_timeout_rate_ratio = ratio(
            "guardrails.max_timeout_rate_ratio",
            g.max_timeout_rate_ratio,
            cfg.max_timeout_rate_ratio,
        )?;
        cfg.max_p95_ratio = ratio(
            "guardrails.max_p95_latency_ratio",
            g.max_p95_latency_ratio,
            cfg.max_p95_ratio,
        )?;
        if g.min_samples_per_arm > MAX_GUARDRAIL_MIN_SAMPLES {
            return Err(ExperimentError::InvalidConfig {
                field: "guardrails.min_samples_per_arm",
                reason: format!(
                    "{} exceeds the limit of {MAX_GUARDRAIL_MIN_SAMPLES} (guardrails would \
                     never act)",
                    g.min_samples_per_arm
                ),
            });
        }
        if g.min_samples_per_arm > 0 {
            spec.guardrails.min_samples_per_arm = g.min_samples_per_arm;
        }
    }
    if let Some(c) = &p.shadow_criteria {
        shadow_criteria(&mut spec.shadow, c)?;
    }
    spec.auto_promote = p.auto_promote;
    spec.validate()?;
    Ok(spec)
}

fn strategy(s: Strategy) -> pb::RolloutStrategy {
    match s {
        Strategy::Shadow => pb::RolloutStrategy::Shadow,
        Strategy::Canary => pb::RolloutStrategy::Canary,
        Strategy::AbTest => pb::RolloutStrategy::AbTest,
        Strategy::BlueGreen => pb::RolloutStrategy::BlueGreen,
        Strategy::Rolling => pb::RolloutStrategy::Rolling,
    }
}

/// The proto phase.
pub fn phase(p: Phase) -> pb::RolloutPhase {
    match p {
        Phase::Pending => pb::RolloutPhase::Pending,
        Phase::Running => pb::RolloutPhase::Running,
        Phase::Paused => pb::RolloutPhase::Paused,
        Phase::Promoted => pb::RolloutPhase::Promoted,
        Phase::RolledBack => pb::RolloutPhase::RolledBack,
        Phase::Aborted => pb::RolloutPhase::Aborted,
    }
}

/// Applies the set (non-zero) criteria, checking each.
fn shadow_criteria(cfg: &mut ShadowConfig, c: &pb::ShadowCriteria) -> Result<(), ExperimentError> {
    let bad =
        |field: &'static str, reason: String| ExperimentError::InvalidConfig { field, reason };
    let positive = |field: &'static str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(bad(field, format!("must be a positive number, got {v}")))
        }
    };
    if c.agreement_k != 0.0 {
        cfg.k = positive("shadow_criteria.agreement_k", c.agreement_k)?;
    }
    if c.min_agreement != 0.0 {
        let v = c.min_agreement;
        if !(v > 0.0 && v < 1.0) {
            return Err(bad(
                "shadow_criteria.min_agreement",
                format!("must be in (0, 1), got {v}"),
            ));
        }
        cfg.min_agreement = v;
    }
    if c.min_compared != 0 {
        cfg.min_samples = c.min_compared;
    }
    if c.max_p95_latency_ratio != 0.0 {
        cfg.max_p95_ratio = positive(
            "shadow_criteria.max_p95_latency_ratio",
            c.max_p95_latency_ratio,
        )?;
    }
    if c.max_error_rate_ratio != 0.0 {
        cfg.max_error_ratio = positive(
            "shadow_criteria.max_error_rate_ratio",
            c.max_error_rate_ratio,
        )?;
    }
    Ok(())
}

fn bps(share: f64) -> u32 {
    (share * 10_000.0).round().clamp(0.0, 10_000.0) as u32
}

/// The proto view of a rollout.
pub fn rollout_to_proto(model: &str, r: &Rollout) -> pb::Rollout {
    let spec = &r.spec;
    let st = &r.state;
    let candidate_bps = match st.phase {
        Phase::Running | Phase::Paused if !st.kill_switch => spec
            .steps
            .get(st.step)
            .map_or(0, |s| bps(spec.candidate_share(s))),
        Phase::Promoted => 10_000,
        _ => 0,
    };
    pb::Rollout {
        id: spec.id.clone(),
        spec: Some(pb::RolloutSpec {
            model: model.to_owned(),
            baseline_version: spec.baseline.clone(),
            candidate_version: spec.candidate.clone(),
            strategy: strategy(spec.strategy) as i32,
            steps: spec
                .steps
                .iter()
                .map(|s| pb::RolloutStep {
                    candidate_bps: bps(spec.candidate_share(s)),
                    mirror_bps: s.mirror_bps,
                    min_duration: Some(to_duration(s.min_duration_ms)),
                    min_samples_per_arm: s.min_samples_per_arm,
                    manual_approval: s.manual_approval,
                })
                .collect(),
            guardrails: Some(pb::Guardrails {
                max_error_rate_ratio: spec.guardrails.max_error_rate_ratio,
                max_timeout_rate_ratio: spec.guardrails.max_timeout_rate_ratio,
                max_p95_latency_ratio: spec.guardrails.max_p95_ratio,
                min_samples_per_arm: spec.guardrails.min_samples_per_arm,
            }),
            primary_metric: spec
                .primary_metric
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default(),
            auto_promote: spec.auto_promote,
            shadow_criteria: Some(pb::ShadowCriteria {
                agreement_k: spec.shadow.k,
                min_agreement: spec.shadow.min_agreement,
                min_compared: spec.shadow.min_samples,
                max_p95_latency_ratio: spec.shadow.max_p95_ratio,
                max_error_rate_ratio: spec.shadow.max_error_ratio,
            }),
        }),
        status: Some(pb::RolloutStatus {
            phase: phase(st.phase) as i32,
            step: u32::try_from(st.step).unwrap_or(u32::MAX),
            candidate_bps,
            kill_switch: st.kill_switch,
            overrides: st.overrides.clone().into_iter().collect(),
            reason: st.hold_reason.clone().unwrap_or_default(),
            revision: st.revision,
            started_at: to_timestamp(st.started_at),
            step_started_at: to_timestamp(st.step_started_at),
        }),
    }
}

/// The proto analysis from a controller evaluation (not applied).
pub fn analysis_to_proto(r: &Rollout, e: &Evaluation) -> pb::GetAnalysisResponse {
    let snap = &e.snapshot;
    let arms = snap
        .arms
        .iter()
        .map(|(version, a)| pb::ArmMetrics {
            version: version.clone(),
            calls: a.requests,
            error_rate: if a.requests == 0 {
                0.0
            } else {
                a.errors as f64 / a.requests as f64
            },
            timeout_rate: if a.requests == 0 {
                0.0
            } else {
                a.timeouts as f64 / a.requests as f64
            },
            p95_latency_ms: a.p95_ms.unwrap_or(0.0),
            primary_mean: 0.0,
        })
        .collect();
    let guardrails = snap
        .guardrails
        .as_ref()
        .map(|g| {
            g.checks
                .iter()
                .map(|c| pb::GuardrailCheck {
                    metric: format!("{:?}", c.metric),
                    baseline: c.baseline,
                    candidate: c.candidate,
                    limit: c.limit,
                    status: format!("{:?}", c.status).to_lowercase(),
                })
                .collect()
        })
        .unwrap_or_default();
    let (verdict, explanation) = match &e.verdict {
        Verdict::Idle => (
            "idle",
            format!("phase {:?}: nothing to evaluate", r.state.phase),
        ),
        Verdict::Hold(why) => ("continue", why.join("; ")),
        Verdict::Advance => ("advance", "every gate of the step is met".to_owned()),
        Verdict::Promote => ("promote", "the plan is complete".to_owned()),
        Verdict::Rollback(why) => ("rollback", why.clone()),
        Verdict::Pause(why) => ("hold", why.clone()),
    };
    let seq = snap.sequential.as_ref();
    pb::GetAnalysisResponse {
        arms,
        guardrails,
        sequential_p_value: seq.map_or(1.0, |s| s.p_value),
        effect_low: seq.map_or(f64::NEG_INFINITY, |s| s.ci.0),
        effect_high: seq.map_or(f64::INFINITY, |s| s.ci.1),
        srm_p_value: snap.srm.as_ref().map_or(1.0, |s| s.p_value),
        verdict: verdict.to_owned(),
        explanation,
        shadow: None,
    }
}

/// The shadow comparison of a rollout, once a call was mirrored.
pub fn shadow_to_proto(r: &Rollout, s: &ShadowStats) -> Option<pb::ShadowComparison> {
    if s.shadow_calls == 0 {
        return None;
    }
    let rep = s.report(&r.spec.shadow);
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    let (low, high) = rep.agreement_ci.unwrap_or((0.0, 1.0));
    Some(pb::ShadowComparison {
        compared: rep.compared,
        agreement_rate: finite(rep.agreement_rate),
        agreement_low: low,
        agreement_high: high,
        p95_latency_ratio: finite(rep.p95_ratio),
        error_rate_ratio: finite(rep.error_ratio),
        mirrored_calls: s.shadow_calls,
        mirror_errors: s.shadow_errors,
        promotable: rep.promotable,
        blockers: rep.blockers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ab(steps: Vec<pb::RolloutStep>) -> pb::RolloutSpec {
        pb::RolloutSpec {
            model: "m".into(),
            baseline_version: "1.0.0".into(),
            candidate_version: "2.0.0".into(),
            strategy: pb::RolloutStrategy::AbTest as i32,
            steps,
            ..Default::default()
        }
    }

    fn field(r: Result<RolloutSpec, ExperimentError>) -> &'static str {
        match r {
            Err(ExperimentError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn an_ab_split_outside_1_to_9999_is_refused_not_coerced() {
        for bps in [0, 10_000, 20_000] {
            let step = pb::RolloutStep {
                candidate_bps: bps,
                ..Default::default()
            };
            assert_eq!(
                field(spec_from_proto("r", &ab(vec![step]))),
                "steps.candidate_bps",
                "{bps}"
            );
        }
        let step = pb::RolloutStep {
            candidate_bps: 2_000,
            ..Default::default()
        };
        let spec = spec_from_proto("r", &ab(vec![step])).expect("20/80");
        assert!((spec.candidate_share(&spec.steps[0]) - 0.2).abs() < 1e-9);
        let spec = spec_from_proto("r", &ab(Vec::new())).expect("default");
        assert!((spec.candidate_share(&spec.steps[0]) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn guardrail_min_samples_is_bounded() {
        let mut p = ab(Vec::new());
        p.guardrails = Some(pb::Guardrails {
            min_samples_per_arm: u64::MAX,
            ..Default::default()
        });
        assert_eq!(
            field(spec_from_proto("r", &p)),
            "guardrails.min_samples_per_arm"
        );
        p.guardrails = Some(pb::Guardrails {
            min_samples_per_arm: MAX_GUARDRAIL_MIN_SAMPLES,
            ..Default::default()
        });
        let spec = spec_from_proto("r", &p).expect("at the limit");
        assert_eq!(
            spec.guardrails.min_samples_per_arm,
            MAX_GUARDRAIL_MIN_SAMPLES
        );
    }
}
