"""Every statistic the harness reports: intervals, paired tests, estimators, percentiles.

Every function here is pure (same inputs, same outputs; bootstraps take an explicit seed) and
imports only numpy, the standard library and harness.core.poisson. Task-aware code (harness.scoring.metrics,
harness.claims, harness.reports.compare) builds on these and computes no statistic itself.
tests/test_stats.py checks them against scipy where scipy has the same test.

Conventions: proportions are fractions in [0, 1]; an interval is a `(lo, hi)` tuple.

Intervals of a mean accuracy (results/README.md, "Intervals"; docs/intervals.md for coverage):
`cluster_wilson` is a Wilson score interval on the design-effect effective sample size with a
degrees-of-freedom correction (Korn & Graubard 1998; recommended for clustered binary data at
small n by Dean & Pagano 2015). With one sample per problem it is Wilson with the t-correction;
with k > 1 samples per problem the problems are the clusters. It is never zero-width.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from harness.core.poisson import poisson_lower

# Below this many discordant pairs McNemar uses the exact binomial test: the chi-square
# approximation is poor for small counts (the usual rule of thumb, e.g. statsmodels' docs).
EXACT_MCNEMAR_BELOW = 25

# Bootstrap resamples are drawn in chunks so 2,000 x (many problems) never sits in memory at once.
_CHUNK_CELLS = 2_000_000

Z95 = 1.96
Z_POWER80 = 0.8416  # one-sided normal quantile for 80% power

INTERVAL_METHOD = "cluster_wilson"
INTERVAL_REFERENCE = (
    "Wilson score interval on the design-effect effective sample size with a t(n-1) degrees-of-freedom "
    "correction and two pseudo-problems (0 and 1) in the between-problem variance: Korn & Graubard (1998), "
    "Survey Methodology 24:193-201; Dean & Pagano (2015), J. Survey Statistics and Methodology 3:484-503; "
    "Agresti & Coull (1998), The American Statistician 52:119-126"
)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% with the default z).

    With n == 0 there is no evidence, and the interval is the whole range (0, 1).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson needs 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    return wilson_at(successes / n, n, z)


def wilson_at(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval around proportion p with a (possibly fractional, effective) size n > 0."""
    if not 0.0 <= p <= 1.0 or n <= 0:
        raise ValueError(f"wilson_at needs 0 <= p <= 1 and n > 0, got p={p}, n={n}")
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if p == 0.0 else max(0.0, center - half)
    hi = 1.0 if p == 1.0 else min(1.0, center + half)
    return (lo, hi)


def _t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df (closed-form series, Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 1:
        term, total = 1.0, 0.0
        if df > 1:
            total = 1.0
            for j in range(1, (df - 3) // 2 + 1):
                term *= c2 * (2 * j) / (2 * j + 1)
                total += term
            return min(1.0, 2 / math.pi * (theta + s * math.cos(theta) * total))
        return 2 * theta / math.pi
    term, total = 1.0, 1.0
    for j in range(1, (df - 2) // 2 + 1):
        term *= c2 * (2 * j - 1) / (2 * j)
        total += term
    return min(1.0, s * total)


@functools.lru_cache(maxsize=4096)
def t_quantile(df: int, q: float = 0.975) -> float:
    """Quantile q (> 0.5) of Student's t with integer df >= 1, by bisection on the exact CDF.

    Above 2,000 degrees of freedom the normal quantile is used (they agree to 1e-3)."""
    if df < 1 or not 0.5 < q < 1:
        raise ValueError(f"t_quantile needs df >= 1 and 0.5 < q < 1, got df={df}, q={q}")
    mass = 2 * q - 1
    if df > 2000:
        return _normal_quantile(q)
    lo, hi = 0.0, 1.0
    while _t_two_sided_mass(hi, df) < mass:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_two_sided_mass(mid, df) < mass else (lo, mid)
    return (lo + hi) / 2


def _normal_quantile(q: float) -> float:
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * math.erfc(-mid / math.sqrt(2)) < q else (lo, mid)
    return (lo + hi) / 2


def effective_size(values: Sequence[float], samples: Sequence[int]) -> tuple[float, float]:
    """(n_eff, design effect) of a mean of per-problem scores `values` (each in [0, 1]) drawn from
    `samples[i]` samples each.

    n_eff = p(1-p) / var(mean), var(mean) = the between-problem variance / n, kept within
    [n problems, total samples]: a problem is worth at least one sample and at most its k. The
    between-problem variance is taken with two pseudo-problems added, one scoring 0 and one
    scoring 1 (an Agresti-Coull-style adjustment at the problem level): a handful of problems
    that happen to look alike cannot claim a tiny design effect, and an all-0 or all-1 run falls
    back to n_eff = n problems. Its weight fades as 2 / (n + 2). docs/intervals.md shows the
    coverage this buys.
    """
    n = len(values)
    total = float(sum(samples))
    p = float(np.mean(values))
    var = float(np.var(np.asarray([*values, 0.0, 1.0], dtype=float)))  # ddof 0: k = 1 gives n_eff = n
    n_eff = min(total, max(float(n), p * (1 - p) * n / var))
    return n_eff, total / n_eff


def cluster_wilson(values: Sequence[float], samples: Sequence[int] | None = None) -> dict:
    """95% interval of the mean of per-problem scores, never zero-width (see the module docstring).

    `values[i]` is problem i's score in [0, 1] (its mean correctness over its samples, or its
    pass@k estimate); `samples[i]` how many samples it rests on (default 1 each). Returns
    {"ci95": (lo, hi), "n_eff", "design_effect", "df"}: the Wilson interval at the estimate with
    n* = n_eff (z / t_{df})^2, df = problems - 1 (at least 1).
    """
    if not values:
        raise ValueError("cluster_wilson needs at least one problem")
    samples = [1] * len(values) if samples is None else list(samples)
    if len(samples) != len(values) or any(k < 1 for k in samples):
        raise ValueError("cluster_wilson needs one sample count >= 1 per problem")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError("cluster_wilson needs scores in [0, 1]")
    n_eff, deff = effective_size(values, samples)
    df = max(1, len(values) - 1)
    n_star = n_eff * (Z95 / t_quantile(df, 0.975)) ** 2
    p = float(np.mean(values))
    return {"ci95": edge_guarded(p, n_star, wilson_at(p, n_star)), "n_eff": n_eff, "design_effect": deff, "df": df}


# With fewer than this many (effective) successes, or failures, the Wilson bound on that side is
# replaced by the exact Poisson one where that is wider: Wilson's lower bound at x = 1 or 2 lies
# above true accuracies within about 0.5/n of 0 (coverage 0.865 at n = 10, p = 0.0144). Brown, Cai
# & DasGupta (2001) correct x = 1, 2 (n <= 50) and 1..3 (n <= 100) the same way; docs/intervals.md
# has the measured coverage.
EDGE_COUNTS = 4.0


def edge_guarded(p: float, n: float, ci: tuple[float, float]) -> tuple[float, float]:
    """`ci` widened near 0 and 1: with fewer than EDGE_COUNTS (effective) successes the lower bound is
    at most the exact Poisson bound poisson_lower(p n) / n, and mirrored for failures."""
    lo, hi = ci
    x, y = p * n, (1 - p) * n
    if 0 < x < EDGE_COUNTS:
        lo = min(lo, poisson_lower(x) / n)
    if 0 < y < EDGE_COUNTS:
        hi = max(hi, 1 - poisson_lower(y) / n)
    return (max(0.0, lo), min(1.0, hi))


def finite_population_interval(p: float, ci: tuple[float, float], *, n: int, population: int) -> tuple[float, float]:
    """The part of an interval on n problems drawn uniformly without replacement from `population`
    that is about the population's own score: each half-width times sqrt((N - n) / (N - 1)).

    This is the interval for what a run of the whole set would have measured with this model and
    these settings (zero width when n = N). A verdict on a published claim keeps the plain interval on
    n problems: it adds the full set's own sampling error, sigma^2 / N, to the sample's sigma^2 (1/n - 1/N),
    and the sum is sigma^2 / n again (docs/intervals.md, "Samples")."""
    if not 1 <= n <= population:
        raise ValueError(f"finite_population_interval needs 1 <= n <= population, got n={n}, population={population}")
    if n == population:
        return (p, p)
    f = math.sqrt((population - n) / (population - 1))
    lo, hi = ci
    return (max(0.0, p - (p - lo) * f), min(1.0, p + (hi - p) * f))


def mean_ci(per_problem: Sequence[Sequence[bool | float]]) -> tuple[float, tuple[float, float], dict]:
    """(mean of per-problem means, 95% interval, details) for per-problem sample scores."""
    if not per_problem or any(len(s) == 0 for s in per_problem):
        raise ValueError("mean_ci needs at least one problem, each with at least one sample")
    values = [float(np.mean(np.asarray(s, dtype=float))) for s in per_problem]
    out = cluster_wilson(values, [len(s) for s in per_problem])
    return float(np.mean(values)), out["ci95"], out


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, "Evaluating Large
    Language Models Trained on Code", eq. 1): 1 - C(n-c, k) / C(n, k).

    Computed as a running product, not with binomials, so large n neither overflows nor loses
    precision.
    """
    if not (0 <= c <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got n={n}, c={c}")
    if not (1 <= k <= n):
        raise ValueError(f"pass_at_k needs 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def majority(answers: Sequence[str | None]) -> str | None:
    """The most frequent answer, None ignored; ties go to the answer seen first.

    Answers are compared as exact strings (after stripping surrounding whitespace): making
    equivalent answers textually equal is the extractor's job, upstream.
    """
    seen = [a.strip() for a in answers if a is not None]
    if not seen:
        return None
    counts = Counter(seen)
    best = max(counts.values())
    return next(a for a in seen if counts[a] == best)


def problems_needed(*, width: float, p: float | None = None, n: int | None = None,
                    ci: Sequence[float] | None = None) -> int | None:
    """Problems for a 95% interval of total `width`.

    From a proportion p (one sample per problem, normal approximation to Wilson):
    (2*1.96)^2 p(1-p) / w^2, with p(1-p) at least 0.01*0.99 so a claim of 0% or 100% still needs a
    few problems. From an observed interval over n problems: n (observed width / w)^2, since the
    width shrinks like 1/sqrt(problems) and that scaling keeps any clustering already in it.
    """
    if width <= 0:
        return None
    if p is not None:
        var = max(p * (1 - p), 0.01 * 0.99)
        return math.ceil(round((2 * Z95) ** 2 * var / width**2, 6))
    if n is None or ci is None or ci[1] - ci[0] <= 0:
        return None
    return math.ceil(round(n * ((ci[1] - ci[0]) / width) ** 2, 6))  # round: 0.65 - 0.35 is 0.30000000000000004


def newcombe_paired_ci(n11: int, n10: int, n01: int, n00: int, z: float = Z95) -> tuple[float, float]:
    """Interval for p(a right) - p(b right) from paired verdicts (Newcombe 1998, Stat Med 17:2635, method 10).

    n10: problems a got right and b wrong; n01 the reverse. Wilson intervals of the two
    marginals combined, with the correlation phi of the pairs (continuity-corrected numerator).
    """
    n = n11 + n10 + n01 + n00
    if n == 0:
        return (-1.0, 1.0)
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = wilson(n11 + n10, n, z)
    l2, u2 = wilson(n11 + n01, n, z)
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)
    num: float = n11 * n00 - n10 * n01
    num = num - n / 2 if num > n / 2 else (0 if num >= 0 else num)
    phi = num / math.sqrt(margins) if margins else 0.0
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = d + math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    return (max(-1.0, lo), min(1.0, hi))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _resample_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `resamples` bootstrap resamples (with replacement) of `values`."""
    n = len(values)
    out = np.empty(resamples, dtype=float)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def mcnemar(a: Sequence[bool], b: Sequence[bool], *, exact: bool | None = None) -> dict:
    """McNemar's test for two runs scored on the same problems (paired verdicts).

    b01: problems `a` got wrong and `b` got right; b10: right in `a`, wrong in `b`.
    exact=None picks the exact two-sided binomial test when b01 + b10 < 25 and the chi-square
    test with continuity correction otherwise. With no discordant pairs p = 1.
    """
    if len(a) != len(b):
        raise ValueError(f"mcnemar needs paired verdicts of equal length, got {len(a)} and {len(b)}")
    b01 = sum(1 for x, y in zip(a, b) if not x and y)
    b10 = sum(1 for x, y in zip(a, b) if x and not y)
    n = b01 + b10
    use_exact = (n < EXACT_MCNEMAR_BELOW) if exact is None else exact
    if n == 0:
        p = 1.0
    elif use_exact:
        tail = sum(math.comb(n, i) for i in range(min(b01, b10) + 1))
        p = min(1.0, 2.0 * tail / 2**n)
    else:
        # max(0, .) keeps b01 == b10 at chi2 = 0 (p = 1) instead of a spurious 1/n.
        chi2 = max(0, abs(b01 - b10) - 1) ** 2 / n
        p = math.erfc(math.sqrt(chi2 / 2.0))  # survival function of chi-square with 1 df
    return {
        "b01": b01,
        "b10": b10,
        "p_value": p,
        "method": "exact_binomial" if use_exact else "chi2_continuity",
    }


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0
) -> dict:
    """Paired bootstrap of the mean difference `mean(a - b)` over shared problems.

    ci95 is the percentile interval of the resampled mean difference. p_value is two-sided,
    from the null-centred bootstrap distribution, with the +1 correction so it is never 0:
    p = (1 + #{|d* - d| >= |d|}) / (1 + resamples). Identical inputs give diff 0 and p = 1.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap needs equal lengths, got {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired_bootstrap needs at least one pair")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    diff = float(d.mean())
    boot = _resample_means(d, resamples, np.random.default_rng(seed))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    # Tolerance: resampled means of identical values can differ from d.mean() in the last bit.
    extreme = int(np.sum(np.abs(boot - diff) >= abs(diff) - 1e-12))
    p = (1 + extreme) / (1 + resamples)
    return {"diff": diff, "ci95": [float(lo), float(hi)], "p_value": min(1.0, p)}


def paired_diff_ci(a: Sequence[Sequence[bool | float]], b: Sequence[Sequence[bool | float]], *, seed: int = 0) -> tuple[tuple[float, float], str]:
    """95% interval of mean(a) - mean(b) over paired problems (each a list of sample scores); never zero-width.

    One sample per problem on both sides: Newcombe's paired score interval. Otherwise the paired
    bootstrap of per-problem mean differences; when every problem has the same difference the
    bootstrap has no spread, and the interval is Newcombe's on the problems' verdicts when each
    problem's samples agree, else Newcombe's MOVER combination of the two cluster-Wilson
    intervals with the correlation taken as 0 (conservative).
    """
    if len(a) != len(b) or not a:
        raise ValueError("paired_diff_ci needs the same problems (at least one) on both sides")
    if all(len(x) == 1 for x in a) and all(len(y) == 1 for y in b):
        x, y = [bool(v[0]) for v in a], [bool(v[0]) for v in b]
        cells = [sum(1 for p, q in zip(x, y) if (p, q) == c) for c in ((True, True), (True, False), (False, True), (False, False))]
        return newcombe_paired_ci(*cells), "Newcombe paired score"
    ma, mb = [float(np.mean(v)) for v in a], [float(np.mean(v)) for v in b]
    boot = paired_bootstrap(ma, mb, seed=seed)
    lo, hi = boot["ci95"]
    if hi - lo > 1e-12:
        return (lo, hi), "paired bootstrap"
    if all(m in (0.0, 1.0) for m in ma + mb):  # each problem's samples agree: one binary verdict per problem
        ci, _ = paired_diff_ci([[m] for m in ma], [[m] for m in mb])
        return ci, "Newcombe paired score (every problem's samples agree)"
    pa, (l1, u1), _ = mean_ci(a)
    pb, (l2, u2), _ = mean_ci(b)
    d = pa - pb
    return ((max(-1.0, d - math.hypot(pa - l1, u2 - pb)), min(1.0, d + math.hypot(u1 - pa, pb - l2))),
            "MOVER of cluster-Wilson intervals, correlation 0 (the bootstrap had no spread)")


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0..100) of non-empty `values`, linear interpolation (numpy's default, as vLLM uses)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


def percentiles(values: Sequence[float | None]) -> dict:
    """{"mean", "p50", "p90", "p99"} of the non-None values (linear interpolation).

    All None (or empty) gives each field None: a missing measurement is not a zero.
    """
    xs = np.array([float(v) for v in values if v is not None], dtype=float)
    if xs.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    return {"mean": float(xs.mean()), **{f"p{q}": percentile(xs, q) for q in (50, 90, 99)}}
