//! Segment analysis (Simpson's paradox), shadow comparison, drift, and metric
//! aggregates (merge, windows, serde).

use std::collections::BTreeMap;

use probserve_experiment::clock::Timestamp;
use probserve_experiment::drift::{DriftConfig, DriftDetector, KsMethod, PsiBand, ks_2samp};
use probserve_experiment::metrics::{Observation, Proportion, RolloutMetrics};
use probserve_experiment::shadow::{
    PosteriorSummary, ShadowConfig, ShadowStats, SideResult, compare_call,
};
use probserve_experiment::stats::segments::{SegmentInput, analyze};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Premium/free: the candidate's arm mix is skewed toward premium users (who convert
/// more), so the aggregate says "candidate wins by 17 points" while it loses 3 points
/// among premium users. (experiments.md §3.11 gives the rule but no numbers; these are
/// constructed to have a reversal in one segment.)
#[test]
fn simpsons_paradox_is_reported_per_segment() {
    let segments = vec![
        SegmentInput {
            name: "premium".into(),
            control: Proportion::new(60, 200),
            treatment: Proportion::new(486, 1800),
        },
        SegmentInput {
            name: "free".into(),
            control: Proportion::new(90, 1800),
            treatment: Proportion::new(12, 200),
        },
    ];
    let r = analyze(&segments, 0.05).unwrap();
    // Aggregate: control 150/2000 = 7.5 %, treatment 498/2000 = 24.9 %.
    assert!((r.aggregate_diff - 0.174).abs() < 1e-12);
    assert!((r.segments[0].diff - (-0.03)).abs() < 1e-12);
    assert!((r.segments[1].diff - 0.01).abs() < 1e-12);
    assert_eq!(r.reversed_segments, vec!["premium".to_string()]);
    assert!(r.segments[0].reverses_aggregate && !r.segments[1].reverses_aggregate);
    // Stratified (population-weighted) effect: (−0.03 + 0.01)/2 = −0.01 — opposite sign.
    assert!((r.stratified_diff - (-0.01)).abs() < 1e-12);
    assert!(r.simpson);
    // Holm over two segments: adjusted = min(1, max running of p·(m − rank)).
    let p: Vec<f64> = r.segments.iter().map(|s| s.p_value).collect();
    let lo = p[0].min(p[1]);
    assert!((r.segments.iter().map(|s| s.p_adjusted).fold(1.0, f64::min) - 2.0 * lo).abs() < 1e-12);
}

#[test]
fn shadow_call_comparison_and_aggregate() {
    let draws_a: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
    let draws_b: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0 + 0.5).collect();
    let p = PosteriorSummary {
        mean: 1.0,
        sd: 0.2,
        draws: Some(&draws_a),
    };
    let s = PosteriorSummary {
        mean: 1.05,
        sd: 0.2,
        draws: Some(&draws_b),
    };
    let c = compare_call(&p, &s, 0.5).unwrap();
    assert!(c.agree);
    // D is 0.5 up to floating ties between i/200 + 0.5 and (i + 100)/200.
    assert!((c.distance.unwrap() - 0.5).abs() <= 0.0051);
    let far = PosteriorSummary {
        mean: 1.5,
        sd: 0.2,
        draws: None,
    };
    assert!(!compare_call(&p, &far, 0.5).unwrap().agree);
    assert!(
        compare_call(
            &p,
            &PosteriorSummary {
                mean: f64::NAN,
                sd: 1.0,
                draws: None
            },
            0.5
        )
        .is_err()
    );

    // 1 000 calls, 900 agree, shadow slower by 2× → blocked on latency only.
    let mut stats = ShadowStats::default();
    for i in 0..1000 {
        let sm = if i % 10 == 0 { 2.0 } else { 1.0 };
        let out_p = Some(PosteriorSummary {
            mean: 1.0,
            sd: 0.2,
            draws: None,
        });
        let out_s = Some(PosteriorSummary {
            mean: sm,
            sd: 0.2,
            draws: None,
        });
        stats
            .record(
                &SideResult {
                    latency_ms: 10.0,
                    output: out_p,
                },
                &SideResult {
                    latency_ms: 20.0,
                    output: out_s,
                },
                0.5,
            )
            .unwrap();
    }
    let r = stats.report(&ShadowConfig::default());
    assert!((r.agreement_rate - 0.9).abs() < 1e-12);
    let (lo, hi) = r.agreement_ci.unwrap();
    assert!(lo < 0.9 && 0.9 < hi);
    assert!(!r.promotable);
    assert_eq!(r.blockers.len(), 1, "{:?}", r.blockers);
    assert!(r.blockers[0].contains("p95"));
    // Aggregates merge and round-trip.
    let json = serde_json::to_string(&stats).unwrap();
    let back: ShadowStats = serde_json::from_str(&json).unwrap();
    let mut merged = back.clone();
    merged.merge(&back).unwrap();
    assert_eq!(merged.compared, 2000);
    assert_eq!(merged.agreements, 1800);
}

#[test]
fn drift_report_flags_shifted_features_only() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let n = Normal::new(0.0, 1.0).unwrap();
    let sample = |rng: &mut Xoshiro256PlusPlus, shift: f64, k: usize| {
        (0..k).map(|_| n.sample(rng) + shift).collect::<Vec<_>>()
    };
    let mut reference = BTreeMap::new();
    reference.insert("x_stable".to_string(), sample(&mut rng, 0.0, 2000));
    reference.insert("x_shifted".to_string(), sample(&mut rng, 0.0, 2000));
    reference.insert("output_mean".to_string(), sample(&mut rng, 0.0, 2000));
    let det = DriftDetector::new(DriftConfig::default(), &reference).unwrap();
    let mut current = BTreeMap::new();
    current.insert("x_stable".to_string(), sample(&mut rng, 0.0, 1500));
    current.insert("x_shifted".to_string(), sample(&mut rng, 0.8, 1500));
    current.insert("output_mean".to_string(), sample(&mut rng, 0.5, 1500));
    let r = det.report(&current).unwrap();
    let by: BTreeMap<_, _> = r.features.iter().map(|f| (f.name.as_str(), f)).collect();
    assert!(by["x_shifted"].drifted && by["output_mean"].drifted);
    assert_eq!(by["x_shifted"].band, PsiBand::Significant);
    assert_eq!(by["x_shifted"].ks.method, KsMethod::Asymptotic);
    assert!(by["x_shifted"].ks.p_value < 1e-10);
    // The stable feature: under H0 its KS p is uniform; this seed gives no drift.
    assert!(!by["x_stable"].drifted, "{:?}", by["x_stable"]);
    assert!((r.drifted_share - 2.0 / 3.0).abs() < 1e-12);
    assert!(r.dataset_drift);
    // Serializable for the store.
    let _ = serde_json::to_string(&det).unwrap();
}

#[test]
fn ks_under_the_null_is_calibrated() {
    // 400 null comparisons of 30 vs 30: the exact test's rejection rate at 0.05 stays
    // at most 0.05 + 3 MC se (discrete test, so usually below α).
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    let n = Normal::new(0.0, 1.0).unwrap();
    let runs = 400;
    let rej = (0..runs)
        .filter(|_| {
            let a: Vec<f64> = (0..30).map(|_| n.sample(&mut rng)).collect();
            let b: Vec<f64> = (0..30).map(|_| n.sample(&mut rng)).collect();
            ks_2samp(&a, &b).unwrap().p_value < 0.05
        })
        .count();
    let rate = rej as f64 / f64::from(runs);
    assert!(
        rate <= 0.05 + 3.0 * (0.05f64 * 0.95 / f64::from(runs)).sqrt(),
        "{rate}"
    );
    assert!(ks_2samp(&[], &[1.0]).is_err());
}

#[test]
fn metrics_merge_window_and_roundtrip() {
    let mut a = RolloutMetrics::new(1000, 3);
    let mut b = RolloutMetrics::new(1000, 3);
    for i in 0..100u64 {
        let obs = Observation {
            latency_ms: (i + 1) as f64,
            error: i % 10 == 0,
            timeout: i % 25 == 0,
            output_mean: Some(1.0),
            output_sd: Some(0.5),
        };
        a.record("v1", Timestamp(i * 50), &obs);
        b.record("v1", Timestamp(i * 50), &obs);
        a.record_outcome(
            "v1",
            Timestamp(i * 50),
            "conv",
            f64::from(u8::from(i % 4 == 0)),
            true,
        )
        .unwrap();
    }
    assert!(
        a.record_outcome("v1", Timestamp(0), "conv", 0.5, true)
            .is_err()
    );
    assert!(
        a.record_outcome("v1", Timestamp(0), "conv", 2.0, false)
            .is_err()
    );
    assert!(
        a.record_outcome("v1", Timestamp(0), "x", f64::NAN, false)
            .is_err()
    );
    let c = a.cumulative("v1");
    assert_eq!((c.requests, c.errors, c.timeouts), (100, 10, 4));
    let q = c.latency.quantiles().unwrap();
    // DDSketch relative accuracy 1 %.
    assert!((q.p50 - 50.0).abs() <= 1.0, "{q:?}");
    assert!((q.p95 - 95.0).abs() <= 1.5, "{q:?}");
    // Only the last 3 one-second windows are kept: t = 2000..4950 → 60 calls.
    let w = &a.arms["v1"];
    assert_eq!(w.windows.len(), 3);
    assert_eq!(w.since(Timestamp(0)).unwrap().requests, 60);
    // Serialize (as the store will), deserialize, merge replicas.
    let json = serde_json::to_string(&a).unwrap();
    let mut back: RolloutMetrics = serde_json::from_str(&json).unwrap();
    back.merge(&b).unwrap();
    let m = back.cumulative("v1");
    assert_eq!((m.requests, m.errors), (200, 20));
    assert_eq!(m.latency.count(), 200);
    assert!((m.latency.quantile(0.5).unwrap() - 50.0).abs() <= 1.0);
    assert_eq!(back.arms["v1"].windows.len(), 3);
    assert_eq!(back.arms["v1"].since(Timestamp(0)).unwrap().requests, 120);
}

/// The same paradox on a continuous metric (revenue per user), with Welch per segment.
#[test]
fn simpsons_paradox_on_a_continuous_metric() {
    use probserve_experiment::metrics::Moments;
    use probserve_experiment::stats::segments::{MeanSegmentInput, analyze_means};
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let mut draw = |n: usize, mu: f64| {
        let d = Normal::new(mu, 1.0).unwrap();
        Moments::from_slice(&(0..n).map(|_| d.sample(&mut rng)).collect::<Vec<_>>())
    };
    // Premium spends ~10, free ~1; the treatment is 0.3 worse in premium, 0.1 better in
    // free, but most of its users are premium.
    let segs = vec![
        MeanSegmentInput {
            name: "premium".into(),
            control: draw(200, 10.0),
            treatment: draw(1800, 9.7),
        },
        MeanSegmentInput {
            name: "free".into(),
            control: draw(1800, 1.0),
            treatment: draw(200, 1.1),
        },
    ];
    let r = analyze_means(&segs, 0.05).unwrap();
    assert!(r.aggregate_diff > 5.0, "{}", r.aggregate_diff);
    assert_eq!(r.reversed_segments, vec!["premium".to_string()]);
    assert!(r.stratified_diff < 0.0);
    assert!(r.simpson);
    assert!(r.segments[0].p_adjusted >= r.segments[0].p_value);
}

#[test]
fn outcome_metrics_are_bounded() {
    use probserve_experiment::metrics::{
        ArmMetrics, MAX_OUTCOME_METRIC_BYTES, MAX_OUTCOME_METRICS,
    };
    let mut arm = ArmMetrics::default();
    assert!(
        arm.record_outcome(&"m".repeat(MAX_OUTCOME_METRIC_BYTES + 1), 1.0, true)
            .is_err()
    );
    for i in 0..MAX_OUTCOME_METRICS {
        assert!(arm.record_outcome(&format!("m{i}"), 1.0, true).is_ok());
    }
    assert!(arm.record_outcome("one-more", 1.0, true).is_err());
    assert!(
        arm.record_outcome("m0", 0.0, true).is_ok(),
        "known metrics still record"
    );
}
