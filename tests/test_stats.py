"""harness/stats.py against scipy where scipy has the same statistic, and the coverage of the
accuracy interval at small n (a fast version of benchmarks/interval_coverage.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from harness.stats import (
    cluster_wilson,
    holm,
    mcnemar,
    mean_ci,
    paired_bootstrap,
    paired_diff_ci,
    problems_needed,
    t_quantile,
    wilson,
    wilson_at,
)

scipy_stats = pytest.importorskip("scipy.stats")
ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("interval_coverage", ROOT / "benchmarks" / "interval_coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("x,n", [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (17, 40), (250, 500), (1, 1000)])
def test_wilson_matches_scipy_binomtest(x, n):
    ci = scipy_stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(x, n) == pytest.approx((ci.low, ci.high), abs=2e-4)  # z = 1.96 vs scipy's exact 1.95996...


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 29, 99, 500, 1999, 5000])
def test_t_quantile_matches_scipy(df):
    assert t_quantile(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-3 if df > 2000 else 1e-6)
    assert t_quantile(df, 0.9) == pytest.approx(scipy_stats.t.ppf(0.9, df), abs=2e-3 if df > 2000 else 1e-6)


@pytest.mark.parametrize("b01,b10", [(0, 3), (2, 9), (5, 5), (1, 20), (15, 30), (40, 20), (100, 130)])
def test_mcnemar_matches_scipy(b01, b10):
    a = [False] * b01 + [True] * b10 + [True] * 7 + [False] * 4
    b = [True] * b01 + [False] * b10 + [True] * 7 + [False] * 4
    exact = mcnemar(a, b, exact=True)
    assert exact["p_value"] == pytest.approx(scipy_stats.binomtest(min(b01, b10), b01 + b10, 0.5).pvalue, rel=1e-9)
    chi = mcnemar(a, b, exact=False)
    stat = max(0, abs(b01 - b10) - 1) ** 2 / (b01 + b10)
    assert chi["p_value"] == pytest.approx(scipy_stats.chi2.sf(stat, 1), rel=1e-9)


def test_paired_bootstrap_matches_scipy_bootstrap():
    rng = np.random.default_rng(5)
    a, b = rng.random(80), rng.random(80) * 0.8
    ours = paired_bootstrap(list(a), list(b), resamples=4000, seed=1)
    ref = scipy_stats.bootstrap((a, b), lambda x, y: np.mean(x - y), paired=True, vectorized=False, n_resamples=4000,
                                method="percentile", random_state=np.random.default_rng(2)).confidence_interval
    assert ours["diff"] == pytest.approx(float(np.mean(a - b)))
    assert ours["ci95"] == pytest.approx([ref.low, ref.high], abs=0.015)  # two bootstraps, different draws


def test_one_sample_cluster_wilson_is_wilson_with_the_t_correction_and_tends_to_wilson():
    values = [1.0] * 30 + [0.0] * 70
    out = cluster_wilson(values)
    assert out["n_eff"] == 100 and out["df"] == 99
    assert out["ci95"] == pytest.approx(wilson_at(0.3, 100 * (1.96 / scipy_stats.t.ppf(0.975, 99)) ** 2), abs=1e-6)
    big = cluster_wilson([1.0] * 3000 + [0.0] * 7000)["ci95"]
    assert big == pytest.approx(wilson(3000, 10000), abs=2e-4)


def test_design_effect_counts_alike_samples_once_and_independent_ones_fully():
    # every problem's 8 samples agree: 40 problems are 40 units, n_eff = 40
    alike = mean_ci([[i % 2 == 0] * 8 for i in range(40)])[2]
    assert alike["n_eff"] == pytest.approx(40) and alike["design_effect"] == pytest.approx(8)
    # samples that vary within problems but not between them: close to all 320 samples
    rng = np.random.default_rng(0)
    spread = mean_ci([list(rng.random(8) < 0.5) for _ in range(40)])[2]
    assert spread["n_eff"] > 150


def test_no_interval_is_zero_width_anywhere_in_task_metrics():
    from harness.scoring.metrics import task_metrics

    for verdicts in ([True] * 4, [False] * 4, [True, False] * 2):
        rows = [{"id": f"p{i}", "sample": s, "correct": v, "correct_lenient": v, "extracted": "1" if v else "2",
                 "finish_reason": "stop", "output_tokens": 5, "meta": {"level": 1 + i % 2}}
                for i in range(3) for s, v in enumerate(verdicts)]
        out = task_metrics(rows, k=4)
        for name, m in out["metrics"].items():
            assert m["ci95"][1] - m["ci95"][0] > 0.05, (verdicts, name)
        for level, m in out["by_level"].items():
            assert m["ci95"][1] - m["ci95"][0] > 0.05, (verdicts, level)


def test_paired_difference_interval_is_never_a_point():
    # every problem has the same difference: the bootstrap has no spread
    ci, how = paired_diff_ci([[1, 1, 1, 1]] * 6, [[0, 0, 0, 0]] * 6)
    assert ci[1] - ci[0] > 0.1 and "Newcombe" in how
    ci, how = paired_diff_ci([[1, 0]] * 6, [[0, 0]] * 6)
    assert ci[0] < 0.5 < ci[1] and "MOVER" in how
    ci, how = paired_diff_ci([[1]] * 6, [[1]] * 6)
    assert ci[0] < 0 < ci[1] and how == "Newcombe paired score"


def test_problems_needed_is_one_function_for_both_uses():
    assert problems_needed(width=0.10, p=0.839) == 208
    assert problems_needed(width=0.10, n=30, ci=(0.35, 0.65)) == 270
    assert problems_needed(width=0.10, n=30, ci=(0.5, 0.5)) is None
    assert problems_needed(width=0, p=0.5) is None


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_exact_coverage_with_one_sample_per_problem():
    bench = _benchmark()
    for n in bench.NS:
        for p in bench.PS:
            cov, zero = bench.exact_coverage_k1(n, p)
            assert cov >= bench.TARGET and zero == 0, (n, p, cov)


def test_simulated_coverage_in_the_hardest_cells():
    """Few problems, many samples each, very different problems: where the bootstrap got 0.5-0.8.
    400 runs per cell: the bar is the 0.93 target less two Monte Carlo standard errors."""
    bench = _benchmark()
    rng = np.random.default_rng(11)
    bar = bench.TARGET - 2 * math.sqrt(0.93 * 0.07 / 400)
    for n, p, k, conc in [(10, 0.05, 16, 1.0), (10, 0.9, 16, 1.0), (10, 0.05, 4, 1.0), (30, 0.05, 16, 1.0), (10, 0.5, 4, 100.0)]:
        cov, zero = bench.coverage(n, p, k, conc, 400, rng)
        assert zero == 0 and cov >= bar, (n, p, k, conc, cov)
