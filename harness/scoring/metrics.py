"""Task-level metrics from scored samples: accuracy, pass@k, maj@k, each with a 95% interval.

Input is the list of samples.jsonl rows of one task (see results/README.md); output is the
`tasks.<task>` block of run.json. Values are fractions in [0, 1]; published claims are quoted in
percent and are divided by 100 where they are compared (harness/claims), never here.

Intervals (results/README.md, "Intervals"):
- one sample per problem: Wilson score interval over problems;
- k > 1 samples per problem: the per-problem mean is the unit, and the interval is a percentile
  bootstrap over problems (2,000 resamples, seed 0), so correlated samples are not counted as
  independent evidence.

The statistics themselves live in `harness.stats` and are re-exported here. No torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from harness.stats import (
    clustered_bootstrap,
    mcnemar,
    paired_bootstrap,
    percentiles,
    wilson,
)

__all__ = [
    "clustered_bootstrap",
    "majority",
    "mcnemar",
    "paired_bootstrap",
    "pass_at_k",
    "percentiles",
    "task_metrics",
    "wilson",
]

WILSON = "wilson"
BOOTSTRAP = "clustered_bootstrap"
LEVEL_KEYS = ("level", "grade")  # meta fields that hold a difficulty level, first found wins


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


def _metric(value: float, ci: tuple[float, float], method: str, n: int) -> dict:
    return {"value": value, "ci95": [ci[0], ci[1]], "method": method, "n": n}


def _accuracy(per_problem: list[list[bool]]) -> dict:
    """Accuracy over problems: Wilson when every problem has one sample, else the bootstrap
    of per-problem means."""
    n = len(per_problem)
    if all(len(s) == 1 for s in per_problem):
        hits = sum(1 for s in per_problem if s[0])
        return _metric(hits / n, wilson(hits, n), WILSON, n)
    value = sum(sum(s) / len(s) for s in per_problem) / n
    return _metric(value, clustered_bootstrap(per_problem), BOOTSTRAP, n)


def _group(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """Rows by problem id in first-seen order, each problem's samples by sample index."""
    problems: dict[str, list[dict]] = {}
    for row in rows:
        problems.setdefault(str(row["id"]), []).append(row)
    for samples in problems.values():
        samples.sort(key=lambda r: r.get("sample", 0))
    return problems


def _maj_correct(samples: list[dict]) -> bool:
    """A problem is maj-correct when the majority extracted answer is one a correct sample gave."""
    answer = majority([s.get("extracted") for s in samples])
    if answer is None:
        return False
    return any(
        bool(s.get("correct")) for s in samples
        if s.get("extracted") is not None and s["extracted"].strip() == answer
    )


def _level(samples: list[dict]):
    meta = samples[0].get("meta") or {}
    for key in LEVEL_KEYS:
        if meta.get(key) is not None:
            return meta[key]
    return None


def _level_order(level) -> tuple:
    try:
        return (0, float(level), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(level))


def _mean_of(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def task_metrics(rows: Sequence[dict], k: int) -> dict:
    """The run.json block of one task from its samples.jsonl rows.

    pass@k and maj@k are reported when k > 1, over the problems that have at least k samples
    (their `n` says how many). pass@k per problem is the unbiased estimator over all its
    samples; maj@k takes the majority `extracted` answer of the first k samples.
    """
    if not rows:
        raise ValueError("task_metrics needs at least one sample row")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    problems = _group(rows)
    strict = [[bool(s.get("correct")) for s in p] for p in problems.values()]
    lenient = [[bool(s.get("correct_lenient")) for s in p] for p in problems.values()]
    metrics = {"accuracy": _accuracy(strict), "accuracy_lenient": _accuracy(lenient)}

    if k > 1:
        full = [p for p in problems.values() if len(p) >= k]
        if full:
            scores = [pass_at_k(len(p), sum(bool(s.get("correct")) for s in p), k) for p in full]
            metrics[f"pass@{k}"] = _metric(
                sum(scores) / len(scores), clustered_bootstrap([[x] for x in scores]), BOOTSTRAP, len(full)
            )
            hits = sum(_maj_correct(p[:k]) for p in full)
            metrics[f"maj@{k}"] = _metric(hits / len(full), wilson(hits, len(full)), WILSON, len(full))

    by_level: dict[str, dict] = {}
    levels: dict = {}
    for samples, verdicts in zip(problems.values(), strict):
        level = _level(samples)
        if level is not None:
            levels.setdefault(level, []).append(verdicts)
    for level in sorted(levels, key=_level_order):
        acc = _accuracy(levels[level])
        by_level[str(level)] = {"n": acc["n"], "accuracy": acc["value"], "ci95": acc["ci95"]}

    return {
        "n": len(problems),
        "k": k,
        "metrics": metrics,
        "truncation_rate": sum(r.get("finish_reason") == "length" for r in rows) / len(rows),
        "mean_output_tokens": _mean_of([r.get("output_tokens") for r in rows]),
        "mean_thinking_tokens": _mean_of([r.get("thinking_tokens") for r in rows]),
        "by_level": by_level,
    }
