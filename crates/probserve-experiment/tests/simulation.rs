//! Seeded simulations of whole rollouts through the controller, with an injected
//! clock (no sleeping). Tolerances come from Monte Carlo error: for R runs, a rate's
//! standard error is √(p(1−p)/R), and bounds are set at 3 standard errors.

use probserve_experiment::audit::Actor;
use probserve_experiment::clock::{Clock, ManualClock, Timestamp};
use probserve_experiment::controller::{Verdict, evaluate};
use probserve_experiment::metrics::{Observation, Outcome, Proportion, RolloutMetrics};
use probserve_experiment::plan::{PrimaryMetric, RolloutSpec};
use probserve_experiment::rollout::{Command, Phase, Rollout};
use probserve_experiment::routing::{NoAttributes, route};
use probserve_experiment::stats::Alternative;
use probserve_experiment::stats::power::{
    cohens_h, sample_size_per_arm, sequential_power, sequential_sample_size_per_arm,
};
use probserve_experiment::stats::sequential::SequentialConfig;
use probserve_experiment::stats::ztest::two_proportion_ztest;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

const ALPHA: f64 = 0.05;

fn ab_rollout(id: &str, cfg: SequentialConfig) -> Rollout {
    let primary = PrimaryMetric {
        name: "conversion".into(),
        binary: true,
        higher_is_better: true,
    };
    let mut spec = RolloutSpec::ab_test(id, "v1", "v2", (1, 1), primary, 0).unwrap();
    spec.sequential = cfg;
    let mut r = Rollout::new(spec).unwrap();
    r.execute(
        Command::Start,
        Actor::Operator("sim".into()),
        "",
        Timestamp(0),
    )
    .unwrap();
    r
}

struct Outcomes {
    /// Runs where the controller (mSPRT) declared a winner or loser.
    sequential: usize,
    /// Runs where a naive fixed-horizon z-test at any look had p < α.
    naive: usize,
    /// Sequential decisions that promoted (candidate better).
    promoted: usize,
}

/// Run `runs` A/B experiments with conversion rates `pa`, `pb`, `per_look` users per
/// arm between looks, `looks` looks, evaluating the controller at every look.
fn simulate(
    runs: usize,
    looks: usize,
    per_look: u64,
    pa: f64,
    pb: f64,
    cfg: SequentialConfig,
    seed: u64,
) -> Outcomes {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let ba = Binomial::new(per_look, pa).unwrap();
    let bb = Binomial::new(per_look, pb).unwrap();
    let mut out = Outcomes {
        sequential: 0,
        naive: 0,
        promoted: 0,
    };
    for run in 0..runs {
        let rollout = ab_rollout(&format!("aa-{run}"), cfg);
        let mut metrics = RolloutMetrics::new(10_000, 4);
        let (mut ca, mut cb) = (Proportion::default(), Proportion::default());
        let (mut seq_hit, mut naive_hit) = (false, false);
        for look in 1..=looks {
            let now = Timestamp(look as u64 * 10_000);
            let xa = Proportion::new(ba.sample(&mut rng), per_look);
            let xb = Proportion::new(bb.sample(&mut rng), per_look);
            ca.merge(&xa);
            cb.merge(&xb);
            metrics
                .merge_outcome("v1", now, "conversion", &Outcome::Binary(xa))
                .unwrap();
            metrics
                .merge_outcome("v2", now, "conversion", &Outcome::Binary(xb))
                .unwrap();
            if !seq_hit {
                let e = evaluate(&rollout, &metrics, None, now).unwrap();
                match e.verdict {
                    Verdict::Promote => {
                        seq_hit = true;
                        out.promoted += 1;
                    }
                    Verdict::Rollback(_) => seq_hit = true,
                    Verdict::Hold(_) => {}
                    other => panic!("unexpected verdict {other:?}"),
                }
            }
            if !naive_hit {
                naive_hit = two_proportion_ztest(ca, cb, Alternative::TwoSided, ALPHA)
                    .is_ok_and(|z| z.p_value < ALPHA);
            }
        }
        out.sequential += usize::from(seq_hit);
        out.naive += usize::from(naive_hit);
    }
    out
}

/// A/A: 1 000 experiments, 20 looks each. The controller's false-positive rate stays
/// at most α + 3 MC standard errors; the naive repeated z-test's does not.
#[test]
fn aa_false_positive_rate_survives_peeking() {
    let runs = 1000;
    let cfg = SequentialConfig {
        alpha: ALPHA,
        tuning_n: 5000.0,
    };
    let o = simulate(runs, 20, 250, 0.10, 0.10, cfg, 20_261_123);
    let fpr = o.sequential as f64 / runs as f64;
    let naive = o.naive as f64 / runs as f64;
    let bound = ALPHA + 3.0 * (ALPHA * (1.0 - ALPHA) / runs as f64).sqrt();
    eprintln!(
        "A/A, {runs} runs x 20 looks: sequential (mSPRT) FPR = {fpr:.3} (bound {bound:.3}); naive repeated z-test FPR = {naive:.3}"
    );
    assert!(fpr <= bound, "sequential FPR {fpr} > {bound}");
    // The naive test's inflation: far above α (about 0.2 for 20 looks); 3 MC se below
    // 0.15 is still well above α + 3 se.
    assert!(naive > bound, "naive FPR {naive} should show inflation");
}

/// A true effect of the planned size (10 % → 12 %) is detected, in the right
/// direction, with at least the planned power when the experiment runs to the
/// sequential sample size.
#[test]
fn planned_effect_is_detected_with_planned_power() {
    let (pa, pb, target) = (0.10, 0.12, 0.8);
    let h = cohens_h(pa, pb).unwrap();
    let fixed = sample_size_per_arm(h, ALPHA, target).unwrap();
    let cfg = SequentialConfig {
        alpha: ALPHA,
        tuning_n: 2.0 * fixed,
    };
    let n = sequential_sample_size_per_arm(h, target, &cfg).unwrap();
    assert!(sequential_power(h, n as f64, &cfg).unwrap() >= target);
    let per_look = 500;
    let looks = n.div_ceil(per_look) as usize;
    let runs = 1000;
    let o = simulate(runs, looks, per_look, pa, pb, cfg, 7);
    let power = o.promoted as f64 / runs as f64;
    let bound = target - 3.0 * (target * (1.0 - target) / runs as f64).sqrt();
    eprintln!(
        "planned n/arm: fixed {fixed:.0}, sequential {n}; {looks} looks; detected (promoted) in {power:.3} of runs"
    );
    assert!(power >= bound, "power {power} < {bound}");
    assert!(
        o.sequential - o.promoted <= 2,
        "wrong-direction decisions: {}",
        o.sequential - o.promoted
    );
}

/// Drive a canary with real keyed traffic through the router. Returns the evaluation
/// index of the rollback (if any) and of the first evaluation with enough samples.
fn run_canary(
    seed: u64,
    base_err: f64,
    cand_err: f64,
    evals: usize,
) -> (Option<usize>, Option<usize>, Rollout) {
    let spec = RolloutSpec::canary(
        "canary",
        "v1",
        "v2",
        &[
            (500, 60_000),
            (2500, 60_000),
            (5000, 60_000),
            (10_000, 60_000),
        ],
        1000,
    )
    .unwrap();
    let min = spec.guardrails.min_samples_per_arm.max(1000);
    let mut spec = spec;
    spec.guardrails.min_samples_per_arm = min;
    let mut rollout = Rollout::new(spec).unwrap();
    let clock = ManualClock::new(Timestamp(1_700_000_000_000));
    rollout
        .execute(
            Command::Start,
            Actor::Operator("ops".into()),
            "",
            clock.now(),
        )
        .unwrap();
    let mut metrics = RolloutMetrics::new(10_000, 60);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let lat = LogNormal::new(3.0, 0.4).unwrap();
    let (mut rollback_at, mut enough_at) = (None, None);
    let mut user = 0u64;
    for i in 0..evals {
        let snap = rollout.routing_snapshot().unwrap();
        for _ in 0..2000 {
            user += 1;
            let key = format!("user-{}", user % 50_000);
            let d = route(&snap, Some(&key), &NoAttributes, &mut rng);
            let p = if d.version == "v2" {
                cand_err
            } else {
                base_err
            };
            let obs = Observation {
                latency_ms: lat.sample(&mut rng),
                error: rng.random::<f64>() < p,
                ..Default::default()
            };
            metrics.record(&d.version, clock.now(), &obs);
        }
        clock.advance_millis(10_000);
        let (nb, nc) = (
            metrics.cumulative("v1").requests,
            metrics.cumulative("v2").requests,
        );
        if enough_at.is_none() && nb >= min && nc >= min {
            enough_at = Some(i);
        }
        let e = evaluate(&rollout, &metrics, None, clock.now()).unwrap();
        if let Some(t) = &e.transition {
            // The caller persists the audit record first; here we check it is complete.
            let json = serde_json::to_string(&t.audit).unwrap();
            assert!(json.contains("\"Controller\""));
            assert!(t.audit.metrics.is_some());
            rollout.apply(t);
        }
        if let Verdict::Rollback(reason) = &e.verdict {
            assert!(reason.contains("ErrorRate"), "{reason}");
            rollback_at = Some(i);
            break;
        }
        if rollout.state.phase == Phase::Promoted {
            break;
        }
    }
    (rollback_at, enough_at, rollout)
}

/// A candidate with 3× the baseline error rate (15 % vs 5 %) is rolled back at the
/// first evaluation after the minimum samples — over 20 seeds — and never before.
#[test]
fn three_x_error_rate_is_rolled_back_at_first_evaluation_after_min_samples() {
    for seed in 0..20 {
        let (rollback, enough, rollout) = run_canary(seed, 0.05, 0.15, 200);
        assert!(
            enough.is_some(),
            "seed {seed}: never reached the minimum samples"
        );
        assert_eq!(rollback, enough, "seed {seed}");
        assert_eq!(rollout.state.phase, Phase::RolledBack);
        assert_eq!(rollout.state.step, 0, "never advanced past the first step");
        // After rollback everyone is on the baseline.
        let snap = rollout.routing_snapshot().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert!((0..500).all(|i| {
            route(&snap, Some(&format!("user-{i}")), &NoAttributes, &mut rng).version == "v1"
        }));
    }
}

/// A healthy candidate (same error rate) walks 5 → 25 → 50 → 100 % and is promoted,
/// without a false rollback.
#[test]
fn healthy_canary_is_promoted_through_all_steps() {
    for seed in 100..105 {
        let (rollback, _, rollout) = run_canary(seed, 0.02, 0.02, 400);
        assert_eq!(rollback, None, "seed {seed}");
        assert_eq!(
            rollout.state.phase,
            Phase::Promoted,
            "seed {seed}: {:?}",
            rollout.state
        );
    }
}

/// A broken assignment (candidate gets 45 % instead of 50 %) holds the rollout with
/// an alert; it does not roll back.
#[test]
fn sample_ratio_mismatch_pauses_and_alerts() {
    let mut rollout = ab_rollout("srm", SequentialConfig::default());
    rollout.spec.steps[0].decide_by_test = true;
    let mut metrics = RolloutMetrics::new(10_000, 60);
    let obs = Observation {
        latency_ms: 20.0,
        ..Default::default()
    };
    for w in 1..=6u64 {
        let now = Timestamp(w * 10_000);
        for _ in 0..1100 {
            metrics.record("v1", now, &obs);
        }
        for _ in 0..900 {
            metrics.record("v2", now, &obs);
        }
    }
    let e = evaluate(&rollout, &metrics, None, Timestamp(70_000)).unwrap();
    assert!(e.srm_alert);
    assert!(
        matches!(e.verdict, Verdict::Pause(ref r) if r.contains("sample ratio mismatch")),
        "{:?}",
        e.verdict
    );
    let t = e.transition.unwrap();
    assert_eq!(t.next.phase, Phase::Paused);
    assert!(t.audit.metrics.as_ref().unwrap().srm.unwrap().p_value < 0.001);
    rollout.apply(&t);
    assert_eq!(rollout.state.phase, Phase::Paused);
    // Balanced traffic: no alert.
    let mut ok = RolloutMetrics::new(10_000, 60);
    for w in 1..=6u64 {
        for v in ["v1", "v2"] {
            for _ in 0..1000 {
                ok.record(v, Timestamp(w * 10_000), &obs);
            }
        }
    }
    let fresh = ab_rollout("srm2", SequentialConfig::default());
    assert!(
        !evaluate(&fresh, &ok, None, Timestamp(70_000))
            .unwrap()
            .srm_alert
    );
}

/// Noise alone cannot trigger a rollback: 1 000 canaries whose candidate has the same
/// 2 % error rate as the baseline, checked at 30 looks each, are falsely rolled back
/// at most α + 3 MC se of the time. The contrast — a bare "ratio > 2" rule after only
/// 20 calls — fires far more often.
#[test]
fn guardrails_do_not_fire_on_noise_despite_peeking() {
    use probserve_experiment::guardrails::{GuardrailConfig, evaluate as guard};
    use probserve_experiment::metrics::ArmMetrics;
    let runs = 1000;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(99);
    let cand_calls = Binomial::new(100, 0.02).unwrap();
    let base_calls = Binomial::new(1900, 0.02).unwrap();
    let sound = GuardrailConfig::default();
    let naive = GuardrailConfig {
        min_samples_per_arm: 20,
        min_events: 1,
        require_significance: false,
        ..sound
    };
    let (mut fired_sound, mut fired_naive) = (0, 0);
    for _ in 0..runs {
        let (mut b, mut c) = (ArmMetrics::default(), ArmMetrics::default());
        let (mut hit_s, mut hit_n) = (false, false);
        for _ in 0..30 {
            b.requests += 1900;
            b.errors += base_calls.sample(&mut rng);
            c.requests += 100;
            c.errors += cand_calls.sample(&mut rng);
            hit_s |= guard(&sound, &b, &c).breached();
            hit_n |= guard(&naive, &b, &c).breached();
        }
        fired_sound += usize::from(hit_s);
        fired_naive += usize::from(hit_n);
    }
    let (rs, rn) = (
        fired_sound as f64 / runs as f64,
        fired_naive as f64 / runs as f64,
    );
    let bound = ALPHA + 3.0 * (ALPHA * (1.0 - ALPHA) / runs as f64).sqrt();
    eprintln!(
        "A/A canary, {runs} runs x 30 looks: false rollback rate {rs:.3} (bound {bound:.3}); naive ratio rule {rn:.3}"
    );
    assert!(rs <= bound, "{rs} > {bound}");
    assert!(rn > bound, "naive rule should fire on noise: {rn}");
}
