//! [`BoundModel`]: a compiled model plus one request's data, runnable by every
//! inference algorithm of the runtime.

use std::sync::Arc;

use probserve_runtime::{CancelToken, Handler, Model, ModelError, SiteId};

use crate::bind::BoundData;
use crate::draw::Draw;
use crate::model::Compiled;
use crate::plan::{Plan, StaticCost};

/// Default step budget of one model run (statements plus loop iterations).
pub const DEFAULT_STEP_LIMIT: u64 = 10_000_000;

/// A compiled model with bound data. Implements the runtime's [`Model`] trait, so
/// prior sampling, importance sampling, SMC and MCMC all apply.
///
/// Binding lowered the program onto the data (see `crate::plan`), so a run executes
/// only what depends on the latents. Cheap to clone (`Arc`s). Each run is limited to
/// [`DEFAULT_STEP_LIMIT`] steps (see [`BoundModel::with_step_limit`]) and stops early
/// when the token set with [`BoundModel::with_cancel`] fires.
#[derive(Debug, Clone)]
pub struct BoundModel {
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) data: Arc<BoundData>,
    pub(crate) plan: Arc<Plan>,
    pub(crate) labels: Arc<[String]>,
    pub(crate) step_limit: u64,
    pub(crate) cancel: CancelToken,
    /// Most sites one run records (`usize::MAX` = unlimited; see
    /// [`BoundModel::with_max_sites`]).
    pub(crate) max_sites: usize,
    /// Most elements one run may keep in its run-time arrays, all together
    /// (`usize::MAX` = unlimited; see [`BoundModel::with_max_array_elems`]).
    pub(crate) max_array_elems: usize,
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

    /// Limits the sites (trace records) one run may record, the run's memory budget;
    /// a run that visits more fails with `ModelError::SiteLimit`.
    #[must_use]
    pub fn with_max_sites(mut self, max_sites: usize) -> Self {
        self.max_sites = max_sites;
        self
    }

    /// Limits the elements one run may keep in its run-time arrays (indexed sites
    /// whose index is decided during the run), shared equally among them; a write
    /// past its array's share fails with `ModelError::SiteLimit`.
    #[must_use]
    pub fn with_max_array_elems(mut self, max: usize) -> Self {
        self.max_array_elems = max;
        self
    }

    /// Run-time arrays of the plan (indexed sites whose index is decided during the
    /// run; their memory is set by the indices written, see
    /// [`BoundModel::with_max_array_elems`]).
    pub fn run_time_arrays(&self) -> usize {
        self.plan.arrays.len()
    }

    /// What one run costs, as far as binding knows it: the plan's ops and sites, and
    /// whether they bound the run (`fixed`: no loop is left whose length the data or
    /// the latents set). Computed by one pass over the plan.
    pub fn static_cost(&self) -> StaticCost {
        self.plan.static_cost(&self.data.vecs)
    }

    /// Output values per run (the length of [`BoundModel::output_labels`]).
    pub fn output_width(&self) -> usize {
        self.plan.width
    }
}

impl Model for BoundModel {
    type Output = Draw;

    #[inline(always)]
    fn run<H: Handler>(&self, h: &mut H) -> Result<Draw, ModelError> {
        let mut draw = Draw::default();
        crate::vm::run(self, h, &mut draw.vals)?;
        Ok(draw)
    }

    #[inline(always)]
    fn run_into<H: Handler>(&self, h: &mut H, out: &mut Vec<f64>) -> Result<(), ModelError> {
        crate::vm::run(self, h, out)
    }

    fn output_names(&self) -> Vec<String> {
        self.labels.to_vec()
    }

    fn max_sites(&self) -> usize {
        self.max_sites
    }

    fn site_name(&self, id: SiteId) -> Option<&str> {
        self.compiled
            .program
            .sites
            .get(id.0 as usize)
            .map(String::as_str)
    }
}
