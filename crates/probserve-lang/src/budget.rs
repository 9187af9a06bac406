//! The compile budget: a deadline and a cancel flag that compilation checks between
//! its phases and inside their loops (over tokens, statements, call arguments and
//! expression nodes), so that no source, however hostile, holds a CPU past the
//! caller's deadline or after the caller went away.
//!
//! [`crate::compile_with`] takes a [`CompileBudget`]; when it runs out, compilation
//! stops where it is and answers [`CompileError::OverBudget`] or
//! [`CompileError::Cancelled`] instead of diagnostics.

use std::cell::Cell;
use std::time::Instant;

use probserve_runtime::CancelToken;

use crate::diag::Diagnostics;

/// How long and under what cancel flag a compilation may run.
#[derive(Debug, Clone, Default)]
pub struct CompileBudget {
    /// Stop at this instant (in addition to any deadline of `cancel`).
    pub deadline: Option<Instant>,
    /// Stop when this token is cancelled or passes its own deadline.
    pub cancel: CancelToken,
}

impl CompileBudget {
    /// No limit (what [`crate::compile`] uses).
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// A budget that ends at `deadline` or when `cancel` fires, whichever is first.
    pub fn new(deadline: Instant, cancel: CancelToken) -> Self {
        Self {
            deadline: Some(deadline),
            cancel,
        }
    }
}

/// Why [`crate::compile_with`] produced no model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The source has errors.
    #[error("model source does not compile: {0}")]
    Invalid(Diagnostics),
    /// The budget's deadline passed before compilation finished.
    #[error("compilation exceeded its time budget: stopped after {elapsed_ms} ms while {phase}")]
    OverBudget {
        /// Time spent before stopping.
        elapsed_ms: u64,
        /// The phase that was running (`lexing`, `parsing`, `checking`, ...).
        phase: &'static str,
    },
    /// The budget's cancel token fired (the caller went away).
    #[error("compilation was cancelled while {phase}")]
    Cancelled {
        /// The phase that was running.
        phase: &'static str,
    },
}

/// The clock is read once per this many ticks (a tick is a token, a statement or an
/// expression node: far less than a microsecond of work each).
const CHECK_EVERY: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Deadline,
    Cancelled,
}

/// Checks a budget cheaply from inside the compiler's loops; once it fires, it stays
/// fired and every later tick says stop.
#[derive(Debug)]
pub(crate) struct Meter<'b> {
    budget: Option<&'b CompileBudget>,
    started: Instant,
    ticks: Cell<u32>,
    phase: Cell<&'static str>,
    stop: Cell<Option<Stop>>,
}

impl<'b> Meter<'b> {
    pub(crate) fn new(budget: Option<&'b CompileBudget>) -> Self {
        Self {
            budget,
            started: Instant::now(),
            ticks: Cell::new(0),
            phase: Cell::new("starting"),
            stop: Cell::new(None),
        }
    }

    /// Names the phase now running (for the error message).
    pub(crate) fn phase(&self, phase: &'static str) {
        self.phase.set(phase);
    }

    /// One unit of work done; true when compilation must stop.
    #[inline]
    pub(crate) fn tick(&self) -> bool {
        if self.stop.get().is_some() {
            return true;
        }
        if self.budget.is_none() {
            return false;
        }
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        t.is_multiple_of(CHECK_EVERY) && self.check()
    }

    /// Checks the budget now; true when compilation must stop.
    pub(crate) fn check(&self) -> bool {
        if self.stop.get().is_some() {
            return true;
        }
        let Some(b) = self.budget else {
            return false;
        };
        let stop = if b.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else {
            let now = Instant::now();
            let past = |d: Option<Instant>| d.is_some_and(|d| now >= d);
            (past(b.deadline) || past(b.cancel.deadline())).then_some(Stop::Deadline)
        };
        self.stop.set(stop);
        stop.is_some()
    }

    /// The error to answer if the budget fired.
    pub(crate) fn error(&self) -> Option<CompileError> {
        let phase = self.phase.get();
        match self.stop.get()? {
            Stop::Cancelled => Some(CompileError::Cancelled { phase }),
            Stop::Deadline => Some(CompileError::OverBudget {
                elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                phase,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_token_stops_at_the_next_check() {
        let budget = CompileBudget::default();
        let meter = Meter::new(Some(&budget));
        meter.phase("parsing");
        assert!(!meter.check());
        budget.cancel.cancel();
        // A default token has no flag to raise: it never fires.
        assert!(!meter.check());
        let budget = CompileBudget {
            cancel: CancelToken::new(),
            ..CompileBudget::default()
        };
        let meter = Meter::new(Some(&budget));
        meter.phase("parsing");
        budget.cancel.cancel();
        assert!((0..CHECK_EVERY).any(|_| meter.tick()));
        assert!(meter.tick(), "stays fired");
        assert_eq!(
            meter.error(),
            Some(CompileError::Cancelled { phase: "parsing" })
        );
    }

    #[test]
    fn compile_with_answers_the_budget_error_not_diagnostics() {
        let src = format!(
            "model m {{\n{}}}",
            "  x ~ normal(undefined_name, 1.0);\n".repeat(20_000)
        );
        let spent = CompileBudget::new(Instant::now(), CancelToken::new());
        match crate::compile_with(&src, &spent) {
            Err(CompileError::OverBudget { .. }) => {}
            other => panic!("expected the budget error, got {other:?}"),
        }
        let cancelled = CompileBudget::default();
        let cancelled = CompileBudget {
            cancel: CancelToken::new(),
            ..cancelled
        };
        cancelled.cancel.cancel();
        match crate::compile_with(&src, &cancelled) {
            Err(CompileError::Cancelled { .. }) => {}
            other => panic!("expected cancellation, got {other:?}"),
        }
        // With time to spare the same source gets its diagnostics.
        let ample = CompileBudget::new(
            Instant::now() + std::time::Duration::from_secs(3600),
            CancelToken::new(),
        );
        assert!(matches!(
            crate::compile_with(&src, &ample),
            Err(CompileError::Invalid(_))
        ));
        let builtin = crate::builtin_model("eight_schools").expect("builtin");
        assert!(crate::compile_with(builtin, &ample).is_ok());
    }

    #[test]
    fn a_past_deadline_fires_as_over_budget() {
        let budget = CompileBudget::new(Instant::now(), CancelToken::new());
        let meter = Meter::new(Some(&budget));
        meter.phase("checking");
        assert!(meter.check());
        assert!(matches!(
            meter.error(),
            Some(CompileError::OverBudget {
                phase: "checking",
                ..
            })
        ));
        let unlimited = Meter::new(None);
        assert!(!(0..10 * CHECK_EVERY).any(|_| unlimited.tick()));
        assert!(unlimited.error().is_none());
    }
}
