//! Tests of the breaker.
//!
//! - [`closed`] and [`recovery`] step through calls one at a time with a fake time,
//!   in the manner of resilience4j's `CircuitBreakerStateMachineTest`: after each
//!   call the state and the counters are checked.
//! - [`properties`] runs random operation sequences against [`model`], a naive
//!   reference implementation of the same specification.

mod closed;
mod model;
mod properties;
mod recovery;

use std::time::{Duration, Instant};

use super::*;

const FAST: Duration = Duration::from_millis(10);
const SLOW: Duration = Duration::from_millis(1_500);

/// A count window of 5 calls, minimum 5, failure 50 %, slow 100 % over 1 s,
/// 3 probes, wait 10 s doubling up to 40 s.
fn config() -> BreakerConfig {
    BreakerConfig {
        window: WindowKind::Count { calls: 5 },
        minimum_calls: 5,
        failure_rate_threshold: 50.0,
        slow_call_rate_threshold: 100.0,
        slow_call_duration: Duration::from_secs(1),
        permitted_calls_in_half_open: 3,
        wait_in_open: Duration::from_secs(10),
        wait_multiplier: 2.0,
        max_wait_in_open: Duration::from_secs(40),
    }
}

/// A breaker and a fake time that only moves when told to.
struct Sim {
    breaker: Breaker,
    now: Instant,
}

impl Sim {
    fn new(config: BreakerConfig) -> Self {
        Self {
            breaker: Breaker::new(config).expect("valid config"),
            now: Instant::now(),
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Acquires (which must succeed) and records one call.
    fn call(&mut self, failed: bool, duration: Duration) -> Option<Transition> {
        let permit = self.breaker.try_acquire(self.now).expect("permitted");
        let outcome = Outcome { failed, duration };
        self.breaker.record(permit, outcome, self.now)
    }

    fn ok(&mut self) -> Option<Transition> {
        self.call(false, FAST)
    }

    fn fail(&mut self) -> Option<Transition> {
        self.call(true, FAST)
    }

    fn snap(&self) -> Snapshot {
        self.breaker.snapshot(self.now)
    }

    fn state(&self) -> State {
        self.breaker.state()
    }

    /// Trips a fresh closed breaker of [`config`] with five failures.
    fn trip(&mut self) -> Transition {
        for _ in 0..4 {
            assert_eq!(self.fail(), None);
        }
        self.fail().expect("the fifth failure trips")
    }
}

fn transition(from: State, to: State, reason: Reason, wait: Option<u64>) -> Transition {
    Transition {
        from,
        to,
        reason,
        wait: wait.map(Duration::from_secs),
    }
}
