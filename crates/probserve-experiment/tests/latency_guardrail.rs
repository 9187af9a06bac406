//! The p95 latency guardrail under continuous monitoring, by seeded simulation.
//! Latencies are log-normal (skewed, heavy-ish tails, as real ones are). Tolerances
//! come from Monte Carlo error: for R runs a rate's standard error is √(p(1−p)/R),
//! and bounds sit 3 standard errors out.

use probserve_experiment::guardrails::{
    CheckStatus, GuardrailConfig, GuardrailMetric, GuardrailReport, evaluate,
};
use probserve_experiment::metrics::{ArmMetrics, Observation};
use rand::SeedableRng;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

const RUNS: u64 = 200;
const LOOK_EVERY: u64 = 100;

fn obs(latency_ms: f64) -> Observation {
    Observation {
        latency_ms,
        error: false,
        timeout: false,
        output_mean: None,
        output_sd: None,
    }
}

fn p95_status(r: &GuardrailReport) -> CheckStatus {
    r.checks
        .iter()
        .find(|c| c.metric == GuardrailMetric::P95Latency)
        .map(|c| c.status)
        .unwrap_or(CheckStatus::InsufficientData)
}

/// Runs one rollout where the candidate is `scale`× slower in distribution, looking
/// every `LOOK_EVERY` calls per arm up to `max_per_arm`; returns the per-arm count at
/// the first breach, if any.
fn first_breach(
    cfg: &GuardrailConfig,
    scale: f64,
    sigma: f64,
    max_per_arm: u64,
    seed: u64,
) -> Option<u64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let base = LogNormal::new(2.0, sigma).expect("valid log-normal");
    let (mut b, mut c) = (ArmMetrics::default(), ArmMetrics::default());
    for n in 1..=max_per_arm {
        b.record(&obs(base.sample(&mut rng)));
        c.record(&obs(scale * base.sample(&mut rng)));
        if n % LOOK_EVERY == 0 && p95_status(&evaluate(cfg, &b, &c)) == CheckStatus::Breach {
            return Some(n);
        }
    }
    None
}

fn rate(hits: u64) -> f64 {
    hits as f64 / RUNS as f64
}

/// A candidate exactly at the limit (p95 ratio 1.5) is not a breach. Looking 200
/// times per run, a plain ratio of sample p95s calls it one in most runs; the
/// anytime-valid comparison stays within α.
#[test]
fn a_candidate_at_the_limit_is_not_rolled_back_however_often_we_look() {
    let valid = GuardrailConfig::default();
    let naive = GuardrailConfig {
        require_significance: false,
        ..GuardrailConfig::default()
    };
    let (mut valid_hits, mut naive_hits) = (0, 0);
    for seed in 0..RUNS {
        valid_hits += u64::from(first_breach(&valid, 1.5, 0.5, 20_000, seed).is_some());
        naive_hits += u64::from(first_breach(&naive, 1.5, 0.5, 20_000, seed).is_some());
    }
    eprintln!(
        "at the limit: anytime-valid {} vs plain ratio {} false rollbacks over {RUNS} runs",
        rate(valid_hits),
        rate(naive_hits)
    );
    let alpha = valid.sequential.alpha;
    let bound = alpha + 3.0 * (alpha * (1.0 - alpha) / RUNS as f64).sqrt();
    assert!(
        rate(valid_hits) <= bound,
        "anytime-valid false rollbacks {} > {bound:.3}",
        rate(valid_hits)
    );
    assert!(
        rate(naive_hits) > 0.5,
        "the plain ratio should cross at the boundary often: {}",
        rate(naive_hits)
    );
}

/// A clearly slower candidate (3×) is caught soon after the baseline's bound exists.
#[test]
fn a_three_times_slower_candidate_is_rolled_back_by_3000_calls_per_arm() {
    let cfg = GuardrailConfig::default();
    let mut caught = Vec::new();
    for seed in 0..RUNS {
        if let Some(n) = first_breach(&cfg, 3.0, 0.5, 3_000, 10_000 + seed) {
            caught.push(n);
        }
    }
    assert_eq!(
        caught.len() as u64,
        RUNS,
        "every run breaches by 3,000 calls per arm"
    );
    caught.sort_unstable();
    eprintln!(
        "3x slower: first breach at {} / {} / {} calls per arm (min / median / max)",
        caught[0],
        caught[caught.len() / 2],
        caught[caught.len() - 1]
    );
    let earliest = caught.iter().min().copied().unwrap_or(0);
    assert!(
        earliest >= cfg.min_samples_per_arm,
        "never before the minimum sample: {earliest}"
    );
}
