//! Adaptive single-site Metropolis–Hastings with several chains on parallel threads.
//!
//! Chain `i` draws from its own stream of the root seed, so results are bit-identical whatever
//! the thread count or scheduling. One iteration is one single-site proposal (one model run).

use super::kernel::{Adaptation, Scratch, SiteStats, latent_indices, log_target, mh_step};
use super::{DrawSink, Draws, model_error, output_names};
use crate::cancel::{CancelCheck, CancelToken};
use crate::error::InferError;
use crate::handler::PriorHandler;
use crate::model::{Model, ModelNames, Outputs};
use crate::rng::stream_rng;
use crate::summary::{DEFAULT_HDI_PROB, OutputSummary, summarize_chains};
use crate::trace::Trace;
use std::sync::atomic::{AtomicBool, Ordering};

/// A chain's index and result.
type ChainOutcome = (usize, Result<ChainResult, InferError>);

/// Largest accepted number of chains.
pub const MAX_CHAINS: usize = 4096;

/// Configuration of MCMC.
#[derive(Debug, Clone)]
pub struct McmcConfig {
    /// Number of chains.
    pub chains: usize,
    /// Warm-up (adaptation) iterations per chain, discarded.
    pub warmup: usize,
    /// Retained draws per chain (after thinning).
    pub draws: usize,
    /// Keep every `thin`-th post-warm-up iteration (`draws · thin` iterations are run).
    pub thin: usize,
    /// Worker threads (0 = available parallelism, capped at `chains`).
    pub threads: usize,
    /// Target acceptance rate of the per-site scale adaptation.
    pub target_accept: f64,
    /// Prior draws tried to find an initial state with finite log-density.
    pub max_init_attempts: usize,
    /// Root seed.
    pub seed: u64,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl Default for McmcConfig {
    fn default() -> Self {
        McmcConfig {
            chains: 4,
            warmup: 1000,
            draws: 1000,
            thin: 1,
            threads: 0,
            target_accept: 0.44,
            max_init_attempts: 100,
            seed: 0,
            cancel: CancelToken::default(),
        }
    }
}

/// One chain's output.
#[derive(Debug, Clone)]
pub struct ChainResult {
    /// Retained draws.
    pub draws: Draws,
    /// Post-warm-up acceptance rate.
    pub acceptance_rate: f64,
    /// Per-site proposal scales and post-warm-up acceptance counts.
    pub sites: Vec<SiteStats>,
}

/// All chains.
#[derive(Debug, Clone)]
pub struct McmcResult {
    /// Per chain, in chain order.
    pub chains: Vec<ChainResult>,
}

impl McmcResult {
    /// Output names.
    pub fn names(&self) -> &[String] {
        self.chains
            .first()
            .map_or(&[], |c| c.draws.names.as_slice())
    }

    /// Per output: mean, sd, quantiles, HDI, bulk/tail ESS, MCSE and R-hat across chains.
    pub fn summaries(&self) -> Vec<OutputSummary> {
        let width = self.chains.first().map_or(0, |c| c.draws.width);
        (0..width)
            .map(|j| {
                let cols: Vec<Vec<f64>> = self.chains.iter().map(|c| c.draws.column(j)).collect();
                let slices: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
                summarize_chains(&self.names()[j], &slices, DEFAULT_HDI_PROB)
            })
            .collect()
    }

    /// [`McmcResult::summaries`], stopping with the token's error when `cancel` fires
    /// (checked per output and on every ESS lag).
    ///
    /// # Errors
    /// `Cancelled` or `DeadlineExceeded`.
    pub fn summaries_checked(
        &self,
        cancel: &CancelToken,
    ) -> Result<Vec<OutputSummary>, InferError> {
        let width = self.chains.first().map_or(0, |c| c.draws.width);
        (0..width)
            .map(|j| {
                let cols: Vec<Vec<f64>> = self.chains.iter().map(|c| c.draws.column(j)).collect();
                let slices: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
                crate::summary::summarize_chains_checked(
                    &self.names()[j],
                    &slices,
                    DEFAULT_HDI_PROB,
                    cancel,
                )
            })
            .collect()
    }

    /// Mean post-warm-up acceptance rate over chains.
    pub fn acceptance_rate(&self) -> f64 {
        let n = self.chains.len().max(1) as f64;
        self.chains.iter().map(|c| c.acceptance_rate).sum::<f64>() / n
    }

    /// The draws of output `j`, one vector per chain.
    pub fn chain_columns(&self, j: usize) -> Vec<Vec<f64>> {
        self.chains.iter().map(|c| c.draws.column(j)).collect()
    }
}

/// Run adaptive single-site Metropolis–Hastings.
pub fn mcmc<M>(model: &M, cfg: &McmcConfig) -> Result<McmcResult, InferError>
where
    M: Model + Sync + ?Sized,
    M::Output: Outputs,
{
    if cfg.chains == 0 || cfg.draws == 0 || cfg.thin == 0 {
        return Err(InferError::InvalidConfig(
            "chains, draws and thin must be positive".into(),
        ));
    }
    if cfg.chains > MAX_CHAINS {
        return Err(InferError::InvalidConfig(format!(
            "at most {MAX_CHAINS} chains"
        )));
    }
    if !(cfg.target_accept > 0.0 && cfg.target_accept < 1.0) {
        return Err(InferError::InvalidConfig(
            "target_accept must be in (0, 1)".into(),
        ));
    }
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
    .min(cfg.chains);
    let abort = AtomicBool::new(false);
    let mut results: Vec<Option<Result<ChainResult, InferError>>> =
        (0..cfg.chains).map(|_| None).collect();
    if threads <= 1 {
        for (i, slot) in results.iter_mut().enumerate() {
            let r = guarded_chain(model, cfg, i, &abort);
            let failed = r.is_err();
            *slot = Some(r);
            if failed {
                break;
            }
        }
    } else {
        let abort = &abort;
        let outcome: Result<Vec<Vec<ChainOutcome>>, InferError> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|w| {
                    std::thread::Builder::new()
                        .name(format!("mcmc-{w}"))
                        .spawn_scoped(scope, move || {
                            let mut mine = Vec::new();
                            for i in (w..cfg.chains).step_by(threads) {
                                let r = guarded_chain(model, cfg, i, abort);
                                if r.is_err() {
                                    abort.store(true, Ordering::Relaxed);
                                }
                                mine.push((i, r));
                            }
                            mine
                        })
                })
                .collect();
            if handles.iter().any(Result::is_err) {
                // Could not start every worker: stop the ones that did start.
                abort.store(true, Ordering::Relaxed);
            }
            handles
                .into_iter()
                .map(|h| match h {
                    Ok(h) => h
                        .join()
                        .map_err(|_| InferError::Worker("chain thread panicked".into())),
                    Err(e) => Err(InferError::Worker(format!(
                        "could not start a chain thread: {e}"
                    ))),
                })
                .collect()
        });
        for (i, r) in outcome?.into_iter().flatten() {
            results[i] = Some(r);
        }
    }
    let mut chains = Vec::with_capacity(cfg.chains);
    let mut first_err: Option<InferError> = None;
    for r in results.into_iter().flatten() {
        match r {
            Ok(c) => chains.push(c),
            // Prefer the error that caused the abort over the siblings' `Cancelled`.
            Err(e) => match &first_err {
                None => first_err = Some(e),
                Some(InferError::Cancelled) if e != InferError::Cancelled => first_err = Some(e),
                Some(_) => {}
            },
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(McmcResult { chains })
}

/// Run one chain, turning a panic in user model code into an error (the model is immutable and
/// the chain's state is discarded, so nothing shared can be left inconsistent).
fn guarded_chain<M>(
    model: &M,
    cfg: &McmcConfig,
    chain: usize,
    abort: &AtomicBool,
) -> Result<ChainResult, InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_chain(model, cfg, chain, abort)
    }))
    .unwrap_or_else(|_| Err(InferError::Worker(format!("chain {chain} panicked"))))
}

/// Find a prior draw with finite log-density; returns its trace and flattened outputs.
pub(crate) fn initial_state<M, R>(
    model: &M,
    rng: &mut R,
    attempts: usize,
) -> Result<(Trace, Vec<f64>), InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
    R: rand::Rng + ?Sized,
{
    let mut trace = Trace::with_max_sites(model.max_sites());
    let mut flat = Vec::new();
    for _ in 0..attempts.max(1) {
        trace.clear();
        flat.clear();
        model
            .run_into(&mut PriorHandler::new(rng, &mut trace), &mut flat)
            .map_err(|e| model_error(model, e))?;
        trace.check_unique().map_err(|e| model_error(model, e))?;
        if log_target(&trace, 1.0).is_finite() {
            return Ok((trace, flat));
        }
    }
    Err(InferError::NoValidInitialization {
        attempts: attempts.max(1),
    })
}

fn run_chain<M>(
    model: &M,
    cfg: &McmcConfig,
    chain: usize,
    abort: &AtomicBool,
) -> Result<ChainResult, InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
{
    let mut rng = stream_rng(cfg.seed, chain as u64);
    let mut check = CancelCheck::new(&cfg.cancel).with_abort(abort);
    let (mut trace, mut out) = initial_state(model, &mut rng, cfg.max_init_attempts)?;
    let mut latents = Vec::new();
    latent_indices(&trace, &mut latents);
    let width = out.len();
    let mut scratch = Scratch::default();
    let mut adapt = Adaptation::new(cfg.target_accept);
    let err = |e| model_error(model, e);
    for _ in 0..cfg.warmup {
        check.tick()?;
        let step = mh_step(
            model,
            &mut trace,
            Some(&mut latents),
            &mut scratch,
            &mut adapt,
            &mut rng,
            1.0,
            true,
        );
        if step.map_err(err)? {
            std::mem::swap(&mut out, &mut scratch.out);
        }
    }
    adapt.reset_counts();
    let mut sink = DrawSink::with_width(cfg.draws, width);
    let mut accepted = 0u64;
    let total = cfg.draws.saturating_mul(cfg.thin);
    for i in 0..total {
        check.tick()?;
        let step = mh_step(
            model,
            &mut trace,
            Some(&mut latents),
            &mut scratch,
            &mut adapt,
            &mut rng,
            1.0,
            false,
        );
        if step.map_err(err)? {
            accepted += 1;
            std::mem::swap(&mut out, &mut scratch.out);
        }
        if (i + 1) % cfg.thin == 0 {
            if out.len() != width {
                return Err(InferError::OutputShape {
                    expected: width,
                    got: out.len(),
                });
            }
            sink.push_row(&out);
        }
    }
    let mut draws = sink.draws;
    draws.names = output_names(model, width);
    let names = ModelNames(model);
    Ok(ChainResult {
        draws,
        acceptance_rate: accepted as f64 / total.max(1) as f64,
        sites: adapt.stats(|a| a.display_with(&names).to_string()),
    })
}
