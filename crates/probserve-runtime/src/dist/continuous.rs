//! Continuous scalar families.

use super::{ScalarDist, Support, finite, positive, xlog1py, xlogy};
use crate::error::DistError;
use crate::math::{HALF_LN_2PI, ln_beta, ln_gamma};
use rand::Rng;
use rand_distr::{Distribution as _, Exp1, StandardNormal};

const LN_PI: f64 = 1.144_729_885_849_400_2;

/// Normal distribution `N(mu, sigma)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normal {
    mu: f64,
    sigma: f64,
    norm: f64,
}

impl Normal {
    /// Build from mean and standard deviation (`sigma > 0`, both finite).
    pub fn new(mu: f64, sigma: f64) -> Result<Self, DistError> {
        finite("Normal", "mu", mu)?;
        positive("Normal", "sigma", sigma)?;
        Ok(Normal {
            mu,
            sigma,
            norm: -sigma.ln() - HALF_LN_2PI,
        })
    }
    /// Same scale, new mean (reuses the cached normalizer; `mu` must be finite).
    pub fn with_mean(&self, mu: f64) -> Result<Self, DistError> {
        finite("Normal", "mu", mu)?;
        Ok(Normal { mu, ..*self })
    }
    /// Mean.
    pub fn mu(&self) -> f64 {
        self.mu
    }
    /// Standard deviation.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

impl ScalarDist for Normal {
    #[inline]
    fn log_prob(&self, x: f64) -> f64 {
        let z = (x - self.mu) / self.sigma;
        if z.is_infinite() {
            return f64::NEG_INFINITY;
        }
        self.norm - 0.5 * z * z
    }
    #[inline]
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let z: f64 = rng.sample(StandardNormal);
        self.mu + self.sigma * z
    }
    fn support(&self) -> Support {
        Support::Real
    }
}

/// Half-normal distribution: `|N(0, sigma)|` on `[0, ∞)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfNormal {
    sigma: f64,
    norm: f64,
}

impl HalfNormal {
    /// Build from the scale (`sigma > 0`, finite).
    pub fn new(sigma: f64) -> Result<Self, DistError> {
        positive("HalfNormal", "sigma", sigma)?;
        Ok(HalfNormal {
            sigma,
            norm: std::f64::consts::LN_2 - sigma.ln() - HALF_LN_2PI,
        })
    }
}

impl ScalarDist for HalfNormal {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if x < 0.0 || x.is_infinite() {
            return f64::NEG_INFINITY;
        }
        let z = x / self.sigma;
        self.norm - 0.5 * z * z
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let z: f64 = rng.sample(StandardNormal);
        (self.sigma * z).abs()
    }
    fn support(&self) -> Support {
        Support::Positive
    }
}

/// Log-normal distribution: `exp(N(mu, sigma))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormal {
    mu: f64,
    sigma: f64,
    norm: f64,
}

impl LogNormal {
    /// Build from the log-scale mean and standard deviation.
    pub fn new(mu: f64, sigma: f64) -> Result<Self, DistError> {
        finite("LogNormal", "mu", mu)?;
        positive("LogNormal", "sigma", sigma)?;
        Ok(LogNormal {
            mu,
            sigma,
            norm: -sigma.ln() - HALF_LN_2PI,
        })
    }
}

impl ScalarDist for LogNormal {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if x <= 0.0 || x.is_infinite() {
            return f64::NEG_INFINITY;
        }
        let lx = x.ln();
        let z = (lx - self.mu) / self.sigma;
        self.norm - lx - 0.5 * z * z
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let z: f64 = rng.sample(StandardNormal);
        (self.mu + self.sigma * z).exp()
    }
    fn support(&self) -> Support {
        Support::Positive
    }
}

/// Student-t distribution with `nu` degrees of freedom, location and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StudentT {
    nu: f64,
    loc: f64,
    scale: f64,
    norm: f64,
}

impl StudentT {
    /// Build from degrees of freedom (`> 0`), location and scale (`> 0`).
    pub fn new(nu: f64, loc: f64, scale: f64) -> Result<Self, DistError> {
        positive("StudentT", "nu", nu)?;
        finite("StudentT", "loc", loc)?;
        positive("StudentT", "scale", scale)?;
        let norm =
            ln_gamma(0.5 * (nu + 1.0)) - ln_gamma(0.5 * nu) - 0.5 * (nu.ln() + LN_PI) - scale.ln();
        Ok(StudentT {
            nu,
            loc,
            scale,
            norm,
        })
    }
}

impl ScalarDist for StudentT {
    fn log_prob(&self, x: f64) -> f64 {
        let z = (x - self.loc) / self.scale;
        if z.is_infinite() {
            return f64::NEG_INFINITY;
        }
        self.norm - 0.5 * (self.nu + 1.0) * (z * z / self.nu).ln_1p()
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match rand_distr::StudentT::new(self.nu) {
            Ok(t) => self.loc + self.scale * t.sample(rng),
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::Real
    }
}

/// Cauchy distribution with location and scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cauchy {
    loc: f64,
    scale: f64,
    norm: f64,
}

impl Cauchy {
    /// Build from location and scale (`> 0`).
    pub fn new(loc: f64, scale: f64) -> Result<Self, DistError> {
        finite("Cauchy", "loc", loc)?;
        positive("Cauchy", "scale", scale)?;
        Ok(Cauchy {
            loc,
            scale,
            norm: -LN_PI - scale.ln(),
        })
    }
}

impl ScalarDist for Cauchy {
    fn log_prob(&self, x: f64) -> f64 {
        let z = (x - self.loc) / self.scale;
        if z.is_infinite() {
            return f64::NEG_INFINITY;
        }
        // ln(1 + z²) computed without overflow for huge |z|.
        let az = z.abs();
        let l = if az > 1e150 {
            2.0 * az.ln()
        } else {
            (z * z).ln_1p()
        };
        self.norm - l
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.random();
        self.loc + self.scale * (std::f64::consts::PI * (u - 0.5)).tan()
    }
    fn support(&self) -> Support {
        Support::Real
    }
}

/// Exponential distribution with the given rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponential {
    rate: f64,
    ln_rate: f64,
}

impl Exponential {
    /// Build from the rate (`> 0`).
    pub fn new(rate: f64) -> Result<Self, DistError> {
        positive("Exponential", "rate", rate)?;
        Ok(Exponential {
            rate,
            ln_rate: rate.ln(),
        })
    }
}

impl ScalarDist for Exponential {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if x < 0.0 {
            return f64::NEG_INFINITY;
        }
        self.ln_rate - self.rate * x
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let e: f64 = rng.sample(Exp1);
        e / self.rate
    }
    fn support(&self) -> Support {
        Support::Positive
    }
}

/// Gamma distribution with shape and rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gamma {
    shape: f64,
    rate: f64,
    norm: f64,
}

impl Gamma {
    /// Build from shape (`> 0`) and rate (`> 0`).
    pub fn new(shape: f64, rate: f64) -> Result<Self, DistError> {
        positive("Gamma", "shape", shape)?;
        positive("Gamma", "rate", rate)?;
        Ok(Gamma {
            shape,
            rate,
            norm: shape * rate.ln() - ln_gamma(shape),
        })
    }
}

impl ScalarDist for Gamma {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if x < 0.0 || x.is_infinite() {
            return f64::NEG_INFINITY;
        }
        if x == 0.0 {
            return if self.shape == 1.0 {
                self.rate.ln()
            } else if self.shape < 1.0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
        }
        self.norm + xlogy(self.shape - 1.0, x) - self.rate * x
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match rand_distr::Gamma::new(self.shape, 1.0 / self.rate) {
            Ok(g) => g.sample(rng),
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::Positive
    }
}

/// Inverse-gamma distribution with shape and scale: `1 / Gamma(shape, rate = scale)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseGamma {
    shape: f64,
    scale: f64,
    norm: f64,
}

impl InverseGamma {
    /// Build from shape (`> 0`) and scale (`> 0`).
    pub fn new(shape: f64, scale: f64) -> Result<Self, DistError> {
        positive("InverseGamma", "shape", shape)?;
        positive("InverseGamma", "scale", scale)?;
        Ok(InverseGamma {
            shape,
            scale,
            norm: shape * scale.ln() - ln_gamma(shape),
        })
    }
}

impl ScalarDist for InverseGamma {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if x <= 0.0 || x.is_infinite() {
            return f64::NEG_INFINITY;
        }
        self.norm - (self.shape + 1.0) * x.ln() - self.scale / x
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match rand_distr::Gamma::new(self.shape, 1.0 / self.scale) {
            Ok(g) => 1.0 / g.sample(rng),
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::Positive
    }
}

/// Beta distribution on `(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beta {
    a: f64,
    b: f64,
    norm: f64,
}

impl Beta {
    /// Build from the two shapes (`> 0`).
    pub fn new(a: f64, b: f64) -> Result<Self, DistError> {
        positive("Beta", "a", a)?;
        positive("Beta", "b", b)?;
        Ok(Beta {
            a,
            b,
            norm: -ln_beta(a, b),
        })
    }
}

impl ScalarDist for Beta {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if !(0.0..=1.0).contains(&x) {
            return f64::NEG_INFINITY;
        }
        let l = self.norm + xlogy(self.a - 1.0, x) + xlog1py(self.b - 1.0, -x);
        if l.is_nan() { f64::NEG_INFINITY } else { l }
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match rand_distr::Beta::new(self.a, self.b) {
            Ok(g) => g.sample(rng),
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::UnitInterval
    }
}

/// Continuous uniform distribution on `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uniform {
    lo: f64,
    hi: f64,
    log_density: f64,
}

impl Uniform {
    /// Build from finite bounds with `lo < hi` (and a finite width).
    pub fn new(lo: f64, hi: f64) -> Result<Self, DistError> {
        finite("Uniform", "lo", lo)?;
        finite("Uniform", "hi", hi)?;
        let width = hi - lo;
        if !(width > 0.0 && width.is_finite()) {
            return Err(DistError::InvalidParameter {
                dist: "Uniform",
                param: "hi",
                value: hi,
            });
        }
        Ok(Uniform {
            lo,
            hi,
            log_density: -width.ln(),
        })
    }
}

impl ScalarDist for Uniform {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if x < self.lo || x > self.hi {
            f64::NEG_INFINITY
        } else {
            self.log_density
        }
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.random();
        (self.lo + (self.hi - self.lo) * u).clamp(self.lo, self.hi)
    }
    fn support(&self) -> Support {
        Support::Interval {
            lo: self.lo,
            hi: self.hi,
        }
    }
}
