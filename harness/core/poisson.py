"""Exact Poisson confidence limits from the regularised incomplete gamma function (standard library
only): harness/stats.py widens an interval near 0 and 1 with them."""

from __future__ import annotations

import math


def _gamma_p(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x) (Numerical Recipes 6.2: series below a + 1, continued fraction above)."""
    if x <= 0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(log_front))
    tiny = 1e-300
    b, c, d = x + 1 - a, 1 / tiny, 1 / (x + 1 - a)
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return max(0.0, 1.0 - h * math.exp(log_front))


def poisson_lower(x: float, q: float = 0.025) -> float:
    """Exact lower confidence limit of a Poisson mean after x > 0 events (x may be fractional, an
    effective count): the lambda with P(X >= x; lambda) = P(x, lambda) = q."""
    if x <= 0:
        return 0.0
    lo, hi = 0.0, x + 20 * math.sqrt(x) + 20
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _gamma_p(x, mid) > q else (mid, hi)
    return (lo + hi) / 2
