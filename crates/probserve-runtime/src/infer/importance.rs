//! Likelihood-weighted importance sampling: particles from the prior, weighted by likelihood and
//! factors.

use super::{DrawSink, Draws, model_error, normalize, weighted_summaries};
use crate::cancel::{CancelCheck, CancelToken};
use crate::error::InferError;
use crate::handler::PriorHandler;
use crate::model::{Model, Outputs};
use crate::rng::stream_rng;
use crate::summary::{DEFAULT_HDI_PROB, OutputSummary};
use crate::trace::{PoolStats, Trace};

/// Configuration of importance sampling.
#[derive(Debug, Clone)]
pub struct ImportanceConfig {
    /// Number of particles.
    pub particles: usize,
    /// Root seed.
    pub seed: u64,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl Default for ImportanceConfig {
    fn default() -> Self {
        ImportanceConfig {
            particles: 1000,
            seed: 0,
            cancel: CancelToken::default(),
        }
    }
}

/// Weighted particles.
#[derive(Debug, Clone)]
pub struct ImportanceResult {
    /// Output of each particle.
    pub draws: Draws,
    /// Unnormalized log-weights (`−∞` = zero weight).
    pub log_weights: Vec<f64>,
    /// Normalized weights (sum to 1).
    pub weights: Vec<f64>,
    /// Estimate of the log marginal likelihood `ln p(data)`.
    pub log_marginal_likelihood: f64,
    /// Kish effective sample size.
    pub ess: f64,
    /// Trace-pool statistics.
    pub pool: PoolStats,
}

impl ImportanceResult {
    /// Weighted summary per output.
    pub fn summaries(&self) -> Vec<OutputSummary> {
        weighted_summaries(&self.draws, &self.weights, DEFAULT_HDI_PROB)
    }

    /// [`ImportanceResult::summaries`], checking `cancel` before each output.
    ///
    /// # Errors
    /// `Cancelled` or `DeadlineExceeded`.
    pub fn summaries_checked(
        &self,
        cancel: &crate::CancelToken,
    ) -> Result<Vec<OutputSummary>, crate::InferError> {
        super::weighted_summaries_checked(&self.draws, &self.weights, DEFAULT_HDI_PROB, cancel)
    }
}

/// Run likelihood-weighted importance sampling.
///
/// Errors with [`InferError::NoPositiveWeight`] when every particle has zero weight.
pub fn importance_sampling<M>(
    model: &M,
    cfg: &ImportanceConfig,
) -> Result<ImportanceResult, InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
{
    if cfg.particles == 0 || cfg.particles > super::MAX_PARTICLES {
        return Err(InferError::InvalidConfig(format!(
            "particles must be in 1..={}",
            super::MAX_PARTICLES
        )));
    }
    let mut rng = stream_rng(cfg.seed, 0);
    let mut sink = DrawSink::for_rows(cfg.particles);
    let mut log_weights = Vec::with_capacity(cfg.particles);
    let mut check = CancelCheck::new(&cfg.cancel);
    let mut verified = Vec::new();
    // One trace buffer serves every particle: nothing is kept but weights and outputs.
    let mut trace = Trace::with_max_sites(model.max_sites());
    for _ in 0..cfg.particles {
        check.tick()?;
        trace.clear();
        model
            .run_into(&mut PriorHandler::new(&mut rng, &mut trace), sink.staging())
            .map_err(|e| model_error(model, e))?;
        trace
            .check_unique_cached(&mut verified)
            .map_err(|e| model_error(model, e))?;
        sink.commit()?;
        log_weights.push(trace.log_likelihood_and_factors());
    }
    let mut weights = Vec::with_capacity(cfg.particles);
    let (lse, ess) = normalize(&log_weights, &mut weights)?;
    let n = cfg.particles as u64;
    Ok(ImportanceResult {
        draws: sink.finish(model),
        log_marginal_likelihood: lse - (cfg.particles as f64).ln(),
        log_weights,
        weights,
        ess,
        pool: PoolStats {
            hits: n - 1,
            misses: 1,
        },
    })
}
