//! Distributions built at run time: the one table from a `DistKind` and its
//! arguments to a concrete runtime distribution, used by the lowering (for bind-time
//! distributions) and by the machine (for the rest).

use probserve_runtime::{Address, DistError, Handler, ModelError, Normal, ScalarDist};

use super::Machine;
use super::table;

/// Builds the distribution `$kind` from its arguments (`$arg(k)` gives argument `k`;
/// `$normal(mu, sigma)` builds normals) and applies the macro `$go` to the
/// construction result, a `Result<concrete distribution, DistError>`. Categorical
/// tables are data, built when binding, and never come here.
macro_rules! with_dist {
    ($kind:expr, $arg:ident, $normal:ident, $go:ident) => {{
        use probserve_runtime as rt;
        use $crate::builtins::DistKind;
        match $kind {
            DistKind::Normal => {
                let mu = $arg(0);
                $go!($normal(mu, $arg(1)))
            }
            DistKind::HalfNormal => $go!(rt::HalfNormal::new($arg(0))),
            DistKind::LogNormal => $go!(rt::LogNormal::new($arg(0), $arg(1))),
            DistKind::StudentT => $go!(rt::StudentT::new($arg(0), $arg(1), $arg(2))),
            DistKind::Cauchy => $go!(rt::Cauchy::new($arg(0), $arg(1))),
            DistKind::Exponential => $go!(rt::Exponential::new($arg(0))),
            DistKind::Gamma => $go!(rt::Gamma::new($arg(0), $arg(1))),
            DistKind::InvGamma => $go!(rt::InverseGamma::new($arg(0), $arg(1))),
            DistKind::Beta => $go!(rt::Beta::new($arg(0), $arg(1))),
            DistKind::Uniform => $go!(rt::Uniform::new($arg(0), $arg(1))),
            DistKind::Bernoulli => $go!(rt::Bernoulli::new($arg(0))),
            DistKind::Binomial => {
                let n = $arg(0);
                let p = $arg(1);
                $go!($crate::vm::count(n).and_then(|n| rt::Binomial::new(n, p)))
            }
            DistKind::Poisson => $go!(rt::Poisson::new($arg(0))),
            DistKind::Geometric => $go!(rt::Geometric::new($arg(0))),
            DistKind::NegBinomial => $go!(rt::NegativeBinomial::new($arg(0), $arg(1))),
            DistKind::Categorical => $go!(Err::<rt::Normal, _>(rt::DistError::InvalidDimension {
                dist: "categorical",
                param: "probs",
                len: 0,
            })),
        }
    }};
}
pub(crate) use with_dist;

/// A binomial trial count: a non-negative integer.
pub(crate) fn count(n: f64) -> Result<u64, DistError> {
    if n >= 0.0 && n.fract() == 0.0 && n <= 2f64.powi(53) {
        Ok(n as u64)
    } else {
        Err(DistError::InvalidParameter {
            dist: "binomial",
            param: "n",
            value: n,
        })
    }
}

/// `Normal::new(mu, sigma)`, reusing the normalizer of the last normal built when the
/// scale is the same (the same value and the same error either way).
#[inline(always)]
pub(super) fn cached_normal(
    last: &mut Option<Normal>,
    mu: f64,
    sigma: f64,
) -> Result<Normal, DistError> {
    match last {
        Some(n) if n.sigma() == sigma => n.with_mean(mu),
        _ => {
            let n = Normal::new(mu, sigma)?;
            *last = Some(n);
            Ok(n)
        }
    }
}

impl<H: Handler, R: super::RegFile> Machine<'_, H, R> {
    /// `normal(mu, sigma)` built at run time, for the site at `a`.
    #[inline(always)]
    pub(super) fn normal(&mut self, mu: f64, sigma: f64, a: Address) -> Result<Normal, ModelError> {
        cached_normal(&mut self.last_normal, mu, sigma).map_err(|e| ModelError::dist_at(a, e))
    }

    /// Arguments of run-time distribution `x`.
    #[inline(always)]
    fn dyn_args(&self, x: u32) -> Result<(crate::builtins::DistKind, [f64; 3]), ModelError> {
        let spec = *table(&self.plan.dyn_dists, x)?;
        Ok((spec.kind, spec.args.map(|r| self.get(r))))
    }

    pub(super) fn sample_dyn(&mut self, addr: u32, x: u32) -> Result<f64, ModelError> {
        self.dyn_site(addr, x, Sample)
    }

    pub(super) fn observe_dyn(&mut self, addr: u32, value: u32, x: u32) -> Result<(), ModelError> {
        let y = self.get(value);
        self.dyn_site(addr, x, Observe(y))
    }

    /// Builds run-time distribution `x` and makes the site call at `addr` with it.
    #[inline(always)]
    fn dyn_site<C: SiteCall>(&mut self, addr: u32, x: u32, call: C) -> Result<C::Out, ModelError> {
        let (kind, v) = self.dyn_args(x)?;
        let a = self.addr(addr);
        let arg = |k: usize| v.get(k).copied().unwrap_or(f64::NAN);
        let last = &mut self.last_normal;
        let mut normal = |mu: f64, sigma: f64| cached_normal(last, mu, sigma);
        let h = &mut *self.h;
        macro_rules! go {
            ($d:expr) => {
                match $d {
                    Ok(d) => call.call(h, a, &d),
                    Err(e) => Err(ModelError::dist_at(a, e)),
                }
            };
        }
        with_dist!(kind, arg, normal, go)
    }
}

/// A handler call at a site, generic over the distribution (what a closure cannot be).
trait SiteCall {
    type Out;
    fn call<H: Handler, D: ScalarDist>(
        self,
        h: &mut H,
        a: Address,
        d: &D,
    ) -> Result<Self::Out, ModelError>;
}

/// `h.sample(a, d)`.
struct Sample;

impl SiteCall for Sample {
    type Out = f64;
    #[inline(always)]
    fn call<H: Handler, D: ScalarDist>(
        self,
        h: &mut H,
        a: Address,
        d: &D,
    ) -> Result<f64, ModelError> {
        h.sample(a, d)
    }
}

/// `h.observe(a, d, y)`.
struct Observe(f64);

impl SiteCall for Observe {
    type Out = ();
    #[inline(always)]
    fn call<H: Handler, D: ScalarDist>(
        self,
        h: &mut H,
        a: Address,
        d: &D,
    ) -> Result<(), ModelError> {
        h.observe(a, d, self.0)
    }
}
