"""Verdicts on published claims: does our measurement, with its 95% interval, agree with a card's number?

Rules, applied in this order (claims and measurements are fractions in [0, 1]):
1. The claim lies outside the interval -> "below" (we measured less than claimed: claim > hi) or
   "above" (claim < lo). This holds however wide the interval is: if even a wide interval
   excludes the claim, the data disagree with it.
2. The claim lies inside the interval (edges inclusive) and the interval is wider than `max_width`
   -> "inconclusive": the data cannot tell the claim from values far from it. The note says roughly
   how many problems would narrow the interval under `max_width`.
3. Otherwise -> "consistent".

How many problems: with one sample per problem, the normal approximation to the Wilson interval
gives n ≈ (2·1.96)² p(1−p) / w², with p the claimed value and w the target width. With k > 1
samples per problem the interval is clustered by problem (harness.stats.cluster_wilson), and extra
samples shrink only the within-problem part of the variance, never the spread between problems;
so the estimate scales the observed width instead (width ∝ 1/√problems), which already contains
that clustering. Both are harness.stats.problems_needed.

Before any of this, harness/claims/comparability.py decides whether the run can support a
verdict on the claim at all; when it cannot, the verdict is "not_comparable" with its reasons
and the measured value and interval are kept, labelled indicative. With `mode="indicative"` the
statistical verdict is computed anyway and stored beside it as `indicative_verdict`, never as
the verdict.

`claims_for_run` turns a card's claims into run.json `claims` entries for the tasks a run measured.
"""

from __future__ import annotations

from typing import Any

from harness.cards.schema import Card
from harness.cards.settings import stated_settings
from harness.claims.comparability import run_reasons, sentence
from harness.stats import finite_population_interval, problems_needed

VERDICT_MODES = ("strict", "indicative")
_EDGE = 1e-9  # float slack so a claim printed on an interval edge counts as on it

# Published metric name -> our metric name in run.json tasks.<task>.metrics.
_FIXED = {"pass@1": "accuracy", "accuracy": "accuracy", "exact_match": "accuracy"}


def our_metric(published: str) -> str | None:
    """Map a card's metric to the run's metric name, or None when we compute nothing like it."""
    if published in _FIXED:
        return _FIXED[published]
    kind, _, k = published.partition("@")
    if k.isdigit():
        if kind in ("cons", "maj"):
            return f"maj@{k}"
        if kind == "pass":
            return f"pass@{k}"
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def verdict(claimed: float, measured: float, ci95: tuple[float, float] | list[float], *, n: int, k: int, max_width: float = 0.10) -> dict[str, Any]:
    """Compare one claim with one measurement. See the module docstring for the rules.

    Returns {"verdict": "consistent"|"below"|"above"|"inconclusive", "gap": measured - claimed, "note": str}.
    """
    lo, hi = float(ci95[0]), float(ci95[1])
    for name, value in (("claimed", claimed), ("measured", measured), ("ci95 low", lo), ("ci95 high", hi)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value} (percentages divide by 100)")
    if lo > hi:
        raise ValueError(f"ci95 must be (low, high), got ({lo}, {hi})")
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be at least 1, got n={n}, k={k}")

    gap = measured - claimed
    width = hi - lo
    interval = f"95% interval [{_pct(lo)}, {_pct(hi)}]"
    wide = width > max_width

    if claimed > hi + _EDGE or claimed < lo - _EDGE:
        side = "below" if claimed > hi else "above"
        note = f"measured {_pct(measured)} is {side} the claimed {_pct(claimed)}, which lies outside the {interval}"
        if wide:
            note += f" (the interval is wide, {_pct(width)}, yet still excludes the claim)"
        return {"verdict": side, "gap": gap, "note": note}

    if wide:
        samples = "1 sample" if k == 1 else f"{k} samples"
        note = (f"the claimed {_pct(claimed)} lies inside the {interval}, but that interval is {_pct(width)} wide "
                f"(over {_pct(max_width)}) with n={n} problems x {samples}: ")
        if k == 1:
            need = problems_needed(width=max_width, p=claimed)
            note += (f"about {need} problems would narrow it under {_pct(max_width)} "
                     f"((2*1.96)^2 * p(1-p) / w^2 with p = the claim)")
        else:
            need = problems_needed(width=max_width, n=n, ci=(lo, hi))
            note += (f"about {need} problems would narrow it under {_pct(max_width)} (the width shrinks like 1/sqrt(problems)); "
                     f"more samples per problem reduce only the within-problem variance, not the spread between problems, "
                     f"so they cannot replace problems")
        return {"verdict": "inconclusive", "gap": gap, "note": note}

    return {"verdict": "consistent", "gap": gap, "note": f"the claimed {_pct(claimed)} lies inside the {interval}"}


def failure_bounds(value: float, task: dict) -> tuple[float, float] | None:
    """(accuracy if every failed row were wrong, if every one were right), or None without failed rows.
    Failed rows are left out of the metric; they are a fraction e / (answered + e) of all rows."""
    errors = int(task.get("errors") or 0)
    answered = int(task.get("n") or 0) * int(task.get("k") or 1)
    if errors <= 0 or answered <= 0:
        return None
    f = errors / (answered + errors)
    return value * (1 - f), value * (1 - f) + f


def failed_rows_swing(claimed: float, value: float, ci95, task: dict, max_width: float) -> str | None:
    """Why the failed rows could change this verdict (a sentence), or None when they could not."""
    bounds = failure_bounds(value, task)
    if bounds is None:
        return None
    lo, hi = float(ci95[0]), float(ci95[1])
    outcomes = set()
    for b in bounds:
        shift = b - value
        outcomes.add(verdict(claimed, b, (min(1.0, max(0.0, lo + shift)), min(1.0, max(0.0, hi + shift))), n=max(1, int(task.get("n") or 1)),
                             k=max(1, int(task.get("k") or 1)), max_width=max_width)["verdict"])
    if len(outcomes) == 1:
        return None
    return (f"{task.get('errors')} failed row(s) could change the verdict: accuracy would be {_pct(bounds[0])} if every failed row "
            f"were wrong and {_pct(bounds[1])} if every one were right (`harness run --resume` retries them)")


def claims_for_run(card: Card, run_tasks: dict, *, differences_by_task: dict[str, list[str]], run_protocol: str | None = None,
                   model: dict | None = None, mode: str = "strict", max_width: float = 0.10) -> list[dict]:
    """run.json `claims` entries for every card claim whose task ran and whose metric we computed.

    `run_tasks` is run.json's `tasks` mapping ({task: {"n", "k", "truncation_rate", "settings",
    "metrics": {name: {"value", "ci95", ...}}}}); `model` is run.json's `model`.
    `differences_by_task` holds protocol_differences() per task; `run_protocol` is the prompt
    protocol the run used (claims measured under another protocol say so). A claim with no
    published value (status UNVERIFIED) yields an "inconclusive" entry with claimed null.
    """
    if mode not in VERDICT_MODES:
        raise ValueError(f"mode must be one of {VERDICT_MODES}, got {mode!r}")
    out: list[dict] = []
    for claim in card.claims:
        task = run_tasks.get(claim.task)
        if task is None or claim.unit != "percent":
            continue
        metric = our_metric(claim.metric)
        measured = (task.get("metrics") or {}).get(metric) if metric else None
        if measured is None or measured.get("value") is None:
            continue
        stated = stated_settings(card, claim.task)
        used_protocol = (task.get("settings") or {}).get("protocol") or run_protocol or card.protocol.name
        diffs = list(differences_by_task.get(claim.task, []))
        if claim.protocol and claim.protocol != used_protocol:
            where = f"in {claim.setting}" if claim.setting else f"with protocol {claim.protocol!r}"
            diffs.append(f"the claim was measured {where}; this run used protocol {used_protocol!r}")
        card_k = stated.get("num_samples")
        if claim.samples and claim.samples != card_k and metric == "accuracy" and task.get("k") and task["k"] < claim.samples:
            # protocol_differences compares with the card's protocol; this claim used its own sample count.
            diffs.append(f"the claim averages {claim.samples} samples per problem; this run drew {task['k']}")
        want = {**stated, "protocol": claim.protocol or stated["protocol"], "dtype": card.dtype}
        task_view = {**task, "settings": {"protocol": used_protocol, **(task.get("settings") or {})}}
        reasons, caveats = run_reasons(task_view, model or {}, want=want, metric=metric, immaterial=tuple(card.protocol.immaterial),
                                       card=card, name=claim.task)
        ci = measured.get("ci95")
        entry = {
            "task": claim.task,
            "metric": metric,
            "published_metric": claim.metric,
            "claimed": None if claim.value is None else round(claim.value / 100.0, 6),
            "measured": measured["value"],
            "ci95": list(ci) if ci is not None else None,
            "verdict": "inconclusive",
            "comparable": not reasons,
            "reasons": reasons,
            "caveats": caveats,
            "indicative": bool(reasons),
            "indicative_verdict": None,
            "gap": None,
            "source": claim.source,
            "status": claim.status,
            "protocol_differences": sorted(set(diffs), key=diffs.index),
            "note": "",
        }
        stat = None
        if claim.value is None:
            entry["note"] = "no published value: nothing to compare the measurement with"
        elif ci is None:
            entry["gap"] = round(measured["value"] - entry["claimed"], 6)
            entry["note"] = "no confidence interval was computed for this metric"
        else:
            stat = verdict(entry["claimed"], measured["value"], ci, n=int(task.get("n") or measured.get("n") or 1),
                           k=int(task.get("k") or 1), max_width=max_width)
            entry.update(gap=round(stat["gap"], 6))
            swing = failed_rows_swing(entry["claimed"], measured["value"], ci, task, max_width)
            if swing:
                reasons = [*reasons, {"code": "failed_rows", "detail": swing}]
                entry.update(reasons=reasons, comparable=False, indicative=True)
        if reasons and claim.value is None:
            entry["note"] += "; " + sentence(reasons)  # no number to judge: stays inconclusive
        elif reasons:
            entry.update(verdict="not_comparable", note=sentence(reasons))
            if stat is not None and mode == "indicative":
                entry["indicative_verdict"] = stat["verdict"]
                entry["note"] += f"; indicative only (--verdicts indicative): {stat['note']}"
        elif stat is not None:
            entry.update(verdict=stat["verdict"], note=stat["note"])
        data = task.get("data") or {}
        if data.get("selection") == "sample" and ci is not None and data.get("n_official"):
            lo, hi = finite_population_interval(measured["value"], (ci[0], ci[1]), n=int(data["n"]), population=int(data["n_official"]))
            entry["note"] += (f"; {data['n']} of {data['n_official']} problems, a uniform sample (seed {data.get('seed')}): the whole set "
                              f"would have measured [{_pct(lo)}, {_pct(hi)}] (finite-population interval); the verdict uses the "
                              "interval on the sampled problems, which also carries the set's own sampling error")
        if caveats:
            entry["note"] += "; caveat: " + "; ".join(caveats)
        if claim.setting and not claim.protocol:  # a claim with its own protocol already says so above
            entry["note"] += f" (claim setting: {claim.setting})"
        out.append(entry)
    return out


def verdict_label(entry) -> str:
    """How a claim's verdict is shown: `not_comparable`, or `not_comparable (indicative: below)`.
    `entry` is a run.json claim, as a dict or a schema model."""
    get = entry.get if isinstance(entry, dict) else lambda key: getattr(entry, key, None)
    v = get("verdict") or "?"
    return f"{v} (indicative: {get('indicative_verdict')})" if get("indicative_verdict") else v
