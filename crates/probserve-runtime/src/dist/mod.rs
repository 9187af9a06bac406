//! Distributions: validated constructors, exact log-densities, sampling and supports.
//!
//! Every scalar value is an `f64` (booleans are `0.0`/`1.0`, counts and categories are exact
//! integers). [`Dist`] and [`VecDist`] are run-time enums over the concrete types for callers
//! (such as the model language) that pick the family at run time.
//!
//! Parameters range over all of `f64` (a valid distribution's log-density is NaN only at a NaN
//! argument): where the plain formulas would cancel huge terms or form `∞ − ∞` (large shapes,
//! counts or degrees of freedom), the families switch to the Stirling and saddle-point forms in
//! [`crate::math`], and a value beyond `f64` is `±∞` with its sign.

mod continuous;
mod discrete;
mod multivariate;

pub use continuous::{
    Beta, Cauchy, Exponential, Gamma, HalfNormal, InverseGamma, LogNormal, Normal, StudentT,
    Uniform,
};
pub use discrete::{Bernoulli, Binomial, Categorical, Geometric, NegativeBinomial, Poisson};
pub use multivariate::{Dirichlet, MvNormal};

use crate::error::DistError;
use rand::Rng;

/// The set of values a distribution puts mass on; MCMC picks its proposal from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Support {
    /// All finite reals.
    Real,
    /// `(0, ∞)` (densities defined at `0` are still evaluated there).
    Positive,
    /// `(0, 1)`.
    UnitInterval,
    /// `[lo, hi]` with `lo < hi`.
    Interval {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// `{0, 1}`.
    Boolean,
    /// `{0, 1, 2, …}`.
    NonNegativeInteger,
    /// `{lo, …, hi}`.
    IntegerRange {
        /// Smallest value.
        lo: i64,
        /// Largest value.
        hi: i64,
    },
    /// Probability vectors of length `dim`.
    Simplex {
        /// Vector length.
        dim: usize,
    },
    /// Real vectors of length `dim`.
    RealVector {
        /// Vector length.
        dim: usize,
    },
}

impl Support {
    /// Whether the scalar `x` lies in this support (vector supports return `false`).
    pub fn contains(&self, x: f64) -> bool {
        match *self {
            Support::Real => x.is_finite(),
            Support::Positive => x > 0.0 && x.is_finite(),
            Support::UnitInterval => x > 0.0 && x < 1.0,
            Support::Interval { lo, hi } => x >= lo && x <= hi,
            Support::Boolean => x == 0.0 || x == 1.0,
            Support::NonNegativeInteger => x >= 0.0 && x.fract() == 0.0 && x.is_finite(),
            Support::IntegerRange { lo, hi } => {
                x.fract() == 0.0 && x >= lo as f64 && x <= hi as f64
            }
            Support::Simplex { .. } | Support::RealVector { .. } => false,
        }
    }

    /// Whether values are integers.
    pub fn is_discrete(&self) -> bool {
        matches!(
            self,
            Support::Boolean | Support::NonNegativeInteger | Support::IntegerRange { .. }
        )
    }
}

/// A distribution over scalars.
pub trait ScalarDist {
    /// Exact log-density (log-mass for discrete families); `−∞` outside the support, NaN only for
    /// a NaN argument.
    fn log_prob(&self, x: f64) -> f64;
    /// Draw one value.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64;
    /// The support.
    fn support(&self) -> Support;
}

/// A distribution over fixed-length vectors.
pub trait VectorDist {
    /// Vector length.
    fn dim(&self) -> usize;
    /// Exact log-density; `−∞` outside the support or for a wrong length.
    fn log_prob(&self, x: &[f64]) -> f64;
    /// Draw one value into `out` (`out.len()` must equal `dim()`; otherwise `out` is filled with NaN).
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]);
    /// The support.
    fn support(&self) -> Support;
}

impl<D: ScalarDist + ?Sized> ScalarDist for &D {
    #[inline]
    fn log_prob(&self, x: f64) -> f64 {
        (**self).log_prob(x)
    }
    #[inline]
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        (**self).sample(rng)
    }
    #[inline]
    fn support(&self) -> Support {
        (**self).support()
    }
}

macro_rules! scalar_enum {
    ($($v:ident),* $(,)?) => {
        /// Any scalar distribution, chosen at run time.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Dist {
            $(
                #[doc = concat!("A [`", stringify!($v), "`] distribution.")]
                $v($v),
            )*
        }

        impl ScalarDist for Dist {
            #[inline]
            fn log_prob(&self, x: f64) -> f64 {
                match self { $(Dist::$v(d) => d.log_prob(x),)* }
            }
            #[inline]
            fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
                match self { $(Dist::$v(d) => d.sample(rng),)* }
            }
            #[inline]
            fn support(&self) -> Support {
                match self { $(Dist::$v(d) => d.support(),)* }
            }
        }

        $(impl From<$v> for Dist {
            fn from(d: $v) -> Self { Dist::$v(d) }
        })*

        impl Dist {
            /// The family name, e.g. `"Normal"`.
            pub fn family(&self) -> &'static str {
                match self { $(Dist::$v(_) => stringify!($v),)* }
            }
        }
    };
}

scalar_enum!(
    Normal,
    HalfNormal,
    LogNormal,
    StudentT,
    Cauchy,
    Exponential,
    Gamma,
    InverseGamma,
    Beta,
    Uniform,
    Bernoulli,
    Binomial,
    Poisson,
    Categorical,
    Geometric,
    NegativeBinomial,
);

/// Any vector distribution, chosen at run time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VecDist {
    /// A [`Dirichlet`] distribution.
    Dirichlet(Dirichlet),
    /// A [`MvNormal`] distribution.
    MvNormal(MvNormal),
}

impl VectorDist for VecDist {
    fn dim(&self) -> usize {
        match self {
            VecDist::Dirichlet(d) => d.dim(),
            VecDist::MvNormal(d) => d.dim(),
        }
    }
    fn log_prob(&self, x: &[f64]) -> f64 {
        match self {
            VecDist::Dirichlet(d) => d.log_prob(x),
            VecDist::MvNormal(d) => d.log_prob(x),
        }
    }
    fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [f64]) {
        match self {
            VecDist::Dirichlet(d) => d.sample_into(rng, out),
            VecDist::MvNormal(d) => d.sample_into(rng, out),
        }
    }
    fn support(&self) -> Support {
        match self {
            VecDist::Dirichlet(d) => d.support(),
            VecDist::MvNormal(d) => d.support(),
        }
    }
}

impl From<Dirichlet> for VecDist {
    fn from(d: Dirichlet) -> Self {
        VecDist::Dirichlet(d)
    }
}

impl From<MvNormal> for VecDist {
    fn from(d: MvNormal) -> Self {
        VecDist::MvNormal(d)
    }
}

/// `a · ln(x)` with the convention `0 · ln(0) = 0`.
#[inline]
pub(crate) fn xlogy(a: f64, x: f64) -> f64 {
    if a == 0.0 && !x.is_nan() {
        0.0
    } else {
        a * x.ln()
    }
}

/// `a · ln(1 + x)` with the convention `0 · ln(0) = 0`.
#[inline]
pub(crate) fn xlog1py(a: f64, x: f64) -> f64 {
    if a == 0.0 && !x.is_nan() {
        0.0
    } else {
        a * x.ln_1p()
    }
}

pub(crate) fn finite(
    dist: &'static str,
    param: &'static str,
    value: f64,
) -> Result<f64, DistError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(DistError::InvalidParameter { dist, param, value })
    }
}

pub(crate) fn positive(
    dist: &'static str,
    param: &'static str,
    value: f64,
) -> Result<f64, DistError> {
    if value > 0.0 && value.is_finite() {
        Ok(value)
    } else {
        Err(DistError::InvalidParameter { dist, param, value })
    }
}

pub(crate) fn probability(
    dist: &'static str,
    param: &'static str,
    value: f64,
) -> Result<f64, DistError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(DistError::InvalidParameter { dist, param, value })
    }
}

/// Whether `x` is an integer in `[0, max]`.
#[inline]
pub(crate) fn is_count(x: f64, max: f64) -> bool {
    x >= 0.0 && x <= max && x.fract() == 0.0
}
