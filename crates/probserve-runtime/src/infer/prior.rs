//! Prior and prior-predictive sampling.

use super::{DrawSink, Draws, capped, model_error};
use crate::cancel::{CancelCheck, CancelToken};
use crate::error::InferError;
use crate::handler::{PriorHandler, PriorPredictiveHandler};
use crate::model::{Model, ModelNames, Outputs};
use crate::rng::stream_rng;
use crate::summary::{DEFAULT_HDI_PROB, OutputSummary, summarize_iid};
use crate::trace::{PoolStats, SiteKind, TracePool};

/// Configuration of prior (and prior-predictive) sampling.
#[derive(Debug, Clone)]
pub struct PriorConfig {
    /// Number of draws.
    pub draws: usize,
    /// Root seed.
    pub seed: u64,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl Default for PriorConfig {
    fn default() -> Self {
        PriorConfig {
            draws: 1000,
            seed: 0,
            cancel: CancelToken::default(),
        }
    }
}

/// Draws from the prior.
#[derive(Debug, Clone)]
pub struct PriorResult {
    /// Output draws.
    pub draws: Draws,
    /// Per draw: log-likelihood + factors (the data's weight under each prior draw).
    pub log_likelihoods: Vec<f64>,
    /// Trace-pool statistics.
    pub pool: PoolStats,
}

impl PriorResult {
    /// Summary per output.
    pub fn summaries(&self) -> Vec<OutputSummary> {
        iid_summaries(&self.draws)
    }

    /// [`PriorResult::summaries`], checking `cancel` before each output.
    ///
    /// # Errors
    /// `Cancelled` or `DeadlineExceeded`.
    pub fn summaries_checked(
        &self,
        cancel: &CancelToken,
    ) -> Result<Vec<OutputSummary>, InferError> {
        let d = &self.draws;
        (0..d.width)
            .map(|j| {
                cancel.check()?;
                Ok(summarize_iid(&d.names[j], &d.column(j), DEFAULT_HDI_PROB))
            })
            .collect()
    }
}

fn iid_summaries(d: &Draws) -> Vec<OutputSummary> {
    (0..d.width)
        .map(|j| summarize_iid(&d.names[j], &d.column(j), DEFAULT_HDI_PROB))
        .collect()
}

/// Sample outputs from the prior (observations are scored, not conditioned on).
pub fn sample_prior<M>(model: &M, cfg: &PriorConfig) -> Result<PriorResult, InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
{
    let mut rng = stream_rng(cfg.seed, 0);
    let mut pool = TracePool::with_max_sites(model.max_sites());
    let mut sink = DrawSink::for_rows(cfg.draws);
    let mut log_likelihoods = Vec::with_capacity(capped(cfg.draws));
    let mut check = CancelCheck::new(&cfg.cancel);
    let mut verified = Vec::new();
    for _ in 0..cfg.draws {
        check.tick()?;
        let mut trace = pool.take();
        model
            .run_into(&mut PriorHandler::new(&mut rng, &mut trace), sink.staging())
            .map_err(|e| model_error(model, e))?;
        trace
            .check_unique_cached(&mut verified)
            .map_err(|e| model_error(model, e))?;
        sink.commit()?;
        log_likelihoods.push(trace.log_likelihood_and_factors());
        pool.give(trace);
    }
    Ok(PriorResult {
        draws: sink.finish(model),
        log_likelihoods,
        pool: pool.stats(),
    })
}

/// Prior-predictive draws: outputs plus simulated observations.
#[derive(Debug, Clone)]
pub struct PriorPredictiveResult {
    /// Output draws.
    pub draws: Draws,
    /// Simulated values of every observed site, named by address.
    pub observations: Draws,
}

impl PriorPredictiveResult {
    /// Summary per output.
    pub fn summaries(&self) -> Vec<OutputSummary> {
        iid_summaries(&self.draws)
    }
    /// Summary per simulated observation.
    pub fn observation_summaries(&self) -> Vec<OutputSummary> {
        iid_summaries(&self.observations)
    }
}

/// Sample from the prior predictive: observations are simulated instead of read from the data.
pub fn sample_prior_predictive<M>(
    model: &M,
    cfg: &PriorConfig,
) -> Result<PriorPredictiveResult, InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
{
    let mut rng = stream_rng(cfg.seed, 0);
    let mut pool = TracePool::with_max_sites(model.max_sites());
    let mut sink = DrawSink::for_rows(cfg.draws);
    let mut obs = DrawSink::for_rows(cfg.draws);
    let mut obs_names: Vec<String> = Vec::new();
    let mut check = CancelCheck::new(&cfg.cancel);
    let mut verified = Vec::new();
    for i in 0..cfg.draws {
        check.tick()?;
        let mut trace = pool.take();
        let mut handler = PriorPredictiveHandler {
            rng: &mut rng,
            trace: &mut trace,
        };
        model
            .run_into(&mut handler, sink.staging())
            .map_err(|e| model_error(model, e))?;
        trace
            .check_unique_cached(&mut verified)
            .map_err(|e| model_error(model, e))?;
        sink.commit()?;
        let mut row = Vec::new();
        for r in trace
            .records()
            .iter()
            .filter(|r| r.kind == SiteKind::Observed)
        {
            let name = r.address.display_with(&ModelNames(model)).to_string();
            match trace.vector_of(r) {
                Some(v) => {
                    for (k, x) in v.iter().enumerate() {
                        row.push(*x);
                        if i == 0 {
                            obs_names.push(format!("{name}[{k}]"));
                        }
                    }
                }
                None => {
                    row.push(r.value);
                    if i == 0 {
                        obs_names.push(name);
                    }
                }
            }
        }
        obs.push(&row)?;
        pool.give(trace);
    }
    let mut observations = obs.draws;
    observations.names = obs_names;
    Ok(PriorPredictiveResult {
        draws: sink.finish(model),
        observations,
    })
}
