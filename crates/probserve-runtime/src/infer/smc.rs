//! Likelihood-tempered sequential Monte Carlo: an adaptive temperature ladder chosen by ESS
//! bisection, systematic resampling when the ESS drops to the threshold, and single-site MH
//! rejuvenation at each intermediate temperature.

use super::kernel::{Adaptation, Scratch, mh_step, tempered};
use super::{Draws, model_error, normalize, output_names, weighted_summaries};
use crate::cancel::{CancelCheck, CancelToken};
use crate::error::InferError;
use crate::handler::PriorHandler;
use crate::model::{Model, Outputs};
use crate::rng::stream_rng;
use crate::summary::{DEFAULT_HDI_PROB, OutputSummary};
use crate::trace::{PoolStats, Trace, TracePool};
use rand::Rng;

/// Configuration of SMC.
#[derive(Debug, Clone)]
pub struct SmcConfig {
    /// Number of particles.
    pub particles: usize,
    /// Resample (and pick the next temperature) when ESS falls to this fraction of particles.
    pub ess_threshold: f64,
    /// MH moves per particle after each resampling; 0 reduces SMC to one importance step.
    pub rejuvenation_steps: usize,
    /// Cap on tempering steps (the last one jumps to temperature 1).
    pub max_steps: usize,
    /// Target acceptance of the rejuvenation moves' scale adaptation.
    pub target_accept: f64,
    /// Root seed.
    pub seed: u64,
    /// Cancellation.
    pub cancel: CancelToken,
}

impl Default for SmcConfig {
    fn default() -> Self {
        SmcConfig {
            particles: 1000,
            ess_threshold: 0.5,
            rejuvenation_steps: 1,
            max_steps: 1000,
            target_accept: 0.44,
            seed: 0,
            cancel: CancelToken::default(),
        }
    }
}

/// Weighted particles at temperature 1.
#[derive(Debug, Clone)]
pub struct SmcResult {
    /// Output of each particle.
    pub draws: Draws,
    /// Normalized weights.
    pub weights: Vec<f64>,
    /// Estimate of `ln p(data)`.
    pub log_evidence: f64,
    /// Final Kish ESS.
    pub ess: f64,
    /// The temperature ladder (ending at 1).
    pub temperatures: Vec<f64>,
    /// Number of resampling steps.
    pub resamples: usize,
    /// Acceptance rate of rejuvenation moves.
    pub acceptance_rate: f64,
    /// Trace-pool statistics.
    pub pool: PoolStats,
}

impl SmcResult {
    /// Weighted summary per output.
    pub fn summaries(&self) -> Vec<OutputSummary> {
        weighted_summaries(&self.draws, &self.weights, DEFAULT_HDI_PROB)
    }

    /// [`SmcResult::summaries`], checking `cancel` before each output.
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

/// ESS of `lw + delta · ll` (one exp per particle).
fn ess_at(lw: &[f64], ll: &[f64], delta: f64) -> f64 {
    let m = lw
        .iter()
        .zip(ll)
        .map(|(a, l)| a + tempered(delta, *l))
        .fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return 0.0;
    }
    let (mut s1, mut s2) = (0.0, 0.0);
    for (a, l) in lw.iter().zip(ll) {
        let e = (a + tempered(delta, *l) - m).exp();
        s1 += e;
        s2 += e * e;
    }
    s1 * s1 / s2
}

/// The temperature increment whose reweighting brings the ESS down to `target`: a safeguarded
/// regula falsi (Illinois) on `ln ESS(δ) − ln target`, which is decreasing in `δ`.
fn next_delta(lw: &[f64], ll: &[f64], remaining: f64, target: f64) -> f64 {
    let f = |d: f64| {
        let e = ess_at(lw, ll, d);
        if e > 0.0 {
            e.ln() - target.ln()
        } else {
            f64::NEG_INFINITY
        }
    };
    let f_hi = f(remaining);
    if f_hi >= 0.0 {
        return remaining;
    }
    let (mut lo, mut hi) = (0.0, remaining);
    let (mut flo, mut fhi) = (f(0.0).max(0.0), f_hi.max(-50.0));
    let mut side = 0i8;
    for _ in 0..60 {
        // Bisect when the secant is unusable, otherwise take the false-position point.
        let mut mid = if (flo - fhi).abs() > 1e-300 {
            hi - fhi * (hi - lo) / (fhi - flo)
        } else {
            0.5 * (lo + hi)
        };
        if !(mid > lo && mid < hi) {
            mid = 0.5 * (lo + hi);
        }
        let fm = f(mid).max(-50.0);
        if fm.abs() < 1e-3 || hi - lo < 1e-9 * remaining {
            return mid;
        }
        if fm < 0.0 {
            hi = mid;
            fhi = fm;
            if side == -1 {
                flo *= 0.5;
            }
            side = -1;
        } else {
            lo = mid;
            flo = fm;
            if side == 1 {
                fhi *= 0.5;
            }
            side = 1;
        }
    }
    hi.max(1e-12).min(remaining)
}

/// Systematic resampling: ancestor indices for `n` offspring.
pub(crate) fn systematic<R: Rng + ?Sized>(rng: &mut R, weights: &[f64], out: &mut Vec<usize>) {
    let n = weights.len();
    out.clear();
    let u0: f64 = rng.random::<f64>() / n as f64;
    let mut cum = 0.0;
    let mut j = 0;
    for i in 0..n {
        let u = u0 + i as f64 / n as f64;
        while j + 1 < n && cum + weights[j] < u {
            cum += weights[j];
            j += 1;
        }
        out.push(j);
    }
}

/// Apply resampling `ancestors` in place: particles with no offspring are overwritten by copies
/// of particles with several, reusing the dead particles' trace buffers through the pool.
fn resample_in_place(
    ancestors: &[usize],
    counts: &mut Vec<u32>,
    traces: &mut [Trace],
    outs: &mut [f64],
    width: usize,
    pool: &mut TracePool,
) {
    counts.clear();
    counts.resize(traces.len(), 0);
    for &a in ancestors {
        counts[a] += 1;
    }
    let mut dead = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            pool.give(std::mem::take(&mut traces[i]));
            dead.push(i);
        }
    }
    for (j, &c) in counts.iter().enumerate() {
        for _ in 1..c {
            let Some(d) = dead.pop() else { return };
            traces[d] = pool.take_copy(&traces[j]);
            outs.copy_within(j * width..(j + 1) * width, d * width);
        }
    }
}

/// Run likelihood-tempered SMC.
pub fn smc<M>(model: &M, cfg: &SmcConfig) -> Result<SmcResult, InferError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
{
    let n = cfg.particles;
    if n == 0 || n > super::MAX_PARTICLES {
        return Err(InferError::InvalidConfig(format!(
            "particles must be in 1..={}",
            super::MAX_PARTICLES
        )));
    }
    if !(cfg.ess_threshold > 0.0 && cfg.ess_threshold <= 1.0) {
        return Err(InferError::InvalidConfig(
            "ess_threshold must be in (0, 1]".into(),
        ));
    }
    let mut rng = stream_rng(cfg.seed, 0);
    let mut check = CancelCheck::new(&cfg.cancel);
    let mut pool = TracePool::with_max_sites(model.max_sites());
    let mut verified = Vec::new();
    let mut staged = Vec::new();
    // Particle i: traces[i] and outputs outs[i·w .. (i+1)·w] (one flat buffer for all outputs).
    let mut traces: Vec<Trace> = Vec::with_capacity(super::capped(n));
    let mut outs: Vec<f64> = Vec::new();
    let mut width = 0;
    for i in 0..n {
        check.tick()?;
        let mut trace = pool.take();
        staged.clear();
        model
            .run_into(&mut PriorHandler::new(&mut rng, &mut trace), &mut staged)
            .map_err(|e| model_error(model, e))?;
        trace
            .check_unique_cached(&mut verified)
            .map_err(|e| model_error(model, e))?;
        if i == 0 {
            width = staged.len();
            outs.reserve(super::capped(n.saturating_mul(width)));
        } else if staged.len() != width {
            return Err(InferError::OutputShape {
                expected: width,
                got: staged.len(),
            });
        }
        outs.extend_from_slice(&staged);
        traces.push(trace);
    }
    let mut ll: Vec<f64> = traces
        .iter()
        .map(|t| t.log_likelihood_and_factors())
        .collect();
    let mut lw = vec![-(n as f64).ln(); n];
    let mut weights = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    let mut ancestors = Vec::with_capacity(n);
    let mut scratch = Scratch::default();
    let mut adapt = Adaptation::new(cfg.target_accept);
    let target = (cfg.ess_threshold * n as f64).max(1.0);
    let (mut beta, mut log_evidence) = (0.0f64, 0.0f64);
    let mut temperatures = Vec::new();
    let (mut resamples, mut proposals, mut accepted) = (0usize, 0u64, 0u64);
    let mut ess = n as f64;
    while beta < 1.0 {
        check.tick()?;
        let remaining = 1.0 - beta;
        let delta = if cfg.rejuvenation_steps == 0 || temperatures.len() + 1 >= cfg.max_steps {
            remaining
        } else {
            next_delta(&lw, &ll, remaining, target)
        };
        for (w, l) in lw.iter_mut().zip(&ll) {
            *w += tempered(delta, *l);
        }
        let (lse, step_ess) = normalize(&lw, &mut weights)?;
        ess = step_ess;
        log_evidence += lse;
        for w in lw.iter_mut() {
            *w -= lse;
        }
        beta = if delta >= remaining {
            1.0
        } else {
            beta + delta
        };
        temperatures.push(beta);
        if beta >= 1.0 {
            break;
        }
        if ess <= target * (1.0 + 1e-2) {
            systematic(&mut rng, &weights, &mut ancestors);
            resample_in_place(
                &ancestors,
                &mut counts,
                &mut traces,
                &mut outs,
                width,
                &mut pool,
            );
            lw.fill(-(n as f64).ln());
            resamples += 1;
        }
        for (i, (t, l)) in traces.iter_mut().zip(ll.iter_mut()).enumerate() {
            check.tick()?;
            for _ in 0..cfg.rejuvenation_steps {
                let step = mh_step(
                    model,
                    t,
                    None,
                    &mut scratch,
                    &mut adapt,
                    &mut rng,
                    beta,
                    true,
                );
                proposals += 1;
                if step.map_err(|e| model_error(model, e))? {
                    accepted += 1;
                    let staged = &scratch.out;
                    if staged.len() != width {
                        return Err(InferError::OutputShape {
                            expected: width,
                            got: staged.len(),
                        });
                    }
                    outs[i * width..(i + 1) * width].copy_from_slice(staged);
                }
            }
            *l = t.log_likelihood_and_factors();
        }
    }
    // `weights` and `ess` are those of the last (β = 1) reweighting.
    Ok(SmcResult {
        draws: Draws {
            names: output_names(model, width),
            width,
            rows: n,
            values: outs,
        },
        weights,
        log_evidence,
        ess,
        temperatures,
        resamples,
        acceptance_rate: if proposals == 0 {
            0.0
        } else {
            accepted as f64 / proposals as f64
        },
        pool: pool.stats(),
    })
}
