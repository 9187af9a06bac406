//! Shadow (mirrored) execution: the routing decision names a version to mirror a
//! call to; the handler runs it off the request path after answering and records
//! the comparison here. A mirrored run never changes the response, its latency or
//! its error; mirrors beyond [`MAX_MIRRORS_IN_FLIGHT`] are dropped, not queued.

use std::sync::Arc;

use parking_lot::Mutex;
use probserve_experiment::shadow::{PosteriorSummary, ShadowStats, SideResult};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Mirrored runs in flight at most, server-wide (each also needs a CPU-pool permit).
pub const MAX_MIRRORS_IN_FLIGHT: usize = 64;

/// Where one call's mirror goes and where its comparison is recorded.
#[derive(Debug, Clone)]
pub struct Mirror {
    /// The version to mirror to (never the serving one).
    pub version: String,
    pub(super) stats: Arc<Mutex<ShadowStats>>,
    pub(super) k: f64,
}

/// One side's outcome: latency and, when it succeeded, the first output's summary.
#[derive(Debug, Clone, Copy)]
pub struct SideOutcome {
    /// Milliseconds.
    pub latency_ms: f64,
    /// (mean, sd) of the first output, `None` when the call failed.
    pub first_output: Option<(f64, f64)>,
}

/// An output the comparison cannot use (non-finite mean, negative or non-finite
/// sd) counts as that side's error.
fn side(o: &SideOutcome) -> SideResult<'static> {
    let usable = |&(mean, sd): &(f64, f64)| mean.is_finite() && sd.is_finite() && sd >= 0.0;
    SideResult {
        latency_ms: o.latency_ms,
        output: o
            .first_output
            .filter(usable)
            .map(|(mean, sd)| PosteriorSummary {
                mean,
                sd,
                draws: None,
            }),
    }
}

impl Mirror {
    /// Records a mirrored call.
    pub fn record(&self, primary: &SideOutcome, shadow: &SideOutcome) {
        let (p, s) = (side(primary), side(shadow));
        if let Err(e) = self.stats.lock().record(&p, &s, self.k) {
            // Unreachable: `side` passes only outputs the comparison accepts.
            tracing::warn!(error = %e, "shadow comparison refused");
        }
    }
}

/// The server-wide bound on mirrored runs.
#[derive(Debug)]
pub struct MirrorLimit(Arc<Semaphore>);

impl Default for MirrorLimit {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(MAX_MIRRORS_IN_FLIGHT)))
    }
}

impl MirrorLimit {
    /// A slot for one mirrored run, or `None` when all are taken (drop the mirror).
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.0).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror() -> Mirror {
        Mirror {
            version: "2.0.0".into(),
            stats: Arc::default(),
            k: 0.5,
        }
    }

    #[test]
    fn agreement_and_errors_are_counted() {
        let m = mirror();
        let ok = |mean| SideOutcome {
            latency_ms: 1.0,
            first_output: Some((mean, 1.0)),
        };
        m.record(&ok(0.0), &ok(0.1));
        m.record(&ok(0.0), &ok(3.0));
        m.record(
            &ok(0.0),
            &SideOutcome {
                latency_ms: 2.0,
                first_output: None,
            },
        );
        m.record(&ok(f64::NAN), &ok(0.0));
        let s = m.stats.lock();
        assert_eq!((s.compared, s.agreements), (2, 1));
        assert_eq!(s.shadow_calls, 4);
        assert_eq!(s.shadow_errors, 1, "the failed mirror");
        assert_eq!(s.primary_errors, 1, "the unusable primary output");
    }

    #[test]
    fn the_limit_drops_rather_than_queues() {
        let l = MirrorLimit::default();
        let held: Vec<_> = (0..MAX_MIRRORS_IN_FLIGHT)
            .map(|_| l.try_acquire())
            .collect();
        assert!(held.iter().all(Option::is_some));
        assert!(l.try_acquire().is_none());
        drop(held);
        assert!(l.try_acquire().is_some());
    }
}
