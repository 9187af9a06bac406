//! Published reference values from experiments.md §4 (GrowthBook tests, computed
//! vectors for mSPRT and PSI) that are not scipy functions.

use probserve_experiment::drift::psi;
use probserve_experiment::metrics::{Moments, Proportion};
use probserve_experiment::stats::bayes::{self, LiftPrior};
use probserve_experiment::stats::sequential::{self, AlwaysValidP, SequentialConfig, msprt};
use probserve_experiment::stats::welch::{ArmSummary, Effect, welch_from_summaries, welch_test};
use probserve_experiment::stats::{Alternative, power};

fn near(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: got {a}, expected {b}");
}

fn f1() -> (Moments, Moments) {
    (
        Moments::new(3407, 1396.87, 52377.9767),
        Moments::new(3461, 2422.7, 134698.29),
    )
}

#[test]
fn f1_welch_absolute_growthbook() {
    let (a, b) = f1();
    let r = welch_test(&a, &b, Effect::Absolute, Alternative::TwoSided, 0.05).unwrap();
    near(r.effect, 0.29, 5e-5, "delta");
    near(r.se, 0.12478, 5e-6, "se");
    near(r.ci.0, 0.04538, 5e-6, "lo");
    near(r.ci.1, 0.53462, 5e-6, "hi");
    near(r.p_value, 0.02016, 5e-6, "p");
    near(r.dof, 5841.74, 5e-3, "dof");
}

#[test]
fn f2_f4_welch_relative_growthbook() {
    let (a, b) = f1();
    let r = welch_test(&a, &b, Effect::Relative, Alternative::TwoSided, 0.05).unwrap();
    near(r.effect, 0.70732, 5e-6, "lift");
    near(r.se, 0.37879, 5e-6, "se");
    near(r.ci.0, -0.03526, 5e-6, "lo");
    near(r.ci.1, 1.44989, 5e-6, "hi");
    near(r.p_value, 0.06191, 5e-6, "p");
    let a3000 = Moments::new(3000, 1396.87, 52377.9767);
    let g = welch_test(&a3000, &b, Effect::Relative, Alternative::Greater, 0.05).unwrap();
    near(g.effect, 0.503361, 5e-7, "lift");
    near(g.se, 0.333412, 5e-7, "se");
    near(g.ci.0, -0.045137, 5e-7, "lo");
    assert!(g.ci.1.is_infinite());
    near(g.p_value, 0.065583, 5e-7, "p");
}

#[test]
fn f3_welch_on_proportions_growthbook() {
    // GrowthBook treats a proportion as a mean with population variance p(1 − p).
    let s = |x: f64, n: f64| ArmSummary {
        mean: x / n,
        var: x / n * (1.0 - x / n),
        n,
    };
    let r = welch_from_summaries(
        s(14.0, 28.0),
        s(16.0, 30.0),
        Effect::Relative,
        Alternative::TwoSided,
        0.05,
    )
    .unwrap();
    near(r.effect, 0.06667, 5e-6, "lift");
    near(r.se, 0.2717, 5e-5, "se");
    near(r.ci.0, -0.47767, 5e-5, "lo");
    near(r.ci.1, 0.61101, 5e-5, "hi");
    near(r.p_value, 0.80707, 5e-5, "p");
}

#[test]
fn f8_f10_power_and_the_two_arm_factor() {
    // The deployment guide's one-sample formula would give 1 918 here; two arms need 3 835.
    assert_eq!(
        power::required_sample_size(0.10, 0.12, 0.05, 0.8).unwrap(),
        3835
    );
    assert_eq!(
        power::required_sample_size(0.50, 0.55, 0.05, 0.8).unwrap(),
        1565
    );
    assert_eq!(
        power::required_sample_size(0.75, 0.50, 0.05, 0.8).unwrap(),
        58
    );
    assert_eq!(
        power::required_sample_size(0.05, 0.06, 0.05, 0.9).unwrap(),
        10_901
    );
    near(
        power::sample_size_per_arm(0.3, 0.05, 0.8).unwrap(),
        174.42,
        5e-3,
        "pwr.2p.test h=0.3",
    );
    near(
        power::power_one_sided(0.3, 80.0, 0.05).unwrap(),
        0.5997,
        5e-5,
        "Cohen 6.1",
    );
    let n = power::sample_size_per_arm(0.2, 0.05, 0.8).unwrap();
    near(
        power::mde_h(n, 0.05, 0.8).unwrap(),
        0.2,
        1e-12,
        "mde inverts n",
    );
}

#[test]
fn s3_sequential_boundary_multipliers() {
    let cfg = SequentialConfig {
        alpha: 0.05,
        tuning_n: 5000.0,
    };
    for (n, m) in [
        (1000.0, 3.3639),
        (5000.0, 3.0352),
        (20_000.0, 3.1271),
        (100_000.0, 3.3369),
    ] {
        near(cfg.z_boundary(n).unwrap(), m, 5e-5, "multiplier");
    }
}

#[test]
fn s4_s5_msprt_fixed_mixing_variance() {
    let r = msprt(0.1, 0.002, 0.01, 0.0, 0.05).unwrap();
    near(r.lambda, 3.2787, 5e-5, "lambda");
    near(r.p_value, 0.3050, 5e-5, "p");
    near(r.ci.0, -0.03667, 5e-6, "lo");
    near(r.ci.1, 0.23667, 5e-6, "hi");
    assert!(!r.reject);
    let r = msprt(0.1, 0.0004, 0.01, 0.0, 0.05).unwrap();
    near(r.lambda, 32_538.6, 0.5, "lambda");
    near(r.p_value, 3.07e-5, 5e-8, "p");
    near(r.ci.0, 0.03797, 5e-6, "lo");
    near(r.ci.1, 0.16203, 5e-6, "hi");
    assert!(r.reject);
    let mut av = AlwaysValidP::default();
    av.update(&r);
    let weaker = msprt(0.01, 0.0004, 0.01, 0.0, 0.05).unwrap();
    assert_eq!(
        av.update(&weaker),
        r.p_value,
        "always-valid p never goes back up"
    );
}

#[test]
fn s1_s2_growthbook_sequential() {
    let cfg = SequentialConfig {
        alpha: 0.05,
        tuning_n: 5000.0,
    };
    let s = |x: f64, n: f64| ArmSummary {
        mean: x / n,
        var: x / n * (1.0 - x / n),
        n,
    };
    let r = sequential::summaries(s(1396.0, 3000.0), s(2422.0, 3461.0), Effect::Relative, &cfg)
        .unwrap();
    near(r.effect, 0.50386, 5e-6, "lift");
    near(r.se, 0.03386, 5e-6, "se");
    near(r.ci.0, 0.40098, 5e-5, "lo");
    near(r.ci.1, 0.60675, 5e-5, "hi");
    assert!(r.reject);
    let cfg1000 = SequentialConfig {
        alpha: 0.05,
        tuning_n: 1000.0,
    };
    let a = Moments::new(3000, 1396.87, 52377.9767);
    let b = Moments::new(3461, 2422.7, 134698.29);
    let r = sequential::means(&a, &b, Effect::Relative, &cfg1000).unwrap();
    near(r.effect, 0.50336, 5e-6, "lift");
    near(r.se, 0.33341, 5e-6, "se");
    near(r.ci.0, -0.55844, 5e-5, "lo");
    near(r.ci.1, 1.56516, 5e-5, "hi");
    assert!(!r.reject);
    near(r.p_value, 1.0, 0.0, "p");
}

#[test]
fn b1_b3_bayesian_growthbook() {
    let r = bayes::binary(
        Proportion::new(49, 100),
        Proportion::new(51, 100),
        None,
        0.05,
    )
    .unwrap();
    near(r.lift, 0.04082, 5e-6, "lift");
    near(r.sd, 0.14725, 5e-6, "sd");
    near(r.ci.0, -0.24779, 5e-5, "lo");
    near(r.ci.1, 0.32943, 5e-5, "hi");
    near(r.chance_to_win, 0.60918, 5e-5, "ctw");
    near(r.risk.0, 0.0814, 5e-5, "risk ctrl");
    near(r.risk.1, 0.04058, 5e-5, "risk trt");
    let a = Moments::new(10, 100.0, 1002.25);
    let b = Moments::new(10, 105.0, 1111.5);
    let r = bayes::continuous(&a, &b, None, 0.05).unwrap();
    near(r.lift, 0.05, 5e-6, "lift");
    near(r.sd, 0.03572, 5e-6, "sd");
    near(r.chance_to_win, 0.91923, 5e-5, "ctw");
    near(r.risk.0, 0.05131, 5e-5, "risk ctrl");
    near(r.risk.1, 0.00131, 5e-5, "risk trt");
    let r = bayes::continuous(
        &a,
        &b,
        Some(LiftPrior {
            mean: 0.1,
            variance: 0.1,
        }),
        0.05,
    )
    .unwrap();
    near(r.lift, 0.05063, 5e-6, "lift");
    near(r.sd, 0.03549, 5e-6, "sd");
    near(r.chance_to_win, 0.92315, 5e-5, "ctw");
}

#[test]
fn d6_d7_psi() {
    near(
        psi(&[0.25; 4], &[0.1, 0.2, 0.3, 0.4]).unwrap(),
        0.228217,
        5e-7,
        "psi",
    );
    near(
        psi(&[0.5, 0.5, 0.0], &[0.4, 0.4, 0.2]).unwrap(),
        1.56405,
        5e-6,
        "psi with empty bin",
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    use probserve_experiment::stats::{srm, wilson, ztest};
    assert!(wilson::wilson_interval(5, 0, 0.05).is_err());
    assert!(wilson::wilson_interval(6, 5, 0.05).is_err());
    assert!(wilson::wilson_interval(1, 5, 1.5).is_err());
    assert!(
        ztest::two_proportion_ztest(
            Proportion::new(0, 10),
            Proportion::new(0, 10),
            Alternative::TwoSided,
            0.05
        )
        .is_err()
    );
    assert!(srm::srm_check(&[1, 2], &[1.0], &Default::default()).is_err());
    assert!(power::cohens_h(1.5, 0.2).is_err());
    assert!(power::sample_size_per_arm(0.0, 0.05, 0.8).is_err());
    assert!(
        welch_test(
            &Moments::new(1, 1.0, 1.0),
            &Moments::new(5, 5.0, 6.0),
            Effect::Absolute,
            Alternative::TwoSided,
            0.05
        )
        .is_err()
    );
    assert!(psi(&[0.5, 0.5], &[1.0]).is_err());
    assert!(
        SequentialConfig {
            alpha: 0.0,
            tuning_n: 10.0
        }
        .validate()
        .is_err()
    );
    assert!(msprt(0.1, 0.0, 0.01, 0.0, 0.05).is_err());
}
