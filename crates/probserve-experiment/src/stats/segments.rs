//! Segment analysis for a binary ([`analyze`]) or continuous ([`analyze_means`]) metric:
//! per-segment effects with Holm-corrected
//! p-values, the naive aggregate effect, the post-stratified pooled effect (segment
//! effects weighted by segment population share), and a Simpson's-paradox flag
//! (experiments.md §3.11). Report both views: when the arm mix differs between
//! segments, the naive aggregate can point the other way from the segments.

use serde::{Deserialize, Serialize};

use super::multiple::holm;
use super::welch::{Effect, welch_test};
use super::ztest::two_proportion_ztest;
use super::{Alternative, norm_sf};
use crate::error::ExperimentError;
use crate::metrics::{Moments, Proportion};

/// One segment's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInput {
    /// Segment name (e.g. "premium").
    pub name: String,
    /// Control arm counts.
    pub control: Proportion,
    /// Treatment arm counts.
    pub treatment: Proportion,
}

/// One segment's data for a continuous metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanSegmentInput {
    /// Segment name.
    pub name: String,
    /// Control arm sufficient statistics.
    pub control: Moments,
    /// Treatment arm sufficient statistics.
    pub treatment: Moments,
}

/// One segment's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEffect {
    /// Segment name.
    pub name: String,
    /// Treatment − control (rate or mean).
    pub diff: f64,
    /// Raw two-sided p-value (z-test for rates, Welch for means).
    pub p_value: f64,
    /// Holm-adjusted p-value over the segments.
    pub p_adjusted: f64,
    /// Significant after adjustment at α.
    pub significant: bool,
    /// Sign opposite to the naive aggregate effect.
    pub reverses_aggregate: bool,
}

/// Segment report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// Per-segment effects.
    pub segments: Vec<SegmentEffect>,
    /// Naive effect from pooled counts (can mislead).
    pub aggregate_diff: f64,
    /// Post-stratified effect: Σ wₛ·Δₛ with wₛ the segment's share of all units.
    pub stratified_diff: f64,
    /// SE of the stratified effect.
    pub stratified_se: f64,
    /// Two-sided p-value of the stratified effect.
    pub stratified_p: f64,
    /// Names of segments whose effect has the opposite sign to the aggregate.
    pub reversed_segments: Vec<String>,
    /// The aggregate's sign differs from every segment's sign (full Simpson reversal),
    /// or from the stratified effect's sign.
    pub simpson: bool,
}

/// Per-segment inputs common to both metric kinds.
struct Cell {
    name: String,
    diff: f64,
    var: f64,
    p_value: f64,
    units: f64,
}

/// Analyse a binary metric's segments at level `alpha`.
///
/// # Errors
/// No segments, an empty arm, or a degenerate segment.
pub fn analyze(segments: &[SegmentInput], alpha: f64) -> Result<SegmentReport, ExperimentError> {
    if segments.is_empty() {
        return Err(ExperimentError::input("no segments"));
    }
    let mut pooled_c = Proportion::default();
    let mut pooled_t = Proportion::default();
    let mut cells = Vec::with_capacity(segments.len());
    for s in segments {
        pooled_c.merge(&s.control);
        pooled_t.merge(&s.treatment);
        let z = two_proportion_ztest(s.control, s.treatment, Alternative::TwoSided, alpha)?;
        let (pc, pt) = (s.control.rate(), s.treatment.rate());
        cells.push(Cell {
            name: s.name.clone(),
            diff: z.diff,
            var: pc * (1.0 - pc) / s.control.n as f64 + pt * (1.0 - pt) / s.treatment.n as f64,
            p_value: z.p_value,
            units: (s.control.n + s.treatment.n) as f64,
        });
    }
    assemble(cells, pooled_t.rate() - pooled_c.rate(), alpha)
}

/// Analyse a continuous metric's segments at level `alpha` (Welch per segment).
///
/// # Errors
/// No segments, fewer than 2 observations in an arm, or zero variance.
pub fn analyze_means(
    segments: &[MeanSegmentInput],
    alpha: f64,
) -> Result<SegmentReport, ExperimentError> {
    if segments.is_empty() {
        return Err(ExperimentError::input("no segments"));
    }
    let mut pooled_c = Moments::default();
    let mut pooled_t = Moments::default();
    let mut cells = Vec::with_capacity(segments.len());
    for s in segments {
        pooled_c.merge(&s.control);
        pooled_t.merge(&s.treatment);
        let w = welch_test(
            &s.control,
            &s.treatment,
            Effect::Absolute,
            Alternative::TwoSided,
            alpha,
        )?;
        cells.push(Cell {
            name: s.name.clone(),
            diff: w.effect,
            var: w.se * w.se,
            p_value: w.p_value,
            units: (s.control.n + s.treatment.n) as f64,
        });
    }
    assemble(cells, pooled_t.mean() - pooled_c.mean(), alpha)
}

fn assemble(
    cells: Vec<Cell>,
    aggregate_diff: f64,
    alpha: f64,
) -> Result<SegmentReport, ExperimentError> {
    let adjusted = holm(&cells.iter().map(|c| c.p_value).collect::<Vec<_>>())?;
    let total: f64 = cells.iter().map(|c| c.units).sum();
    let (mut strat, mut var) = (0.0, 0.0);
    for c in &cells {
        let w = c.units / total;
        strat += w * c.diff;
        var += w * w * c.var;
    }
    let se = var.sqrt();
    let stratified_p = if se > 0.0 {
        (2.0 * norm_sf((strat / se).abs())).min(1.0)
    } else {
        1.0
    };
    let n_cells = cells.len();
    let mut out = Vec::with_capacity(n_cells);
    let mut reversed = Vec::new();
    for (c, p_adj) in cells.into_iter().zip(adjusted) {
        let rev =
            c.diff != 0.0 && aggregate_diff != 0.0 && c.diff.signum() != aggregate_diff.signum();
        if rev {
            reversed.push(c.name.clone());
        }
        out.push(SegmentEffect {
            name: c.name,
            diff: c.diff,
            p_value: c.p_value,
            p_adjusted: p_adj,
            significant: p_adj < alpha,
            reverses_aggregate: rev,
        });
    }
    let simpson = (reversed.len() == n_cells)
        || (strat != 0.0 && aggregate_diff != 0.0 && strat.signum() != aggregate_diff.signum());
    Ok(SegmentReport {
        segments: out,
        aggregate_diff,
        stratified_diff: strat,
        stratified_se: se,
        stratified_p,
        reversed_segments: reversed,
        simpson,
    })
}
