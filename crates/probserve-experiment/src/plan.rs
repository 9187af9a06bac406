//! Rollout plans: one abstraction for shadow, canary, A/B, blue-green and rolling
//! deployments. A plan is a list of [`Step`]s; each step sets the routing (exposure,
//! split among exposed keys, mirror share) and the gates to leave it (minimum duration,
//! minimum samples per arm, metric thresholds, manual approval, a sequential decision).
//! Builders make the standard shapes; everything serializes for the store.

use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;
use crate::guardrails::GuardrailConfig;
use crate::routing::ArmWeight;
use crate::routing::hash::{BPS_SPACE, HASH_VERSION};
use crate::shadow::ShadowConfig;
use crate::stats::sequential::SequentialConfig;
use crate::stats::srm::SrmConfig;

/// Most steps a plan may have.
pub const MAX_STEPS: usize = 100;
/// The shape of a plan (a label; the steps carry the behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// 0 % served, a share mirrored to the candidate.
    Shadow,
    /// Candidate exposure stepped up (e.g. 5 → 25 → 50 → 100 %).
    Canary,
    /// Fixed split until the sequential test decides.
    AbTest,
    /// Preview, then an instant switch; the old version stays warm for instant rollback.
    BlueGreen,
    /// Weights stepped over time with no statistical gate.
    Rolling,
}

/// A metric a step threshold can look at (candidate's cumulative value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ThresholdMetric {
    /// Error rate.
    ErrorRate,
    /// Timeout rate.
    TimeoutRate,
    /// p95 latency in ms.
    P95LatencyMs,
    /// Mean of a named outcome metric (rate for binary metrics).
    OutcomeMean(String),
    /// Shadow agreement rate.
    ShadowAgreement,
}

/// A bound on a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricThreshold {
    /// Which metric.
    pub metric: ThresholdMetric,
    /// Lowest acceptable value.
    pub min: Option<f64>,
    /// Highest acceptable value.
    pub max: Option<f64>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Name for reports.
    pub name: String,
    /// Share of keys exposed to the split, in bps.
    pub exposure_bps: u32,
    /// Split among exposed keys.
    pub arms: Vec<ArmWeight>,
    /// Share of calls mirrored to the candidate, in bps.
    pub mirror_bps: u32,
    /// Minimum time in the step, ms.
    pub min_duration_ms: u64,
    /// Time after which an undecided step pauses for a human (A/B), ms.
    pub max_duration_ms: Option<u64>,
    /// Minimum calls per arm (baseline and candidate) before leaving the step.
    pub min_samples_per_arm: u64,
    /// Extra metric bounds on the candidate.
    pub thresholds: Vec<MetricThreshold>,
    /// A human must approve before the step is left.
    pub manual_approval: bool,
    /// Leave only when the sequential test on the primary metric decides.
    pub decide_by_test: bool,
    /// Shadow promotion criteria must hold before the step is left.
    pub require_shadow_criteria: bool,
}

impl Step {
    fn base(name: &str, exposure_bps: u32, arms: Vec<ArmWeight>) -> Self {
        Self {
            name: name.to_owned(),
            exposure_bps,
            arms,
            mirror_bps: 0,
            min_duration_ms: 0,
            max_duration_ms: None,
            min_samples_per_arm: 0,
            thresholds: Vec::new(),
            manual_approval: false,
            decide_by_test: false,
            require_shadow_criteria: false,
        }
    }
}

/// Primary (goal) metric for A/B decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrimaryMetric {
    /// Outcome metric name as recorded.
    pub name: String,
    /// Binary (rate) or continuous (mean).
    pub binary: bool,
    /// Whether larger values are better.
    pub higher_is_better: bool,
}

/// A complete rollout specification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutSpec {
    /// Rollout id.
    pub id: String,
    /// Current (stable) version.
    pub baseline: String,
    /// New version.
    pub candidate: String,
    /// Shape label.
    pub strategy: Strategy,
    /// Hash seed (defaults to the id).
    pub seed: String,
    /// Hash version.
    pub hash_version: u32,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Guardrails vs baseline.
    pub guardrails: GuardrailConfig,
    /// SRM check.
    pub srm: SrmConfig,
    /// Sequential test for the primary metric.
    pub sequential: SequentialConfig,
    /// Primary metric for A/B decisions.
    pub primary_metric: Option<PrimaryMetric>,
    /// Shadow criteria.
    pub shadow: ShadowConfig,
    /// Keep the baseline loaded after promotion, so a promoted rollout can still be
    /// rolled back instantly (blue-green).
    pub keep_baseline_warm: bool,
    /// Promote automatically when the last step's gates pass.
    pub auto_promote: bool,
}

fn candidate_only(c: &str) -> Vec<ArmWeight> {
    vec![ArmWeight {
        version: c.to_owned(),
        weight: 1,
    }]
}

impl RolloutSpec {
    fn empty(id: &str, baseline: &str, candidate: &str, strategy: Strategy) -> Self {
        Self {
            id: id.to_owned(),
            baseline: baseline.to_owned(),
            candidate: candidate.to_owned(),
            strategy,
            seed: id.to_owned(),
            hash_version: HASH_VERSION,
            steps: Vec::new(),
            guardrails: GuardrailConfig::default(),
            srm: SrmConfig::default(),
            sequential: SequentialConfig::default(),
            primary_metric: None,
            shadow: ShadowConfig::default(),
            keep_baseline_warm: false,
            auto_promote: true,
        }
    }

    /// Canary: one step per `(exposure_bps, min_duration_ms)`, each needing
    /// `min_samples_per_arm` calls per arm. Guardrails apply throughout.
    ///
    /// # Errors
    /// As [`RolloutSpec::validate`].
    pub fn canary(
        id: &str,
        baseline: &str,
        candidate: &str,
        steps: &[(u32, u64)],
        min_samples_per_arm: u64,
    ) -> Result<Self, ExperimentError> {
        let mut s = Self::empty(id, baseline, candidate, Strategy::Canary);
        for (i, &(bps, dur)) in steps.iter().enumerate() {
            let mut st = Step::base(&format!("canary-{}", i + 1), bps, candidate_only(candidate));
            st.min_duration_ms = dur;
            st.min_samples_per_arm = min_samples_per_arm;
            s.steps.push(st);
        }
        s.validate()?;
        Ok(s)
    }

    /// Rolling: exposure stepped over time, gated by time only (guardrails still apply).
    ///
    /// # Errors
    /// As [`RolloutSpec::validate`].
    pub fn rolling(
        id: &str,
        baseline: &str,
        candidate: &str,
        steps: &[(u32, u64)],
    ) -> Result<Self, ExperimentError> {
        let mut s = Self::canary(id, baseline, candidate, steps, 0)?;
        s.strategy = Strategy::Rolling;
        for (i, st) in s.steps.iter_mut().enumerate() {
            st.name = format!("rolling-{}", i + 1);
        }
        Ok(s)
    }

    /// A/B: a fixed split (`baseline_weight : candidate_weight`) of all traffic until the
    /// sequential test on `primary` decides (promote if better, roll back if worse).
    ///
    /// # Errors
    /// As [`RolloutSpec::validate`].
    pub fn ab_test(
        id: &str,
        baseline: &str,
        candidate: &str,
        weights: (u32, u32),
        primary: PrimaryMetric,
        min_samples_per_arm: u64,
    ) -> Result<Self, ExperimentError> {
        let mut s = Self::empty(id, baseline, candidate, Strategy::AbTest);
        let arms = vec![
            ArmWeight {
                version: baseline.to_owned(),
                weight: weights.0,
            },
            ArmWeight {
                version: candidate.to_owned(),
                weight: weights.1,
            },
        ];
        let mut st = Step::base("ab", BPS_SPACE as u32, arms);
        st.decide_by_test = true;
        st.min_samples_per_arm = min_samples_per_arm;
        s.steps.push(st);
        s.primary_metric = Some(primary);
        s.validate()?;
        Ok(s)
    }

    /// Shadow: nothing served by the candidate, `mirror_bps` of calls mirrored to it;
    /// the step passes on the shadow criteria (promotion means "the shadow is good").
    ///
    /// # Errors
    /// As [`RolloutSpec::validate`].
    pub fn shadow(
        id: &str,
        baseline: &str,
        candidate: &str,
        mirror_bps: u32,
    ) -> Result<Self, ExperimentError> {
        let mut s = Self::empty(id, baseline, candidate, Strategy::Shadow);
        let mut st = Step::base("shadow", 0, Vec::new());
        st.mirror_bps = mirror_bps;
        st.require_shadow_criteria = true;
        s.steps.push(st);
        s.validate()?;
        Ok(s)
    }

    /// Blue-green: a preview step (0 % served, manual approval), then an instant switch
    /// to 100 %; the baseline is kept warm so even a promoted rollout can roll back.
    ///
    /// # Errors
    /// As [`RolloutSpec::validate`].
    pub fn blue_green(id: &str, baseline: &str, candidate: &str) -> Result<Self, ExperimentError> {
        let mut s = Self::empty(id, baseline, candidate, Strategy::BlueGreen);
        let mut preview = Step::base("preview", 0, Vec::new());
        preview.manual_approval = true;
        s.steps.push(preview);
        s.steps.push(Step::base(
            "switch",
            BPS_SPACE as u32,
            candidate_only(candidate),
        ));
        s.keep_baseline_warm = true;
        s.validate()?;
        Ok(s)
    }

    /// Check the spec.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        if self.id.is_empty() {
            return Err(ExperimentError::config("id", "must not be empty"));
        }
        if self.baseline.is_empty() || self.candidate.is_empty() || self.baseline == self.candidate
        {
            return Err(ExperimentError::config(
                "candidate",
                "baseline and candidate must be distinct, non-empty",
            ));
        }
        if self.hash_version != HASH_VERSION {
            return Err(ExperimentError::config(
                "hash_version",
                format!("unknown hash version {}", self.hash_version),
            ));
        }
        if self.steps.is_empty() {
            return Err(ExperimentError::config(
                "steps",
                "a plan needs at least one step",
            ));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(ExperimentError::config(
                "steps",
                format!(
                    "{} steps exceeds the limit of {MAX_STEPS}",
                    self.steps.len()
                ),
            ));
        }
        let g = &self.guardrails;
        for (field, v) in [
            ("guardrails.max_error_rate_ratio", g.max_error_rate_ratio),
            (
                "guardrails.max_timeout_rate_ratio",
                g.max_timeout_rate_ratio,
            ),
            ("guardrails.max_p95_latency_ratio", g.max_p95_ratio),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ExperimentError::config(
                    field,
                    format!("must be a finite positive ratio, got {v}"),
                ));
            }
        }
        self.sequential.validate()?;
        self.guardrails.sequential.validate()?;
        for st in &self.steps {
            if u64::from(st.exposure_bps) > BPS_SPACE || u64::from(st.mirror_bps) > BPS_SPACE {
                return Err(ExperimentError::config(
                    "steps.exposure_bps",
                    "must be at most 10000",
                ));
            }
            if st.exposure_bps > 0 && st.arms.iter().map(|a| u64::from(a.weight)).sum::<u64>() == 0
            {
                return Err(ExperimentError::config(
                    "steps.arms",
                    "exposed step needs positive weights",
                ));
            }
            if let Some(a) = st
                .arms
                .iter()
                .find(|a| a.version != self.baseline && a.version != self.candidate)
            {
                return Err(ExperimentError::config(
                    "steps.arms",
                    format!("unknown version `{}`", a.version),
                ));
            }
            if st.decide_by_test && self.primary_metric.is_none() {
                return Err(ExperimentError::config(
                    "primary_metric",
                    "a step decided by test needs a primary metric",
                ));
            }
        }
        Ok(())
    }

    /// Expected share of calls served by the candidate in `step` (ignoring overrides and
    /// segment rules), used by the SRM check.
    pub fn candidate_share(&self, step: &Step) -> f64 {
        let total: u64 = step.arms.iter().map(|a| u64::from(a.weight)).sum();
        if total == 0 {
            return 0.0;
        }
        let cand: u64 = step
            .arms
            .iter()
            .filter(|a| a.version == self.candidate)
            .map(|a| u64::from(a.weight))
            .sum();
        f64::from(step.exposure_bps) / BPS_SPACE as f64 * cand as f64 / total as f64
    }
}
