//! Continuous scalar families.

use super::{ScalarDist, Support, finite, positive, xlog1py, xlogy};
use crate::error::DistError;
use crate::math::{
    HALF_LN_2PI, STIRLING_FROM, ln_beta, ln_beta_kernel, ln_gamma, ln_saddle, ln1pmx, log_add_exp,
    stirling_tail,
};
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
        let norm = if 0.5 * nu < STIRLING_FROM {
            ln_gamma(0.5 * (nu + 1.0)) - ln_gamma_half(nu) - 0.5 * (nu.ln() + LN_PI)
        } else {
            large_nu_norm(nu)
        };
        Ok(StudentT {
            nu,
            loc,
            scale,
            norm: norm - scale.ln(),
        })
    }
}

/// `ln Γ(nu / 2)`, exact where halving a subnormal `nu` would round (to `0` at the smallest
/// one, making the normalizer `−∞`): there `ln Γ(h) = −ln h` to rounding, `ln h = ln nu − ln 2`.
fn ln_gamma_half(nu: f64) -> f64 {
    if nu < 1e-300 {
        std::f64::consts::LN_2 - nu.ln()
    } else {
        ln_gamma(0.5 * nu)
    }
}

/// `ln Γ((nu + 1)/2) − ln Γ(nu/2) − ½ ln(nu π)` for `nu/2 ≥ 10⁴`, which tends to `−½ ln 2π`
/// (the normal limit) while both log-gammas grow without bound (and overflow, `∞ − ∞`, near
/// `f64::MAX`). With `h = nu/2`, Stirling's series gives `ln Γ(h + ½) − ln Γ(h) − ½ ln h =
/// h (ln(1 + 1/(2h)) − 1/(2h)) + S(h + ½) − S(h)`, a small quantity computed as such.
fn large_nu_norm(nu: f64) -> f64 {
    let h = 0.5 * nu;
    let saddle = h * ln1pmx(1.0 / nu);
    saddle + (stirling_tail(h + 0.5) - stirling_tail(h)) - HALF_LN_2PI
}

/// `ln(1 + z²/nu)`, also where `z²` or `z²/nu` overflows (huge `|z|`, or a tiny `nu`): then
/// `z²/nu > 1` and it is `ln(1 + e^w)` with `w = 2 ln|z| − ln nu`.
fn ln1p_sq_over(z: f64, nu: f64) -> f64 {
    let w = z * z / nu;
    if w.is_finite() {
        w.ln_1p()
    } else {
        log_add_exp(0.0, 2.0 * z.abs().ln() - nu.ln())
    }
}

impl ScalarDist for StudentT {
    fn log_prob(&self, x: f64) -> f64 {
        let z = (x - self.loc) / self.scale;
        if z.is_infinite() {
            return f64::NEG_INFINITY;
        }
        self.norm - 0.5 * (self.nu + 1.0) * ln1p_sq_over(z, self.nu)
    }
    /// `rand_distr`'s `z · sqrt(nu / χ²_nu)` for ordinary `nu`. For `nu > 1e300` the χ² draw
    /// itself can overflow (to `∞`, making the draw `loc`): there `z / sqrt(G)` with
    /// `G ~ Gamma(nu/2, scale 2/nu)` (which is `χ²_nu / nu`, near 1). Where `nu/2` rounds to 0
    /// (`rand_distr` refuses it) every draw is beyond `f64::MAX` in size: `±∞`.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let t = if self.nu > 1e300 {
            let z: f64 = rng.sample(StandardNormal);
            match rand_distr::Gamma::new(0.5 * self.nu, 2.0 / self.nu) {
                Ok(g) => z / g.sample(rng).sqrt(),
                Err(_) => f64::NAN,
            }
        } else {
            match rand_distr::StudentT::new(self.nu) {
                Ok(t) => t.sample(rng),
                Err(_) => f64::INFINITY.copysign(rng.sample::<f64, _>(StandardNormal)),
            }
        };
        self.loc + self.scale * t
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
    /// `shape ln rate − ln Γ(shape)`, or for a large shape [`large_shape_norm`].
    norm: f64,
}

impl Gamma {
    /// Build from shape (`> 0`) and rate (`> 0`).
    pub fn new(shape: f64, rate: f64) -> Result<Self, DistError> {
        positive("Gamma", "shape", shape)?;
        positive("Gamma", "rate", rate)?;
        let norm = if shape < STIRLING_FROM {
            shape * rate.ln() - ln_gamma(shape)
        } else {
            large_shape_norm(shape)
        };
        Ok(Gamma { shape, rate, norm })
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
        if self.shape >= STIRLING_FROM {
            // y = rate·x / shape, formed so that it is exact to rounding near 1.
            let (a, b) = (self.shape, self.rate);
            let y = if b >= x { (b / a) * x } else { (x / a) * b };
            let ln_y = b.ln() + x.ln() - a.ln();
            return large_shape_log_density(a, self.norm, y, ln_y, x);
        }
        self.norm + xlogy(self.shape - 1.0, x) - self.rate * x
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        sample_gamma(self.shape, self.rate, rng)
    }
    fn support(&self) -> Support {
        Support::Positive
    }
}

/// `½ ln a − ½ ln 2π − S(a)`: what is left of `ln Γ(a)` in [`large_shape_log_density`].
fn large_shape_norm(a: f64) -> f64 {
    0.5 * a.ln() - HALF_LN_2PI - stirling_tail(a)
}

/// The gamma (at `x`, `y = rate·x/shape`) and inverse-gamma (at `x`, `y = scale/(shape·x)`)
/// log-densities for a shape `a ≥ 10⁴`. Stirling's series for `ln Γ(a)` turns both
/// `a ln rate − ln Γ(a) + (a − 1) ln x − rate·x` and `a ln scale − ln Γ(a) − (a + 1) ln x
/// − scale/x` into `a (1 + ln y − y) + ½ ln a − ln x − ½ ln 2π − S(a)`: a non-positive saddle
/// term plus terms of order `ln a`, right to rounding where the plain form cancels huge terms,
/// and never `∞ − ∞` (which the plain form is once `a ln rate` or `ln Γ(a)` overflows).
fn large_shape_log_density(a: f64, norm: f64, y: f64, ln_y: f64, x: f64) -> f64 {
    a * ln_saddle(y, ln_y) + norm - x.ln()
}

/// A `Gamma(shape, rate)` draw. `rand_distr` takes a scale `1 / rate` and, for `shape < 1`,
/// multiplies a `Gamma(shape + 1)` draw at that scale by `U^(1/shape)`: with a huge scale the
/// first factor overflows and `∞ · 0` is NaN, and a subnormal scale loses the draw's digits.
/// Outside `scale ∈ [MIN_POSITIVE, 1e300]` a unit-scale draw is divided by the rate instead;
/// ordinary rates keep `rand_distr`'s stream exactly.
fn sample_gamma<R: Rng + ?Sized>(shape: f64, rate: f64, rng: &mut R) -> f64 {
    let scale = 1.0 / rate;
    let (scale, divide_by) = if scale.is_normal() && scale <= 1e300 {
        (scale, 1.0)
    } else {
        (1.0, rate)
    };
    match rand_distr::Gamma::new(shape, scale) {
        Ok(g) => g.sample(rng) / divide_by,
        Err(_) => f64::NAN,
    }
}

/// Inverse-gamma distribution with shape and scale: `1 / Gamma(shape, rate = scale)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseGamma {
    shape: f64,
    scale: f64,
    /// `shape ln scale − ln Γ(shape)`, or for a large shape [`large_shape_norm`].
    norm: f64,
}

impl InverseGamma {
    /// Build from shape (`> 0`) and scale (`> 0`).
    pub fn new(shape: f64, scale: f64) -> Result<Self, DistError> {
        positive("InverseGamma", "shape", shape)?;
        positive("InverseGamma", "scale", scale)?;
        let norm = if shape < STIRLING_FROM {
            shape * scale.ln() - ln_gamma(shape)
        } else {
            large_shape_norm(shape)
        };
        Ok(InverseGamma { shape, scale, norm })
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
        if self.shape >= STIRLING_FROM {
            // y = scale / (shape·x), formed so that it is exact to rounding near 1.
            let (a, b) = (self.shape, self.scale);
            let by_x = b / x;
            let y = if x >= 1.0 || by_x.is_infinite() {
                (b / a) / x
            } else {
                by_x / a
            };
            let ln_y = b.ln() - x.ln() - a.ln();
            return large_shape_log_density(a, self.norm, y, ln_y, x);
        }
        self.norm - (self.shape + 1.0) * x.ln() - self.scale / x
    }
    /// `1 / Gamma(shape, rate = scale)`; where the gamma sampler would not use `rand_distr`'s
    /// scale `1 / scale` (a scale below 1e-300 or above about 4.5e307), `scale / Gamma(shape, 1)`,
    /// which neither gives NaN nor rounds the draw to `0` or `∞` while it is representable.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let inv = 1.0 / self.scale;
        if inv.is_normal() && inv <= 1e300 {
            1.0 / sample_gamma(self.shape, self.scale, rng)
        } else {
            self.scale / sample_gamma(self.shape, 1.0, rng)
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
    /// `−ln B(a, b)` (unused where [`beta_uses_kernel`]).
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

/// Whether both shapes are large enough for [`ln_beta_kernel`], which then carries the whole
/// log-density (its `ln B(a, b)` would cancel against `(a − 1) ln x + (b − 1) ln(1 − x)`, or
/// overflow: `∞ − ∞`).
fn beta_uses_kernel(a: f64, b: f64) -> bool {
    a.max(b) >= STIRLING_FROM && a.min(b) >= 10.0
}

impl ScalarDist for Beta {
    fn log_prob(&self, x: f64) -> f64 {
        if x.is_nan() {
            return f64::NAN;
        }
        if !(0.0..=1.0).contains(&x) {
            return f64::NEG_INFINITY;
        }
        if beta_uses_kernel(self.a, self.b) {
            if x == 0.0 || x == 1.0 {
                return f64::NEG_INFINITY;
            }
            return ln_beta_kernel(self.a, self.b, x) - x.ln() - (-x).ln_1p();
        }
        self.norm + xlogy(self.a - 1.0, x) + xlog1py(self.b - 1.0, -x)
    }
    /// `rand_distr`'s (Cheng's) sampler, except at two edges where it is wrong:
    /// - `a + b` overflows (it gives NaN): the standard deviation, below `1e-146` of the mean,
    ///   is far under one ulp, and the draw is the mean `a / (a + b)` to rounding;
    /// - the smaller shape is subnormal (`1 / min(a, b)` overflows and Cheng's draw is a fixed
    ///   `0` or `1`): all but a fraction of about `745 · min(a, b)` of the mass rounds to `0` or
    ///   `1`, and the draw is `1` with probability `a / (a + b)` (the mass near 1 as the
    ///   smaller shape goes to 0).
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        if (self.a + self.b).is_infinite() {
            return 1.0 / (1.0 + self.b / self.a);
        }
        if (1.0 / self.a.min(self.b)).is_infinite() {
            let u: f64 = rng.random();
            return if u < self.a / (self.a + self.b) {
                1.0
            } else {
                0.0
            };
        }
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
