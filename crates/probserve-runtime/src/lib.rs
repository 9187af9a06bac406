//! Fugue-style probabilistic runtime: distributions, models, handlers, traces and inference with
//! diagnostics.
//!
//! Models are values implementing [`Model`]; running one under a [`Handler`] interprets its
//! `sample` / `observe` / `factor` effects at [`Address`]es and records a [`Trace`]. Inference
//! algorithms ([`infer`]) are generic over the model, take a config with a seed and a
//! [`CancelToken`], and return typed results with [`summary`] statistics and [`diagnostics`].
//!
//! The hot path allocates nothing per site: addresses are `Copy`, handlers are monomorphized,
//! traces are flat vectors recycled through pools, and replay matches sites by position.
//!
//! ```
//! use probserve_runtime::*;
//!
//! struct Coin { flips: Vec<f64> }
//! impl Model for Coin {
//!     type Output = f64;
//!     fn run<H: Handler>(&self, h: &mut H) -> Result<f64, ModelError> {
//!         let p = h.sample(Address::new("p"), &Beta::new(1.0, 1.0)?)?;
//!         let d = Bernoulli::new(p)?;
//!         for (i, &y) in self.flips.iter().enumerate() {
//!             h.observe(Address::new("y").at_usize(i), &d, y)?;
//!         }
//!         Ok(p)
//!     }
//! }
//! let model = Coin { flips: vec![1.0, 1.0, 0.0, 1.0] };
//! let cfg = ImportanceConfig { particles: 2000, seed: 7, ..Default::default() };
//! let res = importance_sampling(&model, &cfg).unwrap();
//! let s = &res.summaries()[0];
//! assert!((s.mean - 4.0 / 6.0).abs() < 0.05);
//! ```

pub mod address;
pub mod cancel;
pub mod diagnostics;
pub mod dist;
pub mod error;
pub mod handler;
pub mod infer;
pub mod math;
pub mod model;
pub mod rng;
pub mod summary;
pub mod trace;

pub use address::{Address, Name, SiteId, SiteNames};
pub use cancel::CancelToken;
pub use dist::{
    Bernoulli, Beta, Binomial, Categorical, Cauchy, Dirichlet, Dist, Exponential, Gamma, Geometric,
    HalfNormal, InverseGamma, LogNormal, MvNormal, NegativeBinomial, Normal, Poisson, ScalarDist,
    StudentT, Support, Uniform, VecDist, VectorDist,
};
pub use error::{DistError, InferError, ModelError};
pub use handler::{
    ConditionHandler, Conditions, Handler, PriorHandler, PriorPredictiveHandler, ReplayHandler,
    ScoreHandler,
};
pub use infer::{
    Draws, ImportanceConfig, ImportanceResult, McmcConfig, McmcResult, PriorConfig,
    PriorPredictiveResult, PriorResult, SmcConfig, SmcResult, importance_sampling, mcmc,
    sample_prior, sample_prior_predictive, smc,
};
pub use model::{Model, ModelExt, Outputs, factor, observe, plate, pure, sample};
pub use summary::OutputSummary;
pub use trace::{PoolStats, Record, SiteKind, Trace, TracePool};
