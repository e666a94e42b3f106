"""Simulated coverage of the accuracy interval (harness.stats.mean_ci) at small n.

Each problem gets a true solve rate drawn from Beta(p*c, (1-p)*c) (c, the concentration: low c =
problems differ a lot, high c = problems alike), then k Bernoulli samples. The benchmark's true
accuracy is p (the mean of the Beta); coverage is the share of simulated runs whose 95% interval
contains p (for k = 1 it is computed exactly from the binomial). Zero-width intervals are counted
separately (there must be none).

    python benchmarks/interval_coverage.py [--reps 2000] [--seed 0]

prints a markdown table (the one in docs/intervals.md) and exits 1 when any cell is below the
target 0.93. tests/test_stats.py runs a small version of it.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.stats import INTERVAL_METHOD, mean_ci  # noqa: E402

TARGET = 0.93
NS = (10, 30, 100)
PS = (0.05, 0.3, 0.5, 0.9)
KS = (1, 4, 16)
CONCENTRATIONS = (1.0, 100.0)  # low (heterogeneous problems) and high (alike)


def exact_coverage_k1(n: int, p: float) -> tuple[float, int]:
    """With one sample per problem the number right is exactly Binomial(n, p) whatever the Beta, so
    coverage is a sum over the n + 1 outcomes, with no simulation noise."""
    cov = zero = 0
    for x in range(n + 1):
        _, (lo, hi), _ = mean_ci([[1]] * x + [[0]] * (n - x))
        pmf = math.comb(n, x) * p**x * (1 - p) ** (n - x)
        cov += pmf if lo <= p <= hi else 0.0
        zero += hi <= lo
    return cov, zero


def coverage(n: int, p: float, k: int, conc: float, reps: int, rng: np.random.Generator) -> tuple[float, int]:
    """(share of intervals that contain p, number of zero-width intervals); exact for k = 1."""
    if k == 1:
        return exact_coverage_k1(n, p)
    hits = zero = 0
    for _ in range(reps):
        rates = rng.beta(p * conc, (1 - p) * conc, size=n)
        draws = rng.random((n, k)) < rates[:, None]
        _, (lo, hi), _ = mean_ci(draws.tolist())
        hits += lo <= p <= hi
        zero += hi <= lo
    return hits / reps, zero


def table(reps: int, seed: int, ns=NS, ps=PS, ks=KS, concs=CONCENTRATIONS) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"n": n, "p": p, "k": k, "concentration": c, **dict(zip(("coverage", "zero_width"), coverage(n, p, k, c, reps, rng)))}
            for c in concs for n in ns for p in ps for k in ks]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = table(args.reps, args.seed)
    print(f"method {INTERVAL_METHOD}, {args.reps} simulated runs per cell, seed {args.seed}, target >= {TARGET}\n")
    for c in CONCENTRATIONS:
        print(f"Beta concentration {c:g}\n")
        print("| n | p | k=1 | k=4 | k=16 |\n|---|---|---|---|---|")
        for n in NS:
            for p in PS:
                cells = [r for r in rows if r["concentration"] == c and r["n"] == n and r["p"] == p]
                print(f"| {n} | {p} | " + " | ".join(f"{r['coverage']:.3f}" for r in cells) + " |")
        print()
    worst = min(rows, key=lambda r: r["coverage"])
    zero = sum(r["zero_width"] for r in rows)
    print(f"lowest coverage {worst['coverage']:.3f} at n={worst['n']} p={worst['p']} k={worst['k']} "
          f"concentration={worst['concentration']:g}; zero-width intervals: {zero}")
    return 0 if worst["coverage"] >= TARGET and zero == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
