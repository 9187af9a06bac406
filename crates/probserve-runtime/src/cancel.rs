//! Cooperative cancellation: a shared flag plus an optional deadline, checked by inference loops
//! on an adaptive stride so the check costs nothing measurable yet fires within ~0.2 ms.

use crate::error::InferError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A cancellation flag (shared by clones) and an optional deadline.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    flag: Option<Arc<AtomicBool>>,
    deadline: Option<Instant>,
}

impl CancelToken {
    /// A token that can be cancelled with [`CancelToken::cancel`] (clones share the flag).
    pub fn new() -> Self {
        CancelToken {
            flag: Some(Arc::new(AtomicBool::new(false))),
            deadline: None,
        }
    }

    /// A token that never fires (the `Default`).
    pub fn never() -> Self {
        Self::default()
    }

    /// Also fire at `deadline`.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Also fire `timeout` from now.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.with_deadline(d),
            None => self,
        }
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Raise the flag (no effect on a token made with [`CancelToken::never`]).
    pub fn cancel(&self) {
        if let Some(f) = &self.flag {
            f.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.flag
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// `Err(Cancelled)` if the flag is raised, `Err(DeadlineExceeded)` past the deadline.
    pub fn check(&self) -> Result<(), InferError> {
        if self.is_cancelled() {
            return Err(InferError::Cancelled);
        }
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Err(InferError::DeadlineExceeded);
        }
        Ok(())
    }

    fn is_inert(&self) -> bool {
        self.flag.is_none() && self.deadline.is_none()
    }
}

/// Target spacing between real checks.
const TARGET_INTERVAL: Duration = Duration::from_micros(100);
const MAX_STRIDE: u32 = 1 << 16;

/// Amortized checker used inside loops: call [`CancelCheck::tick`] once per iteration.
#[derive(Debug)]
pub(crate) struct CancelCheck<'a> {
    token: &'a CancelToken,
    sibling_abort: Option<&'a AtomicBool>,
    stride: u32,
    countdown: u32,
    last: Instant,
}

impl<'a> CancelCheck<'a> {
    pub(crate) fn new(token: &'a CancelToken) -> Self {
        CancelCheck {
            token,
            sibling_abort: None,
            stride: 1,
            countdown: 1,
            last: Instant::now(),
        }
    }

    /// Also stop (with `Cancelled`) when `abort` is raised, e.g. because a sibling chain failed.
    pub(crate) fn with_abort(mut self, abort: &'a AtomicBool) -> Self {
        self.sibling_abort = Some(abort);
        self
    }

    /// Cheap per-iteration check.
    #[inline]
    pub(crate) fn tick(&mut self) -> Result<(), InferError> {
        self.countdown -= 1;
        if self.countdown == 0 {
            self.slow()
        } else {
            Ok(())
        }
    }

    #[cold]
    fn slow(&mut self) -> Result<(), InferError> {
        if self.token.is_inert() && self.sibling_abort.is_none() {
            self.stride = MAX_STRIDE;
            self.countdown = MAX_STRIDE;
            return Ok(());
        }
        if self
            .sibling_abort
            .is_some_and(|a| a.load(Ordering::Relaxed))
        {
            return Err(InferError::Cancelled);
        }
        self.token.check()?;
        let now = Instant::now();
        let elapsed = now.duration_since(self.last);
        self.last = now;
        if elapsed < TARGET_INTERVAL / 2 {
            self.stride = (self.stride * 2).min(MAX_STRIDE);
        } else if elapsed > TARGET_INTERVAL * 2 {
            self.stride = (self.stride / 2).max(1);
        }
        self.countdown = self.stride;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_and_deadline() {
        let t = CancelToken::new();
        assert!(t.check().is_ok());
        let t2 = t.clone();
        t2.cancel();
        assert_eq!(t.check(), Err(InferError::Cancelled));
        let past = CancelToken::never().with_deadline(Instant::now());
        assert_eq!(past.check(), Err(InferError::DeadlineExceeded));
        let mut c = CancelCheck::new(&past);
        assert_eq!(c.tick(), Err(InferError::DeadlineExceeded));
        let never = CancelToken::never();
        let mut c = CancelCheck::new(&never);
        for _ in 0..1000 {
            assert!(c.tick().is_ok());
        }
    }
}
