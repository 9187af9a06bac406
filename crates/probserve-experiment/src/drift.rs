//! Drift of input features and model outputs against a reference window:
//! two-sample Kolmogorov–Smirnov (exact lattice-path p-value for small samples, the
//! Kolmogorov limit otherwise) and the population stability index over fixed bins
//! taken from the reference (so PSI is comparable over time; experiments.md §3.13).
//! Bands for PSI: < 0.1 none, 0.1–0.25 moderate, ≥ 0.25 significant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;

/// How the KS p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KsMethod {
    /// Exact: fraction of lattice paths that leave the band (scipy `method="exact"`).
    Exact,
    /// Asymptotic Kolmogorov distribution of √(nm/(n+m))·D (scipy `kstwobign`).
    Asymptotic,
}

/// Result of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    /// D = sup |F_ref − F_cur|.
    pub d: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Method used.
    pub method: KsMethod,
}

/// Largest n·m for which the exact p-value is computed (O(n·m) work).
pub const KS_EXACT_MAX_CELLS: u64 = 1_000_000;

fn sorted_finite(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// D as the integer max |i·m − j·n| over the merged order (ties stepped together).
fn ks_stat_int(a: &[f64], b: &[f64]) -> u64 {
    let (n, m) = (a.len() as i128, b.len() as i128);
    let (mut i, mut j) = (0usize, 0usize);
    let mut best: i128 = 0;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        best = best.max((i as i128 * m - j as i128 * n).abs());
    }
    best as u64
}

/// Kolmogorov survival function Q(λ) = 2 Σ (−1)^{k−1} e^{−2k²λ²}.
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 0.2 {
        return 1.0;
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let kf = f64::from(k);
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        s += if k % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

/// Exact P(D ≥ d) by counting lattice paths that stay strictly inside the band.
fn ks_exact(n: usize, m: usize, d_int: u64) -> f64 {
    let (ni, mi) = (n as i128, m as i128);
    let d = d_int as i128;
    let inside = |i: usize, j: usize| (i as i128 * mi - j as i128 * ni).abs() < d;
    // v[j] = fraction of all monotone paths to (i, j) that stayed inside.
    let mut v = vec![0.0f64; m + 1];
    v[0] = 1.0;
    for j in 1..=m {
        v[j] = if inside(0, j) { v[j - 1] } else { 0.0 };
    }
    for i in 1..=n {
        v[0] = if inside(i, 0) { v[0] } else { 0.0 };
        for j in 1..=m {
            if inside(i, j) {
                let (fi, fj) = (i as f64, j as f64);
                v[j] = fi / (fi + fj) * v[j] + fj / (fi + fj) * v[j - 1];
            } else {
                v[j] = 0.0;
            }
        }
    }
    (1.0 - v[m]).clamp(0.0, 1.0)
}

/// Two-sample, two-sided KS test (non-finite values are dropped).
///
/// # Errors
/// An empty sample.
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Result<KsResult, ExperimentError> {
    let a = sorted_finite(reference);
    let b = sorted_finite(current);
    if a.is_empty() || b.is_empty() {
        return Err(ExperimentError::InsufficientData(
            "KS needs two non-empty samples".into(),
        ));
    }
    let (n, m) = (a.len(), b.len());
    let d_int = ks_stat_int(&a, &b);
    let d = d_int as f64 / (n as f64 * m as f64);
    if (n as u64).saturating_mul(m as u64) <= KS_EXACT_MAX_CELLS {
        Ok(KsResult {
            d,
            p_value: ks_exact(n, m, d_int),
            method: KsMethod::Exact,
        })
    } else {
        let en = (n as f64 * m as f64) / (n + m) as f64;
        Ok(KsResult {
            d,
            p_value: kolmogorov_sf(en.sqrt() * d),
            method: KsMethod::Asymptotic,
        })
    }
}

/// PSI between bin proportions; empty bins (either side) are filled with 1e−4
/// (Evidently's fill). Proportions are renormalised to sum to 1.
///
/// # Errors
/// Length mismatch, negative values or an all-zero side.
pub fn psi(reference: &[f64], current: &[f64]) -> Result<f64, ExperimentError> {
    if reference.len() != current.len() || reference.is_empty() {
        return Err(ExperimentError::input(
            "PSI needs equal, non-empty bin vectors",
        ));
    }
    if reference
        .iter()
        .chain(current)
        .any(|x| !x.is_finite() || *x < 0.0)
    {
        return Err(ExperimentError::input(
            "bin proportions must be finite and ≥ 0",
        ));
    }
    let (sr, sc): (f64, f64) = (reference.iter().sum(), current.iter().sum());
    if sr <= 0.0 || sc <= 0.0 {
        return Err(ExperimentError::InsufficientData(
            "a side has no mass".into(),
        ));
    }
    let fill = |x: f64| if x == 0.0 { 1e-4 } else { x };
    Ok(reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = (fill(r / sr), fill(c / sc));
            (r - c) * (r / c).ln()
        })
        .sum())
}

/// PSI band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PsiBand {
    /// < 0.1.
    None,
    /// 0.1 – 0.25.
    Moderate,
    /// ≥ 0.25.
    Significant,
}

impl PsiBand {
    /// Band of a PSI value.
    pub fn of(psi: f64) -> Self {
        if psi < 0.1 {
            PsiBand::None
        } else if psi < 0.25 {
            PsiBand::Moderate
        } else {
            PsiBand::Significant
        }
    }
}

/// Drift thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftConfig {
    /// KS drift when p < this (default 0.05).
    pub ks_alpha: f64,
    /// PSI drift when ≥ this (default 0.1).
    pub psi_threshold: f64,
    /// Quantile bins taken from the reference (default 10).
    pub bins: usize,
    /// Dataset drift when at least this share of features drift (default 0.5).
    pub dataset_share: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            ks_alpha: 0.05,
            psi_threshold: 0.1,
            bins: 10,
            dataset_share: 0.5,
        }
    }
}

/// A feature's reference window: sorted sample plus fixed bin edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReference {
    /// Sorted reference values.
    pub sample: Vec<f64>,
    /// Interior bin edges (quantiles of the reference, deduplicated).
    pub edges: Vec<f64>,
}

impl FeatureReference {
    /// Build from a reference sample with `bins` quantile bins.
    ///
    /// # Errors
    /// An empty sample or `bins < 2`.
    pub fn new(sample: &[f64], bins: usize) -> Result<Self, ExperimentError> {
        let s = sorted_finite(sample);
        if s.is_empty() {
            return Err(ExperimentError::InsufficientData("empty reference".into()));
        }
        if bins < 2 {
            return Err(ExperimentError::config("bins", "need at least 2 bins"));
        }
        let mut edges: Vec<f64> = (1..bins)
            .map(|k| s[(k * s.len() / bins).min(s.len() - 1)])
            .collect();
        edges.dedup();
        Ok(Self { sample: s, edges })
    }

    /// Proportions of `xs` per bin (value `v` is in bin `k` when `edges[k−1] ≤ v < edges[k]`).
    pub fn proportions(&self, xs: &[f64]) -> Vec<f64> {
        let mut counts = vec![0.0; self.edges.len() + 1];
        let mut total = 0.0;
        for &x in xs.iter().filter(|x| x.is_finite()) {
            let k = self.edges.partition_point(|e| *e <= x);
            counts[k] += 1.0;
            total += 1.0;
        }
        if total > 0.0 {
            counts.iter_mut().for_each(|c| *c /= total);
        }
        counts
    }
}

/// One feature's drift result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Feature (or output) name.
    pub name: String,
    /// KS test.
    pub ks: KsResult,
    /// PSI over the reference bins.
    pub psi: f64,
    /// PSI band.
    pub band: PsiBand,
    /// KS p < α or PSI ≥ threshold.
    pub drifted: bool,
}

/// Drift report over all features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Per feature, in name order.
    pub features: Vec<FeatureDrift>,
    /// Share of features that drifted.
    pub drifted_share: f64,
    /// `drifted_share ≥ dataset_share`.
    pub dataset_drift: bool,
}

/// Reference windows for a set of features and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftDetector {
    /// Thresholds.
    pub config: DriftConfig,
    /// References by name.
    pub references: BTreeMap<String, FeatureReference>,
}

impl DriftDetector {
    /// Build from reference samples.
    ///
    /// # Errors
    /// As [`FeatureReference::new`].
    pub fn new(
        config: DriftConfig,
        reference: &BTreeMap<String, Vec<f64>>,
    ) -> Result<Self, ExperimentError> {
        let references = reference
            .iter()
            .map(|(k, v)| Ok((k.clone(), FeatureReference::new(v, config.bins)?)))
            .collect::<Result<_, ExperimentError>>()?;
        Ok(Self { config, references })
    }

    /// Compare a current window to the references; features absent from `current`
    /// are skipped.
    ///
    /// # Errors
    /// An empty current sample for a present feature.
    pub fn report(
        &self,
        current: &BTreeMap<String, Vec<f64>>,
    ) -> Result<DriftReport, ExperimentError> {
        let mut features = Vec::new();
        for (name, r) in &self.references {
            let Some(cur) = current.get(name) else {
                continue;
            };
            let ks = ks_2samp(&r.sample, cur)?;
            let psi_v = psi(&r.proportions(&r.sample), &r.proportions(cur))?;
            features.push(FeatureDrift {
                name: name.clone(),
                ks,
                psi: psi_v,
                band: PsiBand::of(psi_v),
                drifted: ks.p_value < self.config.ks_alpha || psi_v >= self.config.psi_threshold,
            });
        }
        let share = if features.is_empty() {
            0.0
        } else {
            features.iter().filter(|f| f.drifted).count() as f64 / features.len() as f64
        };
        Ok(DriftReport {
            dataset_drift: !features.is_empty() && share >= self.config.dataset_share,
            drifted_share: share,
            features,
        })
    }
}
