//! A circuit breaker for one model version, with resilience4j's semantics, as a
//! plain state machine: no locks, no async, no clock of its own. Every method that
//! depends on time takes `now`, so tests step it call by call with a fake time and
//! the server passes `tokio::time::Instant::now().into_std()`.
//!
//! Not yet wired into the server (see the crate docs).
//!
//! # States
//! - **Closed**: calls pass and are recorded in a sliding window ([`WindowKind`]).
//!   Once the window holds the minimum number of calls, a failure rate or a
//!   slow-call rate *at or above* its threshold trips the breaker to open.
//! - **Open**: calls are refused with [`NotPermitted`] and a retry hint. The wait
//!   is `wait_in_open · multiplier^(attempts − 1)` up to `max_wait_in_open`, where
//!   `attempts` counts the trips since the breaker last closed. The first
//!   [`Breaker::try_acquire`] after the wait moves it to half-open (lazily, as
//!   resilience4j does without its scheduler).
//! - **HalfOpen**: `permitted_calls_in_half_open` probe permits, counted in a fresh
//!   count window. The decision waits for all of them: any threshold reached →
//!   open again with a longer wait; otherwise → closed with an empty window and
//!   `attempts` back at 0. A probe permit that is given back with
//!   [`Breaker::release`] can be handed out again.
//! - **ForcedOpen**, **Disabled**, **MetricsOnly**: set by an operator with
//!   [`Breaker::force`]; the breaker stays there until forced back to closed.
//!
//! [`Health`] maps these states onto the product's Healthy / Degraded / Failed /
//! Recovery.
//!
//! # Permits
//! A [`Permit`] belongs to the state it was acquired in. When the state has changed
//! since (a trip, a recovery, an operator's force), recording or releasing it does
//! nothing: the call describes a state that is gone, and counting a call admitted
//! while closed as a probe would let an old call decide the recovery.
//!
//! Every state change is returned as a [`Transition`]: by [`Breaker::record`], by
//! [`Breaker::force`], and (open → half-open) on the permit returned by
//! [`Breaker::try_acquire`] ([`Permit::transition`]).

mod config;
mod state;
mod window;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use config::{
    BreakerConfig, ConfigError, DEFAULT_SLOW_CALL_DURATION, MAX_WAIT_IN_OPEN, MAX_WINDOW_CALLS,
    MAX_WINDOW_SECONDS, WindowKind,
};
pub use state::{ForcedState, Health, NotPermitted, Outcome, Reason, Snapshot, State, Transition};

use window::{CountWindow, Sample, TimeWindow, Totals, Window};

/// Leave to make one call, from [`Breaker::try_acquire`]; give it back with
/// [`Breaker::record`] once the call has finished, or with [`Breaker::release`] if
/// the call never ran or should not count.
#[must_use = "a permit must be given back with `record` or `release`"]
#[derive(Debug)]
pub struct Permit {
    generation: u64,
    transition: Option<Transition>,
}

impl Permit {
    /// The transition that acquiring this permit caused (open → half-open), if
    /// any.
    pub fn transition(&self) -> Option<Transition> {
        self.transition
    }
}

/// The state with the data that only it has.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { permits_left: u32 },
    Disabled,
    ForcedOpen,
    MetricsOnly,
}

/// A circuit breaker for one model version (see the module docs).
///
/// Methods take `&mut self`; the server keeps each breaker behind its own mutex,
/// held only for these O(1) updates.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    minimum_calls: u64,
    phase: Phase,
    /// Bumped on every state change; a permit from an older generation is stale.
    generation: u64,
    /// The time second 0 of the time window stands for: the first `now` seen.
    origin: Option<Instant>,
    closed: Window,
    probes: CountWindow,
    /// The window's totals when the breaker last tripped, shown while open.
    tripped: Totals,
    attempts: u32,
    not_permitted: u64,
}

impl Breaker {
    /// A closed breaker with an empty window.
    ///
    /// # Errors
    /// The configuration's first field out of range ([`BreakerConfig::validate`]).
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let closed = match config.window {
            WindowKind::Count { calls } => Window::Count(CountWindow::new(calls as usize)),
            WindowKind::Time { seconds } => Window::Time(TimeWindow::new(seconds as usize)),
        };
        Ok(Self {
            minimum_calls: config.effective_minimum_calls(),
            probes: CountWindow::new(config.permitted_calls_in_half_open as usize),
            config,
            phase: Phase::Closed,
            generation: 0,
            origin: None,
            closed,
            tripped: Totals::default(),
            attempts: 0,
            not_permitted: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state. An open breaker whose wait has passed still says
    /// [`State::Open`] until the next [`Breaker::try_acquire`].
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
            Phase::Disabled => State::Disabled,
            Phase::ForcedOpen => State::ForcedOpen,
            Phase::MetricsOnly => State::MetricsOnly,
        }
    }

    /// Asks to make one call at `now`.
    ///
    /// # Errors
    /// [`NotPermitted`] when open (before the wait has passed), forced open, or
    /// half-open with every probe permit out. Each refusal is counted.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Permit, NotPermitted> {
        self.origin.get_or_insert(now);
        match self.phase {
            Phase::Closed | Phase::Disabled | Phase::MetricsOnly => Ok(self.permit(None)),
            Phase::Open { until } if now >= until => {
                let transition = self.half_open();
                self.take_probe_permit();
                Ok(self.permit(Some(transition)))
            }
            Phase::Open { until } => Err(self.refuse(Some(until.saturating_duration_since(now)))),
            Phase::HalfOpen { permits_left } if permits_left > 0 => {
                self.take_probe_permit();
                Ok(self.permit(None))
            }
            Phase::HalfOpen { .. } | Phase::ForcedOpen => Err(self.refuse(None)),
        }
    }

    /// Records a finished call; returns the transition it caused, if any.
    pub fn record(&mut self, permit: Permit, outcome: Outcome, now: Instant) -> Option<Transition> {
        if permit.generation != self.generation {
            return None;
        }
        self.origin.get_or_insert(now);
        let sample = Sample {
            failed: outcome.failed,
            slow: outcome.duration > self.config.slow_call_duration,
        };
        match self.phase {
            Phase::Closed => {
                let second = self.second(now);
                self.closed.record(sample, second);
                let totals = self.closed.totals_at(second);
                let reason = self.exceeded(totals, self.minimum_calls)?;
                Some(self.trip(State::Closed, reason, totals, now))
            }
            Phase::MetricsOnly => {
                let second = self.second(now);
                self.closed.record(sample, second);
                None
            }
            Phase::HalfOpen { .. } => {
                self.probes.record(sample);
                let totals = self.probes.totals();
                let permitted = u64::from(self.config.permitted_calls_in_half_open);
                if totals.calls < permitted {
                    return None;
                }
                Some(match self.exceeded(totals, permitted) {
                    Some(reason) => self.trip(State::HalfOpen, reason, totals, now),
                    None => self.close(totals),
                })
            }
            // No permit of the current generation exists when open or forced open,
            // and a disabled breaker counts nothing.
            Phase::Open { .. } | Phase::ForcedOpen | Phase::Disabled => None,
        }
    }

    /// Gives back a permit whose call never ran or should count neither way; in
    /// half-open its probe slot can be handed out again.
    pub fn release(&mut self, permit: Permit) {
        if permit.generation != self.generation {
            return;
        }
        if let Phase::HalfOpen { permits_left } = &mut self.phase {
            *permits_left += 1;
        }
    }

    /// Puts the breaker in `target` at an operator's request. The window is emptied,
    /// the wait in open goes back to its first value, and every permit out becomes
    /// stale. Always returns a transition, even to the same state.
    pub fn force(&mut self, target: ForcedState) -> Transition {
        let from = self.state();
        self.generation += 1;
        self.attempts = 0;
        self.closed.reset();
        self.probes.reset();
        self.tripped = Totals::default();
        self.phase = match target {
            ForcedState::Closed => Phase::Closed,
            ForcedState::ForcedOpen => Phase::ForcedOpen,
            ForcedState::Disabled => Phase::Disabled,
            ForcedState::MetricsOnly => Phase::MetricsOnly,
        };
        Transition {
            from,
            to: self.state(),
            reason: Reason::Forced,
            wait: None,
        }
    }

    /// The state and counters at `now` (a time window is read as it would be at
    /// `now`, without being moved).
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let permitted = self.config.permitted_calls_in_half_open;
        let (totals, minimum) = match self.phase {
            Phase::Closed | Phase::MetricsOnly => {
                (self.closed.totals_at(self.second(now)), self.minimum_calls)
            }
            Phase::Open { .. } => (self.tripped, 1),
            Phase::HalfOpen { .. } => (self.probes.totals(), u64::from(permitted)),
            Phase::ForcedOpen | Phase::Disabled => (Totals::default(), u64::MAX),
        };
        let rated = totals.calls >= minimum;
        let failure_rate = rated.then(|| totals.failure_rate());
        let slow_call_rate = rated.then(|| totals.slow_call_rate());
        let health = match self.phase {
            Phase::Closed | Phase::MetricsOnly => {
                let degraded = failure_rate
                    .is_some_and(|r| r >= self.config.failure_rate_threshold / 2.0)
                    || slow_call_rate
                        .is_some_and(|r| r >= self.config.slow_call_rate_threshold / 2.0);
                if degraded {
                    Health::Degraded
                } else {
                    Health::Healthy
                }
            }
            Phase::Disabled => Health::Healthy,
            Phase::Open { .. } | Phase::ForcedOpen => Health::Failed,
            Phase::HalfOpen { .. } => Health::Recovery,
        };
        let (retry_after, probes_in_flight) = match self.phase {
            Phase::Open { until } => (Some(until.saturating_duration_since(now)), 0),
            Phase::HalfOpen { permits_left } => {
                // Probes handed out = permitted − left; those recorded are in the
                // probe window (never more than permitted, so this fits a u32).
                let recorded = u32::try_from(totals.calls).unwrap_or(u32::MAX);
                let out = permitted.saturating_sub(permits_left);
                (None, out.saturating_sub(recorded))
            }
            _ => (None, 0),
        };
        Snapshot {
            state: self.state(),
            health,
            calls: totals.calls,
            failed_calls: totals.failed,
            slow_calls: totals.slow,
            failure_rate,
            slow_call_rate,
            not_permitted: self.not_permitted,
            attempts: self.attempts,
            retry_after,
            probes_in_flight,
        }
    }

    fn permit(&self, transition: Option<Transition>) -> Permit {
        Permit {
            generation: self.generation,
            transition,
        }
    }

    fn refuse(&mut self, retry_after: Option<Duration>) -> NotPermitted {
        self.not_permitted += 1;
        NotPermitted {
            state: self.state(),
            retry_after,
        }
    }

    fn take_probe_permit(&mut self) {
        if let Phase::HalfOpen { permits_left } = &mut self.phase {
            *permits_left = permits_left.saturating_sub(1);
        }
    }

    /// Whole seconds from the origin to `now` (0 before the origin).
    fn second(&self, now: Instant) -> u64 {
        self.origin
            .map_or(0, |origin| now.saturating_duration_since(origin).as_secs())
    }

    /// Which threshold, if any, `totals` reaches (checked only from `minimum`
    /// calls on; the failure rate is reported first when both are reached).
    fn exceeded(&self, totals: Totals, minimum: u64) -> Option<Reason> {
        if totals.calls < minimum {
            return None;
        }
        let rate = totals.failure_rate();
        if rate >= self.config.failure_rate_threshold {
            return Some(Reason::FailureRate { rate });
        }
        let rate = totals.slow_call_rate();
        if rate >= self.config.slow_call_rate_threshold {
            return Some(Reason::SlowCallRate { rate });
        }
        None
    }

    fn trip(&mut self, from: State, reason: Reason, totals: Totals, now: Instant) -> Transition {
        self.generation += 1;
        self.attempts = self.attempts.saturating_add(1);
        self.tripped = totals;
        let wait = self.config.wait_for_attempt(self.attempts);
        // The wait is at most 24 h (validated), so this cannot overflow in practice;
        // if it did, the breaker would half-open at once rather than panic.
        let until = now.checked_add(wait).unwrap_or(now);
        self.phase = Phase::Open { until };
        Transition {
            from,
            to: State::Open,
            reason,
            wait: Some(wait),
        }
    }

    fn half_open(&mut self) -> Transition {
        self.generation += 1;
        self.probes.reset();
        self.phase = Phase::HalfOpen {
            permits_left: self.config.permitted_calls_in_half_open,
        };
        Transition {
            from: State::Open,
            to: State::HalfOpen,
            reason: Reason::WaitElapsed,
            wait: None,
        }
    }

    fn close(&mut self, probes: Totals) -> Transition {
        self.generation += 1;
        self.attempts = 0;
        self.closed.reset();
        self.tripped = Totals::default();
        self.phase = Phase::Closed;
        Transition {
            from: State::HalfOpen,
            to: State::Closed,
            reason: Reason::ProbesPassed {
                failure_rate: probes.failure_rate(),
                slow_call_rate: probes.slow_call_rate(),
            },
            wait: None,
        }
    }
}
