//! The breaker's sliding windows: the outcomes of the last N calls (count-based) or
//! of the last N seconds (time-based, one bucket per second).
//!
//! Both keep running totals updated by subtract-on-evict, as resilience4j's
//! `FixedSizeSlidingWindowMetrics` and `SlidingTimeWindowMetrics` do: recording a
//! call is O(1) (a time window resets at most one bucket per second that passed,
//! and never more than N), reading the totals never scans the window, and memory is
//! fixed by the window's size whatever the call rate.

/// Calls, failed calls and slow calls over a window.
///
/// A call can be both failed and slow: resilience4j records `SLOW_ERROR` as both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    /// Calls recorded.
    pub(crate) calls: u64,
    /// Of those, calls that failed.
    pub(crate) failed: u64,
    /// Of those, calls slower than the slow-call threshold.
    pub(crate) slow: u64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.calls += other.calls;
        self.failed += other.failed;
        self.slow += other.slow;
    }

    fn sub(&mut self, other: Totals) {
        // Every subtracted value was added before, so these never underflow; the
        // saturation only keeps a logic error from wrapping around.
        self.calls = self.calls.saturating_sub(other.calls);
        self.failed = self.failed.saturating_sub(other.failed);
        self.slow = self.slow.saturating_sub(other.slow);
    }

    /// Failed calls as a percentage of all calls (0 with no calls).
    pub(crate) fn failure_rate(&self) -> f64 {
        percent(self.failed, self.calls)
    }

    /// Slow calls as a percentage of all calls (0 with no calls).
    pub(crate) fn slow_call_rate(&self) -> f64 {
        percent(self.slow, self.calls)
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// One call's outcome as a window keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sample {
    /// The call failed.
    pub(crate) failed: bool,
    /// The call was slower than the slow-call threshold.
    pub(crate) slow: bool,
}

impl Sample {
    fn totals(self) -> Totals {
        Totals {
            calls: 1,
            failed: u64::from(self.failed),
            slow: u64::from(self.slow),
        }
    }
}

/// The outcomes of the last `size` calls: a ring of samples plus their totals.
#[derive(Debug, Clone)]
pub(crate) struct CountWindow {
    size: usize,
    ring: Vec<Sample>,
    /// Where the next sample goes once the ring is full.
    next: usize,
    totals: Totals,
}

impl CountWindow {
    /// An empty window over the last `size` calls (`size` ≥ 1, checked by the
    /// breaker's configuration).
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size: size.max(1),
            ring: Vec::new(),
            next: 0,
            totals: Totals::default(),
        }
    }

    /// Records one call, evicting the oldest once the window is full.
    pub(crate) fn record(&mut self, sample: Sample) {
        if self.ring.len() < self.size {
            self.ring.push(sample);
        } else {
            let evicted = std::mem::replace(&mut self.ring[self.next], sample);
            self.totals.sub(evicted.totals());
        }
        self.next = (self.next + 1) % self.size;
        self.totals.add(sample.totals());
    }

    /// The totals over the window.
    pub(crate) fn totals(&self) -> Totals {
        self.totals
    }

    /// Forgets every call (the ring keeps its memory).
    pub(crate) fn reset(&mut self) {
        self.ring.clear();
        self.next = 0;
        self.totals = Totals::default();
    }
}

/// The outcomes of the last `seconds` seconds: one bucket per second in a ring, plus
/// the totals of the live buckets.
///
/// Seconds are counted by the caller from an origin of its choosing. The live
/// buckets are those of the seconds `(current - seconds, current]`, the bucket of
/// second `s` being `s % seconds`; a time that goes backwards is counted in the
/// current second.
#[derive(Debug, Clone)]
pub(crate) struct TimeWindow {
    buckets: Vec<Totals>,
    /// The newest second seen.
    current: u64,
    totals: Totals,
}

impl TimeWindow {
    /// An empty window over the last `seconds` seconds (≥ 1, checked by the
    /// breaker's configuration).
    pub(crate) fn new(seconds: usize) -> Self {
        Self {
            buckets: vec![Totals::default(); seconds.max(1)],
            current: 0,
            totals: Totals::default(),
        }
    }

    fn len(&self) -> u64 {
        self.buckets.len() as u64
    }

    fn index(&self, second: u64) -> usize {
        // The remainder is below `buckets.len()`, a usize.
        (second % self.len()) as usize
    }

    /// Moves the window forward to `second`, evicting the buckets that leave it.
    fn advance(&mut self, second: u64) {
        if second <= self.current {
            return;
        }
        if second - self.current >= self.len() {
            self.buckets.fill(Totals::default());
            self.totals = Totals::default();
        } else {
            for s in self.current + 1..=second {
                let i = self.index(s);
                let evicted = std::mem::take(&mut self.buckets[i]);
                self.totals.sub(evicted);
            }
        }
        self.current = second;
    }

    /// Records one call made at `second`.
    pub(crate) fn record(&mut self, sample: Sample, second: u64) {
        self.advance(second);
        let i = self.index(self.current);
        self.buckets[i].add(sample.totals());
        self.totals.add(sample.totals());
    }

    /// The totals over the window as it would be at `second`, without moving it.
    pub(crate) fn totals_at(&self, second: u64) -> Totals {
        if second <= self.current {
            return self.totals;
        }
        if second - self.current >= self.len() {
            return Totals::default();
        }
        let mut totals = self.totals;
        for s in self.current + 1..=second {
            totals.sub(self.buckets[self.index(s)]);
        }
        totals
    }

    /// Forgets every call.
    pub(crate) fn reset(&mut self) {
        self.buckets.fill(Totals::default());
        self.totals = Totals::default();
    }
}

/// The breaker's closed-state window, of either kind.
#[derive(Debug, Clone)]
pub(crate) enum Window {
    /// The last N calls.
    Count(CountWindow),
    /// The last N seconds.
    Time(TimeWindow),
}

impl Window {
    /// Records one call made at `second` (ignored by a count window).
    pub(crate) fn record(&mut self, sample: Sample, second: u64) {
        match self {
            Window::Count(w) => w.record(sample),
            Window::Time(w) => w.record(sample, second),
        }
    }

    /// The totals over the window at `second`.
    pub(crate) fn totals_at(&self, second: u64) -> Totals {
        match self {
            Window::Count(w) => w.totals(),
            Window::Time(w) => w.totals_at(second),
        }
    }

    /// Forgets every call.
    pub(crate) fn reset(&mut self) {
        match self {
            Window::Count(w) => w.reset(),
            Window::Time(w) => w.reset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Sample = Sample {
        failed: false,
        slow: false,
    };
    const FAIL: Sample = Sample {
        failed: true,
        slow: false,
    };
    const SLOW_FAIL: Sample = Sample {
        failed: true,
        slow: true,
    };

    fn totals(calls: u64, failed: u64, slow: u64) -> Totals {
        Totals {
            calls,
            failed,
            slow,
        }
    }

    #[test]
    fn count_window_evicts_the_oldest_call() {
        let mut w = CountWindow::new(3);
        w.record(FAIL);
        w.record(OK);
        w.record(SLOW_FAIL);
        assert_eq!(w.totals(), totals(3, 2, 1));
        w.record(OK); // evicts the first FAIL
        assert_eq!(w.totals(), totals(3, 1, 1));
        w.record(OK); // evicts OK
        w.record(OK); // evicts SLOW_FAIL
        assert_eq!(w.totals(), totals(3, 0, 0));
        w.reset();
        assert_eq!(w.totals(), totals(0, 0, 0));
        w.record(FAIL);
        assert_eq!(w.totals(), totals(1, 1, 0));
    }

    #[test]
    fn time_window_evicts_by_second() {
        let mut w = TimeWindow::new(3);
        w.record(FAIL, 0);
        w.record(FAIL, 0);
        w.record(OK, 1);
        w.record(SLOW_FAIL, 2);
        assert_eq!(w.totals_at(2), totals(4, 3, 1));
        // At second 3 the bucket of second 0 has left the window.
        assert_eq!(w.totals_at(3), totals(2, 1, 1));
        assert_eq!(w.totals_at(4), totals(1, 1, 1));
        assert_eq!(w.totals_at(5), totals(0, 0, 0));
        assert_eq!(w.totals_at(500), totals(0, 0, 0));
        // Reading does not move the window; recording does.
        assert_eq!(w.totals_at(2), totals(4, 3, 1));
        w.record(OK, 4);
        assert_eq!(w.totals_at(4), totals(2, 1, 1));
        // A time that goes backwards counts in the current second.
        w.record(FAIL, 1);
        assert_eq!(w.totals_at(4), totals(3, 2, 1));
        assert_eq!(w.totals_at(6), totals(2, 1, 0));
        assert_eq!(w.totals_at(7), totals(0, 0, 0));
        // A gap longer than the window empties it at once.
        w.record(OK, 1_000);
        assert_eq!(w.totals_at(1_000), totals(1, 0, 0));
    }

    #[test]
    fn rates_are_percentages() {
        let t = totals(8, 2, 6);
        assert_eq!(t.failure_rate(), 25.0);
        assert_eq!(t.slow_call_rate(), 75.0);
        assert_eq!(Totals::default().failure_rate(), 0.0);
    }
}
