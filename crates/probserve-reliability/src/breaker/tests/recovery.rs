//! Leaving open: the wait, half-open probes and their permits, the growing wait,
//! stale permits and the operator's forced states.

use std::time::Duration;

use super::*;

#[test]
fn half_opens_after_the_wait_and_closes_after_good_probes() {
    let mut s = Sim::new(config());
    s.trip();
    s.advance(Duration::from_millis(9_999));
    let refused = s.breaker.try_acquire(s.now).expect_err("still open");
    assert_eq!(refused.retry_after, Some(Duration::from_millis(1)));
    assert_eq!(s.snap().retry_after, Some(Duration::from_millis(1)));
    s.advance(Duration::from_millis(1));

    let permit = s.breaker.try_acquire(s.now).expect("the wait has passed");
    let half_opened = transition(State::Open, State::HalfOpen, Reason::WaitElapsed, None);
    assert_eq!(permit.transition(), Some(half_opened));
    assert_eq!(s.snap().health, Health::Recovery);
    assert_eq!(s.snap().probes_in_flight, 1);
    let good = Outcome {
        failed: false,
        duration: FAST,
    };
    assert_eq!(s.breaker.record(permit, good, s.now), None);
    assert_eq!(s.ok(), None);
    assert_eq!(s.snap().calls, 2);
    let t = s.ok().expect("the last probe decides");
    let reason = Reason::ProbesPassed {
        failure_rate: 0.0,
        slow_call_rate: 0.0,
    };
    assert_eq!(t, transition(State::HalfOpen, State::Closed, reason, None));
    let snap = s.snap();
    assert_eq!((snap.state, snap.health), (State::Closed, Health::Healthy));
    assert_eq!((snap.calls, snap.attempts), (0, 0));
}

#[test]
fn bad_probes_reopen_with_a_longer_wait_until_the_cap_and_a_close_resets_it() {
    let mut s = Sim::new(config());
    assert_eq!(s.trip().wait, Some(Duration::from_secs(10)));
    for (attempt, wait) in [(2, 20), (3, 40), (4, 40)] {
        s.advance(s.snap().retry_after.expect("open"));
        assert_eq!(s.ok(), None);
        assert_eq!(s.state(), State::HalfOpen);
        assert_eq!(s.fail(), None, "no decision before every probe finished");
        let t = s.fail().expect("2 of 3 probes failed");
        let reason = Reason::FailureRate { rate: 200.0 / 3.0 };
        assert_eq!(
            t,
            transition(State::HalfOpen, State::Open, reason, Some(wait))
        );
        assert_eq!(s.snap().attempts, attempt);
        assert_eq!(s.snap().retry_after, Some(Duration::from_secs(wait)));
    }
    s.advance(Duration::from_secs(40));
    for _ in 0..3 {
        s.ok();
    }
    assert_eq!(s.state(), State::Closed);
    assert_eq!(
        s.trip().wait,
        Some(Duration::from_secs(10)),
        "attempts reset"
    );
}

#[test]
fn only_the_permitted_probes_pass_and_a_released_one_can_be_reused() {
    let mut s = Sim::new(config());
    s.trip();
    s.advance(Duration::from_secs(10));
    let p1 = s.breaker.try_acquire(s.now).expect("probe 1");
    let p2 = s.breaker.try_acquire(s.now).expect("probe 2");
    let p3 = s.breaker.try_acquire(s.now).expect("probe 3");
    let refused = s.breaker.try_acquire(s.now).expect_err("a fourth");
    assert_eq!(
        refused,
        NotPermitted {
            state: State::HalfOpen,
            retry_after: None
        }
    );
    assert_eq!(s.snap().probes_in_flight, 3);

    let bad = Outcome {
        failed: true,
        duration: FAST,
    };
    assert_eq!(s.breaker.record(p1, bad, s.now), None);
    // p2 never ran: its slot goes back.
    s.breaker.release(p2);
    assert_eq!(s.snap().probes_in_flight, 1);
    let p4 = s.breaker.try_acquire(s.now).expect("the released slot");
    assert!(s.breaker.try_acquire(s.now).is_err());
    let good = Outcome {
        failed: false,
        duration: FAST,
    };
    assert_eq!(s.breaker.record(p3, good, s.now), None);
    // 1 of 3 failed (33 %): closes.
    let t = s.breaker.record(p4, good, s.now).expect("decides");
    assert_eq!(t.to, State::Closed);
    assert_eq!(s.snap().not_permitted, 2);
}

#[test]
fn a_permit_from_an_earlier_state_is_ignored() {
    let mut s = Sim::new(config());
    let old = s.breaker.try_acquire(s.now).expect("closed");
    let old_too = s.breaker.try_acquire(s.now).expect("closed");
    s.trip();
    s.advance(Duration::from_secs(10));
    let probe = s.breaker.try_acquire(s.now).expect("half-open");
    // A call admitted while closed finishing now is not a probe.
    let bad = Outcome {
        failed: true,
        duration: FAST,
    };
    assert_eq!(s.breaker.record(old, bad, s.now), None);
    s.breaker.release(old_too);
    let snap = s.snap();
    assert_eq!((snap.calls, snap.probes_in_flight), (0, 1));
    s.breaker.release(probe);
    assert_eq!(s.snap().probes_in_flight, 0);
}

#[test]
fn forced_open_refuses_every_call_until_forced_closed() {
    let mut s = Sim::new(config());
    s.fail();
    let t = s.breaker.force(ForcedState::ForcedOpen);
    assert_eq!(
        t,
        transition(State::Closed, State::ForcedOpen, Reason::Forced, None)
    );
    for _ in 0..3 {
        s.advance(Duration::from_secs(3_600));
        let refused = s.breaker.try_acquire(s.now).expect_err("forced open");
        assert_eq!(
            refused,
            NotPermitted {
                state: State::ForcedOpen,
                retry_after: None
            }
        );
    }
    let snap = s.snap();
    assert_eq!(
        (snap.state, snap.health, snap.calls),
        (State::ForcedOpen, Health::Failed, 0)
    );
    assert_eq!(snap.not_permitted, 3);

    let t = s.breaker.force(ForcedState::Closed);
    assert_eq!(
        t,
        transition(State::ForcedOpen, State::Closed, Reason::Forced, None)
    );
    assert_eq!(s.snap().calls, 0, "a fresh window");
    assert!(s.trip().to == State::Open, "and the breaker works again");
}

#[test]
fn forcing_an_open_breaker_resets_its_attempts() {
    let mut s = Sim::new(config());
    s.trip();
    s.advance(Duration::from_secs(10));
    for _ in 0..3 {
        s.fail();
    }
    assert_eq!(s.snap().attempts, 2);
    let t = s.breaker.force(ForcedState::Closed);
    assert_eq!((t.from, t.to), (State::Open, State::Closed));
    assert_eq!(s.trip().wait, Some(Duration::from_secs(10)));
    // Forcing the state it is in still returns a transition.
    s.breaker.force(ForcedState::Disabled);
    let t = s.breaker.force(ForcedState::Disabled);
    assert_eq!((t.from, t.to), (State::Disabled, State::Disabled));
}

#[test]
fn disabled_lets_every_call_through_and_counts_nothing() {
    let mut s = Sim::new(config());
    s.breaker.force(ForcedState::Disabled);
    for _ in 0..50 {
        assert_eq!(s.fail(), None);
    }
    let snap = s.snap();
    assert_eq!(
        (snap.state, snap.health, snap.calls),
        (State::Disabled, Health::Healthy, 0)
    );
}

#[test]
fn metrics_only_counts_every_call_but_never_trips() {
    let mut s = Sim::new(config());
    s.breaker.force(ForcedState::MetricsOnly);
    for _ in 0..50 {
        assert_eq!(s.fail(), None);
    }
    let snap = s.snap();
    assert_eq!(
        (snap.state, snap.health),
        (State::MetricsOnly, Health::Degraded)
    );
    assert_eq!((snap.calls, snap.failure_rate), (5, Some(100.0)));
}
