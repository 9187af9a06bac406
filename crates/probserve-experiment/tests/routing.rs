//! Routing: frozen hash vectors, precedence, reasons, stickiness, monotone ramping.

use std::collections::BTreeMap;

use probserve_experiment::routing::hash::{BPS_SPACE, bucket};
use probserve_experiment::routing::{
    ArmWeight, NoAttributes, Reason, RoutingSnapshot, SegmentRule, ShadowRoute, route,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// experiments.md H17, and independently recomputed with Python's hashlib:
/// `int.from_bytes(sha256(salt + b"\0" + key).digest()[:8], "big") * 10000 >> 64`.
#[test]
fn frozen_hash_vectors() {
    assert_eq!(bucket("exp-2024-01", "user-1", 10_000), 267);
    assert_eq!(bucket("exp-2024-01", "user-2", 10_000), 9733);
    assert_eq!(bucket("exp-2024-01", "user-3", 10_000), 6177);
    assert_eq!(bucket("canary-v2", "user-1", 10_000), 681);
}

/// The separator makes ("ab","c") and ("a","bc") different inputs.
#[test]
fn separator_disambiguates_salt_and_key() {
    assert_eq!(bucket("ab", "c", 10_000), 4219);
    assert_eq!(bucket("a", "bc", 10_000), 2528);
}

fn arms(b: u32, c: u32) -> Vec<ArmWeight> {
    vec![
        ArmWeight {
            version: "v1".into(),
            weight: b,
        },
        ArmWeight {
            version: "v2".into(),
            weight: c,
        },
    ]
}

fn rng() -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(7)
}

/// Full decisions for seed "canary-v2", exposure 50 %, split 1:1, mirror 50 % to v3.
/// Exposure/arm/shadow buckets (salts `canary-v2/exposure`, `/arm`, `/shadow`) were
/// computed with hashlib: user-1 2169/1/2143, user-2 8928/1/6810, user-3 4956/1/3600,
/// user-4 7741/1/6917, user-5 428/0/902, user-6 7751/0/8497.
#[test]
fn frozen_decision_vectors() {
    let shadow = Some(ShadowRoute {
        version: "v3".into(),
        mirror_bps: 5000,
    });
    let snap = RoutingSnapshot::new("r", "canary-v2", "v1", 5000, arms(1, 1), shadow).unwrap();
    let expect = [
        ("user-1", "v2", Reason::Split, true),
        ("user-2", "v1", Reason::Default, false),
        ("user-3", "v2", Reason::Split, true),
        ("user-4", "v1", Reason::Default, false),
        ("user-5", "v1", Reason::Split, true),
        ("user-6", "v1", Reason::Default, false),
    ];
    for (key, version, reason, mirrored) in expect {
        let d = route(&snap, Some(key), &NoAttributes, &mut rng());
        assert_eq!(d.version, version, "{key}");
        assert_eq!(d.reason, reason, "{key}");
        assert_eq!(d.shadow.is_some(), mirrored, "{key}");
        assert!(d.sticky);
    }
}

#[test]
fn precedence_kill_switch_override_segment_split() {
    let mut snap = RoutingSnapshot::new("r", "seed", "v1", 10_000, arms(0, 1), None).unwrap();
    snap.overrides.insert("alice".into(), "v1".into());
    snap.segment_rules.push(SegmentRule {
        name: "free-tier".into(),
        attribute: "plan".into(),
        values: vec!["free".into()],
        version: "v1".into(),
    });
    let free: &[(&str, &str)] = &[("plan", "free")];
    let premium: &[(&str, &str)] = &[("plan", "premium")];
    // Split: everyone exposed, all weight on v2.
    let d = route(&snap, Some("bob"), premium, &mut rng());
    assert_eq!(
        (d.version.as_str(), d.reason.clone()),
        ("v2", Reason::Split)
    );
    assert_eq!(d.reason.open_feature_code(), "SPLIT");
    // Segment beats split.
    let d = route(&snap, Some("bob"), free, &mut rng());
    assert_eq!(d.reason, Reason::Segment("free-tier".into()));
    assert_eq!(d.version, "v1");
    // Override beats segment.
    snap.overrides.insert("bob".into(), "v2".into());
    let d = route(&snap, Some("bob"), free, &mut rng());
    assert_eq!(
        (d.version.as_str(), d.reason.clone()),
        ("v2", Reason::Override)
    );
    assert_eq!(d.reason.open_feature_code(), "TARGETING_MATCH");
    // Kill switch beats everything, and is a decision.
    snap.kill_switch = true;
    let d = route(&snap, Some("bob"), free, &mut rng());
    assert_eq!(
        (d.version.as_str(), d.reason.clone()),
        ("v1", Reason::KillSwitch)
    );
    assert_eq!(d.reason.open_feature_code(), "DISABLED");
    assert!(d.shadow.is_none());
}

#[test]
fn anonymous_calls_are_random_but_seeded() {
    let snap = RoutingSnapshot::new("r", "seed", "v1", 10_000, arms(1, 1), None).unwrap();
    let mut r = rng();
    let mut counts = BTreeMap::new();
    for _ in 0..20_000 {
        let d = route(&snap, None, &NoAttributes, &mut r);
        assert!(!d.sticky);
        *counts.entry(d.version).or_insert(0u32) += 1;
    }
    // Binomial(20000, 0.5): sd 70.7; 5 sd = 354.
    let v2 = f64::from(counts["v2"]);
    assert!((v2 - 10_000.0).abs() < 354.0, "{counts:?}");
    // Same seed, same sequence.
    let a: Vec<_> = (0..50)
        .map(|_| route(&snap, None, &NoAttributes, &mut rng()).version)
        .collect();
    let b: Vec<_> = (0..50)
        .map(|_| route(&snap, None, &NoAttributes, &mut rng()).version)
        .collect();
    assert_eq!(a, b);
}

#[test]
fn split_proportions_match_weights() {
    let snap = RoutingSnapshot::new("r", "seed", "v1", 2_500, arms(0, 1), None).unwrap();
    let n = 40_000;
    let cand = (0..n)
        .filter(|i| route(&snap, Some(&format!("u{i}")), &NoAttributes, &mut rng()).version == "v2")
        .count();
    // Binomial(40000, 0.25): sd 86.6; 5 sd = 433.
    assert!((cand as f64 - 10_000.0).abs() < 433.0, "{cand}");
}

#[test]
fn invalid_snapshots_are_typed_errors() {
    assert!(RoutingSnapshot::new("r", "s", "v1", 10_001, arms(1, 1), None).is_err());
    assert!(RoutingSnapshot::new("r", "s", "v1", 100, arms(0, 0), None).is_err());
    let sh = Some(ShadowRoute {
        version: "v3".into(),
        mirror_bps: 20_000,
    });
    assert!(RoutingSnapshot::new("r", "s", "v1", 100, arms(1, 1), sh).is_err());
    let mut snap = RoutingSnapshot::new("r", "s", "v1", 100, arms(1, 1), None).unwrap();
    snap.hash_version = 2;
    assert!(snap.prepare().is_err());
}

#[test]
fn snapshot_survives_serde_roundtrip() {
    let snap = RoutingSnapshot::new("r", "canary-v2", "v1", 5000, arms(1, 1), None).unwrap();
    let json = serde_json::to_string(&snap).unwrap();
    let mut back: RoutingSnapshot = serde_json::from_str(&json).unwrap();
    back.prepare().unwrap();
    for i in 0..200 {
        let k = format!("k{i}");
        assert_eq!(
            route(&snap, Some(&k), &NoAttributes, &mut rng()),
            route(&back, Some(&k), &NoAttributes, &mut rng())
        );
    }
}

proptest! {
    /// Raising the candidate's exposure keeps everyone already on it, and never changes
    /// the arm of a key that stays exposed.
    #[test]
    fn ramping_is_monotone(key in "[a-zA-Z0-9_-]{1,24}", seed in "[a-z0-9-]{1,12}", lo in 0u32..=10_000, extra in 0u32..=10_000, wb in 0u32..5, wc in 1u32..5) {
        let hi = (lo + extra).min(BPS_SPACE as u32);
        let a = RoutingSnapshot::new("r", seed.clone(), "v1", lo, arms(wb, wc), None).unwrap();
        let b = RoutingSnapshot::new("r", seed, "v1", hi, arms(wb, wc), None).unwrap();
        let da = route(&a, Some(&key), &NoAttributes, &mut rng());
        let db = route(&b, Some(&key), &NoAttributes, &mut rng());
        if da.reason == Reason::Split {
            prop_assert_eq!(db.reason, Reason::Split);
            prop_assert_eq!(da.version, db.version);
        }
    }

    /// Sticky: the same key always gets the same decision.
    #[test]
    fn keyed_routing_is_deterministic(key in ".{0,32}", bps in 0u32..=10_000) {
        let s = RoutingSnapshot::new("r", "seed", "v1", bps, arms(1, 1), Some(ShadowRoute { version: "v3".into(), mirror_bps: 3000 })).unwrap();
        let d1 = route(&s, Some(&key), &NoAttributes, &mut Xoshiro256PlusPlus::seed_from_u64(1));
        let d2 = route(&s, Some(&key), &NoAttributes, &mut Xoshiro256PlusPlus::seed_from_u64(2));
        prop_assert_eq!(d1, d2);
    }
}
