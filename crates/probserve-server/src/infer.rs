//! Running one inference: options with defaults and limits, the bounded CPU pool,
//! and the mapping from the runtime's results and errors to the API.
//!
//! Inference runs on the CPU pool: [`InferencePool::run`] waits for one of
//! `threads` permits (the wait is the reported queue time, bounded by the call's
//! deadline) and then runs the job on one of exactly `threads` rayon threads. A
//! fixed set of threads (rather than tokio's growing blocking pool) keeps memory
//! flat: each extra blocking thread brought its stack and allocator heap, and the
//! soak's RSS rose with the thread count. The one exception is a
//! job the version's measured cost predicts to be tiny (microseconds, see
//! [`crate::run_cost`]), which [`InferencePool::run_inline`] runs on the async
//! worker, because the hand-off would cost more than the job. The job's
//! [`CancelToken`] carries the deadline and is cancelled when the caller goes away,
//! so abandoned work stops within about a millisecond.
//!
//! The pool sheds on queue time: a job waits at most `max_queue` for a worker, and
//! one whose expected wait (jobs waiting per thread × the mean job time) is already
//! longer is refused at once ([`RunError::Overloaded`] → RESOURCE_EXHAUSTED with a
//! retry hint), rather than every admitted call waiting until its deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use probserve_lang::BoundModel;
use probserve_runtime::{
    CancelToken, ImportanceConfig, InferError, McmcConfig, ModelError, OutputSummary, PriorConfig,
    SmcConfig,
};
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::Semaphore;

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
        /// The configured queue limit.
        max_queue_ms: u64,
        /// Time this job spent waiting.
        queued_ms: u64,
    },
}

/// The bounded CPU pool for inference.
#[derive(Debug)]
pub struct InferencePool {
    permits: Arc<Semaphore>,
    threads: usize,
    workers: rayon::ThreadPool,
    /// Longest wait for a worker before the job is refused.
    max_queue: Duration,
    /// Jobs waiting for a permit now.
    waiting: Arc<AtomicUsize>,
    /// Moving average of the time jobs ran on the pool, microseconds.
    mean_job_micros: Arc<AtomicU64>,
    /// Jobs refused because of queue time, since start.
    shed: AtomicU64,
}

/// The default queue limit (config `max_queue_ms`).
pub const DEFAULT_MAX_QUEUE: Duration = Duration::from_secs(1);

/// Decrements the waiting count when the wait ends (in every way it can end).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The pool size for a configured `threads` (0 = number of cores).
pub fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        threads
    }
}

/// Cancels a token when dropped: the caller's future was dropped (client gone,
/// server timeout), so the blocking job should stop.
#[derive(Debug)]
pub struct CancelOnDrop(pub CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl InferencePool {
    /// A pool running at most `threads` inferences at once (0 = number of cores).
    ///
    /// # Errors
    /// The operating system refused to start the threads.
    pub fn new(threads: usize) -> Result<Self, rayon::ThreadPoolBuildError> {
        let threads = resolve_threads(threads);
        let workers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("probserve-infer-{i}"))
            .build()?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(threads)),
            threads,
            workers,
            max_queue: DEFAULT_MAX_QUEUE,
            waiting: Arc::default(),
            mean_job_micros: Arc::default(),
            shed: AtomicU64::new(0),
        })
    }

    /// Sets the queue limit (see the module docs; at least 1 ms).
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: Duration) -> Self {
        self.max_queue = max_queue.max(Duration::from_millis(1));
        self
    }

    /// Jobs waiting for a worker now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Jobs refused because of queue time, since start.
    pub fn shed_count(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    fn overloaded(&self, waiting: usize, expected: Duration, queued: Duration) -> RunError {
        self.shed.fetch_add(1, Ordering::Relaxed);
        RunError::Overloaded {
            waiting,
            threads: self.threads,
            expected_ms: expected.as_millis() as u64,
            max_queue_ms: self.max_queue.as_millis() as u64,
            queued_ms: queued.as_millis() as u64,
        }
    }

    /// Pool size.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Jobs running now.
    pub fn busy(&self) -> usize {
        self.threads - self.permits.available_permits()
    }

    /// Runs `job` on the pool; returns its result and the queue wait.
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce() -> Result<T, RunError> + Send + 'static,
    ) -> Result<(T, Duration), RunError> {
        let queued = Instant::now();
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(Arc::clone(&self.waiting));
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Every worker is busy and `ahead` jobs wait before this one.
                let mean = Duration::from_micros(self.mean_job_micros.load(Ordering::Relaxed));
                let expected = mean
                    .saturating_mul(u32::try_from(ahead / self.threads + 1).unwrap_or(u32::MAX));
                if expected > self.max_queue {
                    return Err(self.overloaded(ahead, expected, Duration::ZERO));
                }
                let limit = queued.checked_add(self.max_queue).unwrap_or(deadline);
                let until = limit.min(deadline);
                match tokio::time::timeout_at(
                    until.into(),
                    Arc::clone(&self.permits).acquire_owned(),
                )
                .await
                {
                    Ok(Ok(p)) => p,
                    Err(_) if until < deadline => {
                        return Err(self.overloaded(ahead, expected, queued.elapsed()));
                    }
                    // The semaphore is never closed; treat it like a timeout if it were.
                    Ok(Err(_)) | Err(_) => {
                        return Err(RunError::QueueDeadline {
                            queued_ms: queued.elapsed().as_millis() as u64,
                        });
                    }
                }
            }
        };
        drop(waiting);
        let wait = queued.elapsed();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mean_job = Arc::clone(&self.mean_job_micros);
        // One permit per thread: the job starts at once, never queues in rayon.
        self.workers.spawn(move || {
            let started = Instant::now();
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            drop(permit);
            observe_job(&mean_job, started.elapsed());
            // The caller may be gone (client cancelled); then nobody needs the result.
            let _ = tx.send(out);
        });
        match rx.await {
            Ok(Ok(r)) => r.map(|v| (v, wait)),
            Ok(Err(p)) => Err(RunError::Panicked(panic_message(p))),
            Err(_) => Err(RunError::Panicked("the inference worker went away".into())),
        }
    }

    /// Runs a job predicted to be tiny (see [`crate::run_cost`]) on the calling
    /// async worker, saving the two thread hand-offs. It takes no pool permit: at
    /// most one such job runs per async worker at a time, and a tiny job should not
    /// queue behind long ones. Panics are isolated as on the pool; the queue wait is
    /// zero.
    pub fn run_inline<T>(
        &self,
        job: impl FnOnce() -> Result<T, RunError>,
    ) -> Result<(T, Duration), RunError> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
            Ok(r) => r.map(|v| (v, Duration::ZERO)),
            Err(p) => Err(RunError::Panicked(panic_message(p))),
        }
    }
}

/// Folds one job's run time into the moving average (weight 1/8; a racing update
/// loses one sample, which is fine for an estimate).
fn observe_job(mean: &AtomicU64, took: Duration) {
    let x = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    let old = mean.load(Ordering::Relaxed);
    let new = if old == 0 { x } else { old - old / 8 + x / 8 };
    mean.store(new, Ordering::Relaxed);
}

/// The message of a caught panic.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

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
