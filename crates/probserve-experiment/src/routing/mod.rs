//! Per-request routing: which version serves a call, why, and whether it is mirrored.
//!
//! Precedence: kill switch > per-key override > segment rule (in order) > percentage
//! split > default. Every [`Decision`] carries a [`Reason`] in the style of OpenFeature
//! (`DISABLED`, `TARGETING_MATCH`, `SPLIT`, `DEFAULT`); a kill switch is a decision, not
//! an error. Keyed calls are sticky (hash of the routing key, [`hash`]); anonymous calls
//! draw from the caller's RNG.
//!
//! Exposure is monotone: a key is exposed when its exposure bucket is below
//! `exposure_bps`, so raising the exposure keeps everyone who was already exposed, and
//! the arm among exposed keys comes from an independent salt, so it never changes.

// `!(x > 0.0)` is deliberate throughout: it rejects NaN as well as non-positive values.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod hash;

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;
use hash::{BPS_SPACE, Salts};

/// An arm of the split among exposed keys, with an integer weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmWeight {
    /// Model version served by this arm.
    pub version: String,
    /// Integer weight (weights are never normalised from floats).
    pub weight: u32,
}

/// A targeting rule: when attribute `attribute` equals one of `values`, serve `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRule {
    /// Rule name, reported in the decision.
    pub name: String,
    /// Attribute to match.
    pub attribute: String,
    /// Values that match.
    pub values: Vec<String>,
    /// Version served on a match.
    pub version: String,
}

/// Mirroring of a share of calls to a shadow version (its output is never returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowRoute {
    /// Version that receives the mirrored call.
    pub version: String,
    /// Share of calls mirrored, in basis points (10 000 = every call).
    pub mirror_bps: u32,
}

/// Everything the router needs for one rollout, precomputed from spec and state.
/// Cheap to clone and share; build it with [`RoutingSnapshot::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingSnapshot {
    /// Rollout id.
    pub rollout_id: String,
    /// Hash version (see [`hash::HASH_VERSION`]).
    pub hash_version: u32,
    /// Seed from which the salts are derived.
    pub seed: String,
    /// The stable version: served when killed, unexposed, or by default.
    pub stable: String,
    /// Share of keys exposed to the split, in basis points.
    pub exposure_bps: u32,
    /// Split among exposed keys.
    pub arms: Vec<ArmWeight>,
    /// Kill switch: when on, every call gets `stable` with reason `Disabled`.
    pub kill_switch: bool,
    /// Per-key overrides: routing key → version.
    pub overrides: BTreeMap<String, String>,
    /// Segment rules, first match wins.
    pub segment_rules: Vec<SegmentRule>,
    /// Optional shadow mirroring.
    pub shadow: Option<ShadowRoute>,
    #[serde(skip)]
    salts: Option<Salts>,
    #[serde(skip)]
    total_weight: u64,
}

impl RoutingSnapshot {
    /// Build and validate a snapshot.
    ///
    /// # Errors
    /// [`ExperimentError::InvalidConfig`] for an unknown hash version, exposure or mirror
    /// share above 10 000 bps, or an exposed split whose weights sum to 0.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rollout_id: impl Into<String>,
        seed: impl Into<String>,
        stable: impl Into<String>,
        exposure_bps: u32,
        arms: Vec<ArmWeight>,
        shadow: Option<ShadowRoute>,
    ) -> Result<Self, ExperimentError> {
        let mut s = Self {
            rollout_id: rollout_id.into(),
            hash_version: hash::HASH_VERSION,
            seed: seed.into(),
            stable: stable.into(),
            exposure_bps,
            arms,
            kill_switch: false,
            overrides: BTreeMap::new(),
            segment_rules: Vec::new(),
            shadow,
            salts: None,
            total_weight: 0,
        };
        s.prepare()?;
        Ok(s)
    }

    /// Validate and precompute salts; call after deserializing.
    ///
    /// # Errors
    /// As [`RoutingSnapshot::new`].
    pub fn prepare(&mut self) -> Result<(), ExperimentError> {
        if self.hash_version != hash::HASH_VERSION {
            return Err(ExperimentError::config(
                "hash_version",
                format!("unknown hash version {}", self.hash_version),
            ));
        }
        if u64::from(self.exposure_bps) > BPS_SPACE {
            return Err(ExperimentError::config(
                "exposure_bps",
                "must be at most 10000",
            ));
        }
        if self
            .shadow
            .as_ref()
            .is_some_and(|sh| u64::from(sh.mirror_bps) > BPS_SPACE)
        {
            return Err(ExperimentError::config(
                "mirror_bps",
                "must be at most 10000",
            ));
        }
        let total: u64 = self.arms.iter().map(|a| u64::from(a.weight)).sum();
        if self.exposure_bps > 0 && total == 0 {
            return Err(ExperimentError::config(
                "arms",
                "exposed split needs a positive total weight",
            ));
        }
        self.total_weight = total;
        self.salts = Some(Salts::new(&self.seed));
        Ok(())
    }
}

/// Why a version was chosen (OpenFeature-style reasons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Kill switch on: the stable version serves (`DISABLED`).
    KillSwitch,
    /// A per-key override matched (`TARGETING_MATCH`).
    Override,
    /// A segment rule matched (`TARGETING_MATCH`), with the rule's name.
    Segment(String),
    /// The percentage split chose the arm (`SPLIT`).
    Split,
    /// Not exposed to the split: the stable version serves (`DEFAULT`).
    Default,
}

impl Reason {
    /// The OpenFeature reason code.
    pub fn open_feature_code(&self) -> &'static str {
        match self {
            Reason::KillSwitch => "DISABLED",
            Reason::Override | Reason::Segment(_) => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
        }
    }
}

/// The router's answer for one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Version that serves the call.
    pub version: String,
    /// Why.
    pub reason: Reason,
    /// Version to mirror the call to, if any (never the serving version).
    pub shadow: Option<String>,
    /// False when the call had no routing key and the choice was random.
    pub sticky: bool,
}

/// Request attributes used by segment rules.
pub trait Attributes {
    /// The value of attribute `name`, if present.
    fn get_attr(&self, name: &str) -> Option<&str>;
}

impl Attributes for HashMap<String, String> {
    fn get_attr(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Attributes for BTreeMap<String, String> {
    fn get_attr(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Attributes for [(&str, &str)] {
    fn get_attr(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

/// No attributes.
pub struct NoAttributes;

impl Attributes for NoAttributes {
    fn get_attr(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Route one call.
///
/// `routing_key` is the sticky unit (user id); `None` means anonymous (random draw from
/// `rng`). Never fails: a kill switch is a decision with reason [`Reason::KillSwitch`].
pub fn route<A, R>(
    snapshot: &RoutingSnapshot,
    routing_key: Option<&str>,
    attributes: &A,
    rng: &mut R,
) -> Decision
where
    A: Attributes + ?Sized,
    R: Rng + ?Sized,
{
    if snapshot.kill_switch {
        return Decision {
            version: snapshot.stable.clone(),
            reason: Reason::KillSwitch,
            shadow: None,
            sticky: routing_key.is_some(),
        };
    }
    let owned_salts;
    let salts = match &snapshot.salts {
        Some(s) => s,
        None => {
            owned_salts = Salts::new(&snapshot.seed);
            &owned_salts
        }
    };
    let total = if snapshot.salts.is_some() {
        snapshot.total_weight
    } else {
        snapshot.arms.iter().map(|a| u64::from(a.weight)).sum()
    };

    let (version, reason) = 'pick: {
        if let Some(v) = routing_key.and_then(|key| snapshot.overrides.get(key)) {
            break 'pick (v.clone(), Reason::Override);
        }
        for rule in &snapshot.segment_rules {
            let matched = attributes
                .get_attr(&rule.attribute)
                .is_some_and(|val| rule.values.iter().any(|v| v == val));
            if matched {
                break 'pick (rule.version.clone(), Reason::Segment(rule.name.clone()));
            }
        }
        let exposure = match routing_key {
            Some(key) => hash::bucket(&salts.exposure, key, BPS_SPACE),
            None => hash::scale(rng.random::<u64>(), BPS_SPACE),
        };
        if exposure >= u64::from(snapshot.exposure_bps) || total == 0 {
            break 'pick (snapshot.stable.clone(), Reason::Default);
        }
        let point = match routing_key {
            Some(key) => hash::bucket(&salts.arm, key, total),
            None => hash::scale(rng.random::<u64>(), total),
        };
        let mut cumulative = 0u64;
        for arm in &snapshot.arms {
            cumulative += u64::from(arm.weight);
            if point < cumulative {
                break 'pick (arm.version.clone(), Reason::Split);
            }
        }
        (snapshot.stable.clone(), Reason::Default)
    };

    let shadow = snapshot.shadow.as_ref().and_then(|sh| {
        if sh.version == version || sh.mirror_bps == 0 {
            return None;
        }
        let b = match routing_key {
            Some(key) => hash::bucket(&salts.shadow, key, BPS_SPACE),
            None => hash::scale(rng.random::<u64>(), BPS_SPACE),
        };
        (b < u64::from(sh.mirror_bps)).then(|| sh.version.clone())
    });
    Decision {
        version,
        reason,
        shadow,
        sticky: routing_key.is_some(),
    }
}
