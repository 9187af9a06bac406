//! Discrete scalar families (values are exact integers stored as `f64`).

use super::{ScalarDist, Support, is_count, positive, probability, xlog1py, xlogy};
use crate::error::DistError;
use crate::math::{
    HALF_LN_2PI, STIRLING_FROM, ln_beta_kernel, ln_binomial, ln_gamma, ln_poch, ln_saddle,
    stirling_tail,
};
use rand::Rng;
use rand_distr::Distribution as _;

/// Largest count the discrete families produce or accept (integers stay exact in `f64`).
pub const MAX_COUNT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Bernoulli distribution on `{0, 1}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bernoulli {
    p: f64,
}

impl Bernoulli {
    /// Build from the success probability `p ∈ [0, 1]`.
    pub fn new(p: f64) -> Result<Self, DistError> {
        Ok(Bernoulli {
            p: probability("Bernoulli", "p", p)?,
        })
    }
    /// Success probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl ScalarDist for Bernoulli {
    #[inline]
    fn log_prob(&self, x: f64) -> f64 {
        if x == 1.0 {
            self.p.ln()
        } else if x == 0.0 {
            (-self.p).ln_1p()
        } else if x.is_nan() {
            f64::NAN
        } else {
            f64::NEG_INFINITY
        }
    }
    #[inline]
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.random();
        if u < self.p { 1.0 } else { 0.0 }
    }
    fn support(&self) -> Support {
        Support::Boolean
    }
}

/// Binomial distribution: successes in `n` trials with probability `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Binomial {
    n: u64,
    p: f64,
}

impl Binomial {
    /// Build from the number of trials (`≤ 2^53`) and `p ∈ [0, 1]`.
    pub fn new(n: u64, p: f64) -> Result<Self, DistError> {
        if n as f64 > MAX_COUNT {
            return Err(DistError::InvalidParameter {
                dist: "Binomial",
                param: "n",
                value: n as f64,
            });
        }
        Ok(Binomial {
            n,
            p: probability("Binomial", "p", p)?,
        })
    }
}

impl ScalarDist for Binomial {
    fn log_prob(&self, k: f64) -> f64 {
        if k.is_nan() {
            return f64::NAN;
        }
        let n = self.n as f64;
        if !is_count(k, n) {
            return f64::NEG_INFINITY;
        }
        if n >= STIRLING_FROM && k.min(n - k) >= 10.0 {
            // C(n, k) = n / (k (n − k)) / B(k, n − k): the kernel holds p^k (1 − p)^(n−k) too.
            return ln_beta_kernel(k, n - k, self.p) + n.ln() - k.ln() - (n - k).ln();
        }
        ln_binomial(n, k) + xlogy(k, self.p) + xlog1py(n - k, -self.p)
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match rand_distr::Binomial::new(self.n, self.p) {
            Ok(b) => b.sample(rng) as f64,
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::IntegerRange {
            lo: 0,
            hi: self.n.min(i64::MAX as u64) as i64,
        }
    }
}

/// Poisson distribution with the given rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poisson {
    rate: f64,
    ln_rate: f64,
}

impl Poisson {
    /// Largest accepted rate (keeps draws exact integers).
    pub const MAX_RATE: f64 = 1e15;

    /// Build from the rate (`0 < rate ≤ 1e15`).
    pub fn new(rate: f64) -> Result<Self, DistError> {
        positive("Poisson", "rate", rate)?;
        if rate > Self::MAX_RATE {
            return Err(DistError::InvalidParameter {
                dist: "Poisson",
                param: "rate",
                value: rate,
            });
        }
        Ok(Poisson {
            rate,
            ln_rate: rate.ln(),
        })
    }
}

impl ScalarDist for Poisson {
    fn log_prob(&self, k: f64) -> f64 {
        if k.is_nan() {
            return f64::NAN;
        }
        if !is_count(k, f64::INFINITY) {
            return f64::NEG_INFINITY;
        }
        if k >= STIRLING_FROM {
            return poisson_large_count(k, self.rate, self.ln_rate);
        }
        k * self.ln_rate - self.rate - ln_gamma(k + 1.0)
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match rand_distr::Poisson::new(self.rate) {
            Ok(p) => p.sample(rng),
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::NonNegativeInteger
    }
}

/// The Poisson log-mass `k ln λ − λ − ln Γ(k + 1)` for `k ≥ 10⁴`, where its terms cancel (to
/// a few units at `k ≈ λ ≈ 10¹⁵`) or overflow (`∞ − ∞` near `k = f64::MAX`). Stirling's series
/// for `ln Γ(k + 1)` turns it into `k (1 + ln y − y) − ½ ln k − ½ ln 2π − S(k)`, `y = λ / k`
/// (Loader's saddle-point form).
fn poisson_large_count(k: f64, rate: f64, ln_rate: f64) -> f64 {
    let ln_k = k.ln();
    k * ln_saddle(rate / k, ln_rate - ln_k) - 0.5 * ln_k - HALF_LN_2PI - stirling_tail(k)
}

/// Categorical distribution on `{0, …, k−1}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Categorical {
    probs: Vec<f64>,
    ln_probs: Vec<f64>,
}

impl Categorical {
    /// Build from non-negative weights with a positive finite sum (normalized internally).
    pub fn new(weights: &[f64]) -> Result<Self, DistError> {
        if weights.is_empty() {
            return Err(DistError::InvalidDimension {
                dist: "Categorical",
                param: "probs",
                len: 0,
            });
        }
        let mut total = 0.0;
        for &w in weights {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(DistError::InvalidParameter {
                    dist: "Categorical",
                    param: "probs",
                    value: w,
                });
            }
            total += w;
        }
        if !(total > 0.0 && total.is_finite()) {
            return Err(DistError::InvalidParameter {
                dist: "Categorical",
                param: "sum(probs)",
                value: total,
            });
        }
        let probs: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let ln_probs = probs.iter().map(|p| p.ln()).collect();
        Ok(Categorical { probs, ln_probs })
    }

    /// Build from unnormalized log-probabilities (finite or `−∞`, at least one finite).
    pub fn from_logits(logits: &[f64]) -> Result<Self, DistError> {
        if logits.is_empty() {
            return Err(DistError::InvalidDimension {
                dist: "Categorical",
                param: "logits",
                len: 0,
            });
        }
        if let Some(&bad) = logits.iter().find(|l| l.is_nan() || **l == f64::INFINITY) {
            return Err(DistError::InvalidParameter {
                dist: "Categorical",
                param: "logits",
                value: bad,
            });
        }
        let lse = crate::math::log_sum_exp(logits);
        if !lse.is_finite() {
            return Err(DistError::InvalidParameter {
                dist: "Categorical",
                param: "logits",
                value: lse,
            });
        }
        let ln_probs: Vec<f64> = logits.iter().map(|l| l - lse).collect();
        let probs = ln_probs.iter().map(|l| l.exp()).collect();
        Ok(Categorical { probs, ln_probs })
    }

    /// Normalized probabilities.
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }
}

impl ScalarDist for Categorical {
    fn log_prob(&self, k: f64) -> f64 {
        if k.is_nan() {
            return f64::NAN;
        }
        if !is_count(k, (self.probs.len() - 1) as f64) {
            return f64::NEG_INFINITY;
        }
        self.ln_probs
            .get(k as usize)
            .copied()
            .unwrap_or(f64::NEG_INFINITY)
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut last_positive = 0;
        for (i, &p) in self.probs.iter().enumerate() {
            if p > 0.0 {
                last_positive = i;
            }
            acc += p;
            if u < acc && p > 0.0 {
                return i as f64;
            }
        }
        // Rounding left u above the accumulated total: the last category with mass.
        last_positive as f64
    }
    fn support(&self) -> Support {
        Support::IntegerRange {
            lo: 0,
            hi: self.probs.len() as i64 - 1,
        }
    }
}

/// Geometric distribution: the number of failures before the first success (support `0, 1, …`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometric {
    p: f64,
}

impl Geometric {
    /// Build from the success probability `p ∈ (0, 1]`.
    pub fn new(p: f64) -> Result<Self, DistError> {
        if !(p > 0.0 && p <= 1.0) {
            return Err(DistError::InvalidParameter {
                dist: "Geometric",
                param: "p",
                value: p,
            });
        }
        Ok(Geometric { p })
    }
}

impl ScalarDist for Geometric {
    fn log_prob(&self, k: f64) -> f64 {
        if k.is_nan() {
            return f64::NAN;
        }
        if !is_count(k, f64::INFINITY) {
            return f64::NEG_INFINITY;
        }
        xlog1py(k, -self.p) + self.p.ln()
    }
    /// By inversion, `⌊ln U / ln(1 − p)⌋` with `U` uniform on `(0, 1]` (one uniform per
    /// draw). `ln_1p` keeps tiny `p` exact; `rand_distr`'s sampler never returns for
    /// `p` below about 1e-16, where `1 − p` rounds to 1.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        if self.p >= 1.0 {
            return 0.0;
        }
        let u = 1.0 - rng.random::<f64>();
        let k = (u.ln() / (-self.p).ln_1p()).floor();
        if k > 0.0 { k.min(MAX_COUNT) } else { 0.0 }
    }
    fn support(&self) -> Support {
        Support::NonNegativeInteger
    }
}

/// Negative binomial: the number of failures before the `r`-th success, success probability `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegativeBinomial {
    r: f64,
    p: f64,
    /// `r ln p` (−∞ when it underflows: every count is then impossible in `f64`).
    r_ln_p: f64,
}

impl NegativeBinomial {
    /// Build from `r > 0` (real-valued allowed) and `p ∈ (0, 1]`.
    pub fn new(r: f64, p: f64) -> Result<Self, DistError> {
        positive("NegativeBinomial", "r", r)?;
        if !(p > 0.0 && p <= 1.0) {
            return Err(DistError::InvalidParameter {
                dist: "NegativeBinomial",
                param: "p",
                value: p,
            });
        }
        Ok(NegativeBinomial {
            r,
            p,
            r_ln_p: r * p.ln(),
        })
    }
}

impl ScalarDist for NegativeBinomial {
    fn log_prob(&self, k: f64) -> f64 {
        if k.is_nan() {
            return f64::NAN;
        }
        if !is_count(k, f64::INFINITY) {
            return f64::NEG_INFINITY;
        }
        if k < STIRLING_FROM {
            return self.r_ln_p + ln_poch(self.r, k) - ln_gamma(k + 1.0) + xlog1py(k, -self.p);
        }
        // A large count: Γ(r + k) / (Γ(r) Γ(k + 1)) = 1 / (k B(r, k)), and the huge ln Γ's
        // cancel (or overflow, ∞ − ∞, near f64::MAX) unless written around the saddle point.
        if self.r >= 10.0 {
            return ln_beta_kernel(self.r, k, self.p) - k.ln();
        }
        // ln Γ(r + k) − ln Γ(k + 1) = ln_poch(k + 1, r − 1), of order (r − 1) ln k.
        self.r_ln_p + ln_poch(k + 1.0, self.r - 1.0) - ln_gamma(self.r) + xlog1py(k, -self.p)
    }
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        if self.p == 1.0 {
            return 0.0;
        }
        let Ok(g) = rand_distr::Gamma::new(self.r, (1.0 - self.p) / self.p) else {
            return f64::NAN;
        };
        let lambda = g.sample(rng);
        if lambda <= 0.0 {
            return 0.0;
        }
        match rand_distr::Poisson::new(lambda.min(Poisson::MAX_RATE)) {
            Ok(p) => p.sample(rng),
            Err(_) => f64::NAN,
        }
    }
    fn support(&self) -> Support {
        Support::NonNegativeInteger
    }
}
