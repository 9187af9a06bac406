//! Running one inference: options with defaults and limits, and the mapping from
//! the runtime's results and errors to the API.
//!
//! Inference runs on the bounded CPU pool ([`crate::pool`]); `run` is the job it
//! runs.

use probserve_lang::BoundModel;
use probserve_runtime::{
    CancelToken, ImportanceConfig, InferError, McmcConfig, ModelError, OutputSummary, PriorConfig,
    SmcConfig,
};
use rand::{Rng as _, SeedableRng as _};

/// The inference algorithm with its checked options.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Prior predictive sampling.
    Prior {
        /// Draws.
        draws: usize,
    },
    /// Likelihood-weighted importance sampling.
    Importance {
        /// Particles.
        particles: usize,
    },
    /// Sequential Monte Carlo.
    Smc {
        /// Particles.
        particles: usize,
        /// Resampling threshold on ESS / N.
        ess_threshold: f64,
    },
    /// Adaptive Metropolis-Hastings.
    Mcmc {
        /// Chains.
        chains: usize,
        /// Warm-up iterations per chain.
        warmup: usize,
        /// Kept draws per chain.
        draws: usize,
        /// Thinning.
        thin: usize,
    },
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// One summary per output.
    pub summaries: Vec<OutputSummary>,
    /// log p(data), for importance sampling and SMC.
    pub log_evidence: Option<f64>,
    /// Equally weighted draws per output (resampled for weighted methods), capped.
    pub draws: Vec<(String, Vec<f64>)>,
    /// Draws or particles produced.
    pub num_draws: u64,
    /// MCMC acceptance rate.
    pub acceptance_rate: Option<f64>,
    /// SMC resampling steps.
    pub resamples: u32,
    /// Outputs with NaN or ±∞ draws: name and how many draws (first few outputs).
    pub non_finite: Vec<(String, u64)>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The runtime refused or failed.
    #[error(transparent)]
    Infer(#[from] InferError),
    /// The call's deadline passed while waiting for a CPU worker.
    #[error("deadline exceeded while waiting for a CPU worker ({queued_ms} ms queued)")]
    QueueDeadline {
        /// Time spent waiting.
        queued_ms: u64,
    },
    /// The job panicked (a bug; isolated from the server).
    #[error("inference panicked: {0}")]
    Panicked(String),
    /// The CPU pool is saturated: the job would wait (or has waited) longer than
    /// the pool's queue limit.
    #[error(
        "the CPU pool is saturated: {waiting} job(s) waiting for {threads} worker(s), \
         expected wait {expected_ms} ms, queue limit {max_queue_ms} ms ({queued_ms} ms queued)"
    )]
    Overloaded {
        /// Jobs waiting when this one was refused.
        waiting: usize,
        /// Pool size.
        threads: usize,
        /// Expected wait, from the mean job time.
        expected_ms: u64,
        /// The queue limit in force (`max_queue_ms`, or a tenth of it under a
        /// standing queue).
        max_queue_ms: u64,
        /// Time this job spent waiting.
        queued_ms: u64,
    },
}

pub use crate::pool::{CancelOnDrop, InferencePool, resolve_threads};

/// Systematic resampling of `n` indices from normalized `weights` (deterministic for a seed).
fn resample(weights: &[f64], n: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_xoshiro_like(seed);
    let total: f64 = weights.iter().sum();
    if weights.is_empty() || total <= 0.0 || !total.is_finite() {
        return Vec::new();
    }
    let step = total / n as f64;
    let mut u = rng.random::<f64>() * step;
    let (mut i, mut acc) = (0usize, weights[0]);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        while u > acc && i + 1 < weights.len() {
            i += 1;
            acc += weights[i];
        }
        out.push(i);
        u += step;
    }
    out
}

fn rand_xoshiro_like(seed: u64) -> rand::rngs::StdRng {
    // A separate stream from the inference's own: the draws returned never shift
    // the posterior numbers.
    rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15)
}

fn columns(
    draws: &probserve_runtime::Draws,
    rows: Option<&[usize]>,
    cap: usize,
) -> Vec<(String, Vec<f64>)> {
    (0..draws.names.len())
        .map(|j| {
            let col = draws.column(j);
            let values: Vec<f64> = match rows {
                Some(idx) => idx.iter().take(cap).map(|&i| col[i]).collect(),
                None => col.into_iter().take(cap).collect(),
            };
            (draws.names[j].clone(), values)
        })
        .collect()
}

/// Most outputs [`non_finite`] names.
const MAX_NON_FINITE_NAMED: usize = 3;

/// The outputs whose draws include NaN or ±∞, with the number of such draws.
///
/// Free when every output is finite: a summary's mean is the sum of its draws
/// (weighted), and is non-finite exactly when a draw is (or when a finite sum
/// overflows, which the count then rules out). Only a suspect output's draws are
/// counted, in place.
fn non_finite(
    summaries: &[OutputSummary],
    draws: &[&probserve_runtime::Draws],
) -> Vec<(String, u64)> {
    summaries
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.mean.is_finite())
        .filter_map(|(j, s)| {
            let n: usize = draws
                .iter()
                .filter(|d| j < d.width)
                .map(|d| {
                    d.values
                        .iter()
                        .skip(j)
                        .step_by(d.width)
                        .filter(|x| !x.is_finite())
                        .count()
                })
                .sum();
            (n > 0).then(|| (s.name.clone(), n as u64))
        })
        .take(MAX_NON_FINITE_NAMED)
        .collect()
}

/// Runs `method` on `model` (synchronously; call it through [`InferencePool::run`]).
/// `max_draws` = 0 returns no draws.
pub fn run(
    model: &BoundModel,
    method: &Method,
    seed: u64,
    cancel: &CancelToken,
    max_draws: usize,
) -> Result<RunOutput, RunError> {
    let out = match *method {
        Method::Prior { draws } => {
            let r = probserve_runtime::sample_prior(
                model,
                &PriorConfig {
                    draws,
                    seed,
                    cancel: cancel.clone(),
                },
            )?;
            let summaries = r.summaries_checked(cancel)?;
            RunOutput {
                non_finite: non_finite(&summaries, &[&r.draws]),
                summaries,
                log_evidence: None,
                draws: if max_draws > 0 {
                    columns(&r.draws, None, max_draws)
                } else {
                    Vec::new()
                },
                num_draws: draws as u64,
                acceptance_rate: None,
                resamples: 0,
            }
        }
        Method::Importance { particles } => {
            let r = probserve_runtime::importance_sampling(
                model,
                &ImportanceConfig {
                    particles,
                    seed,
                    cancel: cancel.clone(),
                },
            )?;
            let draws = if max_draws > 0 {
                let idx = resample(&r.weights, max_draws.min(particles), seed);
                columns(&r.draws, Some(&idx), max_draws)
            } else {
                Vec::new()
            };
            let summaries = r.summaries_checked(cancel)?;
            RunOutput {
                non_finite: non_finite(&summaries, &[&r.draws]),
                summaries,
                log_evidence: Some(r.log_marginal_likelihood),
                draws,
                num_draws: particles as u64,
                acceptance_rate: None,
                resamples: 0,
            }
        }
        Method::Smc {
            particles,
            ess_threshold,
        } => {
            let r = probserve_runtime::smc(
                model,
                &SmcConfig {
                    particles,
                    ess_threshold,
                    seed,
                    cancel: cancel.clone(),
                    ..SmcConfig::default()
                },
            )?;
            let draws = if max_draws > 0 {
                let idx = resample(&r.weights, max_draws.min(particles), seed);
                columns(&r.draws, Some(&idx), max_draws)
            } else {
                Vec::new()
            };
            let summaries = r.summaries_checked(cancel)?;
            RunOutput {
                non_finite: non_finite(&summaries, &[&r.draws]),
                summaries,
                log_evidence: Some(r.log_evidence),
                draws,
                num_draws: particles as u64,
                acceptance_rate: Some(r.acceptance_rate),
                resamples: u32::try_from(r.resamples).unwrap_or(u32::MAX),
            }
        }
        Method::Mcmc {
            chains,
            warmup,
            draws,
            thin,
        } => {
            // One thread per request: parallelism comes from concurrent requests on
            // the bounded pool; results do not depend on it (per-chain streams).
            let r = probserve_runtime::mcmc(
                model,
                &McmcConfig {
                    chains,
                    warmup,
                    draws,
                    thin,
                    threads: 1,
                    seed,
                    cancel: cancel.clone(),
                    ..McmcConfig::default()
                },
            )?;
            let mut out_draws: Vec<(String, Vec<f64>)> = Vec::new();
            if max_draws > 0 {
                for chain in &r.chains {
                    let remaining =
                        max_draws.saturating_sub(out_draws.first().map_or(0, |(_, v)| v.len()));
                    if remaining == 0 {
                        break;
                    }
                    let cols = columns(&chain.draws, None, remaining);
                    if out_draws.is_empty() {
                        out_draws = cols;
                    } else {
                        for ((_, acc), (_, col)) in out_draws.iter_mut().zip(cols) {
                            acc.extend(col);
                        }
                    }
                }
            }
            let summaries = r.summaries_checked(cancel)?;
            let chain_draws: Vec<&probserve_runtime::Draws> =
                r.chains.iter().map(|c| &c.draws).collect();
            RunOutput {
                non_finite: non_finite(&summaries, &chain_draws),
                summaries,
                log_evidence: None,
                draws: out_draws,
                num_draws: (chains * draws) as u64,
                acceptance_rate: Some(r.acceptance_rate()),
                resamples: 0,
            }
        }
    };
    Ok(out)
}

/// True when a model error is the language's step budget.
pub fn is_step_limit(e: &InferError) -> bool {
    matches!(
        e,
        InferError::Model {
            source: ModelError::StepLimit { .. },
            ..
        }
    )
}

/// A fresh random seed for requests that carry none.
pub fn random_seed() -> u64 {
    rand::rng().random()
}
