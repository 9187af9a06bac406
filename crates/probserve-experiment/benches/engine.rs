//! Experiment-engine benchmarks: one routing decision (keyed, with shadow mirroring;
//! and a bare SHA-256 bucket for scale), and one controller evaluation of 100 running
//! rollouts with realistic metrics. Run: `cargo bench -p probserve-experiment`.

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use probserve_experiment::audit::Actor;
use probserve_experiment::clock::Timestamp;
use probserve_experiment::controller::evaluate_all;
use probserve_experiment::metrics::{Observation, RolloutMetrics};
use probserve_experiment::plan::{PrimaryMetric, RolloutSpec};
use probserve_experiment::rollout::{Command, Rollout};
use probserve_experiment::routing::hash::bucket;
use probserve_experiment::routing::{ArmWeight, NoAttributes, RoutingSnapshot, ShadowRoute, route};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn routing(c: &mut Criterion) {
    let arms = vec![
        ArmWeight {
            version: "v1".into(),
            weight: 1,
        },
        ArmWeight {
            version: "v2".into(),
            weight: 1,
        },
    ];
    let shadow = Some(ShadowRoute {
        version: "v3".into(),
        mirror_bps: 1000,
    });
    let snap = RoutingSnapshot::new("bench", "bench-seed", "v1", 5000, arms, shadow)
        .expect("valid snapshot");
    let keys: Vec<String> = (0..1024).map(|i| format!("user-{i}")).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut i = 0usize;
    c.bench_function("route/keyed_split_with_shadow", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(route(&snap, Some(&keys[i]), &NoAttributes, &mut rng))
        })
    });
    c.bench_function("route/anonymous", |b| {
        b.iter(|| black_box(route(&snap, None, &NoAttributes, &mut rng)))
    });
    c.bench_function("hash/sha256_bucket_only", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(bucket("bench-seed/exposure", &keys[i], 10_000))
        })
    });
}

fn controller(c: &mut Criterion) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
    let mut rollouts = Vec::new();
    let mut metrics = Vec::new();
    for k in 0..100 {
        let spec = if k % 2 == 0 {
            RolloutSpec::canary(
                &format!("c{k}"),
                "v1",
                "v2",
                &[(500, 600_000), (2500, 600_000), (10_000, 600_000)],
                1000,
            )
        } else {
            let pm = PrimaryMetric {
                name: "conversion".into(),
                binary: true,
                higher_is_better: true,
            };
            RolloutSpec::ab_test(&format!("ab{k}"), "v1", "v2", (1, 1), pm, 1000)
        }
        .expect("valid spec");
        let mut r = Rollout::new(spec).expect("valid rollout");
        r.execute(
            Command::Start,
            Actor::Operator("bench".into()),
            "",
            Timestamp(0),
        )
        .expect("start");
        let mut m = RolloutMetrics::new(10_000, 60);
        for t in 0..60u64 {
            for _ in 0..50 {
                for v in ["v1", "v2"] {
                    let obs = Observation {
                        latency_ms: rng.random_range(5.0..50.0),
                        error: rng.random::<f64>() < 0.01,
                        ..Default::default()
                    };
                    m.record(v, Timestamp(t * 10_000), &obs);
                    m.record_outcome(
                        v,
                        Timestamp(t * 10_000),
                        "conversion",
                        f64::from(u8::from(rng.random::<f64>() < 0.1)),
                        true,
                    )
                    .expect("binary outcome");
                }
            }
        }
        rollouts.push(r);
        metrics.push(m);
    }
    c.bench_function("controller/evaluate_100_rollouts", |b| {
        b.iter(|| {
            let inputs = rollouts.iter().zip(&metrics).map(|(r, m)| (r, m, None));
            black_box(evaluate_all(inputs, Timestamp(600_000)).expect("evaluation"))
        })
    });
}

criterion_group!(benches, routing, controller);
criterion_main!(benches);
