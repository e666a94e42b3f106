"""Metrics and statistics against known values (JSON cases in tests/cases/metrics/)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.scoring.metrics import (
    majority,
    mcnemar,
    paired_bootstrap,
    pass_at_k,
    percentiles,
    task_metrics,
    wilson,
)
from harness.stats import edge_guarded, mean_ci, t_quantile, wilson_at

CASES = Path(__file__).parent / "cases" / "metrics"


def _cases(name: str) -> list[dict]:
    return json.loads((CASES / name).read_text())["cases"]


# ---- Wilson ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _cases("wilson.json"), ids=lambda c: f"{c['successes']}/{c['n']}")
def test_wilson_known_values(case):
    lo, hi = wilson(case["successes"], case["n"])
    assert lo == pytest.approx(case["expected"][0], abs=1e-4)
    assert hi == pytest.approx(case["expected"][1], abs=1e-4)


def test_wilson_edges_are_exact_and_invalid_input_rejected():
    assert wilson(0, 7)[0] == 0.0 and wilson(7, 7)[1] == 1.0
    with pytest.raises(ValueError):
        wilson(5, 4)
    with pytest.raises(ValueError):
        wilson(-1, 4)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(max_examples=200, deadline=None)
def test_wilson_contains_the_estimate(sn):
    s, n = sn
    lo, hi = wilson(s, n)
    assert 0.0 <= lo <= s / n <= hi <= 1.0


# ---- pass@k ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _cases("pass_at_k.json"), ids=lambda c: f"n{c['n']}c{c['c']}k{c['k']}")
def test_pass_at_k_known_values(case):
    assert pass_at_k(case["n"], case["c"], case["k"]) == pytest.approx(case["expected"], abs=1e-12)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
@settings(max_examples=300, deadline=None)
def test_pass_at_k_matches_the_binomial_formula(nck):
    n, c, k = nck
    exact = 1.0 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-9)


def test_pass_at_k_is_stable_for_large_n():
    value = pass_at_k(100_000, 3, 1_000)
    assert 0.0 < value < 1.0 and math.isfinite(value)
    assert value == pytest.approx(1 - (1 - 1000 / 100_000) ** 3, rel=1e-3)


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_invalid(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# ---- majority -------------------------------------------------------------------------------
def test_majority_counts_ignores_none_and_breaks_ties_by_first_seen():
    assert majority(["3", "4", "4", None, None, None]) == "4"
    assert majority(["b", "a", "a", "b"]) == "b"
    assert majority([None, "x ", "y", "x"]) == "x"
    assert majority([None, None]) is None
    assert majority([]) is None


# ---- the accuracy interval (cluster-adjusted Wilson) -----------------------------------------
def test_cluster_wilson_clusters_by_problem():
    # 20 problems, each all-correct or all-wrong over 8 samples: 20 units of evidence, not 160.
    clustered = mean_ci([[i % 2 == 0] * 8 for i in range(20)])[1]
    single = mean_ci([[i % 2 == 0] for i in range(20)])[1]
    assert clustered == pytest.approx(single)
    assert clustered[1] - clustered[0] > 0.3


@pytest.mark.parametrize("per_problem", [[[1, 1], [1, 1, 1]], [[0] * 4] * 10, [[1] * 16] * 3, [[1]], [[0]]])
def test_all_same_problems_still_get_a_real_interval(per_problem):
    """The bootstrap collapsed to a point here; the design-effect interval falls back to n problems."""
    value, (lo, hi), info = mean_ci(per_problem)
    assert hi - lo > 0.05 and lo <= value <= hi and info["n_eff"] == len(per_problem)


def test_mean_ci_invalid():
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        mean_ci([[1], []])


# ---- paired tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", _cases("mcnemar.json"), ids=lambda c: f"{c['b01']}-{c['b10']}")
def test_mcnemar_known_values(case):
    # Build paired verdict vectors with the given discordant counts plus concordant pairs.
    a = [False] * case["b01"] + [True] * case["b10"] + [True] * 7 + [False] * 5
    b = [True] * case["b01"] + [False] * case["b10"] + [True] * 7 + [False] * 5
    r = mcnemar(a, b)
    assert (r["b01"], r["b10"], r["method"]) == (case["b01"], case["b10"], case["method"])
    assert r["p_value"] == pytest.approx(case["expected_p"], rel=1e-9)


def test_mcnemar_identical_runs_and_symmetry():
    v = [True, False, True, True, False]
    assert mcnemar(v, v)["p_value"] == 1.0
    a, b = [True] * 9 + [False], [False] * 9 + [True]
    assert mcnemar(a, b)["p_value"] == mcnemar(b, a)["p_value"]
    assert mcnemar(a, b, exact=False)["method"] == "chi2_continuity"
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_paired_bootstrap_identical_vectors():
    a = [0.1, 0.5, 0.9, 0.3]
    r = paired_bootstrap(a, a)
    assert r == {"diff": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0}


def test_paired_bootstrap_detects_a_real_difference():
    rng = np.random.default_rng(0)
    b = rng.random(200)
    a = b + 0.1 + rng.normal(0, 0.05, 200)
    r = paired_bootstrap(list(a), list(b), seed=1)
    assert r["diff"] == pytest.approx(float(np.mean(a - b)))
    assert r["ci95"][0] < r["diff"] < r["ci95"][1] and r["ci95"][0] > 0
    assert r["p_value"] == pytest.approx(1 / 2001)  # no resample that extreme: the +1 floor
    assert r == paired_bootstrap(list(a), list(b), seed=1)


def test_paired_bootstrap_no_difference_is_not_significant():
    rng = np.random.default_rng(2)
    a = rng.random(100)
    b = a + rng.normal(0, 0.2, 100) * np.where(rng.random(100) < 0.5, 1, -1)
    b = b - (b.mean() - a.mean())  # exactly zero mean difference
    assert paired_bootstrap(list(a), list(b))["p_value"] > 0.9


# ---- percentiles ----------------------------------------------------------------------------
def test_percentiles_known_values_and_none_handling():
    p = percentiles([None, *range(1, 101)])
    assert p["mean"] == 50.5 and p["p50"] == 50.5
    assert p["p90"] == pytest.approx(90.1) and p["p99"] == pytest.approx(99.01)
    assert percentiles([None, None]) == {"mean": None, "p50": None, "p90": None, "p99": None}
    assert percentiles([2.0]) == {"mean": 2.0, "p50": 2.0, "p90": 2.0, "p99": 2.0}


# ---- task_metrics ---------------------------------------------------------------------------
def _row(pid, sample, correct, extracted, *, lenient=None, finish="eos", out=10, think=4, meta=None):
    return {
        "id": pid, "sample": sample, "correct": correct,
        "correct_lenient": correct if lenient is None else lenient,
        "extracted": extracted, "target": "7", "finish_reason": finish,
        "output_tokens": out, "thinking_tokens": think, "meta": meta or {},
    }


def test_task_metrics_one_sample_uses_cluster_wilson():
    rows = [_row(f"p{i}", 0, i < 8, "7" if i < 8 else "1", lenient=i < 9, meta={"level": 1 + i % 2})
            for i in range(10)]
    rows[9]["finish_reason"] = "length"
    rows[9]["output_tokens"] = None
    out = task_metrics(rows, k=1)
    acc = out["metrics"]["accuracy"]
    assert acc["value"] == 0.8 and acc["method"] == "cluster_wilson" and acc["n"] == 10
    # one sample per problem: Wilson on n* = 10 (1.96 / t_9)^2, wider than plain Wilson [0.4902, 0.9433]
    n_star = 10 * (1.96 / t_quantile(9)) ** 2
    # Wilson at n*, widened near the edge (fewer than 4 effective failures: the exact Poisson bound)
    assert acc["ci95"] == pytest.approx(list(edge_guarded(0.8, n_star, wilson_at(0.8, n_star))))
    assert acc["ci95"][1] > wilson_at(0.8, n_star)[1]
    assert acc["ci95"][0] < 0.4902 and acc["ci95"][1] > 0.9433 and acc["n_eff"] == 10
    assert out["metrics"]["accuracy_lenient"]["value"] == 0.9
    assert "pass@1" not in out["metrics"] and "maj@1" not in out["metrics"]
    assert (out["n"], out["k"], out["truncation_rate"]) == (10, 1, 0.1)
    assert out["mean_output_tokens"] == 10 and out["mean_thinking_tokens"] == 4
    assert list(out["by_level"]) == ["1", "2"]
    assert out["by_level"]["1"]["n"] == 5 and out["by_level"]["1"]["accuracy"] == 0.8  # p0,2,4,6,8
    assert out["by_level"]["2"]["accuracy"] == 0.8  # p1,3,5,7 right, p9 wrong


def test_task_metrics_k_samples():
    rows = []
    # p0: 2/4 correct; majority "7" (right).  p1: 1/4 correct; majority "3" (wrong).
    # p2: 0/4 correct, nothing extracted.    p3: 4/4 correct.
    for s, (c, e) in enumerate([(True, "7"), (False, "2"), (True, "7"), (False, "5")]):
        rows.append(_row("p0", s, c, e, meta={"grade": "G3"}))
    for s, (c, e) in enumerate([(True, "7"), (False, "3"), (False, "3"), (False, None)]):
        rows.append(_row("p1", s, c, e, meta={"grade": "G3"}))
    for s in range(4):
        rows.append(_row("p2", s, False, None, finish="length", meta={"grade": "G10"}))
    for s in range(4):
        rows.append(_row("p3", s, True, "7", meta={"grade": "G10"}))
    out = task_metrics(list(reversed(rows)), k=4)  # order of rows must not matter
    m = out["metrics"]
    assert m["accuracy"]["value"] == pytest.approx((0.5 + 0.25 + 0 + 1) / 4)
    assert m["accuracy"]["method"] == "cluster_wilson" and m["accuracy"]["n"] == 4
    assert 4 <= m["accuracy"]["n_eff"] <= 16
    assert m["pass@4"]["value"] == pytest.approx(0.75) and m["pass@4"]["method"] == "cluster_wilson"
    assert m["maj@4"]["value"] == pytest.approx(0.5) and m["maj@4"]["method"] == "cluster_wilson"
    n_star = 4 * (1.96 / t_quantile(3)) ** 2
    assert m["maj@4"]["ci95"] == pytest.approx(list(edge_guarded(0.5, n_star, wilson_at(0.5, n_star))))
    for name in ("accuracy", "pass@4", "maj@4"):
        lo, hi = m[name]["ci95"]
        assert 0.0 <= lo <= m[name]["value"] <= hi <= 1.0
    assert out["truncation_rate"] == 0.25
    assert list(out["by_level"]) == ["G10", "G3"]
    assert out["by_level"]["G3"]["accuracy"] == pytest.approx(0.375)


def test_task_metrics_pass_at_k_uses_the_unbiased_estimator_and_skips_short_problems():
    rows = [_row("a", s, s < 2, "7") for s in range(8)]  # 2 of 8 correct
    rows += [_row("b", 0, True, "7")]  # only one sample: not enough for pass@4
    out = task_metrics(rows, k=4)
    assert out["metrics"]["pass@4"]["n"] == 1
    assert out["metrics"]["pass@4"]["value"] == pytest.approx(pass_at_k(8, 2, 4))
    assert out["n"] == 2 and out["by_level"] == {}


def test_task_metrics_rejects_empty():
    with pytest.raises(ValueError):
        task_metrics([], k=1)
