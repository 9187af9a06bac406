//! Vector families: Dirichlet and multivariate normal.

use super::{Support, VectorDist};
use crate::error::DistError;
use crate::math::{HALF_LN_2PI, ln_gamma, log_sum_exp};
use rand::Rng;
use rand_distr::{Distribution as _, StandardNormal};

/// Tolerance on `|Σ xᵢ − 1|` (scaled by the dimension) for a point to be on the simplex.
const SIMPLEX_TOL: f64 = 1e-9;

/// Dirichlet distribution over the probability simplex.
#[derive(Debug, Clone, PartialEq)]
pub struct Dirichlet {
    alpha: Vec<f64>,
    norm: f64,
}

impl Dirichlet {
    /// Build from concentrations (at least two, each `> 0` and finite).
    pub fn new(alpha: &[f64]) -> Result<Self, DistError> {
        if alpha.len() < 2 {
            return Err(DistError::InvalidDimension {
                dist: "Dirichlet",
                param: "alpha",
                len: alpha.len(),
            });
        }
        for &a in alpha {
            super::positive("Dirichlet", "alpha", a)?;
        }
        let total: f64 = alpha.iter().sum();
        let norm = ln_gamma(total) - alpha.iter().map(|&a| ln_gamma(a)).sum::<f64>();
        Ok(Dirichlet {
            alpha: alpha.to_vec(),
            norm,
        })
    }

    /// Concentrations.
    pub fn alpha(&self) -> &[f64] {
        &self.alpha
    }
}

impl VectorDist for Dirichlet {
    fn dim(&self) -> usize {
        self.alpha.len()
    }
    fn log_prob(&self, x: &[f64]) -> f64 {
        if x.len() != self.alpha.len() {
            return f64::NEG_INFINITY;
        }
        if x.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        if x.iter().any(|&v| !(0.0..=1.0).contains(&v)) {
            return f64::NEG_INFINITY;
        }
        let s: f64 = x.iter().sum();
        if (s - 1.0).abs() > SIMPLEX_TOL * x.len() as f64 {
            return f64::NEG_INFINITY;
        }
        let mut l = self.norm;
        for (&a, &v) in self.alpha.iter().zip(x) {
            l += super::xlogy(a - 1.0, v);
        }
        if l.is_nan() { f64::NEG_INFINITY } else { l }
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        if out.len() != self.alpha.len() {
            out.fill(f64::NAN);
            return;
        }
        // Work in log space so that tiny concentrations do not underflow to an all-zero vector:
        // G ~ Gamma(a) is drawn as Gamma(a + 1) · U^(1/a).
        for (o, &a) in out.iter_mut().zip(&self.alpha) {
            let Ok(g) = rand_distr::Gamma::new(a + 1.0, 1.0) else {
                *o = f64::NAN;
                continue;
            };
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            *o = g.sample(rng).ln() + u.ln() / a;
        }
        let lse = log_sum_exp(out);
        for o in out.iter_mut() {
            *o = (*o - lse).exp();
        }
    }
    fn support(&self) -> Support {
        Support::Simplex {
            dim: self.alpha.len(),
        }
    }
}

/// Multivariate normal distribution, stored by the Cholesky factor of its covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct MvNormal {
    mean: Vec<f64>,
    /// Lower-triangular Cholesky factor, row-major `k × k`.
    chol: Vec<f64>,
    norm: f64,
}

impl MvNormal {
    /// Build from a mean and a symmetric positive-definite covariance (row-major `k × k`).
    pub fn new(mean: &[f64], cov: &[f64]) -> Result<Self, DistError> {
        let k = mean.len();
        if k == 0 {
            return Err(DistError::InvalidDimension {
                dist: "MvNormal",
                param: "mean",
                len: 0,
            });
        }
        if cov.len() != k * k {
            return Err(DistError::InvalidDimension {
                dist: "MvNormal",
                param: "cov",
                len: cov.len(),
            });
        }
        for &m in mean {
            super::finite("MvNormal", "mean", m)?;
        }
        for &c in cov {
            super::finite("MvNormal", "cov", c)?;
        }
        for i in 0..k {
            for j in 0..i {
                let (a, b) = (cov[i * k + j], cov[j * k + i]);
                if (a - b).abs() > 1e-10 * a.abs().max(b.abs()).max(1.0) {
                    return Err(DistError::NotPositiveDefinite { dist: "MvNormal" });
                }
            }
        }
        let mut l = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..=i {
                let mut s = cov[i * k + j];
                for p in 0..j {
                    s -= l[i * k + p] * l[j * k + p];
                }
                if i == j {
                    if s.is_nan() || s <= 0.0 {
                        return Err(DistError::NotPositiveDefinite { dist: "MvNormal" });
                    }
                    l[i * k + i] = s.sqrt();
                } else {
                    l[i * k + j] = s / l[j * k + j];
                }
            }
        }
        Self::from_cholesky(mean, &l)
    }

    /// Build from a mean and a lower-triangular Cholesky factor with positive diagonal.
    pub fn from_cholesky(mean: &[f64], chol: &[f64]) -> Result<Self, DistError> {
        let k = mean.len();
        if k == 0 || chol.len() != k * k {
            return Err(DistError::InvalidDimension {
                dist: "MvNormal",
                param: "chol",
                len: chol.len(),
            });
        }
        let mut log_det_half = 0.0;
        for i in 0..k {
            let d = chol[i * k + i];
            if !(d > 0.0 && d.is_finite()) {
                return Err(DistError::NotPositiveDefinite { dist: "MvNormal" });
            }
            log_det_half += d.ln();
        }
        let mut lower = chol.to_vec();
        for i in 0..k {
            for j in i + 1..k {
                lower[i * k + j] = 0.0;
            }
        }
        Ok(MvNormal {
            mean: mean.to_vec(),
            chol: lower,
            norm: -log_det_half - k as f64 * HALF_LN_2PI,
        })
    }

    /// Mean vector.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
}

impl VectorDist for MvNormal {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn log_prob(&self, x: &[f64]) -> f64 {
        let k = self.mean.len();
        if x.len() != k {
            return f64::NEG_INFINITY;
        }
        if x.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        let mut stack = [0.0f64; 16];
        let mut heap;
        let z: &mut [f64] = if k <= 16 {
            &mut stack[..k]
        } else {
            heap = vec![0.0; k];
            &mut heap
        };
        let mut quad = 0.0;
        for i in 0..k {
            let row = &self.chol[i * k..i * k + i];
            let s =
                x[i] - self.mean[i] - row.iter().zip(&z[..i]).map(|(l, zj)| l * zj).sum::<f64>();
            z[i] = s / self.chol[i * k + i];
            quad += z[i] * z[i];
        }
        if quad.is_nan() {
            return f64::NEG_INFINITY;
        }
        self.norm - 0.5 * quad
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        let k = self.mean.len();
        if out.len() != k {
            out.fill(f64::NAN);
            return;
        }
        // Fill with standard normals, then x = mean + L z computed from the bottom row up
        // so each z_j is read before it is overwritten.
        for o in out.iter_mut() {
            *o = rng.sample(StandardNormal);
        }
        for i in (0..k).rev() {
            let row = &self.chol[i * k..=i * k + i];
            out[i] = self.mean[i]
                + row
                    .iter()
                    .zip(&out[..=i])
                    .map(|(l, zj)| l * zj)
                    .sum::<f64>();
        }
    }
    fn support(&self) -> Support {
        Support::RealVector {
            dim: self.mean.len(),
        }
    }
}
