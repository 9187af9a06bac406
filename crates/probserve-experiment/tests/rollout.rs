//! The rollout state machine: legal and illegal transitions, audit records, plans,
//! blue-green, shadow promotion and routing per phase.

use probserve_experiment::audit::Actor;
use probserve_experiment::clock::{Clock, ManualClock, Timestamp};
use probserve_experiment::controller::{Verdict, evaluate};
use probserve_experiment::error::RolloutError;
use probserve_experiment::metrics::RolloutMetrics;
use probserve_experiment::plan::{MetricThreshold, RolloutSpec, Strategy, ThresholdMetric};
use probserve_experiment::rollout::{Command, Phase, Rollout};
use probserve_experiment::routing::{NoAttributes, Reason, route};
use probserve_experiment::shadow::{PosteriorSummary, ShadowStats, SideResult};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

fn op() -> Actor {
    Actor::Operator("alice".into())
}

fn canary() -> Rollout {
    Rollout::new(
        RolloutSpec::canary("c1", "v1", "v2", &[(500, 0), (2500, 0), (10_000, 0)], 0).unwrap(),
    )
    .unwrap()
}

#[test]
fn legal_path_produces_audit_records() {
    let mut r = canary();
    let t = r
        .execute(Command::Start, op(), "ship it", Timestamp(5))
        .unwrap();
    assert_eq!((t.audit.from, t.audit.to), (Phase::Pending, Phase::Running));
    assert_eq!(t.audit.actor, op());
    assert_eq!(t.audit.reason, "ship it");
    assert_eq!(t.audit.at, Timestamp(5));
    r.execute(Command::Pause, op(), "lunch", Timestamp(6))
        .unwrap();
    assert_eq!(r.state.hold_reason.as_deref(), Some("lunch"));
    r.execute(Command::Resume, op(), "", Timestamp(7)).unwrap();
    let t = r.execute(Command::Advance, op(), "", Timestamp(8)).unwrap();
    assert_eq!((t.audit.step_from, t.audit.step_to), (0, 1));
    assert_eq!(r.state.step_started_at, Some(Timestamp(8)));
    r.execute(Command::Advance, op(), "", Timestamp(9)).unwrap();
    assert_eq!(
        r.execute(Command::Advance, op(), "", Timestamp(10)),
        Err(RolloutError::AtLastStep)
    );
    let t = r
        .execute(Command::Promote, op(), "", Timestamp(11))
        .unwrap();
    assert_eq!(t.audit.revision, r.state.revision);
    assert_eq!(r.state.phase, Phase::Promoted);
    let back: probserve_experiment::audit::AuditRecord =
        serde_json::from_str(&serde_json::to_string(&t.audit).unwrap()).unwrap();
    assert_eq!(back, t.audit);
}

#[test]
fn illegal_transitions_are_typed_errors() {
    let mut r = canary();
    let illegal = |res: Result<_, RolloutError>, cmd: &str, phase: Phase| match res {
        Err(RolloutError::IllegalTransition { command, phase: p }) => {
            assert_eq!((command, p), (cmd, phase));
        }
        other => panic!("expected illegal {cmd} from {phase:?}, got {other:?}"),
    };
    illegal(
        r.command(Command::Promote, op(), "", Timestamp(0), None)
            .map(|_| ()),
        "promote",
        Phase::Pending,
    );
    illegal(
        r.command(Command::Resume, op(), "", Timestamp(0), None)
            .map(|_| ()),
        "resume",
        Phase::Pending,
    );
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    illegal(
        r.command(Command::Start, op(), "", Timestamp(0), None)
            .map(|_| ()),
        "start",
        Phase::Running,
    );
    r.execute(Command::Abort, op(), "bad idea", Timestamp(1))
        .unwrap();
    illegal(
        r.command(Command::Promote, op(), "", Timestamp(2), None)
            .map(|_| ()),
        "promote",
        Phase::Aborted,
    );
    illegal(
        r.command(Command::Rollback, op(), "", Timestamp(2), None)
            .map(|_| ()),
        "rollback",
        Phase::Aborted,
    );
    illegal(
        r.command(Command::Approve { step: 0 }, op(), "", Timestamp(2), None)
            .map(|_| ()),
        "approve",
        Phase::Aborted,
    );
    // A canary without a warm baseline cannot roll back once promoted.
    let mut p = canary();
    p.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    p.execute(Command::Promote, op(), "", Timestamp(0)).unwrap();
    illegal(
        p.command(Command::Rollback, op(), "", Timestamp(0), None)
            .map(|_| ()),
        "rollback",
        Phase::Promoted,
    );
    // Bad arguments (on a live rollout: a finished one refuses overrides outright).
    let mut p = canary();
    p.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    assert_eq!(
        p.command(
            Command::SetOverride {
                key: "k".into(),
                version: "v9".into()
            },
            op(),
            "",
            Timestamp(0),
            None
        )
        .unwrap_err(),
        RolloutError::UnknownVersion("v9".into())
    );
    let q = canary();
    assert!(matches!(
        q.command(Command::Approve { step: 9 }, op(), "", Timestamp(0), None),
        Err(RolloutError::NoSuchStep { step: 9, steps: 3 })
    ));
}

#[test]
fn command_does_not_mutate_until_applied() {
    let r = canary();
    let t = r
        .command(Command::Start, op(), "", Timestamp(0), None)
        .unwrap();
    assert_eq!(r.state.phase, Phase::Pending);
    let mut r2 = r.clone();
    r2.apply(&t);
    assert_eq!(r2.state.phase, Phase::Running);
}

#[test]
fn kill_switch_and_overrides_route_with_reasons() {
    let mut r = canary();
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    r.execute(
        Command::SetOverride {
            key: "vip".into(),
            version: "v2".into(),
        },
        op(),
        "",
        Timestamp(1),
    )
    .unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let snap = r.routing_snapshot().unwrap();
    let d = route(&snap, Some("vip"), &NoAttributes, &mut rng);
    assert_eq!((d.version.as_str(), d.reason), ("v2", Reason::Override));
    let t = r
        .execute(
            Command::KillSwitch { on: true },
            op(),
            "incident 42",
            Timestamp(2),
        )
        .unwrap();
    assert_eq!(t.audit.action, "kill_switch");
    let snap = r.routing_snapshot().unwrap();
    for key in ["vip", "a", "b"] {
        let d = route(&snap, Some(key), &NoAttributes, &mut rng);
        assert_eq!((d.version.as_str(), d.reason), ("v1", Reason::KillSwitch));
    }
    // A finished rollout routes nothing, so it refuses the kill switch.
    r.execute(Command::Abort, op(), "", Timestamp(3)).unwrap();
    assert!(matches!(
        r.execute(Command::KillSwitch { on: false }, op(), "", Timestamp(4)),
        Err(RolloutError::IllegalTransition { .. })
    ));
}

#[test]
fn routing_follows_the_phase() {
    let mut r = canary();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let share = |r: &Rollout, rng: &mut Xoshiro256PlusPlus| {
        let snap = r.routing_snapshot().unwrap();
        (0..10_000)
            .filter(|i| route(&snap, Some(&format!("u{i}")), &NoAttributes, rng).version == "v2")
            .count()
    };
    assert_eq!(share(&r, &mut rng), 0, "pending: baseline only");
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    let s0 = share(&r, &mut rng);
    // Binomial(10000, 0.05): sd 21.8, 5 sd = 109.
    assert!((s0 as i64 - 500).abs() < 109, "{s0}");
    r.execute(Command::Pause, op(), "", Timestamp(0)).unwrap();
    assert_eq!(share(&r, &mut rng), s0, "paused keeps routing");
    r.execute(Command::Advance, op(), "", Timestamp(0)).unwrap();
    let s1 = share(&r, &mut rng);
    assert!((s1 as i64 - 2500).abs() < 217, "{s1}");
    r.execute(Command::Promote, op(), "", Timestamp(0)).unwrap();
    assert_eq!(share(&r, &mut rng), 10_000, "promoted: candidate only");
}

#[test]
fn blue_green_needs_approval_then_switches_and_can_roll_back_after_promotion() {
    let mut r = Rollout::new(RolloutSpec::blue_green("bg", "blue", "green").unwrap()).unwrap();
    assert_eq!(r.spec.strategy, Strategy::BlueGreen);
    let clock = ManualClock::new(Timestamp(0));
    r.execute(Command::Start, op(), "", clock.now()).unwrap();
    let m = RolloutMetrics::default();
    let e = evaluate(&r, &m, None, clock.now()).unwrap();
    assert!(
        matches!(e.verdict, Verdict::Hold(ref g) if g.iter().any(|s| s.contains("manual approval")))
    );
    r.execute(
        Command::Approve { step: 0 },
        op(),
        "preview looks fine",
        clock.now(),
    )
    .unwrap();
    let e = evaluate(&r, &m, None, clock.now()).unwrap();
    assert_eq!(e.verdict, Verdict::Advance);
    r.apply(e.transition.as_ref().unwrap());
    let snap = r.routing_snapshot().unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    assert!(
        (0..100).all(
            |i| route(&snap, Some(&format!("u{i}")), &NoAttributes, &mut rng).version == "green"
        )
    );
    let e = evaluate(&r, &m, None, clock.now()).unwrap();
    assert_eq!(e.verdict, Verdict::Promote);
    r.apply(e.transition.as_ref().unwrap());
    // Blue is kept warm: instant rollback is still legal.
    r.execute(Command::Rollback, op(), "regression found", clock.now())
        .unwrap();
    let snap = r.routing_snapshot().unwrap();
    assert_eq!(
        route(&snap, Some("u1"), &NoAttributes, &mut rng).version,
        "blue"
    );
}

#[test]
fn step_thresholds_gate_advancement() {
    let mut spec = RolloutSpec::rolling("roll", "v1", "v2", &[(1000, 0), (10_000, 0)]).unwrap();
    spec.steps[0].thresholds.push(MetricThreshold {
        metric: ThresholdMetric::P95LatencyMs,
        min: None,
        max: Some(50.0),
    });
    let mut r = Rollout::new(spec).unwrap();
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    let mut m = RolloutMetrics::default();
    let slow = probserve_experiment::metrics::Observation {
        latency_ms: 80.0,
        ..Default::default()
    };
    m.record("v2", Timestamp(1), &slow);
    let e = evaluate(&r, &m, None, Timestamp(2)).unwrap();
    assert!(
        matches!(e.verdict, Verdict::Hold(ref g) if g.iter().any(|s| s.contains("P95LatencyMs"))),
        "{:?}",
        e.verdict
    );
    let mut fast = RolloutMetrics::default();
    fast.record(
        "v2",
        Timestamp(1),
        &probserve_experiment::metrics::Observation {
            latency_ms: 20.0,
            ..Default::default()
        },
    );
    assert_eq!(
        evaluate(&r, &fast, None, Timestamp(2)).unwrap().verdict,
        Verdict::Advance
    );
}

#[test]
fn invalid_specs_are_rejected() {
    assert!(RolloutSpec::canary("c", "v1", "v1", &[(500, 0)], 0).is_err());
    assert!(RolloutSpec::canary("c", "v1", "v2", &[], 0).is_err());
    assert!(RolloutSpec::canary("c", "v1", "v2", &[(20_000, 0)], 0).is_err());
    assert!(RolloutSpec::shadow("", "v1", "v2", 100).is_err());
}

fn shadow_run(shift_sd: f64, seed: u64) -> (Rollout, Verdict) {
    let mut r = Rollout::new(RolloutSpec::shadow("sh", "v1", "v2", 10_000).unwrap()).unwrap();
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    let snap = r.routing_snapshot().unwrap();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let d = route(&snap, Some("u1"), &NoAttributes, &mut rng);
    assert_eq!(
        (d.version.as_str(), d.shadow.as_deref()),
        ("v1", Some("v2")),
        "0 % served, mirrored"
    );
    let mut stats = ShadowStats::default();
    let truth = Normal::new(0.0, 3.0).unwrap();
    let mc = Normal::new(0.0, 0.05).unwrap();
    let lat = Normal::new(20.0, 2.0).unwrap();
    for _ in 0..1200 {
        let mu = truth.sample(&mut rng);
        let p = PosteriorSummary {
            mean: mu + mc.sample(&mut rng),
            sd: 1.0,
            draws: None,
        };
        let s = PosteriorSummary {
            mean: mu + shift_sd + mc.sample(&mut rng),
            sd: 1.0,
            draws: None,
        };
        stats
            .record(
                &SideResult {
                    latency_ms: lat.sample(&mut rng),
                    output: Some(p),
                },
                &SideResult {
                    latency_ms: lat.sample(&mut rng),
                    output: Some(s),
                },
                r.spec.shadow.k,
            )
            .unwrap();
    }
    let e = evaluate(&r, &RolloutMetrics::default(), Some(&stats), Timestamp(1)).unwrap();
    (r, e.verdict)
}

#[test]
fn shadow_promotes_on_agreement_and_blocks_on_disagreement() {
    let (_, v) = shadow_run(0.0, 1);
    assert_eq!(v, Verdict::Promote);
    let (_, v) = shadow_run(1.0, 2);
    assert!(
        matches!(v, Verdict::Hold(ref g) if g.iter().any(|s| s.contains("agreement"))),
        "{v:?}"
    );
}

#[test]
fn ab_test_rolls_back_a_worse_continuous_metric_and_pauses_when_inconclusive() {
    use probserve_experiment::metrics::{Moments, Outcome};
    use probserve_experiment::plan::PrimaryMetric;
    let pm = PrimaryMetric {
        name: "revenue".into(),
        binary: false,
        higher_is_better: true,
    };
    let mut spec = RolloutSpec::ab_test("ab", "v1", "v2", (1, 1), pm, 100).unwrap();
    spec.steps[0].max_duration_ms = Some(3_600_000);
    let mut r = Rollout::new(spec).unwrap();
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    let obs = probserve_experiment::metrics::Observation {
        latency_ms: 10.0,
        ..Default::default()
    };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let noise = Normal::new(0.0, 1.0).unwrap();
    let fill = |m: &mut RolloutMetrics, rng: &mut Xoshiro256PlusPlus, shift: f64| {
        for v in ["v1", "v2"] {
            let mut mo = Moments::default();
            for _ in 0..2000 {
                mo.add(10.0 + noise.sample(rng) + if v == "v2" { shift } else { 0.0 });
                m.record(v, Timestamp(0), &obs);
            }
            m.merge_outcome(v, Timestamp(0), "revenue", &Outcome::Continuous(mo))
                .unwrap();
        }
    };
    let mut worse = RolloutMetrics::default();
    fill(&mut worse, &mut rng, -0.5);
    let e = evaluate(&r, &worse, None, Timestamp(60_000)).unwrap();
    assert!(
        matches!(e.verdict, Verdict::Rollback(ref why) if why.contains("significantly worse")),
        "{:?}",
        e.verdict
    );
    assert!(e.snapshot.sequential.unwrap().reject);
    let mut same = RolloutMetrics::default();
    fill(&mut same, &mut rng, 0.0);
    let e = evaluate(&r, &same, None, Timestamp(60_000)).unwrap();
    assert!(matches!(e.verdict, Verdict::Hold(_)), "{:?}", e.verdict);
    let e = evaluate(&r, &same, None, Timestamp(3_600_000)).unwrap();
    assert!(
        matches!(e.verdict, Verdict::Pause(ref why) if why.contains("inconclusive")),
        "{:?}",
        e.verdict
    );
}

#[test]
fn rollout_spec_and_state_roundtrip_through_json() {
    let mut r = canary();
    r.execute(Command::Start, op(), "", Timestamp(3)).unwrap();
    r.execute(Command::Approve { step: 1 }, op(), "", Timestamp(4))
        .unwrap();
    r.execute(
        Command::SetOverride {
            key: "k".into(),
            version: "v2".into(),
        },
        op(),
        "",
        Timestamp(5),
    )
    .unwrap();
    let json = serde_json::to_string(&r).unwrap();
    let back: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert_eq!(
        back.routing_snapshot().unwrap(),
        r.routing_snapshot().unwrap()
    );
}

#[test]
fn guardrails_still_watch_a_paused_rollout() {
    use probserve_experiment::metrics::Observation;
    let mut r = canary();
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    r.execute(Command::Pause, op(), "investigating", Timestamp(1))
        .unwrap();
    let mut m = RolloutMetrics::default();
    for i in 0..1000u32 {
        m.record(
            "v1",
            Timestamp(2),
            &Observation {
                latency_ms: 10.0,
                error: i % 50 == 0,
                ..Default::default()
            },
        );
        m.record(
            "v2",
            Timestamp(2),
            &Observation {
                latency_ms: 10.0,
                error: i % 5 == 0,
                ..Default::default()
            },
        );
    }
    let e = evaluate(&r, &m, None, Timestamp(3)).unwrap();
    assert!(matches!(e.verdict, Verdict::Rollback(_)), "{:?}", e.verdict);
    let mut healthy = RolloutMetrics::default();
    healthy.record(
        "v2",
        Timestamp(2),
        &Observation {
            latency_ms: 10.0,
            ..Default::default()
        },
    );
    let e = evaluate(&r, &healthy, None, Timestamp(3)).unwrap();
    assert!(
        matches!(e.verdict, Verdict::Hold(ref h) if h[0].contains("investigating")),
        "{:?}",
        e.verdict
    );
    assert!(e.transition.is_none());
}

#[test]
fn a_candidate_that_always_fails_against_a_baseline_that_never_does_is_rolled_back() {
    // Zero variance in both arms: the sequential test cannot run, but the separation
    // is complete, so this is a breach (found wiring the server: before, it read as
    // "insufficient data" forever).
    use probserve_experiment::metrics::Observation;
    let mut r = canary();
    r.execute(Command::Start, op(), "", Timestamp(0)).unwrap();
    let mut m = RolloutMetrics::default();
    for _ in 0..600u32 {
        for (version, error) in [("v1", false), ("v2", true)] {
            m.record(
                version,
                Timestamp(2),
                &Observation {
                    latency_ms: 10.0,
                    error,
                    ..Default::default()
                },
            );
        }
    }
    let e = evaluate(&r, &m, None, Timestamp(3)).unwrap();
    assert!(
        matches!(e.verdict, Verdict::Rollback(ref why) if why.contains("ErrorRate")),
        "{:?}",
        e.verdict
    );
    // Both arms perfect: no breach.
    let mut ok = RolloutMetrics::default();
    for _ in 0..600u32 {
        for version in ["v1", "v2"] {
            ok.record(
                version,
                Timestamp(2),
                &Observation {
                    latency_ms: 10.0,
                    ..Default::default()
                },
            );
        }
    }
    let e = evaluate(&r, &ok, None, Timestamp(3)).unwrap();
    assert!(
        !matches!(e.verdict, Verdict::Rollback(_)),
        "{:?}",
        e.verdict
    );
}

#[test]
fn finished_rollouts_refuse_kill_switch_and_overrides() {
    for finish in [Command::Abort, Command::Rollback, Command::Promote] {
        let mut r = canary();
        r.execute(Command::Start, op(), "", Timestamp(1)).unwrap();
        r.execute(finish.clone(), op(), "", Timestamp(2)).unwrap();
        for cmd in [
            Command::KillSwitch { on: true },
            Command::SetOverride {
                key: "u1".into(),
                version: "v2".into(),
            },
            Command::ClearOverride { key: "u1".into() },
        ] {
            let err = r.command(cmd.clone(), op(), "", Timestamp(3), None);
            assert!(
                matches!(err, Err(RolloutError::IllegalTransition { .. })),
                "{cmd:?} after {finish:?}: {err:?}"
            );
        }
    }
}

#[test]
fn overrides_are_bounded() {
    use probserve_experiment::rollout::{MAX_OVERRIDE_KEY_BYTES, MAX_OVERRIDES};
    let mut r = canary();
    let long = Command::SetOverride {
        key: "k".repeat(MAX_OVERRIDE_KEY_BYTES + 1),
        version: "v2".into(),
    };
    assert!(matches!(
        r.command(long, op(), "", Timestamp(1), None),
        Err(RolloutError::Limit {
            field: "routing_key",
            ..
        })
    ));
    for i in 0..MAX_OVERRIDES {
        r.state.overrides.insert(format!("u{i}"), "v2".into());
    }
    let one_more = Command::SetOverride {
        key: "new".into(),
        version: "v1".into(),
    };
    assert!(matches!(
        r.command(one_more, op(), "", Timestamp(1), None),
        Err(RolloutError::Limit { .. })
    ));
    let existing = Command::SetOverride {
        key: "u0".into(),
        version: "v1".into(),
    };
    assert!(r.command(existing, op(), "", Timestamp(1), None).is_ok());
}

#[test]
fn plans_with_bad_guardrails_or_too_many_steps_are_rejected() {
    let steps: Vec<(u32, u64)> = (0..=probserve_experiment::plan::MAX_STEPS as u32)
        .map(|i| (i.min(10_000), 0))
        .collect();
    assert!(RolloutSpec::canary("c", "v1", "v2", &steps, 0).is_err());
    for bad in [f64::NAN, -1.0, f64::INFINITY, 0.0] {
        let mut spec = RolloutSpec::canary("c", "v1", "v2", &[(500, 0)], 0).unwrap();
        spec.guardrails.max_p95_ratio = bad;
        assert!(spec.validate().is_err(), "{bad}");
    }
}
