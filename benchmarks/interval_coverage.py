"""Simulated coverage of the accuracy interval (harness.stats.mean_ci) at small n.

Each problem gets a true solve rate drawn from Beta(p*c, (1-p)*c) (c, the concentration: low c =
problems differ a lot, high c = problems alike), then k Bernoulli samples. The benchmark's true
accuracy is p (the mean of the Beta); coverage is the share of simulated runs whose 95% interval
contains p (for k = 1 it is computed exactly from the binomial). Zero-width intervals are counted
separately (there must be none).

    python benchmarks/interval_coverage.py [--reps 2000] [--seed 0]
    python benchmarks/interval_coverage.py --fine [--reps 400] [--json docs/cpu-2026-12-06-interval-coverage-fine.json]

prints a markdown table (the one in docs/intervals.md) and exits 1 when any cell is below the
target 0.93. `--fine` checks the fine grid instead: n = 5..100, and for each n the true accuracies
near the edges (0.1/n, 0.25/n, 0.5/n, 1/n, 2/n, 4/n and their mirrors 1 - p) beside 0.05..0.95 in
steps of 0.05; k = 1 exactly, k = 4 and 16 simulated; it prints the lowest coverage per (k, n) and
writes every cell to --json. tests/test_stats.py runs a small version of both.
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


FINE_NS = (5, 10, 15, 20, 30, 50, 75, 100)


def fine_ps(n: int) -> list[float]:
    """True accuracies for the fine grid at n problems: within a few 1/n of each edge, and a 0.05 grid."""
    edge = [m / n for m in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0) if m / n < 0.5]
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    return sorted({round(x, 6) for x in edge + [1 - x for x in edge] + grid})


def fine(reps: int, seed: int, ns=FINE_NS, ks=KS, concs=CONCENTRATIONS) -> list[dict]:
    """Every cell of the fine grid (see the module docstring); k = 1 is exact and independent of c."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in ns:
        for p in fine_ps(n):
            for k in ks:
                for c in concs[:1] if k == 1 else concs:
                    cov, zero = coverage(n, p, k, c, reps, rng)
                    rows.append({"n": n, "p": p, "k": k, "concentration": c, "coverage": cov, "zero_width": zero})
    return rows


def scan_k1(ns=range(5, 101), points: int = 4001) -> dict:
    """The lowest exact k = 1 coverage over every n in `ns` and `points` true accuracies in (0, 1)."""
    ps = np.linspace(1e-5, 1 - 1e-5, points)
    worst = {"coverage": 2.0}
    for n in ns:
        cov = np.zeros_like(ps)
        for x in range(n + 1):
            _, (lo, hi), _ = mean_ci([[1]] * x + [[0]] * (n - x))
            logpmf = math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1) + x * np.log(ps) + (n - x) * np.log1p(-ps)
            cov += np.exp(logpmf) * ((lo <= ps) & (ps <= hi))
        i = int(cov.argmin())
        if cov[i] < worst["coverage"]:
            worst = {"coverage": float(cov[i]), "n": n, "p": float(ps[i])}
    return {**worst, "ns": f"{min(ns)}..{max(ns)}", "points": points}


def main_fine(args) -> int:
    import json
    import time

    t0 = time.perf_counter()
    rows = fine(args.reps, args.seed)
    scan = scan_k1()
    print(f"method {INTERVAL_METHOD}, fine grid, {args.reps} simulated runs per k > 1 cell (k = 1 exact), seed {args.seed}, "
          f"target >= {TARGET}\n")
    print("| k | " + " | ".join(f"n={n}" for n in FINE_NS) + " |\n|---|" + "---|" * len(FINE_NS))
    for k in KS:
        cells = []
        for n in FINE_NS:
            worst = min((r for r in rows if r["k"] == k and r["n"] == n), key=lambda r: r["coverage"])
            cells.append(f"{worst['coverage']:.3f} (p={worst['p']:.4g})")
        print(f"| {k} | " + " | ".join(cells) + " |")
    worst = min(rows, key=lambda r: r["coverage"])
    zero = sum(r["zero_width"] for r in rows)
    print(f"\nlowest coverage {worst['coverage']:.3f} at n={worst['n']} p={worst['p']:.4g} k={worst['k']} "
          f"concentration={worst['concentration']:g}; {len(rows)} cells; zero-width intervals: {zero}; {time.perf_counter() - t0:.0f} s")
    print(f"k = 1, every n {scan['ns']} x {scan['points']} true accuracies: lowest exact coverage {scan['coverage']:.4f} "
          f"at n={scan['n']} p={scan['p']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"method": INTERVAL_METHOD, "reps": args.reps, "seed": args.seed, "target": TARGET,
                                               "k1_scan": scan, "cells": rows}, indent=0) + "\n")
    return 0 if min(worst["coverage"], scan["coverage"]) >= TARGET and zero == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fine", action="store_true", help="the fine grid near the edges (n = 5..100)")
    ap.add_argument("--json", help="with --fine: write every cell here")
    args = ap.parse_args()
    if args.fine:
        return main_fine(args)
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
