//! Inference algorithms. Each takes a model, a typed config (with a seed and a cancellation
//! token) and returns a typed result whose draws can be summarized per output.

mod importance;
mod kernel;
mod mcmc;
mod prior;
mod smc;

pub use importance::{ImportanceConfig, ImportanceResult, importance_sampling};
pub use kernel::SiteStats;
pub use mcmc::{ChainResult, McmcConfig, McmcResult, mcmc};
pub use prior::{
    PriorConfig, PriorPredictiveResult, PriorResult, sample_prior, sample_prior_predictive,
};
pub use smc::{SmcConfig, SmcResult, smc};

use crate::error::{InferError, ModelError};
use crate::model::{Model, ModelNames, Outputs};

/// Draws of a model's outputs: `rows` draws of `width` numbers, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draws {
    /// Output names (`width` of them).
    pub names: Vec<String>,
    /// Numbers per draw.
    pub width: usize,
    /// Number of draws.
    pub rows: usize,
    /// The numbers, draw after draw.
    pub values: Vec<f64>,
}

impl Draws {
    /// Draw `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        let start = i * self.width;
        self.values.get(start..start + self.width).unwrap_or(&[])
    }

    /// All draws of output `j`.
    pub fn column(&self, j: usize) -> Vec<f64> {
        if j >= self.width {
            return Vec::new();
        }
        self.values
            .iter()
            .skip(j)
            .step_by(self.width)
            .copied()
            .collect()
    }

    /// Index of the output called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// All draws of the output called `name`.
    pub fn column_by_name(&self, name: &str) -> Option<Vec<f64>> {
        self.index_of(name).map(|j| self.column(j))
    }
}

/// Collects outputs draw by draw, enforcing a constant width.
#[derive(Debug, Default)]
pub(crate) struct DrawSink {
    scratch: Vec<f64>,
    pub(crate) draws: Draws,
    /// Rows the caller expects; once the first row fixes the width, the values are
    /// reserved exactly (no doubling: the peak is the final size, which is what a
    /// caller's memory budget computed).
    rows_expected: usize,
}

impl DrawSink {
    /// A sink for `rows` draws of `width` values each, reserved exactly.
    pub(crate) fn with_width(rows: usize, width: usize) -> Self {
        let mut sink = Self::default();
        sink.draws.width = width;
        sink.draws
            .values
            .reserve_exact(rows.saturating_mul(width).min(MAX_EXACT_RESERVE));
        sink
    }

    /// A sink for `rows` draws of a width the first row sets.
    pub(crate) fn for_rows(rows: usize) -> Self {
        DrawSink {
            rows_expected: rows,
            ..Self::default()
        }
    }

    /// Flatten `out` into the scratch buffer, checking the width; returns the flattened values.
    pub(crate) fn stage<O: Outputs + ?Sized>(&mut self, out: &O) -> Result<&[f64], InferError> {
        self.scratch.clear();
        out.write_outputs(&mut self.scratch);
        self.check_width()?;
        Ok(&self.scratch)
    }

    /// The cleared scratch buffer, for a run to write its outputs into (then
    /// [`DrawSink::commit`]).
    pub(crate) fn staging(&mut self) -> &mut Vec<f64> {
        self.scratch.clear();
        &mut self.scratch
    }

    /// Check the width of the values written to [`DrawSink::staging`] and append them.
    pub(crate) fn commit(&mut self) -> Result<(), InferError> {
        self.check_width()?;
        self.push_staged();
        Ok(())
    }

    /// The first row fixes the width; later ones must match it.
    fn check_width(&mut self) -> Result<(), InferError> {
        if self.draws.rows == 0 && self.draws.values.is_empty() && self.draws.width == 0 {
            self.draws.width = self.scratch.len();
            let total = self.rows_expected.saturating_mul(self.draws.width);
            self.draws
                .values
                .reserve_exact(total.min(MAX_EXACT_RESERVE));
        } else if self.scratch.len() != self.draws.width {
            return Err(InferError::OutputShape {
                expected: self.draws.width,
                got: self.scratch.len(),
            });
        }
        Ok(())
    }

    pub(crate) fn push<O: Outputs + ?Sized>(&mut self, out: &O) -> Result<(), InferError> {
        self.stage(out)?;
        self.push_staged();
        Ok(())
    }

    /// Append the last staged values.
    pub(crate) fn push_staged(&mut self) {
        self.draws.values.extend_from_slice(&self.scratch);
        self.draws.rows += 1;
    }

    /// Append a raw row (must have the sink's width).
    pub(crate) fn push_row(&mut self, row: &[f64]) {
        self.draws.values.extend_from_slice(row);
        self.draws.rows += 1;
    }

    pub(crate) fn finish<M: Model + ?Sized>(mut self, model: &M) -> Draws {
        self.draws.names = output_names(model, self.draws.width);
        self.draws
    }
}

/// Largest up-front reservation, in elements.
const MAX_RESERVE: usize = 1 << 20;

/// Largest exact reservation once the width is known, in elements (1 GiB).
const MAX_EXACT_RESERVE: usize = 1 << 27;

/// `n` capped at a sane up-front reservation.
pub(crate) fn capped(n: usize) -> usize {
    n.min(MAX_RESERVE)
}

/// Largest particle count for algorithms that keep every particle in memory.
pub const MAX_PARTICLES: usize = 50_000_000;

/// The model's output names padded (`output[i]`) or truncated to `width`.
pub(crate) fn output_names<M: Model + ?Sized>(model: &M, width: usize) -> Vec<String> {
    let mut names = model.output_names();
    names.truncate(width);
    while names.len() < width {
        names.push(format!("output[{}]", names.len()));
    }
    names
}

/// Convert a model error, rendering its address with the model's site names.
pub(crate) fn model_error<M: Model + ?Sized>(model: &M, source: ModelError) -> InferError {
    let address = source
        .address()
        .map(|a| a.display_with(&ModelNames(model)).to_string());
    InferError::Model { address, source }
}

/// Normalize log-weights into `weights` (one `exp` per weight); returns `(log Σ exp(lw), ESS)`.
/// Errors when no weight is positive.
pub(crate) fn normalize(
    log_weights: &[f64],
    weights: &mut Vec<f64>,
) -> Result<(f64, f64), InferError> {
    let mut m = f64::NEG_INFINITY;
    for &lw in log_weights {
        if lw.is_nan() || lw == f64::INFINITY {
            return Err(InferError::Model {
                address: None,
                source: ModelError::Other("total log weight is not finite".into()),
            });
        }
        m = m.max(lw);
    }
    if m == f64::NEG_INFINITY {
        return Err(InferError::NoPositiveWeight);
    }
    weights.clear();
    weights.extend(log_weights.iter().map(|lw| (lw - m).exp()));
    let s: f64 = weights.iter().sum();
    let mut s2 = 0.0;
    for w in weights.iter_mut() {
        *w /= s;
        s2 += *w * *w;
    }
    Ok((m + s.ln(), 1.0 / s2))
}

/// Summaries of weighted draws, one per output.
/// [`weighted_summaries`], checking `cancel` before each output.
pub(crate) fn weighted_summaries_checked(
    draws: &Draws,
    weights: &[f64],
    hdi_prob: f64,
    cancel: &crate::CancelToken,
) -> Result<Vec<crate::OutputSummary>, crate::InferError> {
    (0..draws.width)
        .map(|j| {
            cancel.check()?;
            Ok(crate::summary::summarize_weighted(
                &draws.names[j],
                &draws.column(j),
                weights,
                hdi_prob,
            ))
        })
        .collect()
}

pub(crate) fn weighted_summaries(
    draws: &Draws,
    weights: &[f64],
    hdi_prob: f64,
) -> Vec<crate::OutputSummary> {
    (0..draws.width)
        .map(|j| {
            crate::summary::summarize_weighted(&draws.names[j], &draws.column(j), weights, hdi_prob)
        })
        .collect()
}
