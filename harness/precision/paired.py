"""A variant's accuracy against the reference's on the same problems: the paired difference, McNemar's
test on the flips, and a non-inferiority verdict at a stated margin.

The difference and its 95% interval are harness.reports.compare.paired_test's (Newcombe's paired
score interval with one sample per problem, a paired bootstrap otherwise; McNemar's exact test below
25 flips). Non-inferiority at margin m (a fraction: 0.02 is 2 points) reads the same interval:
- "non-inferior" when its lower end is above -m (the variant loses less than m, at 95% two-sided,
  i.e. 97.5% one-sided, the usual convention for non-inferiority);
- "inferior" when its upper end is below -m;
- otherwise "inconclusive", with how many problems in all would settle it if the observed flips kept
  their rates (the 2x2 table scaled up until the interval's lower end clears -m), or a statement that
  no number will while the observed loss is at or beyond the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.results.runs import paired_test
from harness.stats import newcombe_paired_ci

MAX_PROBLEMS = 10_000_000


@dataclass(frozen=True)
class NonInferiority:
    margin: float
    verdict: str  # non-inferior | inferior | inconclusive
    text: str
    problems_needed: int | None  # problems in all (not more) that would settle it at the observed rates
    more_problems_needed: int | None


def non_inferiority(diff: float, ci: tuple[float, float], n: int, margin: float,
                    table: tuple[int, int, int, int] | None = None) -> NonInferiority:
    """Verdict for variant - reference = `diff` with 95% interval `ci` over n problems. `table`
    (both right, only reference right, only variant right, both wrong) lets the count of problems
    needed use Newcombe's interval itself; without it the interval's width is scaled by sqrt(n)."""
    lo, hi = ci
    pts = f"{100 * margin:g} points"
    if lo > -margin:
        return NonInferiority(margin, "non-inferior", f"non-inferior: loses less than {pts} (95%)", None, None)
    if hi < -margin:
        return NonInferiority(margin, "inferior", f"inferior: loses more than {pts} (95%)", None, None)
    if diff <= -margin:
        return NonInferiority(margin, "inconclusive", f"inconclusive: the observed loss ({100 * -diff:.1f} points) is at or beyond "
                              f"the {pts} margin, so more problems will not show non-inferiority unless it shrinks", None, None)
    needed = _needed_table(table, margin) if table else _needed_width(diff, lo, n, margin)
    if needed is None:
        return NonInferiority(margin, "inconclusive", f"inconclusive: no number of problems up to {MAX_PROBLEMS:,} settles it "
                              "at the observed rates", None, None)
    more = max(1, needed - n)
    return NonInferiority(margin, "inconclusive", f"inconclusive: {more:,} more problems needed (about {needed:,} in all, "
                          f"if the observed flips keep their rates) to show it loses less than {pts}", needed, more)


def _needed_width(diff: float, lo: float, n: int, margin: float) -> int | None:
    half = diff - lo
    if half <= 0 or diff + margin <= 0:
        return None
    return min(MAX_PROBLEMS, math.ceil(n * (half / (diff + margin)) ** 2))


def _needed_table(table: tuple[int, int, int, int], margin: float) -> int | None:
    """Smallest N at which the table scaled to N problems gives a Newcombe lower end above -margin."""
    n = sum(table)

    def clears(total: int) -> bool:
        cells = [round(c * total / n) for c in table]
        cells[0] += total - sum(cells)  # rounding leftovers to the concordant-right cell
        return newcombe_paired_ci(cells[0], cells[2], cells[1], cells[3])[0] > -margin  # (variant right) - (reference right)

    hi = max(n, 1)
    while not clears(hi):
        hi *= 2
        if hi > MAX_PROBLEMS:
            return None
    lo = max(n, 1)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if clears(mid) else (mid + 1, hi)
    return lo


def paired_against(variant_samples: list[dict], reference_samples: list[dict], task: str, margin: float) -> dict | None:
    """The paired comparison of one task: n, diff, ci95, McNemar (k = 1) and the non-inferiority verdict."""
    res = paired_test(variant_samples, reference_samples, task)
    if res is None:
        return None
    table = None
    if res["test"] == "mcnemar":
        # b01: variant (a) wrong, reference right; b10: variant right, reference wrong
        both_right = _count(variant_samples, reference_samples, task, True, True)
        both_wrong = res["n"] - both_right - res["b01"] - res["b10"]
        table = (both_right, res["b01"], res["b10"], both_wrong)
    ni = non_inferiority(res["diff"], tuple(res["ci95"]), res["n"], margin, table)
    return {**res, "table": table, "non_inferiority": ni}


def _count(a: list[dict], b: list[dict], task: str, va: bool, vb: bool) -> int:
    from harness.results.runs import problems_by_id

    pa, pb = problems_by_id(a, task), problems_by_id(b, task)
    return sum(1 for i in pa if i in pb and pa[i][0] == pb[i][0] and pa[i][1][0] is va and pb[i][1][0] is vb)


__all__ = ["NonInferiority", "non_inferiority", "paired_against"]
