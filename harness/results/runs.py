"""Finished runs read back for comparison: labelled runs (`load_runs`) and the paired accuracy test of
two runs on the problems they share (`paired_test`), used by `harness compare` and comparative claims.

Paired tests match samples by (task, id) and only count problems whose targets agree: McNemar on
per-problem verdicts when both runs drew one sample per problem, otherwise a paired bootstrap on
per-problem mean correctness (harness.stats).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.results.schema import RunResult
from harness.stats import mcnemar, paired_bootstrap, paired_diff_ci

ALPHA = 0.05


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    data: RunResult
    samples: list[dict]
    label: str  # model · backend · dtype · device (· run id when two runs would share a label)
    short: str  # only the parts of `label` that differ between the compared runs (plot annotations)


def label_parts(data: RunResult) -> list[str]:
    m, dev = data.model, data.device
    model = str(m.name_or_path or "?").rstrip("/").split("/")[-1]
    return [model, str(m.backend), str(m.dtype), str(dev.name or dev.type)]


def load_runs(run_dirs: list[str | Path], advance: Callable[[], object] = lambda: None) -> list[LoadedRun]:
    """Read each run (calling `advance` after each); labels name model, backend, dtype and device, plus
    the run id where two would clash."""
    from harness.results.store import all_samples, load_run

    loaded = []
    for d in run_dirs:
        loaded.append((Path(d), load_run(d), all_samples(d)))
        advance()
    parts = [label_parts(data) for _, data, _ in loaded]
    labels = [" · ".join(p) for p in parts]
    for i, (_, data, _) in enumerate(loaded):
        if labels.count(labels[i]) > 1:
            parts[i] = [*parts[i], str(data.run_id)]
    labels = [" · ".join(p) for p in parts]
    width = max(len(p) for p in parts)
    varying = [j for j in range(width) if len({p[j] if j < len(p) else "" for p in parts}) > 1]
    out = []
    for i, (path, data, samples) in enumerate(loaded):
        label = labels[i]
        if labels[:i].count(label):  # the same folder twice
            label = f"{label} ({i + 1})"
        short = " · ".join(parts[i][j] for j in varying if j < len(parts[i])) or parts[i][0]
        out.append(LoadedRun(path, data, samples, label, short))
    return out


def problems_by_id(samples: list[dict], task: str) -> dict[str, tuple[str, list[bool]]]:
    """id -> (target, strict verdicts of its samples)."""
    out: dict[str, tuple[str, list[bool]]] = {}
    for r in samples:
        if r.get("task") == task:
            out.setdefault(str(r["id"]), (str(r.get("target")), []))[1].append(bool(r.get("correct")))
    return out


def paired_test(a: list[dict], b: list[dict], task: str) -> dict | None:
    """Paired accuracy test of two runs' samples on one task; None when they share no problem.

    diff is accuracy(a) - accuracy(b) over the shared problems (fractions).
    """
    pa, pb = problems_by_id(a, task), problems_by_id(b, task)
    both = [i for i in pa if i in pb]
    shared = [i for i in both if pa[i][0] == pb[i][0]]
    if not shared:
        return None
    mean = lambda v: sum(v) / len(v)
    out = {"task": task, "n": len(shared), "target_mismatch": len(both) - len(shared)}
    if all(len(pa[i][1]) == 1 and len(pb[i][1]) == 1 for i in shared):
        va, vb = [pa[i][1][0] for i in shared], [pb[i][1][0] for i in shared]
        t = mcnemar(va, vb)
        out.update(test="mcnemar", method=t["method"], acc_a=mean(va), acc_b=mean(vb), diff=mean(va) - mean(vb),
                   p_value=t["p_value"], b01=t["b01"], b10=t["b10"])
    else:
        ma, mb = [mean(pa[i][1]) for i in shared], [mean(pb[i][1]) for i in shared]
        t = paired_bootstrap(ma, mb)
        out.update(test="paired_bootstrap", method="problem-level percentile bootstrap", acc_a=mean(ma), acc_b=mean(mb),
                   diff=t["diff"], p_value=t["p_value"])
    ci, how = paired_diff_ci([pa[i][1] for i in shared], [pb[i][1] for i in shared])
    out.update(ci95=list(ci), ci_method=how)
    return out
