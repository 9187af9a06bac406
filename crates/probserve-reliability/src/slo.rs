//! SLOs and error budgets: an availability or latency objective, an event counter
//! in time buckets, burn rates, the SRE Workbook's multiwindow, multi-burn-rate
//! alerts ("Alerting on SLOs", Table 5-8) and the budget left over the SLO period.
//!
//! Like the breaker, this is a plain data structure that takes `now` on every call;
//! not yet wired into the server (see the crate docs).
//!
//! # Arithmetic
//! - The **error budget** is `1 − target`: a 99.9 % objective allows 0.1 % bad
//!   events.
//! - The **burn rate** over a window is `(bad / total) / (1 − target)`: 1 spends
//!   the budget exactly over the period, 14.4 spends 2 % of a 30-day budget in one
//!   hour ([`budget_consumed`]).
//! - An **alert** fires when the burn rate is strictly above its threshold (the
//!   Workbook's `>`) over both its long and its short window; the short window
//!   (1/12 of the long one) makes it stop about one short window after the errors
//!   stop. The default rules are [`WORKBOOK_ALERTS`].
//! - The **budget remaining** is `1 − bad / ((1 − target) · total)` over the
//!   period: 1 when nothing was spent, 0 when it is all spent, negative when
//!   overspent.
//!
//! # Memory and what is retained
//! Events are counted in two rings of buckets, each bucket a pair of counters:
//! one-minute buckets over the last 6 hours (360 buckets, for the 5 min, 30 min,
//! 1 h and 6 h windows) and one-hour buckets over the whole period (720 buckets for
//! 30 days, for the 3-day window and the budget). That is about 17 KB per objective
//! whatever the traffic. A window is its bucket count's worth of buckets ending
//! with the current, partial one, so it covers between `k − 1` and `k` bucket
//! widths of time.
//!
//! The counters live in the process: the budget is computed over what this
//! process has retained, that is the period or the time since the tracker's first
//! event if shorter ([`SloReport::retained`]). A restart starts the budget afresh.

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use crate::breaker::Outcome;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
/// The one-minute buckets cover this much time.
pub const FINE_SPAN: Duration = Duration::from_secs(6 * 3_600);
/// The longest SLO period a tracker accepts.
pub const MAX_PERIOD: Duration = Duration::from_secs(90 * 24 * 3_600);
/// The default SLO period.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 24 * 3_600);

/// What an SLO promises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// This fraction of calls (e.g. 0.999) do not fail; a failed
    /// [`Outcome`] is a bad event.
    Availability {
        /// The fraction of good events, in (0, 1).
        target: f64,
    },
    /// This fraction of calls finish within `threshold`; a call that took longer,
    /// failed or not, is a bad event.
    Latency {
        /// The fraction of good events, in (0, 1).
        target: f64,
        /// The longest a good call may take.
        threshold: Duration,
    },
}

impl Objective {
    /// The fraction of events that must be good.
    pub fn target(&self) -> f64 {
        match *self {
            Objective::Availability { target } | Objective::Latency { target, .. } => target,
        }
    }

    /// The error budget: the fraction of events that may be bad, `1 − target`.
    pub fn budget(&self) -> f64 {
        1.0 - self.target()
    }

    /// Whether `outcome` is a bad event for this objective.
    pub fn is_bad(&self, outcome: Outcome) -> bool {
        match *self {
            Objective::Availability { .. } => outcome.failed,
            Objective::Latency { threshold, .. } => outcome.duration > threshold,
        }
    }
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Wake someone up.
    Page,
    /// Handle within working hours.
    Ticket,
}

impl Severity {
    /// The severity's name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One multiwindow burn-rate alert: it fires when the burn rate is above
/// `burn_rate` over both windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertRule {
    /// How urgent.
    pub severity: Severity,
    /// The window that measures how much budget is being spent.
    pub long_window: Duration,
    /// The window that makes the alert stop soon after the errors stop.
    pub short_window: Duration,
    /// The burn-rate threshold.
    pub burn_rate: f64,
}

/// The Workbook's recommended alerts for a 30-day, 99.9 % SLO (Table 5-8):
/// page at 14.4 over 1 h and 5 min (2 % of the budget spent), page at 6 over 6 h
/// and 30 min (5 %), ticket at 1 over 3 days and 6 h (10 %).
pub const WORKBOOK_ALERTS: [AlertRule; 3] = [
    AlertRule {
        severity: Severity::Page,
        long_window: HOUR,
        short_window: Duration::from_secs(5 * 60),
        burn_rate: 14.4,
    },
    AlertRule {
        severity: Severity::Page,
        long_window: Duration::from_secs(6 * 3_600),
        short_window: Duration::from_secs(30 * 60),
        burn_rate: 6.0,
    },
    AlertRule {
        severity: Severity::Ticket,
        long_window: Duration::from_secs(3 * 24 * 3_600),
        short_window: Duration::from_secs(6 * 3_600),
        burn_rate: 1.0,
    },
];

/// The fraction of a period's error budget that a constant `burn_rate` spends in
/// `window`: `burn_rate · window / period` (14.4 for 1 h of 30 days is 0.02).
pub fn budget_consumed(burn_rate: f64, window: Duration, period: Duration) -> f64 {
    burn_rate * window.as_secs_f64() / period.as_secs_f64()
}

/// An SLO: the objective, its period and its alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct SloConfig {
    /// What is promised.
    pub objective: Objective,
    /// The period the budget is counted over: whole hours, at most
    /// [`MAX_PERIOD`].
    pub period: Duration,
    /// The alerts to evaluate. Windows must be whole minutes up to
    /// [`FINE_SPAN`], whole hours beyond it, and no longer than the period.
    pub alerts: Vec<AlertRule>,
}

impl SloConfig {
    /// `objective` over [`DEFAULT_PERIOD`] (30 days, the Workbook's) with
    /// [`WORKBOOK_ALERTS`].
    pub fn new(objective: Objective) -> Self {
        Self {
            objective,
            period: DEFAULT_PERIOD,
            alerts: WORKBOOK_ALERTS.to_vec(),
        }
    }

    /// Checks the objective, the period and every alert.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn validate(&self) -> Result<(), SloError> {
        let target = self.objective.target();
        if !(target > 0.0 && target < 1.0) {
            return Err(SloError::Target { value: target });
        }
        if let Objective::Latency { threshold, .. } = self.objective
            && threshold.is_zero()
        {
            return Err(SloError::ZeroLatencyThreshold);
        }
        let period = self.period;
        if period.is_zero() || period > MAX_PERIOD || !whole(period, HOUR) {
            return Err(SloError::Period { period });
        }
        for (index, rule) in self.alerts.iter().enumerate() {
            let bad = |reason| Err(SloError::Alert { index, reason });
            if !(rule.burn_rate.is_finite() && rule.burn_rate > 0.0) {
                return bad("the burn rate must be finite and positive");
            }
            if rule.short_window.is_zero() || rule.short_window >= rule.long_window {
                return bad("the short window must be shorter than the long one and not zero");
            }
            if rule.long_window > period {
                return bad("the long window must not be longer than the period");
            }
            if !resolvable(rule.short_window) || !resolvable(rule.long_window) {
                return bad("windows must be whole minutes up to 6 h and whole hours beyond");
            }
        }
        Ok(())
    }
}

/// Whether a window is a whole number of the buckets that serve it.
fn resolvable(window: Duration) -> bool {
    whole(window, if window <= FINE_SPAN { MINUTE } else { HOUR })
}

/// Whether `d` is a whole number of `width`s (a whole number of seconds).
fn whole(d: Duration, width: Duration) -> bool {
    d.subsec_nanos() == 0 && d.as_secs().is_multiple_of(width.as_secs())
}

/// An [`SloConfig`] value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// The target is not in (0, 1).
    #[error("an SLO target must be in (0, 1), not {value}")]
    Target {
        /// The configured target.
        value: f64,
    },
    /// A latency objective's threshold is zero.
    #[error("a latency objective's threshold must be greater than zero")]
    ZeroLatencyThreshold,
    /// The period is zero, not whole hours, or longer than [`MAX_PERIOD`].
    #[error("an SLO period must be whole hours up to 90 days, not {period:?}")]
    Period {
        /// The configured period.
        period: Duration,
    },
    /// An alert rule is inconsistent.
    #[error("alert rule {index}: {reason}")]
    Alert {
        /// The rule's position in [`SloConfig::alerts`].
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Events over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// All events.
    pub total: u64,
    /// Of those, bad events.
    pub bad: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.total = self.total.saturating_add(other.total);
        self.bad = self.bad.saturating_add(other.bad);
    }
}

/// A ring of `len` buckets of `width`, numbered from the tracker's origin. The
/// buckets of numbers `(current − len, current]` hold their counts; older ones are
/// cleared as time moves on (at most one clear per bucket width that passed).
#[derive(Debug, Clone)]
struct Buckets {
    width: Duration,
    ring: Vec<Counts>,
    current: u64,
}

impl Buckets {
    fn new(width: Duration, len: usize) -> Self {
        Self {
            width,
            ring: vec![Counts::default(); len.max(1)],
            current: 0,
        }
    }

    fn len(&self) -> u64 {
        self.ring.len() as u64
    }

    /// The number of the bucket `elapsed` after the origin falls in.
    fn number(&self, elapsed: Duration) -> u64 {
        // Widths are whole seconds (one minute or one hour).
        elapsed.as_secs() / self.width.as_secs().max(1)
    }

    fn slot(&self, number: u64) -> usize {
        // The remainder is below `ring.len()`, a usize.
        (number % self.len()) as usize
    }

    fn add(&mut self, elapsed: Duration, counts: Counts) {
        let number = self.number(elapsed);
        if number > self.current {
            if number - self.current >= self.len() {
                self.ring.fill(Counts::default());
            } else {
                for n in self.current + 1..=number {
                    let slot = self.slot(n);
                    self.ring[slot] = Counts::default();
                }
            }
            self.current = number;
        }
        // A time that goes backwards counts in the current bucket.
        let slot = self.slot(self.current);
        self.ring[slot].add(counts);
    }

    /// The counts of the `k` buckets ending with the one `elapsed` falls in.
    fn sum(&self, elapsed: Duration, k: u64) -> Counts {
        let last = self.number(elapsed).max(self.current);
        let mut counts = Counts::default();
        for number in last.saturating_sub(k.saturating_sub(1))..=last {
            if number <= self.current && self.current - number < self.len() {
                counts.add(self.ring[self.slot(number)]);
            }
        }
        counts
    }
}

/// One alert's condition at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertStatus {
    /// The rule.
    pub rule: AlertRule,
    /// The burn rate over the long window (`None` with no events in it).
    pub long_burn_rate: Option<f64>,
    /// The burn rate over the short window (`None` with no events in it).
    pub short_burn_rate: Option<f64>,
    /// Both burn rates are above the rule's threshold.
    pub firing: bool,
}

/// An SLO's condition at one instant, for metrics and the health report.
#[derive(Debug, Clone, PartialEq)]
pub struct SloReport {
    /// Each configured alert, in order.
    pub alerts: Vec<AlertStatus>,
    /// The events over the period, as far as they are retained.
    pub period_counts: Counts,
    /// `1 − bad / ((1 − target) · total)` over the period: 1 with no events.
    pub budget_remaining: f64,
    /// How much of the period the counters cover: the period, or the time since
    /// the tracker's first event if shorter.
    pub retained: Duration,
}

/// Counts the events of one SLO and evaluates it (see the module docs).
#[derive(Debug, Clone)]
pub struct SloTracker {
    config: SloConfig,
    /// The time bucket 0 starts at: the first event's.
    origin: Option<Instant>,
    minutes: Buckets,
    hours: Buckets,
}

impl SloTracker {
    /// A tracker with no events.
    ///
    /// # Errors
    /// The configuration's first value out of range ([`SloConfig::validate`]).
    pub fn new(config: SloConfig) -> Result<Self, SloError> {
        config.validate()?;
        let minutes = (FINE_SPAN.as_secs() / MINUTE.as_secs()) as usize;
        let hours = (config.period.as_secs() / HOUR.as_secs()) as usize;
        Ok(Self {
            config,
            origin: None,
            minutes: Buckets::new(MINUTE, minutes),
            hours: Buckets::new(HOUR, hours),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SloConfig {
        &self.config
    }

    /// Counts one call at `now`.
    pub fn record(&mut self, outcome: Outcome, now: Instant) {
        let bad = u64::from(self.config.objective.is_bad(outcome));
        self.record_counts(Counts { total: 1, bad }, now);
    }

    /// Counts many events at `now` at once (`bad` of them bad); for callers that
    /// aggregate, and for tests.
    pub fn record_counts(&mut self, counts: Counts, now: Instant) {
        let origin = *self.origin.get_or_insert(now);
        let elapsed = now.saturating_duration_since(origin);
        self.minutes.add(elapsed, counts);
        self.hours.add(elapsed, counts);
    }

    /// The events over the `window` ending at `now`, rounded up to whole buckets:
    /// minutes up to [`FINE_SPAN`], hours beyond, at most the period. Time only
    /// moves forward: a `now` before the newest event reads the windows as they
    /// end with that event's bucket.
    pub fn counts(&self, window: Duration, now: Instant) -> Counts {
        let Some(origin) = self.origin else {
            return Counts::default();
        };
        let elapsed = now.saturating_duration_since(origin);
        let buckets = if window <= FINE_SPAN {
            &self.minutes
        } else {
            &self.hours
        };
        let width = buckets.width.as_nanos();
        let k = window.as_nanos().div_ceil(width).max(1);
        buckets.sum(elapsed, u64::try_from(k).unwrap_or(u64::MAX))
    }

    /// The burn rate over the `window` ending at `now`, or `None` with no events in
    /// it.
    pub fn burn_rate(&self, window: Duration, now: Instant) -> Option<f64> {
        let counts = self.counts(window, now);
        (counts.total > 0)
            .then(|| counts.bad as f64 / counts.total as f64 / self.config.objective.budget())
    }

    /// The fraction of the period's budget left at `now` (1 with no events).
    pub fn budget_remaining(&self, now: Instant) -> f64 {
        let counts = self.counts(self.config.period, now);
        if counts.total == 0 {
            return 1.0;
        }
        let allowed = counts.total as f64 * self.config.objective.budget();
        1.0 - counts.bad as f64 / allowed
    }

    /// Every alert's condition and the budget at `now`.
    pub fn evaluate(&self, now: Instant) -> SloReport {
        let alerts = self
            .config
            .alerts
            .iter()
            .map(|&rule| {
                let long_burn_rate = self.burn_rate(rule.long_window, now);
                let short_burn_rate = self.burn_rate(rule.short_window, now);
                let above = |burn: Option<f64>| burn.is_some_and(|b| b > rule.burn_rate);
                AlertStatus {
                    rule,
                    long_burn_rate,
                    short_burn_rate,
                    firing: above(long_burn_rate) && above(short_burn_rate),
                }
            })
            .collect();
        let retained = self.origin.map_or(Duration::ZERO, |origin| {
            now.saturating_duration_since(origin)
                .min(self.config.period)
        });
        SloReport {
            alerts,
            period_counts: self.counts(self.config.period, now),
            budget_remaining: self.budget_remaining(now),
            retained,
        }
    }
}
