//! The breaker's configuration: the window, the two rate thresholds, half-open
//! probing and the wait in open, checked once by [`BreakerConfig::validate`] (which
//! [`Breaker::new`](super::Breaker::new) calls), with defaults that are safe for a
//! new user, each explained on [`BreakerConfig::new`].

use std::time::Duration;

/// The largest count window, and the most probe calls in half-open (a sample takes
/// two bytes, so 200 KB per breaker at most).
pub const MAX_WINDOW_CALLS: u32 = 100_000;
/// The largest time window: one hour of one-second buckets (86 KB per breaker).
pub const MAX_WINDOW_SECONDS: u32 = 3_600;
/// The longest wait in open that a configuration may ask for.
pub const MAX_WAIT_IN_OPEN: Duration = Duration::from_secs(24 * 3_600);
/// The slow-call threshold of [`BreakerConfig::default`] (resilience4j's default).
/// The server should pass the version's own latency budget to
/// [`BreakerConfig::new`] instead.
pub const DEFAULT_SLOW_CALL_DURATION: Duration = Duration::from_secs(60);

/// Which calls the closed-state window keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// The last `calls` calls, however old.
    Count {
        /// The window's size in calls.
        calls: u32,
    },
    /// The calls of the last `seconds` seconds, in one-second buckets.
    Time {
        /// The window's length in seconds.
        seconds: u32,
    },
}

/// How a [`Breaker`](super::Breaker) decides; see the field docs for resilience4j's
/// name of each setting.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// The closed-state window (`slidingWindowType` / `slidingWindowSize`).
    pub window: WindowKind,
    /// No rate is computed, so nothing trips, until the window holds this many calls
    /// (`minimumNumberOfCalls`). For a count window it is capped at the window's
    /// size, as in resilience4j.
    pub minimum_calls: u32,
    /// Trip when at least this percentage of the window's calls failed
    /// (`failureRateThreshold`), in (0, 100].
    pub failure_rate_threshold: f64,
    /// Trip when at least this percentage of the window's calls were slow
    /// (`slowCallRateThreshold`), in (0, 100].
    pub slow_call_rate_threshold: f64,
    /// A call is slow when it took strictly longer than this
    /// (`slowCallDurationThreshold`).
    pub slow_call_duration: Duration,
    /// Probe calls let through in half-open; the decision is made once all of them
    /// have finished (`permittedNumberOfCallsInHalfOpenState`).
    pub permitted_calls_in_half_open: u32,
    /// The wait in open after the first trip (`waitDurationInOpenState`).
    pub wait_in_open: Duration,
    /// Each further trip without a close in between multiplies the wait by this
    /// (≥ 1; 1 keeps the wait fixed), as `waitIntervalFunctionInOpenState` does.
    pub wait_multiplier: f64,
    /// The wait never grows beyond this.
    pub max_wait_in_open: Duration,
}

impl BreakerConfig {
    /// The safe defaults, with `slow_call_duration` as the slow-call threshold (the
    /// version's latency budget or the server's deadline):
    ///
    /// - **window: the last 100 calls** (resilience4j's default). A count window
    ///   judges a low-traffic version on its calls, not on how old they are.
    /// - **minimum calls: 20** (Hystrix's `requestVolumeThreshold`; resilience4j's
    ///   100 would let a canary that fails every call serve 100 failures first). It
    ///   takes 10 failures in the first 20 calls to trip, so a few early failures
    ///   do not.
    /// - **failure rate: 50 %** (resilience4j and Hystrix): a version failing half
    ///   its calls is worse than its fallback, and a lower value would trip on models
    ///   with rare, ordinary failures.
    /// - **slow-call rate: 100 %** (resilience4j): only a version whose every call is
    ///   over the threshold trips on latency alone; ordinary slowness is the latency
    ///   SLO's business, not the breaker's.
    /// - **half-open: 5 probe calls** (resilience4j has 10): enough to tell a fixed
    ///   version from a broken one, while each recovery attempt exposes at most 5
    ///   real calls.
    /// - **wait in open: 10 s, doubling on each trip without a close in between, up
    ///   to 5 minutes** (resilience4j waits a fixed 60 s; 5 minutes is Envoy's
    ///   `max_ejection_time`). A short blip recovers in seconds; a version that
    ///   stays broken is probed less and less often, and a fixed one is back within
    ///   5 minutes.
    pub fn new(slow_call_duration: Duration) -> Self {
        Self {
            window: WindowKind::Count { calls: 100 },
            minimum_calls: 20,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration,
            permitted_calls_in_half_open: 5,
            wait_in_open: Duration::from_secs(10),
            wait_multiplier: 2.0,
            max_wait_in_open: Duration::from_secs(300),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field that is out of range, with its value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.window {
            WindowKind::Count { calls: 0 } | WindowKind::Time { seconds: 0 } => {
                return Err(ConfigError::EmptyWindow);
            }
            WindowKind::Count { calls } if calls > MAX_WINDOW_CALLS => {
                return Err(ConfigError::WindowTooLarge {
                    size: calls,
                    max: MAX_WINDOW_CALLS,
                });
            }
            WindowKind::Time { seconds } if seconds > MAX_WINDOW_SECONDS => {
                return Err(ConfigError::WindowTooLarge {
                    size: seconds,
                    max: MAX_WINDOW_SECONDS,
                });
            }
            _ => {}
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::ZeroMinimumCalls);
        }
        if !in_percent_range(self.failure_rate_threshold) {
            return Err(ConfigError::FailureRateThreshold {
                value: self.failure_rate_threshold,
            });
        }
        if !in_percent_range(self.slow_call_rate_threshold) {
            return Err(ConfigError::SlowCallRateThreshold {
                value: self.slow_call_rate_threshold,
            });
        }
        if self.slow_call_duration.is_zero() {
            return Err(ConfigError::ZeroSlowCallDuration);
        }
        let permitted = self.permitted_calls_in_half_open;
        if permitted == 0 || permitted > MAX_WINDOW_CALLS {
            return Err(ConfigError::PermittedCallsInHalfOpen {
                value: permitted,
                max: MAX_WINDOW_CALLS,
            });
        }
        if self.wait_in_open.is_zero() {
            return Err(ConfigError::ZeroWaitInOpen);
        }
        if !(self.wait_multiplier.is_finite() && self.wait_multiplier >= 1.0) {
            return Err(ConfigError::WaitMultiplier {
                value: self.wait_multiplier,
            });
        }
        if self.max_wait_in_open < self.wait_in_open || self.max_wait_in_open > MAX_WAIT_IN_OPEN {
            return Err(ConfigError::MaxWaitInOpen {
                wait: self.wait_in_open,
                max_wait: self.max_wait_in_open,
            });
        }
        Ok(())
    }

    /// The minimum number of calls that the closed window must hold before its
    /// rates count (capped at a count window's size).
    pub(crate) fn effective_minimum_calls(&self) -> u64 {
        match self.window {
            WindowKind::Count { calls } => u64::from(self.minimum_calls.min(calls)),
            WindowKind::Time { .. } => u64::from(self.minimum_calls),
        }
    }

    /// The wait in open after `attempts` trips without a close in between (the
    /// first trip is attempt 1): `wait_in_open · multiplier^(attempts − 1)`, capped
    /// at `max_wait_in_open`.
    pub fn wait_for_attempt(&self, attempts: u32) -> Duration {
        let exponent = i32::try_from(attempts.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.wait_in_open.as_secs_f64() * self.wait_multiplier.powi(exponent);
        match Duration::try_from_secs_f64(secs) {
            Ok(wait) => wait.min(self.max_wait_in_open),
            // Infinite or too large to represent: the cap applies.
            Err(_) => self.max_wait_in_open,
        }
    }
}

impl Default for BreakerConfig {
    /// [`BreakerConfig::new`] with [`DEFAULT_SLOW_CALL_DURATION`].
    fn default() -> Self {
        Self::new(DEFAULT_SLOW_CALL_DURATION)
    }
}

fn in_percent_range(value: f64) -> bool {
    value > 0.0 && value <= 100.0
}

/// A [`BreakerConfig`] field out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The window has size 0.
    #[error("the breaker's window must hold at least one call or one second")]
    EmptyWindow,
    /// The window is larger than its kind allows.
    #[error("the breaker's window size {size} is over the limit of {max}")]
    WindowTooLarge {
        /// The configured size (calls or seconds).
        size: u32,
        /// The limit for that kind of window.
        max: u32,
    },
    /// `minimum_calls` is 0.
    #[error("the breaker's minimum number of calls must be at least 1")]
    ZeroMinimumCalls,
    /// `failure_rate_threshold` is not in (0, 100].
    #[error("the failure-rate threshold must be in (0, 100] percent, not {value}")]
    FailureRateThreshold {
        /// The configured value.
        value: f64,
    },
    /// `slow_call_rate_threshold` is not in (0, 100].
    #[error("the slow-call-rate threshold must be in (0, 100] percent, not {value}")]
    SlowCallRateThreshold {
        /// The configured value.
        value: f64,
    },
    /// `slow_call_duration` is zero.
    #[error("the slow-call duration must be greater than zero")]
    ZeroSlowCallDuration,
    /// `permitted_calls_in_half_open` is 0 or too large.
    #[error("the number of probe calls in half-open must be in 1..={max}, not {value}")]
    PermittedCallsInHalfOpen {
        /// The configured value.
        value: u32,
        /// The limit.
        max: u32,
    },
    /// `wait_in_open` is zero.
    #[error("the wait in open must be greater than zero")]
    ZeroWaitInOpen,
    /// `wait_multiplier` is below 1 or not finite.
    #[error("the wait multiplier must be finite and at least 1, not {value}")]
    WaitMultiplier {
        /// The configured value.
        value: f64,
    },
    /// `max_wait_in_open` is below `wait_in_open` or above [`MAX_WAIT_IN_OPEN`].
    #[error(
        "the maximum wait in open ({max_wait:?}) must be between the wait in open ({wait:?}) and 24 h"
    )]
    MaxWaitInOpen {
        /// The configured first wait.
        wait: Duration,
        /// The configured maximum wait.
        max_wait: Duration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
        let c = BreakerConfig::new(Duration::from_millis(250));
        assert_eq!(c.slow_call_duration, Duration::from_millis(250));
        assert_eq!(c.effective_minimum_calls(), 20);
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok = BreakerConfig::default();
        let bad = |f: fn(&mut BreakerConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().err()
        };
        assert_eq!(
            bad(|c| c.window = WindowKind::Count { calls: 0 }),
            Some(ConfigError::EmptyWindow)
        );
        assert_eq!(
            bad(|c| c.window = WindowKind::Time { seconds: 0 }),
            Some(ConfigError::EmptyWindow)
        );
        assert_eq!(
            bad(|c| c.window = WindowKind::Time { seconds: 3_601 }),
            Some(ConfigError::WindowTooLarge {
                size: 3_601,
                max: MAX_WINDOW_SECONDS
            })
        );
        assert_eq!(
            bad(|c| c.minimum_calls = 0),
            Some(ConfigError::ZeroMinimumCalls)
        );
        for value in [0.0, -1.0, 100.5, f64::NAN] {
            let mut c = ok.clone();
            c.failure_rate_threshold = value;
            assert!(matches!(
                c.validate(),
                Err(ConfigError::FailureRateThreshold { .. })
            ));
            let mut c = ok.clone();
            c.slow_call_rate_threshold = value;
            assert!(matches!(
                c.validate(),
                Err(ConfigError::SlowCallRateThreshold { .. })
            ));
        }
        assert_eq!(bad(|c| c.failure_rate_threshold = 100.0), None);
        assert_eq!(
            bad(|c| c.slow_call_duration = Duration::ZERO),
            Some(ConfigError::ZeroSlowCallDuration)
        );
        assert_eq!(
            bad(|c| c.permitted_calls_in_half_open = 0),
            Some(ConfigError::PermittedCallsInHalfOpen {
                value: 0,
                max: MAX_WINDOW_CALLS
            })
        );
        assert_eq!(
            bad(|c| c.wait_in_open = Duration::ZERO),
            Some(ConfigError::ZeroWaitInOpen)
        );
        assert_eq!(
            bad(|c| c.wait_multiplier = 0.5),
            Some(ConfigError::WaitMultiplier { value: 0.5 })
        );
        assert!(matches!(
            bad(|c| c.max_wait_in_open = Duration::from_secs(1)),
            Some(ConfigError::MaxWaitInOpen { .. })
        ));
    }

    #[test]
    fn minimum_calls_is_capped_at_a_count_window() {
        let mut c = BreakerConfig {
            window: WindowKind::Count { calls: 10 },
            ..BreakerConfig::default()
        };
        assert_eq!(c.effective_minimum_calls(), 10);
        c.window = WindowKind::Time { seconds: 10 };
        assert_eq!(c.effective_minimum_calls(), 20);
    }

    #[test]
    fn wait_doubles_up_to_the_cap() {
        let c = BreakerConfig::default();
        let secs = |a| c.wait_for_attempt(a).as_secs();
        assert_eq!(
            [secs(1), secs(2), secs(3), secs(4), secs(5), secs(6)],
            [10, 20, 40, 80, 160, 300]
        );
        assert_eq!(secs(u32::MAX), 300);
        assert_eq!(secs(0), 10);
    }
}
