//! The closed state: what trips the breaker (the failure rate and the slow-call
//! rate at their thresholds, from the minimum number of calls on), both windows,
//! health while closed, configuration errors and fixed names.

use std::time::Duration;

use super::*;

#[test]
fn opens_at_the_failure_rate_threshold_at_exactly_the_minimum_calls() {
    let mut s = Sim::new(config());
    for (i, failed) in [true, true, true, false].into_iter().enumerate() {
        assert_eq!(s.call(failed, FAST), None);
        let snap = s.snap();
        assert_eq!((snap.state, snap.calls), (State::Closed, i as u64 + 1));
        assert_eq!(snap.failure_rate, None, "no rate below the minimum");
    }
    // The fifth call: 3 of 5 failed, 60 % ≥ 50 %.
    let t = s.ok().expect("trips");
    let rate = 60.0;
    let opened = transition(
        State::Closed,
        State::Open,
        Reason::FailureRate { rate },
        Some(10),
    );
    assert_eq!(t, opened);
    let snap = s.snap();
    assert_eq!((snap.state, snap.health), (State::Open, Health::Failed));
    assert_eq!((snap.calls, snap.failed_calls), (5, 3));
    assert_eq!(snap.failure_rate, Some(60.0));
    assert_eq!(snap.attempts, 1);

    let refused = s.breaker.try_acquire(s.now).expect_err("open");
    let retry_after = Some(Duration::from_secs(10));
    assert_eq!(
        refused,
        NotPermitted {
            state: State::Open,
            retry_after
        }
    );
    assert_eq!(s.snap().not_permitted, 1);
}

#[test]
fn does_not_open_below_the_minimum_even_if_every_call_failed() {
    let mut s = Sim::new(BreakerConfig {
        window: WindowKind::Count { calls: 20 },
        minimum_calls: 10,
        ..config()
    });
    for _ in 0..9 {
        assert_eq!(s.fail(), None);
    }
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.snap().failure_rate, None);
    assert_eq!(s.snap().health, Health::Healthy);
    assert!(s.fail().is_some(), "the tenth failure trips");
}

#[test]
fn a_rate_exactly_at_the_threshold_opens_and_just_below_does_not() {
    let mut s = Sim::new(BreakerConfig {
        window: WindowKind::Count { calls: 4 },
        minimum_calls: 4,
        ..config()
    });
    // 1 of 4 (25 %), then the window slides past a success: 2 of 4 is exactly 50 %.
    for failed in [false, true, false] {
        assert_eq!(s.call(failed, FAST), None);
    }
    assert_eq!(s.ok(), None);
    assert_eq!(s.snap().failure_rate, Some(25.0));
    let t = s.fail().expect("50 % trips");
    assert_eq!(t.reason, Reason::FailureRate { rate: 50.0 });
}

#[test]
fn opens_after_the_slow_call_rate_threshold() {
    let mut s = Sim::new(config());
    // Exactly at the slow-call duration is not slow (strictly greater is).
    assert_eq!(s.call(false, Duration::from_secs(1)), None);
    for _ in 0..3 {
        assert_eq!(s.call(false, SLOW), None);
    }
    assert_eq!(s.call(false, SLOW), None, "4 of 5 slow: 80 % < 100 %");
    assert_eq!(s.snap().slow_call_rate, Some(80.0));
    assert_eq!(s.snap().health, Health::Degraded);
    // The window slides past the call that was not slow: 5 of 5.
    let t = s.call(false, SLOW).expect("100 % slow trips");
    let rate = 100.0;
    let opened = transition(
        State::Closed,
        State::Open,
        Reason::SlowCallRate { rate },
        Some(10),
    );
    assert_eq!(t, opened);
    assert_eq!(s.snap().failed_calls, 0);
}

#[test]
fn health_is_degraded_from_half_the_threshold() {
    let mut s = Sim::new(BreakerConfig {
        window: WindowKind::Count { calls: 10 },
        minimum_calls: 5,
        ..config()
    });
    for _ in 0..8 {
        s.ok();
    }
    s.fail();
    assert_eq!(s.snap().health, Health::Healthy, "1 of 9: 11 %");
    s.fail();
    assert_eq!(s.snap().failure_rate, Some(20.0));
    assert_eq!(s.snap().health, Health::Healthy, "20 % < 25 %");
    s.fail();
    assert_eq!(s.snap().failure_rate, Some(30.0));
    assert_eq!(s.snap().health, Health::Degraded, "30 % ≥ 25 %");
    s.fail();
    assert_eq!(
        s.fail().map(|t| t.to),
        Some(State::Open),
        "5 of the last 10"
    );
    let mut s = Sim::new(BreakerConfig {
        window: WindowKind::Count { calls: 4 },
        minimum_calls: 4,
        ..config()
    });
    for failed in [false, false, false, true] {
        s.call(failed, FAST);
    }
    assert_eq!(s.snap().failure_rate, Some(25.0));
    assert_eq!(s.snap().health, Health::Degraded, "25 % is half of 50 %");
}

#[test]
fn a_time_window_forgets_calls_older_than_its_length() {
    let mut s = Sim::new(BreakerConfig {
        window: WindowKind::Time { seconds: 10 },
        minimum_calls: 4,
        ..config()
    });
    for _ in 0..3 {
        assert_eq!(s.fail(), None);
        s.advance(Duration::from_millis(500));
    }
    // At 9.9 s the calls of second 0 and 1 still count.
    s.advance(Duration::from_millis(8_400));
    assert_eq!(s.snap().calls, 3);
    // At 10 s the calls of second 0 have left the window (read without recording).
    s.advance(Duration::from_millis(100));
    let snap = s.snap();
    assert_eq!((snap.calls, snap.failed_calls), (1, 1));
    // One more failure: 2 calls, below the minimum of 4.
    assert_eq!(s.fail(), None);
    assert_eq!(s.snap().calls, 2);
    s.fail();
    let t = s.fail().expect("4 failures within 10 s");
    assert_eq!(t.reason, Reason::FailureRate { rate: 100.0 });
    // A long idle gap empties the window of a new breaker entirely.
    let mut s = Sim::new(BreakerConfig {
        window: WindowKind::Time { seconds: 10 },
        minimum_calls: 4,
        ..config()
    });
    for _ in 0..3 {
        s.fail();
    }
    s.advance(Duration::from_secs(3_600));
    assert_eq!(s.snap().calls, 0);
    assert_eq!(s.fail(), None);
    assert_eq!(s.snap().calls, 1);
}

#[test]
fn a_bad_config_is_refused_with_its_field() {
    let err = Breaker::new(BreakerConfig {
        failure_rate_threshold: 0.0,
        ..config()
    })
    .expect_err("0 % is out of range");
    assert_eq!(err, ConfigError::FailureRateThreshold { value: 0.0 });
    assert!(err.to_string().contains("(0, 100]"));
}

#[test]
fn state_orders_and_names_are_fixed() {
    let states = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Disabled,
        State::ForcedOpen,
        State::MetricsOnly,
    ];
    let orders: Vec<u8> = states.iter().map(|s| s.order()).collect();
    assert_eq!(orders, [0, 1, 2, 3, 4, 5]);
    assert_eq!(State::HalfOpen.to_string(), "half_open");
    assert_eq!(Health::Recovery.as_str(), "recovery");
    assert_eq!(Reason::WaitElapsed.as_str(), "wait_elapsed");
}
