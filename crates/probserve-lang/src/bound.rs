//! [`BoundModel`]: a compiled model plus one request's data, runnable by every
//! inference algorithm of the runtime.

use std::sync::Arc;

use probserve_runtime::{CancelToken, Handler, Model, ModelError, SiteId};

use crate::exec::{self, BoundData, Draw, Run, STACK_SLOTS};
use crate::model::Compiled;

/// Default step budget of one model run (statements plus loop iterations).
pub const DEFAULT_STEP_LIMIT: u64 = 10_000_000;

/// A compiled model with bound data. Implements the runtime's [`Model`] trait, so
/// prior sampling, importance sampling, SMC and MCMC all apply.
///
/// Cheap to clone (two `Arc`s). Each run is limited to [`DEFAULT_STEP_LIMIT`] steps
/// (see [`BoundModel::with_step_limit`]) and stops early when the token set with
/// [`BoundModel::with_cancel`] fires.
#[derive(Debug, Clone)]
pub struct BoundModel {
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) data: Arc<BoundData>,
    /// Bind-time length of each output item (0 for scalars).
    pub(crate) extents: Arc<[usize]>,
    pub(crate) labels: Arc<[String]>,
    pub(crate) step_limit: u64,
    pub(crate) cancel: CancelToken,
}

impl BoundModel {
    /// Sets the per-run step budget (statements plus loop iterations).
    #[must_use]
    pub fn with_step_limit(mut self, limit: u64) -> Self {
        self.step_limit = limit;
        self
    }

    /// Checks `token` every few thousand steps inside a run, so that one long run
    /// stops when the request is cancelled or its deadline passes.
    #[must_use]
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = token;
        self
    }

    /// The expanded output names, in the order of [`Draw::values`]: scalar outputs by
    /// name, indexed outputs as `theta[0]`, `theta[1]`, ...
    pub fn output_labels(&self) -> &[String] {
        &self.labels
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.compiled.info.name
    }

    /// The per-run step budget.
    pub fn step_limit(&self) -> u64 {
        self.step_limit
    }
}

impl Model for BoundModel {
    type Output = Draw;

    fn run<H: Handler>(&self, h: &mut H) -> Result<Draw, ModelError> {
        let c = &*self.compiled;
        let data = &*self.data;
        let p = &c.program;
        let n_slots = p.n_slots as usize;
        if p.n_arrays == 0 && n_slots <= STACK_SLOTS {
            // Small programs without indexed sites need no pooled memory.
            let mut slots = [f64::NAN; STACK_SLOTS];
            let n_data = data.scalars.len().min(n_slots);
            slots[..n_data].copy_from_slice(&data.scalars[..n_data]);
            let mut run = Run::new(
                c,
                data,
                &mut slots[..n_slots],
                &mut [],
                h,
                &self.cancel,
                self.step_limit,
            );
            run.program()?;
            return Ok(run.outputs(&self.extents, self.labels.len()));
        }
        exec::with_frame(c, data, |frame| {
            let mut run = Run::new(
                c,
                data,
                &mut frame.slots,
                &mut frame.arrays,
                h,
                &self.cancel,
                self.step_limit,
            );
            run.program()?;
            Ok(run.outputs(&self.extents, self.labels.len()))
        })
    }

    fn output_names(&self) -> Vec<String> {
        self.labels.to_vec()
    }

    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.compiled
            .program
            .sites
            .get(id.0 as usize)
            .map(String::as_str)
    }
}
