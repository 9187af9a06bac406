//! Statistics against frozen scipy/statsmodels vectors (`tests/reference/vectors.json`,
//! made by `tests/reference/make_vectors.py`).

use probserve_experiment::drift::{kolmogorov_sf, ks_2samp};
use probserve_experiment::metrics::{Moments, Proportion};
use probserve_experiment::stats::multiple::{benjamini_hochberg, holm};
use probserve_experiment::stats::power::{
    cohens_h, power_one_sided, power_two_sided, sample_size_per_arm,
};
use probserve_experiment::stats::srm::{SrmConfig, srm_check};
use probserve_experiment::stats::welch::{Effect, welch_test};
use probserve_experiment::stats::wilson::wilson_interval;
use probserve_experiment::stats::ztest::two_proportion_ztest;
use probserve_experiment::stats::{Alternative, norm_ppf};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("reference/vectors.json")).expect("vectors.json parses")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let tol = rel * b.abs().max(1e-12) + 1e-14;
    assert!((a - b).abs() <= tol, "{what}: got {a}, expected {b}");
}

#[test]
fn ztest_matches_statsmodels() {
    for c in vectors()["ztest"].as_array().unwrap() {
        let a = Proportion::new(u(&c["xa"]), u(&c["na"]));
        let b = Proportion::new(u(&c["xb"]), u(&c["nb"]));
        let r = two_proportion_ztest(a, b, Alternative::TwoSided, 0.05).unwrap();
        close(r.z, f(&c["z"]), 1e-9, "z");
        close(r.p_value, f(&c["p"]), 1e-7, "p");
        let g = two_proportion_ztest(a, b, Alternative::Greater, 0.05).unwrap();
        close(g.p_value, f(&c["p_greater"]), 1e-7, "p greater");
    }
}

#[test]
fn welch_matches_scipy() {
    for c in vectors()["welch"].as_array().unwrap() {
        let m = |x: &Value| Moments::new(u(&x[2]), f(&x[0]), f(&x[1]));
        let (a, b) = (m(&c["a"]), m(&c["b"]));
        let r = welch_test(&a, &b, Effect::Absolute, Alternative::TwoSided, 0.05).unwrap();
        close(r.t, f(&c["t"]), 1e-8, "t");
        close(r.dof, f(&c["df"]), 1e-8, "df");
        close(r.p_value, f(&c["p"]), 1e-6, "p");
        close(r.ci.0, f(&c["ci"][0]), 1e-6, "ci lo");
        close(r.ci.1, f(&c["ci"][1]), 1e-6, "ci hi");
        let g = welch_test(&a, &b, Effect::Absolute, Alternative::Greater, 0.05).unwrap();
        close(g.p_value, f(&c["p_greater"]), 1e-6, "p greater");
    }
}

#[test]
fn wilson_matches_statsmodels() {
    for c in vectors()["wilson"].as_array().unwrap() {
        let (lo, hi) = wilson_interval(u(&c["x"]), u(&c["n"]), f(&c["alpha"])).unwrap();
        assert!((lo - f(&c["ci"][0])).abs() < 1e-10, "{c}");
        assert!((hi - f(&c["ci"][1])).abs() < 1e-10, "{c}");
    }
}

#[test]
fn power_matches_statsmodels() {
    for c in vectors()["power"].as_array().unwrap() {
        let h = cohens_h(f(&c["p1"]), f(&c["p2"])).unwrap();
        close(h, f(&c["h"]), 1e-12, "h");
        let n = sample_size_per_arm(h, f(&c["alpha"]), f(&c["power"])).unwrap();
        close(n, f(&c["n_per_arm"]), 1e-4, "n per arm");
        close(
            power_two_sided(h, 1000.0, f(&c["alpha"])).unwrap(),
            f(&c["power_at_1000"]),
            1e-8,
            "power",
        );
        close(
            power_one_sided(h, 1000.0, f(&c["alpha"])).unwrap(),
            f(&c["power_one_sided_at_1000"]),
            1e-8,
            "power 1s",
        );
    }
}

#[test]
fn srm_matches_scipy_chisquare() {
    for c in vectors()["srm"].as_array().unwrap() {
        let obs: Vec<u64> = c["observed"].as_array().unwrap().iter().map(u).collect();
        let w: Vec<f64> = c["weights"].as_array().unwrap().iter().map(f).collect();
        let r = srm_check(&obs, &w, &SrmConfig::default()).unwrap();
        close(r.chi2, f(&c["chi2"]), 1e-9, "chi2");
        close(r.p_value, f(&c["p"]), 1e-6, "p");
        assert_eq!(r.mismatch, f(&c["p"]) < 0.001);
    }
}

#[test]
fn ks_matches_scipy_exact_and_kolmogorov_limit() {
    let v = vectors();
    for c in v["ks_exact"].as_array().unwrap() {
        let a: Vec<f64> = c["a"].as_array().unwrap().iter().map(f).collect();
        let b: Vec<f64> = c["b"].as_array().unwrap().iter().map(f).collect();
        let r = ks_2samp(&a, &b).unwrap();
        close(r.d, f(&c["d"]), 1e-12, "D");
        close(r.p_value, f(&c["p"]), 1e-6, "p");
    }
    for c in v["kolmogorov_sf"].as_array().unwrap() {
        close(kolmogorov_sf(f(&c["lambda"])), f(&c["sf"]), 1e-8, "Q_KS");
    }
}

#[test]
fn multiple_testing_matches_statsmodels() {
    for c in vectors()["multiple"].as_array().unwrap() {
        let p: Vec<f64> = c["p"].as_array().unwrap().iter().map(f).collect();
        for (got, want) in holm(&p).unwrap().iter().zip(c["holm"].as_array().unwrap()) {
            close(*got, f(want), 1e-12, "holm");
        }
        for (got, want) in benjamini_hochberg(&p)
            .unwrap()
            .iter()
            .zip(c["bh"].as_array().unwrap())
        {
            close(*got, f(want), 1e-12, "bh");
        }
    }
}

#[test]
fn normal_quantiles_match_scipy() {
    for c in vectors()["norm_ppf"].as_array().unwrap() {
        close(norm_ppf(f(&c["p"])), f(&c["z"]), 1e-9, "ppf");
    }
}

#[test]
fn exact_beta_probability_to_beat_matches_scipy_quadrature() {
    use probserve_experiment::stats::bayes::beta_probability_to_beat;
    for c in vectors()["beta_beat"].as_array().unwrap() {
        let a = Proportion::new(u(&c["xa"]), u(&c["na"]));
        let b = Proportion::new(u(&c["xb"]), u(&c["nb"]));
        let p = beta_probability_to_beat(a, b).unwrap();
        assert!((p - f(&c["p"])).abs() < 1e-9, "{c}: got {p}");
        // Symmetry: P(b > a) + P(a > b) = 1.
        assert!((p + beta_probability_to_beat(b, a).unwrap() - 1.0).abs() < 1e-9);
    }
}
