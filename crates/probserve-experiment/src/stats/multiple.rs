//! Multiple-comparison corrections (experiments.md §3.10): Holm (family-wise error)
//! and Benjamini–Hochberg (false discovery rate). Both return adjusted p-values in the
//! input order.

use crate::error::ExperimentError;

fn check(ps: &[f64]) -> Result<(), ExperimentError> {
    if ps.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err(ExperimentError::input("p-values must be in [0, 1]"));
    }
    Ok(())
}

/// Holm–Bonferroni adjusted p-values.
///
/// # Errors
/// A p-value outside [0, 1].
pub fn holm(ps: &[f64]) -> Result<Vec<f64>, ExperimentError> {
    check(ps)?;
    let m = ps.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut out = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = (ps[i] * (m - rank) as f64).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    Ok(out)
}

/// Benjamini–Hochberg adjusted p-values.
///
/// # Errors
/// A p-value outside [0, 1].
pub fn benjamini_hochberg(ps: &[f64]) -> Result<Vec<f64>, ExperimentError> {
    check(ps)?;
    let m = ps.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| ps[b].total_cmp(&ps[a]));
    let mut out = vec![0.0; m];
    let mut running = 1.0f64;
    for (pos, &i) in idx.iter().enumerate() {
        let rank = m - pos;
        let adj = (ps[i] * m as f64 / rank as f64).min(1.0);
        running = running.min(adj);
        out[i] = running;
    }
    Ok(out)
}
