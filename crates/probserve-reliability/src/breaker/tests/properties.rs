//! The property test: random sequences of acquire, record, release, advance-time
//! and force operations on random configurations must give the same permits,
//! refusals, transitions and snapshots from the breaker and from the reference
//! [`Model`].

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::model::Model;
use super::*;

/// The slow-call threshold of every generated configuration.
const SLOW_AFTER: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Record the permit at `pick` (modulo the permits out): failed, and a
    /// duration under, exactly at or over the slow-call threshold.
    Record {
        pick: usize,
        failed: bool,
        took: u8,
    },
    Release {
        pick: usize,
    },
    Advance {
        millis: u64,
    },
    Force(ForcedState),
}

fn op() -> impl Strategy<Value = Op> {
    let forced = prop_oneof![
        Just(ForcedState::Closed),
        Just(ForcedState::ForcedOpen),
        Just(ForcedState::Disabled),
        Just(ForcedState::MetricsOnly),
    ];
    prop_oneof![
        5 => Just(Op::Acquire),
        5 => (any::<usize>(), any::<bool>(), 0u8..3)
            .prop_map(|(pick, failed, took)| Op::Record { pick, failed, took }),
        1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        3 => prop_oneof![0u64..2_000, 0u64..30_000].prop_map(|millis| Op::Advance { millis }),
        1 => forced.prop_map(Op::Force),
    ]
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    let window = prop_oneof![
        (1u32..=8).prop_map(|calls| WindowKind::Count { calls }),
        (1u32..=5).prop_map(|seconds| WindowKind::Time { seconds }),
    ];
    // Mostly rates that a window of up to 8 calls can hit exactly, so that "at the
    // threshold trips" is exercised; sometimes any tenth of a percent.
    let exact = prop::sample::select(vec![12.5, 20.0, 25.0, 40.0, 50.0, 60.0, 75.0, 100.0]);
    let percent = prop_oneof![
        3 => exact,
        1 => (1u32..=1_000).prop_map(|tenths| f64::from(tenths) / 10.0),
    ];
    let slow_percent = prop_oneof![Just(100.0), percent.clone()];
    (
        window,
        1u32..=8,
        percent,
        slow_percent,
        1u32..=4,
        500u64..=5_000,
        prop::sample::select(vec![1.0, 2.0, 3.0]),
        1u32..=8,
    )
        .prop_map(
            |(window, minimum_calls, failure, slow, permitted, wait_ms, multiplier, cap)| {
                BreakerConfig {
                    window,
                    minimum_calls,
                    failure_rate_threshold: failure,
                    slow_call_rate_threshold: slow,
                    slow_call_duration: SLOW_AFTER,
                    permitted_calls_in_half_open: permitted,
                    wait_in_open: Duration::from_millis(wait_ms),
                    wait_multiplier: multiplier,
                    max_wait_in_open: Duration::from_millis(wait_ms * u64::from(cap)),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn breaker_matches_the_reference_model(
        config in config(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let mut breaker = Breaker::new(config.clone()).expect("valid config");
        let mut model = Model::new(config.clone());
        let mut now = Instant::now();
        // The permits out, each with the model's copy.
        let mut out: Vec<(Permit, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => match (breaker.try_acquire(now), model.acquire(now)) {
                    (Ok(permit), Ok((generation, transition))) => {
                        prop_assert_eq!(permit.transition(), transition);
                        out.push((permit, generation));
                    }
                    (Err(refused), Err(expected)) => prop_assert_eq!(refused, expected),
                    (got, want) => prop_assert!(false, "acquire: {got:?} but the model says {want:?}"),
                },
                Op::Record { pick, failed, took } if !out.is_empty() => {
                    let (permit, generation) = out.swap_remove(pick % out.len());
                    let took = SLOW_AFTER + Duration::from_millis(u64::from(took)) - Duration::from_millis(1);
                    let got = breaker.record(permit, Outcome { failed, duration: took }, now);
                    prop_assert_eq!(got, model.record(generation, failed, took, now));
                }
                Op::Release { pick } if !out.is_empty() => {
                    let (permit, generation) = out.swap_remove(pick % out.len());
                    breaker.release(permit);
                    model.release(generation);
                }
                Op::Record { .. } | Op::Release { .. } => {}
                Op::Advance { millis } => now += Duration::from_millis(millis),
                Op::Force(target) => prop_assert_eq!(breaker.force(target), model.force(target)),
            }
            let snapshot = breaker.snapshot(now);
            prop_assert_eq!(snapshot, model.snapshot(now));
            // Invariants the model also implies, stated on their own.
            if snapshot.state == State::HalfOpen {
                let probes = u64::from(snapshot.probes_in_flight) + snapshot.calls;
                prop_assert!(probes <= u64::from(config.permitted_calls_in_half_open));
            }
            if let Some(wait) = snapshot.retry_after {
                prop_assert!(wait <= config.max_wait_in_open);
                prop_assert!(breaker.state() == State::Open);
            }
        }
    }
}
