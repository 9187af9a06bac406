//! The reference model for the property test: a naive implementation of the
//! breaker's specification that keeps every recorded call in a `Vec` and recounts
//! the window from scratch on every question.

use std::time::{Duration, Instant};

use super::*;

/// One recorded call: the second it was recorded at, failed, slow.
type Call = (u64, bool, bool);

/// The reference model.
pub(super) struct Model {
    config: BreakerConfig,
    state: State,
    /// Bumped on every state change, like the breaker's; a permit is its number.
    generation: u64,
    origin: Option<Instant>,
    /// Every call recorded since the closed window was last emptied.
    closed: Vec<Call>,
    /// The probes recorded in the current half-open state.
    probes: Vec<Call>,
    probes_left: u32,
    open_until: Option<Instant>,
    tripped: (u64, u64, u64),
    attempts: u32,
    not_permitted: u64,
}

fn count(calls: &[Call]) -> (u64, u64, u64) {
    let n = calls.len() as u64;
    let failed = calls.iter().filter(|c| c.1).count() as u64;
    let slow = calls.iter().filter(|c| c.2).count() as u64;
    (n, failed, slow)
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

impl Model {
    pub(super) fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: State::Closed,
            generation: 0,
            origin: None,
            closed: Vec::new(),
            probes: Vec::new(),
            probes_left: 0,
            open_until: None,
            tripped: (0, 0, 0),
            attempts: 0,
            not_permitted: 0,
        }
    }

    fn second(&self, now: Instant) -> u64 {
        self.origin
            .map_or(0, |o| now.saturating_duration_since(o).as_secs())
    }

    /// The calls of the closed window as it is at `now`.
    fn closed_window(&self, now: Instant) -> (u64, u64, u64) {
        let second = self.second(now);
        match self.config.window {
            WindowKind::Count { calls } => {
                let skip = self.closed.len().saturating_sub(calls as usize);
                count(&self.closed[skip..])
            }
            WindowKind::Time { seconds } => {
                let live: Vec<Call> = self
                    .closed
                    .iter()
                    .copied()
                    .filter(|c| c.0 + u64::from(seconds) > second)
                    .collect();
                count(&live)
            }
        }
    }

    fn closed_minimum(&self) -> u64 {
        match self.config.window {
            WindowKind::Count { calls } => u64::from(self.config.minimum_calls.min(calls)),
            WindowKind::Time { .. } => u64::from(self.config.minimum_calls),
        }
    }

    fn exceeded(&self, (n, failed, slow): (u64, u64, u64), minimum: u64) -> Option<Reason> {
        if n < minimum {
            None
        } else if pct(failed, n) >= self.config.failure_rate_threshold {
            Some(Reason::FailureRate {
                rate: pct(failed, n),
            })
        } else if pct(slow, n) >= self.config.slow_call_rate_threshold {
            Some(Reason::SlowCallRate { rate: pct(slow, n) })
        } else {
            None
        }
    }

    /// The wait by repeated multiplication, capped at every step.
    fn wait(&self) -> Duration {
        let mut wait = self.config.wait_in_open;
        for _ in 1..self.attempts {
            wait = wait
                .mul_f64(self.config.wait_multiplier)
                .min(self.config.max_wait_in_open);
        }
        wait
    }

    fn change(&mut self, to: State, reason: Reason, wait: Option<Duration>) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        Transition {
            from,
            to,
            reason,
            wait,
        }
    }

    fn open(&mut self, reason: Reason, totals: (u64, u64, u64), now: Instant) -> Transition {
        self.attempts += 1;
        self.tripped = totals;
        let wait = self.wait();
        self.open_until = Some(now + wait);
        self.change(State::Open, reason, Some(wait))
    }

    fn refuse(&mut self, retry_after: Option<Duration>) -> NotPermitted {
        self.not_permitted += 1;
        NotPermitted {
            state: self.state,
            retry_after,
        }
    }

    pub(super) fn acquire(
        &mut self,
        now: Instant,
    ) -> Result<(u64, Option<Transition>), NotPermitted> {
        self.origin.get_or_insert(now);
        match self.state {
            State::Closed | State::Disabled | State::MetricsOnly => Ok((self.generation, None)),
            State::ForcedOpen => Err(self.refuse(None)),
            State::Open => {
                let until = self.open_until.expect("open has a deadline");
                if now < until {
                    return Err(self.refuse(Some(until - now)));
                }
                let t = self.change(State::HalfOpen, Reason::WaitElapsed, None);
                self.probes.clear();
                self.probes_left = self.config.permitted_calls_in_half_open - 1;
                Ok((self.generation, Some(t)))
            }
            State::HalfOpen if self.probes_left == 0 => Err(self.refuse(None)),
            State::HalfOpen => {
                self.probes_left -= 1;
                Ok((self.generation, None))
            }
        }
    }

    pub(super) fn record(
        &mut self,
        permit: u64,
        failed: bool,
        took: Duration,
        now: Instant,
    ) -> Option<Transition> {
        if permit != self.generation {
            return None;
        }
        self.origin.get_or_insert(now);
        let call = (
            self.second(now),
            failed,
            took > self.config.slow_call_duration,
        );
        match self.state {
            State::Closed => {
                self.closed.push(call);
                let totals = self.closed_window(now);
                let reason = self.exceeded(totals, self.closed_minimum())?;
                Some(self.open(reason, totals, now))
            }
            State::MetricsOnly => {
                self.closed.push(call);
                None
            }
            State::HalfOpen => {
                self.probes.push(call);
                let permitted = u64::from(self.config.permitted_calls_in_half_open);
                let totals = count(&self.probes);
                if totals.0 < permitted {
                    return None;
                }
                Some(match self.exceeded(totals, permitted) {
                    Some(reason) => self.open(reason, totals, now),
                    None => {
                        self.attempts = 0;
                        self.closed.clear();
                        let failure_rate = pct(totals.1, totals.0);
                        let slow_call_rate = pct(totals.2, totals.0);
                        let reason = Reason::ProbesPassed {
                            failure_rate,
                            slow_call_rate,
                        };
                        self.change(State::Closed, reason, None)
                    }
                })
            }
            _ => None,
        }
    }

    pub(super) fn release(&mut self, permit: u64) {
        if permit == self.generation && self.state == State::HalfOpen {
            self.probes_left += 1;
        }
    }

    pub(super) fn force(&mut self, target: ForcedState) -> Transition {
        self.attempts = 0;
        self.closed.clear();
        self.probes.clear();
        self.tripped = (0, 0, 0);
        let to = match target {
            ForcedState::Closed => State::Closed,
            ForcedState::ForcedOpen => State::ForcedOpen,
            ForcedState::Disabled => State::Disabled,
            ForcedState::MetricsOnly => State::MetricsOnly,
        };
        self.change(to, Reason::Forced, None)
    }

    pub(super) fn snapshot(&self, now: Instant) -> Snapshot {
        let permitted = u64::from(self.config.permitted_calls_in_half_open);
        let ((n, failed, slow), minimum) = match self.state {
            State::Closed | State::MetricsOnly => (self.closed_window(now), self.closed_minimum()),
            State::Open => (self.tripped, 1),
            State::HalfOpen => (count(&self.probes), permitted),
            State::ForcedOpen | State::Disabled => ((0, 0, 0), u64::MAX),
        };
        let failure_rate = (n >= minimum).then(|| pct(failed, n));
        let slow_call_rate = (n >= minimum).then(|| pct(slow, n));
        let c = &self.config;
        let health = match self.state {
            State::Closed | State::MetricsOnly
                if failure_rate.is_some_and(|r| r >= c.failure_rate_threshold / 2.0)
                    || slow_call_rate.is_some_and(|r| r >= c.slow_call_rate_threshold / 2.0) =>
            {
                Health::Degraded
            }
            State::Closed | State::MetricsOnly | State::Disabled => Health::Healthy,
            State::Open | State::ForcedOpen => Health::Failed,
            State::HalfOpen => Health::Recovery,
        };
        let retry_after = match (self.state, self.open_until) {
            (State::Open, Some(until)) => Some(until.saturating_duration_since(now)),
            _ => None,
        };
        let probes_in_flight = match self.state {
            State::HalfOpen => {
                self.config.permitted_calls_in_half_open - self.probes_left - n as u32
            }
            _ => 0,
        };
        Snapshot {
            state: self.state,
            health,
            calls: n,
            failed_calls: failed,
            slow_calls: slow,
            failure_rate,
            slow_call_rate,
            not_permitted: self.not_permitted,
            attempts: self.attempts,
            retry_after,
            probes_in_flight,
        }
    }
}
