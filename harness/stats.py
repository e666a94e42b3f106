"""Statistics with no knowledge of tasks: intervals, paired tests, percentiles.

Every function here is pure (same inputs, same outputs; bootstraps take an explicit seed) and
imports only numpy and the standard library. `harness.scoring.metrics` builds task metrics on top of these
and re-exports them, so callers import from one place.

Conventions: proportions are fractions in [0, 1]; an interval is a `(lo, hi)` tuple.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Below this many discordant pairs McNemar uses the exact binomial test: the chi-square
# approximation is poor for small counts (the usual rule of thumb, e.g. statsmodels' docs).
EXACT_MCNEMAR_BELOW = 25

# Bootstrap resamples are drawn in chunks so 2,000 x (many problems) never sits in memory at once.
_CHUNK_CELLS = 2_000_000


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% with the default z).

    With n == 0 there is no evidence, and the interval is the whole range (0, 1).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson needs 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, center - half)
    hi = 1.0 if successes == n else min(1.0, center + half)
    return (lo, hi)


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


def clustered_bootstrap(
    per_problem: Sequence[Sequence[bool | float]], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of per-problem means.

    Problems (not samples) are resampled, so the k correlated samples of one problem count as
    one unit of evidence. Each inner sequence holds one problem's sample scores.
    """
    if not per_problem:
        raise ValueError("clustered_bootstrap needs at least one problem")
    if any(len(samples) == 0 for samples in per_problem):
        raise ValueError("clustered_bootstrap: every problem needs at least one sample")
    means = np.array([float(np.mean(np.asarray(s, dtype=float))) for s in per_problem])
    boot = _resample_means(means, resamples, np.random.default_rng(seed))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return (float(lo), float(hi))


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


def percentiles(values: Sequence[float | None]) -> dict:
    """{"mean", "p50", "p90", "p99"} of the non-None values (linear interpolation).

    All None (or empty) gives each field None: a missing measurement is not a zero.
    """
    xs = np.array([float(v) for v in values if v is not None], dtype=float)
    if xs.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(xs, [50, 90, 99])
    return {"mean": float(xs.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}
