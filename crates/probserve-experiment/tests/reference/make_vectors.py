#!/usr/bin/env python3
"""Generate the frozen reference vectors for probserve-experiment's statistics.

Run:  pip install scipy statsmodels numpy && python3 make_vectors.py > vectors.json
The Rust test `tests/reference_vectors.rs` reads vectors.json (checked in), so CI
needs neither Python nor scipy. Versions used are recorded in the output's `meta`.
"""
import json
import math

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint, proportions_ztest, proportion_effectsize

out = {"meta": {"scipy": scipy.__version__, "statsmodels": statsmodels.__version__, "numpy": np.__version__}}

# Two-proportion z-test (pooled), b vs a: statsmodels takes [b, a] so z = (p_b - p_a)/se.
z = []
for xa, na, xb, nb in [(200, 1000, 250, 1000), (100, 2000, 130, 2000), (14, 28, 16, 30), (5, 400, 1, 380), (4820, 50000, 5010, 50100)]:
    zz, p = proportions_ztest([xb, xa], [nb, na])
    pg = proportions_ztest([xb, xa], [nb, na], alternative="larger")[1]
    z.append({"xa": xa, "na": na, "xb": xb, "nb": nb, "z": float(zz), "p": float(p), "p_greater": float(pg)})
out["ztest"] = z

# Welch t-test from summary statistics (sample sd, n-1), b vs a.
w = []
for (sa, ssa, na), (sb, ssb, nb) in [
    ((1396.87, 52377.9767, 3407), (2422.7, 134698.29, 3461)),
    ((100.0, 1002.25, 10), (105.0, 1111.5, 10)),
    ((12.5, 40.0, 7), (30.0, 200.0, 9)),
    ((500.0, 26000.0, 100), (480.0, 24500.0, 95)),
]:
    ma, mb = sa / na, sb / nb
    va = (ssa - sa * sa / na) / (na - 1)
    vb = (ssb - sb * sb / nb) / (nb - 1)
    r = stats.ttest_ind_from_stats(mb, math.sqrt(vb), nb, ma, math.sqrt(va), na, equal_var=False)
    rg = stats.ttest_ind_from_stats(mb, math.sqrt(vb), nb, ma, math.sqrt(va), na, equal_var=False, alternative="greater")
    se = math.sqrt(va / na + vb / nb)
    df = (va / na + vb / nb) ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    q = stats.t.ppf(0.975, df)
    w.append({"a": [sa, ssa, na], "b": [sb, ssb, nb], "t": float(r.statistic), "p": float(r.pvalue),
              "p_greater": float(rg.pvalue), "df": float(df), "ci": [mb - ma - q * se, mb - ma + q * se]})
out["welch"] = w

# Wilson intervals.
out["wilson"] = [
    {"x": x, "n": n, "alpha": a, "ci": list(map(float, proportion_confint(x, n, alpha=a, method="wilson")))}
    for x, n, a in [(81, 263, 0.05), (15, 148, 0.05), (0, 20, 0.05), (1, 29, 0.05), (29, 29, 0.05), (37, 1000, 0.1), (850, 1000, 0.01)]
]

# Power and sample size (per arm), two-sided unless stated.
pw = []
for p1, p2, alpha, power in [(0.10, 0.12, 0.05, 0.8), (0.50, 0.55, 0.05, 0.8), (0.75, 0.50, 0.05, 0.8), (0.05, 0.06, 0.05, 0.9)]:
    h = abs(proportion_effectsize(p2, p1))
    n = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=1.0)
    pw.append({"p1": p1, "p2": p2, "alpha": alpha, "power": power, "h": float(h), "n_per_arm": float(n),
               "power_at_1000": float(NormalIndPower().power(h, 1000, alpha)),
               "power_one_sided_at_1000": float(NormalIndPower().power(h, 1000, alpha, alternative="larger"))})
out["power"] = pw

# SRM: Pearson chi-square against planned weights.
srm = []
for obs, weights in [([1000, 1000], [1, 1]), ([5000, 5200], [1, 1]), ([50000, 51000], [1, 1]), ([50000, 51500], [1, 1]),
                     ([9000, 1100], [0.9, 0.1]), ([3300, 3300, 3500], [1, 1, 1]), ([940, 60], [0.95, 0.05])]:
    tot = sum(obs)
    exp = [w_ / sum(weights) * tot for w_ in weights]
    r = stats.chisquare(obs, exp)
    srm.append({"observed": obs, "weights": weights, "chi2": float(r.statistic), "p": float(r.pvalue)})
out["srm"] = srm

# Two-sample KS: exact p-values on small seeded samples, and the Kolmogorov limit.
rng = np.random.default_rng(20261123)
ks = []
cases = [
    (list(range(1, 6)), list(range(6, 11))),
    ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10, 12]),
    (rng.normal(0, 1, 40).round(6).tolist(), rng.normal(0.5, 1, 35).round(6).tolist()),
    (rng.normal(0, 1, 200).round(6).tolist(), rng.normal(0.1, 1.2, 150).round(6).tolist()),
    (rng.exponential(1, 60).round(6).tolist(), rng.exponential(1, 60).round(6).tolist()),
]
for a, b in cases:
    r = stats.ks_2samp(a, b, method="exact")
    ks.append({"a": a, "b": b, "d": float(r.statistic), "p": float(r.pvalue)})
out["ks_exact"] = ks
out["kolmogorov_sf"] = [{"lambda": l, "sf": float(stats.kstwobign.sf(l))} for l in [0.3, 0.5, 0.8, 1.0, 1.36, 2.0, 3.0]]

# Multiple testing.
mt = []
for ps in [[0.01, 0.04, 0.03, 0.005, 0.55, 0.6], [0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138], [0.001, 0.002, 0.2, 0.04, 0.049]]:
    mt.append({"p": ps, "holm": multipletests(ps, method="holm")[1].tolist(),
               "bh": multipletests(ps, method="fdr_bh")[1].tolist()})
out["multiple"] = mt

# Exact Beta-Binomial probability to beat control, uniform priors, by quadrature.
from scipy import integrate
bb = []
for xa, na, xb, nb in [(49, 100, 51, 100), (3, 20, 8, 20), (120, 1000, 100, 1000), (0, 10, 2, 10), (480, 5000, 530, 5000)]:
    aa, ba, ab, bbeta = 1 + xa, 1 + na - xa, 1 + xb, 1 + nb - xb
    val, _ = integrate.quad(lambda x: stats.beta.pdf(x, aa, ba) * stats.beta.sf(x, ab, bbeta), 0, 1, epsabs=1e-13, epsrel=1e-12, limit=200)
    bb.append({"xa": xa, "na": na, "xb": xb, "nb": nb, "p": float(val)})
out["beta_beat"] = bb

# Normal quantiles used by the intervals.
out["norm_ppf"] = [{"p": p, "z": float(stats.norm.ppf(p))} for p in [0.5, 0.8, 0.9, 0.95, 0.975, 0.995, 0.9995, 1e-6]]

print(json.dumps(out, indent=1))
