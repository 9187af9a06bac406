//! The single-site Metropolis–Hastings move shared by MCMC and SMC rejuvenation.
//!
//! One move = pick a latent site uniformly, propose a new value for it on an unconstrained
//! scale chosen from the site's support, re-run the model once replaying every other site from
//! the current trace (matched by position), and accept or reject against the (tempered) target
//! `prior · (likelihood · factors)^β`. Structure changes are handled as reversible-jump moves with
//! prior births and deaths, as in fugue.

use crate::address::{AddrMap, AddrSet, Address};
use crate::dist::{Dirichlet, ScalarDist, Support, VectorDist};
use crate::error::ModelError;
use crate::handler::{
    BaseCursor, Handler, check_factor, check_log_prob, check_value, check_vector,
};
use crate::model::{Model, Outputs};
use crate::trace::{Record, SiteKind, Trace};
use rand::Rng;
use rand_distr::StandardNormal;

/// Proposal-scale statistics of one site.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteStats {
    /// The site address, rendered with the model's names.
    pub address: String,
    /// Final proposal scale (on the unconstrained scale).
    pub scale: f64,
    /// Proposals made at this site.
    pub proposals: u64,
    /// Proposals accepted.
    pub accepted: u64,
}

#[derive(Debug, Clone, Copy)]
struct SiteAdapt {
    log_scale: f64,
    updates: u64,
    proposals: u64,
    accepted: u64,
}

/// Per-site adaptive proposal scales (Robbins–Monro on the log scale towards a target
/// acceptance rate; frozen after warm-up). One hash lookup per move.
#[derive(Debug, Clone)]
pub(crate) struct Adaptation {
    index: AddrMap<u32>,
    sites: Vec<(Address, SiteAdapt)>,
    target: f64,
}

const LOG_SCALE_MIN: f64 = -18.0;
const LOG_SCALE_MAX: f64 = 7.0;

impl Adaptation {
    pub(crate) fn new(target: f64) -> Self {
        Adaptation {
            index: AddrMap::default(),
            sites: Vec::new(),
            target,
        }
    }

    /// Slot of `addr`, created with the support's initial scale. Small models use a linear
    /// scan (faster than hashing); larger ones the address index.
    fn slot(&mut self, addr: Address, support: Support) -> usize {
        const SCAN: usize = 8;
        let next = self.sites.len();
        if next <= SCAN {
            if let Some(i) = self.sites.iter().position(|(a, _)| *a == addr) {
                return i;
            }
        } else if let Some(&i) = self.index.get(&addr) {
            return i as usize;
        }
        let s = SiteAdapt {
            log_scale: initial_log_scale(support),
            updates: 0,
            proposals: 0,
            accepted: 0,
        };
        self.sites.push((addr, s));
        if self.sites.len() == SCAN + 1 {
            for (i, (a, _)) in self.sites.iter().enumerate() {
                self.index.insert(*a, u32::try_from(i).unwrap_or(u32::MAX));
            }
        } else if self.sites.len() > SCAN + 1 {
            self.index
                .insert(addr, u32::try_from(next).unwrap_or(u32::MAX));
        }
        next
    }

    fn scale(&self, slot: usize) -> f64 {
        self.sites.get(slot).map_or(1.0, |s| s.1.log_scale.exp())
    }

    fn update(&mut self, slot: usize, accept_prob: f64, accepted: bool, adapting: bool) {
        let target = self.target;
        if let Some((_, s)) = self.sites.get_mut(slot) {
            s.proposals += 1;
            s.accepted += u64::from(accepted);
            if adapting {
                s.updates += 1;
                // γ = 2 / u^0.625 with u = updates + 1 (three square roots; no `powf` on the hot path).
                let u = s.updates as f64 + 1.0;
                let gamma = 2.0 / (u.sqrt() * u.sqrt().sqrt().sqrt());
                s.log_scale = (s.log_scale + gamma * (accept_prob - target))
                    .clamp(LOG_SCALE_MIN, LOG_SCALE_MAX);
            }
        }
    }

    /// Reset acceptance counters (scales kept), e.g. at the end of warm-up.
    pub(crate) fn reset_counts(&mut self) {
        for (_, s) in &mut self.sites {
            s.proposals = 0;
            s.accepted = 0;
        }
    }

    pub(crate) fn stats(&self, render: impl Fn(&Address) -> String) -> Vec<SiteStats> {
        let mut v: Vec<SiteStats> = self
            .sites
            .iter()
            .map(|(a, s)| SiteStats {
                address: render(a),
                scale: s.log_scale.exp(),
                proposals: s.proposals,
                accepted: s.accepted,
            })
            .collect();
        v.sort_by(|a, b| a.address.cmp(&b.address));
        v
    }
}

fn initial_log_scale(support: Support) -> f64 {
    match support {
        Support::Simplex { .. } => (0.1f64).ln(),
        _ => 0.0,
    }
}

/// Indices of the latent records of `trace`.
pub(crate) fn latent_indices(trace: &Trace, out: &mut Vec<u32>) {
    out.clear();
    let it = trace.records().iter().enumerate();
    out.extend(
        it.filter(|(_, r)| r.kind == SiteKind::Latent)
            .map(|(i, _)| i as u32),
    );
}

/// Pick a latent record uniformly: from the cached index list, or by scanning.
fn pick_latent<R: Rng + ?Sized>(
    trace: &Trace,
    latents: Option<&Vec<u32>>,
    rng: &mut R,
) -> Option<(usize, usize)> {
    match latents {
        Some(l) => {
            if l.is_empty() {
                return None;
            }
            Some((l[rng.random_range(0..l.len())] as usize, l.len()))
        }
        None => {
            let n = trace
                .records()
                .iter()
                .filter(|r| r.kind == SiteKind::Latent)
                .count();
            if n == 0 {
                return None;
            }
            let k = rng.random_range(0..n);
            let j = trace
                .records()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.kind == SiteKind::Latent)
                .nth(k)?
                .0;
            Some((j, n))
        }
    }
}

/// Reusable buffers for proposals.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    prop: Trace,
    vec_a: Vec<f64>,
    /// Flattened outputs of the last proposal's run (the new state's, when accepted).
    pub(crate) out: Vec<f64>,
}

/// `β · l` with `0 · (−∞) = 0`.
#[inline]
pub(crate) fn tempered(beta: f64, l: f64) -> f64 {
    if beta == 0.0 { 0.0 } else { beta * l }
}

/// Log of the tempered target of a trace.
#[inline]
pub(crate) fn log_target(t: &Trace, beta: f64) -> f64 {
    t.log_prior + tempered(beta, t.log_likelihood_and_factors())
}

/// One single-site MH move on `trace` (with its cached latent list, if any).
///
/// Returns true when the proposal was accepted: the trace has then been replaced and
/// `scratch.out` holds the flattened outputs of the new state.
#[allow(clippy::too_many_arguments)] // the move's whole state, kept flat to avoid re-borrowing
pub(crate) fn mh_step<M, R>(
    model: &M,
    trace: &mut Trace,
    latents: Option<&mut Vec<u32>>,
    scratch: &mut Scratch,
    adapt: &mut Adaptation,
    rng: &mut R,
    beta: f64,
    adapting: bool,
) -> Result<bool, ModelError>
where
    M: Model + ?Sized,
    M::Output: Outputs,
    R: Rng + ?Sized,
{
    let Some((j, n_cur)) = pick_latent(trace, latents.as_deref(), rng) else {
        return Ok(false);
    };
    let Some(target) = trace.records().get(j) else {
        return Ok(false);
    };
    scratch.prop.clear();
    scratch.prop.set_max_sites(trace.max_sites());
    scratch.out.clear();
    let mut h = ProposalHandler {
        cursor: BaseCursor::new(trace),
        target,
        adapt,
        slot: usize::MAX,
        rng,
        trace: &mut scratch.prop,
        vec_buf: &mut scratch.vec_a,
        log_hastings: 0.0,
        log_q_births: 0.0,
        stay: false,
    };
    model.run_into(&mut h, &mut scratch.out)?;
    h.trace.check_room()?;
    let (log_hastings, log_q_births, stay, slot) = (h.log_hastings, h.log_q_births, h.stay, h.slot);
    let visited = h.trace.records().len();
    let same = h.cursor.same_structure(visited);
    let prop = &scratch.prop;
    if stay {
        adapt.update(slot, 0.0, false, adapting);
        return Ok(false);
    }
    let mut log_alpha_extra = log_hastings - log_q_births;
    if !same {
        prop.check_unique()?;
        let present: AddrSet = prop
            .records()
            .iter()
            .filter(|r| r.kind == SiteKind::Latent)
            .map(|r| r.address)
            .collect();
        let n_prop = present.len();
        for r in trace
            .records()
            .iter()
            .filter(|r| r.kind == SiteKind::Latent)
        {
            if !present.contains(&r.address) {
                log_alpha_extra += r.log_prob; // death: the reverse move re-draws it from the prior
            }
        }
        if n_prop == 0 {
            adapt.update(slot, 0.0, false, adapting);
            return Ok(false);
        }
        log_alpha_extra += (n_cur as f64).ln() - (n_prop as f64).ln();
    }
    let cur_t = log_target(trace, beta);
    let prop_t = log_target(prop, beta);
    let (accept, accept_prob) = if !cur_t.is_finite() {
        (
            prop_t.is_finite(),
            if prop_t.is_finite() { 1.0 } else { 0.0 },
        )
    } else if prop_t == f64::NEG_INFINITY {
        (false, 0.0)
    } else {
        let log_alpha = prop_t - cur_t + log_alpha_extra;
        let p = if log_alpha >= 0.0 {
            1.0
        } else {
            log_alpha.exp()
        };
        (
            log_alpha >= 0.0 || rng.random::<f64>() < p,
            if p.is_nan() { 0.0 } else { p },
        )
    };
    adapt.update(slot, accept_prob, accept, adapting);
    if !accept {
        return Ok(false);
    }
    std::mem::swap(trace, &mut scratch.prop);
    if !same && let Some(l) = latents {
        latent_indices(trace, l);
    }
    Ok(true)
}

struct ProposalHandler<'a, R: ?Sized> {
    cursor: BaseCursor<'a>,
    target: &'a Record,
    adapt: &'a mut Adaptation,
    /// Adaptation slot of the target (set when the target is visited).
    slot: usize,
    rng: &'a mut R,
    trace: &'a mut Trace,
    vec_buf: &'a mut Vec<f64>,
    /// `log q(x | x') − log q(x' | x)` of the target proposal (includes Jacobians).
    log_hastings: f64,
    /// Prior log-densities of sites born in this proposal (forward proposal density).
    log_q_births: f64,
    /// The proposal left the support: the move is a rejection.
    stay: bool,
}

impl<R: Rng + ?Sized> ProposalHandler<'_, R> {
    fn scale(&mut self, addr: Address, support: Support) -> f64 {
        self.slot = self.adapt.slot(addr, support);
        self.adapt.scale(self.slot)
    }

    fn propose_scalar<D: ScalarDist + ?Sized>(&mut self, addr: Address, dist: &D, x: f64) -> f64 {
        let support = dist.support();
        let s = self.scale(addr, support);
        let rng = &mut *self.rng;
        let z: f64 = rng.sample(StandardNormal);
        match support {
            Support::Real | Support::RealVector { .. } | Support::Simplex { .. } => x + s * z,
            Support::Positive => {
                let y = x.ln() + s * z;
                let x2 = y.exp();
                if !(x > 0.0 && x2 > 0.0 && x2.is_finite()) {
                    self.stay = true;
                    return x;
                }
                self.log_hastings += y - x.ln();
                x2
            }
            Support::UnitInterval => self.propose_interval(dist, x, 0.0, 1.0, s * z),
            Support::Interval { lo, hi } => self.propose_interval(dist, x, lo, hi, s * z),
            Support::Boolean => 1.0 - x,
            Support::NonNegativeInteger => {
                let k = x + discrete_step(rng, z, s);
                if k < 0.0 { -k - 1.0 } else { k }
            }
            Support::IntegerRange { lo, hi } => {
                let m = (hi as f64) - (lo as f64) + 1.0;
                if m <= 1.0 {
                    return x;
                }
                let r = (x - lo as f64 + discrete_step(rng, z, s)).rem_euclid(2.0 * m);
                let r = if r >= m { 2.0 * m - 1.0 - r } else { r };
                lo as f64 + r
            }
        }
    }

    fn propose_interval<D: ScalarDist + ?Sized>(
        &mut self,
        dist: &D,
        x: f64,
        lo: f64,
        hi: f64,
        step: f64,
    ) -> f64 {
        if !(x > lo && x < hi) {
            // Measure-zero case (a draw exactly on the boundary): escape with an independence
            // proposal from the prior.
            let x2 = dist.sample(self.rng);
            self.log_hastings += dist.log_prob(x) - dist.log_prob(x2);
            if !(x2 > lo && x2 < hi) || self.log_hastings.is_nan() {
                self.stay = true;
                return x;
            }
            return x2;
        }
        let (a, b) = (x - lo, hi - x);
        let u = a.ln() - b.ln() + step;
        let w = hi - lo;
        // lo + w·σ(u), computed on the side that keeps precision.
        let x2 = if u >= 0.0 {
            hi - w / (1.0 + u.exp())
        } else {
            lo + w / (1.0 + (-u).exp())
        };
        if !(x2 > lo && x2 < hi) {
            self.stay = true;
            return x;
        }
        self.log_hastings += (x2 - lo).ln() + (hi - x2).ln() - a.ln() - b.ln();
        x2
    }
}

/// A symmetric integer step: sign · (1 + ⌊|s·z|⌋).
#[inline]
fn discrete_step<R: Rng + ?Sized>(rng: &mut R, z: f64, s: f64) -> f64 {
    let mag = 1.0 + (s * z).abs().floor().min(1e15);
    if rng.random::<bool>() { mag } else { -mag }
}

impl<R: Rng + ?Sized> Handler for ProposalHandler<'_, R> {
    #[inline]
    fn sample<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
    ) -> Result<f64, ModelError> {
        let x = match self.cursor.find(&addr, SiteKind::Latent) {
            Some(r) if !r.is_vector() => {
                if std::ptr::eq(r, self.target) {
                    self.propose_scalar(addr, dist, r.value)
                } else {
                    r.value
                }
            }
            _ => {
                let x = check_value(addr, dist.sample(self.rng))?;
                self.log_q_births += check_log_prob(addr, dist.log_prob(x))?;
                x
            }
        };
        let lp = check_log_prob(addr, dist.log_prob(x))?;
        self.trace.push_latent(addr, x, lp);
        self.trace.check_room()?;
        Ok(x)
    }

    #[inline]
    fn observe<D: ScalarDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: f64,
    ) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Observed);
        let lp = check_log_prob(addr, dist.log_prob(value))?;
        self.trace.push_observed(addr, value, lp);
        self.trace.check_room()?;
        Ok(())
    }

    fn factor(&mut self, addr: Address, log_weight: f64) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Factor);
        self.trace
            .push_factor(addr, check_factor(addr, log_weight)?);
        self.trace.check_room()?;
        Ok(())
    }

    fn sample_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        out: &mut Vec<f64>,
    ) -> Result<(), ModelError> {
        let base = self.cursor.base;
        let found = self.cursor.find(&addr, SiteKind::Latent);
        let cur = found
            .and_then(|r| base.vector_of(r))
            .filter(|v| v.len() == dist.dim());
        out.clear();
        match (found, cur) {
            (Some(r), Some(v)) => {
                out.extend_from_slice(v);
                if std::ptr::eq(r, self.target) {
                    self.propose_vector(addr, dist, out)?;
                }
            }
            _ => {
                out.resize(dist.dim(), 0.0);
                dist.sample_into(self.rng, out);
                check_vector(addr, out)?;
                self.log_q_births += check_log_prob(addr, dist.log_prob(out))?;
            }
        }
        let lp = check_log_prob(addr, dist.log_prob(out))?;
        self.trace.push_vector(addr, SiteKind::Latent, out, lp);
        self.trace.check_room()?;
        Ok(())
    }

    fn observe_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        value: &[f64],
    ) -> Result<(), ModelError> {
        self.cursor.find(&addr, SiteKind::Observed);
        let lp = check_log_prob(addr, dist.log_prob(value))?;
        self.trace.push_vector(addr, SiteKind::Observed, value, lp);
        self.trace.check_room()?;
        Ok(())
    }
}

impl<R: Rng + ?Sized> ProposalHandler<'_, R> {
    fn propose_vector<D: VectorDist + ?Sized>(
        &mut self,
        addr: Address,
        dist: &D,
        x: &mut [f64],
    ) -> Result<(), ModelError> {
        let support = dist.support();
        let s = self.scale(addr, support);
        match support {
            Support::Simplex { .. } => {
                // x' ~ Dirichlet(1 + c·x) with c = 1/s²; Hastings ratio from the two Dirichlets.
                let c = 1.0 / (s * s);
                self.vec_buf.clear();
                self.vec_buf.extend(x.iter().map(|v| 1.0 + c * v));
                let fwd = Dirichlet::new(self.vec_buf).map_err(|e| ModelError::dist_at(addr, e))?;
                let old = x.to_vec();
                fwd.sample_into(self.rng, x);
                if x.iter().any(|v| v.is_nan() || *v <= 0.0) {
                    x.copy_from_slice(&old);
                    self.stay = true;
                    return Ok(());
                }
                self.vec_buf.clear();
                self.vec_buf.extend(x.iter().map(|v| 1.0 + c * v));
                let rev = Dirichlet::new(self.vec_buf).map_err(|e| ModelError::dist_at(addr, e))?;
                self.log_hastings += rev.log_prob(&old) - fwd.log_prob(x);
                if self.log_hastings.is_nan() {
                    x.copy_from_slice(&old);
                    self.stay = true;
                }
            }
            _ => {
                for v in x.iter_mut() {
                    let z: f64 = self.rng.sample(StandardNormal);
                    *v += s * z;
                }
            }
        }
        Ok(())
    }
}
