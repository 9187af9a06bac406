//! The breaker's vocabulary: its states and their product names, what a call
//! reports, the transitions it returns, the reason a call is refused, and the
//! snapshot a health report reads.

use std::fmt;
use std::time::Duration;

/// A breaker's state, as in resilience4j's `CircuitBreaker.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass and are counted; the breaker trips when a threshold is reached.
    Closed,
    /// Tripped: calls are refused until the wait in open has passed.
    Open,
    /// The wait has passed: a fixed number of probe calls pass, and their outcome
    /// decides between closed and open.
    HalfOpen,
    /// Set by an operator: every call passes, nothing is counted, no transitions.
    Disabled,
    /// Set by an operator: every call is refused, no transitions.
    ForcedOpen,
    /// Set by an operator: every call passes and is counted, but the breaker never
    /// trips.
    MetricsOnly,
}

impl State {
    /// A fixed number per state for a metric gauge, resilience4j's `order`
    /// (stable whatever the declaration order).
    pub fn order(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::Disabled => 3,
            State::ForcedOpen => 4,
            State::MetricsOnly => 5,
        }
    }

    /// The state's name in snake case, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state an operator can put the breaker in with
/// [`Breaker::force`](super::Breaker::force).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForcedState {
    /// Back to automatic operation: closed, with an empty window and the wait in
    /// open back at its first value (resilience4j's `reset`).
    Closed,
    /// Refuse every call until the operator says otherwise.
    ForcedOpen,
    /// Let every call through and count nothing.
    Disabled,
    /// Let every call through and count them, but never trip.
    MetricsOnly,
}

/// The product's name for a breaker's condition (the seed's deployment guide).
///
/// | breaker state | health |
/// |---|---|
/// | Closed or MetricsOnly, below the minimum calls or both rates below half their thresholds | Healthy |
/// | Closed or MetricsOnly, failure or slow-call rate at or above half its threshold | Degraded |
/// | Open, ForcedOpen | Failed |
/// | HalfOpen | Recovery |
/// | Disabled (nothing is measured) | Healthy |
///
/// Degraded is a signal only: the calls still pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Serving normally.
    Healthy,
    /// Serving, with a failure or slow-call rate halfway to tripping.
    Degraded,
    /// Not serving: the breaker is open or forced open.
    Failed,
    /// Probing: a few calls pass to find out whether the version has recovered.
    Recovery,
}

impl Health {
    /// The health's name in snake case, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failed => "failed",
            Health::Recovery => "recovery",
        }
    }
}

/// What a finished call reports to [`Breaker::record`](super::Breaker::record).
///
/// A call that should count neither way (a client error, a cancelled call, a shed
/// call) is not recorded: its permit is given back with
/// [`Breaker::release`](super::Breaker::release).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The call failed in a way that is the version's fault (panic, non-finite
    /// output, our own timeout, an internal error, an implausible output).
    pub failed: bool,
    /// How long the call took; over the slow-call threshold it counts as slow,
    /// whether it failed or not.
    pub duration: Duration,
}

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// The failure rate (percent) reached its threshold: closed or half-open →
    /// open.
    FailureRate {
        /// The window's failure rate when it tripped.
        rate: f64,
    },
    /// The slow-call rate (percent) reached its threshold: closed or half-open →
    /// open.
    SlowCallRate {
        /// The window's slow-call rate when it tripped.
        rate: f64,
    },
    /// The wait in open has passed: open → half-open.
    WaitElapsed,
    /// Every probe call finished with both rates below their thresholds: half-open
    /// → closed.
    ProbesPassed {
        /// The probes' failure rate (percent).
        failure_rate: f64,
        /// The probes' slow-call rate (percent).
        slow_call_rate: f64,
    },
    /// An operator forced the state.
    Forced,
}

impl Reason {
    /// The reason's name in snake case, for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::FailureRate { .. } => "failure_rate",
            Reason::SlowCallRate { .. } => "slow_call_rate",
            Reason::WaitElapsed => "wait_elapsed",
            Reason::ProbesPassed { .. } => "probes_passed",
            Reason::Forced => "forced",
        }
    }
}

/// A change of state, returned by the call that caused it so that the caller can
/// log it, count it and persist it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after (equal to `from` only when an operator forces the state the
    /// breaker is already in, which still resets it).
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When the new state is [`State::Open`]: how long calls will be refused.
    pub wait: Option<Duration>,
}

/// Why [`Breaker::try_acquire`](super::Breaker::try_acquire) refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call not permitted: the circuit breaker is {state}")]
pub struct NotPermitted {
    /// The breaker's state: open, half-open with every probe out, or forced open.
    pub state: State,
    /// When open: how long until the breaker half-opens. `None` when forced open
    /// (an operator decides) or half-open with every probe out (it depends on the
    /// probes); the caller picks its own retry hint then.
    pub retry_after: Option<Duration>,
}

/// A breaker's state and counters at one instant, for a health report or metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// The state's product name.
    pub health: Health,
    /// Calls in the window that counts now: the closed window when closed or
    /// metrics-only, the probes when half-open, the window that tripped when open,
    /// none when forced open or disabled.
    pub calls: u64,
    /// Of those, failed calls.
    pub failed_calls: u64,
    /// Of those, slow calls.
    pub slow_calls: u64,
    /// Failed calls as a percentage, or `None` below the minimum number of calls.
    pub failure_rate: Option<f64>,
    /// Slow calls as a percentage, or `None` below the minimum number of calls.
    pub slow_call_rate: Option<f64>,
    /// Calls refused since the breaker was created (a counter for this process;
    /// never reset).
    pub not_permitted: u64,
    /// Trips since the breaker last closed; the wait in open grows with it.
    pub attempts: u32,
    /// When open: time left until it half-opens.
    pub retry_after: Option<Duration>,
    /// When half-open: probe permits handed out and not yet recorded or released.
    pub probes_in_flight: u32,
}
