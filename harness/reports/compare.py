"""`harness compare`: several runs side by side, the trade-offs between them, and whether their
accuracy differences are more than noise.

Writes into one folder: comparison.csv (one row per run x task), comparison.md, comparison.json,
and three Pareto plots (accuracy against $ per correct answer, p50 latency and tokens per answer).
Paired tests match samples by (task, id) across runs, and only count problems whose targets agree:
McNemar on per-problem verdicts when both runs drew one sample per problem, otherwise a paired
bootstrap on per-problem mean correctness (harness.stats). Holm's correction over all the pairs
is reported next to each raw p, because many comparisons make some "significant" by chance.

Cost and energy are measured per run; for a run with several tasks they are split across tasks
by each task's share of generation time (per row: its batch's wall time / batch size).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from harness.reports import plots
from harness.reports.format import interval, num, p_value, pct, seconds, usd
from harness.reports.markdown import progress
from harness.results.schema import Cost, Metric, Perf, RunResult
from harness.stats import mcnemar, paired_bootstrap, percentiles

ALPHA = 0.05
CSV_FIELDS = ("label", "run_id", "run_dir", "task", "model", "device", "device_type", "dtype", "backend", "quantization",
              "random_weights", "n", "k", "accuracy", "ci95_lo", "ci95_hi", "cost_usd", "usd_per_correct",
              "usd_per_1m_output_tokens", "p50_e2e_s", "mean_output_tokens", "output_tokens_per_s", "energy_j", "joules_per_correct")
# (file stem, CSV column, axis label)
PARETO = (("pareto_cost", "usd_per_correct", "$ per correct answer"),
          ("pareto_latency", "p50_e2e_s", "p50 end-to-end latency (s)"),
          ("pareto_tokens", "mean_output_tokens", "mean output tokens per answer"))


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


def load_runs(run_dirs: list[str | Path]) -> list[LoadedRun]:
    """Read each run; labels name model, backend, dtype and device, plus the run id where two would clash."""
    from harness.results.store import all_samples, load_run

    loaded = []
    with progress("reading runs", total=len(run_dirs)) as advance:
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


def time_share(samples: list[dict], task: str) -> float:
    """The task's share of the run's generation time (each row: batch wall / batch size).

    Falls back to its share of output tokens, then of samples, when batch timings are missing.
    """
    for weight in (lambda r: r["batch_wall_s"] / r["batch_size"] if r.get("batch_wall_s") is not None and r.get("batch_size") else None,
                   lambda r: r.get("output_tokens"), lambda r: 1):
        w = [(r["task"], weight(r)) for r in samples]
        if w and all(x is not None for _, x in w) and sum(x for _, x in w) > 0:
            return sum(x for t, x in w if t == task) / sum(x for _, x in w)
    return 0.0


def _div(a, b):
    return None if a is None or not b else a / b


def task_rows(run: LoadedRun) -> list[dict]:
    """One comparison row per task of a run (the CSV_FIELDS)."""
    d = run.data
    m, dev, perf, cost = d.model, d.device, d.perf or Perf(wall_s=0.0), d.cost or Cost(basis="time")
    rows = []
    for name, t in d.tasks.items():
        acc = t.metrics.get("accuracy") or Metric(value=None)
        mine = [r for r in run.samples if r.get("task") == name]
        correct = sum(bool(r.get("correct")) for r in mine)
        share = 1.0 if len(d.tasks) == 1 else time_share(run.samples, name)
        usd = None if cost.usd_total is None else cost.usd_total * share
        energy = None if perf.energy_j is None else perf.energy_j * share
        ci = acc.ci95 or (None, None)
        rows.append({
            "label": run.label, "short": run.short, "run_id": d.run_id, "run_dir": str(run.path), "task": name,
            "model": m.name_or_path, "device": dev.name, "device_type": dev.type, "dtype": m.dtype,
            "backend": m.backend, "quantization": m.quantization, "random_weights": bool(m.random_weights),
            "n": t.n, "k": t.k, "accuracy": acc.value, "ci95_lo": ci[0], "ci95_hi": ci[1],
            "cost_usd": usd, "usd_per_correct": _div(usd, correct), "usd_per_1m_output_tokens": cost.usd_per_1m_output_tokens,
            "p50_e2e_s": percentiles([r.get("e2e_s") for r in mine])["p50"], "mean_output_tokens": t.mean_output_tokens,
            "output_tokens_per_s": perf.output_tokens_per_s, "energy_j": energy, "joules_per_correct": _div(energy, correct),
        })
    return rows


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
                   p_value=t["p_value"], b01=t["b01"], b10=t["b10"], ci95=None)
    else:
        ma, mb = [mean(pa[i][1]) for i in shared], [mean(pb[i][1]) for i in shared]
        t = paired_bootstrap(ma, mb)
        out.update(test="paired_bootstrap", method="problem-level percentile bootstrap", acc_a=mean(ma), acc_b=mean(mb),
                   diff=t["diff"], p_value=t["p_value"], ci95=t["ci95"])
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def describe_pair(pair: dict) -> str:
    test = "McNemar" if pair["test"] == "mcnemar" else "paired bootstrap"
    p = p_value(pair["p_value"])
    return f"{pair['a']} vs {pair['b']} on {pair['task']}: {100 * pair['diff']:+.1f} pts, {test} p{'' if p[0] == '<' else '='}{p}: {pair['verdict']}"


def pairwise(runs: list[LoadedRun]) -> list[dict]:
    """A paired test for every pair of runs and every task both ran on shared problems."""
    jobs = [(a, b, t) for a, b in combinations(runs, 2) for t in a.data.tasks if t in b.data.tasks]
    pairs = []
    with progress("paired tests", total=len(jobs)) as advance:
        for a, b, task in jobs:
            res = paired_test(a.samples, b.samples, task)
            if res is not None:
                pairs.append({"a": a.label, "b": b.label, **res})
            advance()
    for pair, adj in zip(pairs, holm([p["p_value"] for p in pairs])):
        pair["p_holm"] = adj
        if pair["p_value"] >= ALPHA or pair["diff"] == 0:
            pair["verdict"] = "noise"
        else:
            better = pair["a"] if pair["diff"] > 0 else pair["b"]
            pair["verdict"] = f"{better} better" + ("" if adj < ALPHA else f" (not after Holm correction for {len(pairs)} tests)")
        pair["summary"] = describe_pair(pair)
    return pairs


def why_missing(row: dict, key: str) -> str:
    if row["accuracy"] is None:
        return "no accuracy"
    if key == "usd_per_correct":
        return "no price given" if row["cost_usd"] is None else "no correct answer"
    return {"p50_e2e_s": "latency not measured", "mean_output_tokens": "output tokens not measured"}.get(key, "not measured")


def pareto_plots(rows: list[dict], output_dir: Path) -> tuple[dict[str, dict], list[str]]:
    """Write the Pareto PNGs; return {stem: {"path", "frontier": {task: [labels]}, "skipped": [...]}} and notes."""
    out, notes = {}, []
    with progress("plotting", total=len(PARETO)) as advance:
        for stem, key, xlabel in PARETO:
            panels: dict[str, list[plots.Point]] = {}
            skipped = [f"{r['label']} on {r['task']} ({why_missing(r, key)})" for r in rows if r[key] is None or r["accuracy"] is None]
            for r in rows:
                if r[key] is None or r["accuracy"] is None:
                    continue
                ci = (r["ci95_lo"], r["ci95_hi"]) if r["ci95_lo"] is not None else None
                panels.setdefault(r["task"], []).append(plots.Point(
                    x=float(r[key]), y=float(r["accuracy"]), ci95=ci, label=r["short"], color_key=str(r["model"]),
                    marker_key=f"{r['device']} · {r['backend']} · {r['dtype']}"))
            labels = {t: [r["label"] for r in rows if r["task"] == t and r[key] is not None and r["accuracy"] is not None] for t in panels}
            frontier = {t: [labels[t][i] for i in plots.pareto_front([(p.x, p.y) for p in pts])] for t, pts in panels.items()}
            png = plots.pareto_plot(panels, xlabel=xlabel, title=f"accuracy vs {xlabel} (up and left is better)")
            path = None
            if png is not None:
                path = output_dir / f"{stem}.png"
                path.write_bytes(png)
            if skipped:
                notes.append(f"{stem}.png: {'not written: no run has a value; ' if png is None else ''}left out {'; '.join(skipped)}")
            out[stem] = {"path": None if path is None else str(path), "x": key, "frontier": frontier, "skipped": skipped}
            advance()
    return out, notes


def render_markdown(rows: list[dict], pairs: list[dict], figures: dict[str, dict], notes: list[str], runs: list[LoadedRun]) -> str:
    out = [f"# Comparison of {len(runs)} runs", "", "| run | model | device | dtype | backend | folder |", "|---|---|---|---|---|---|"]
    for r in runs:
        m, dev = r.data.model, r.data.device
        out.append(f"| {r.label} | {m.name_or_path} | {dev.name} | {m.dtype} | {m.backend} | {r.path} |")
    out += ["", "## Results", "", "| run | task | n | k | accuracy | 95% CI | $/correct | $/1M out tok | p50 e2e | mean out tok | "
            "tok/s | J/correct |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = interval(None if r["ci95_lo"] is None else (r["ci95_lo"], r["ci95_hi"]))
        out.append(f"| {r['label']} | {r['task']} | {r['n']} | {r['k']} | {pct(r['accuracy'])} | {ci} | "
                   f"{usd(r['usd_per_correct'])} | {usd(r['usd_per_1m_output_tokens'])} | "
                   f"{seconds(r['p50_e2e_s'])} | {num(r['mean_output_tokens'], '{:.0f}')} | {num(r['output_tokens_per_s'])} | "
                   f"{num(r['joules_per_correct'])} |")
    if any(r["random_weights"] for r in rows):
        out += ["", "> **Warning:** some runs use random weights: their accuracy is meaningless."]
    if any(len(r.data.tasks) > 1 for r in runs):
        out += ["", "Cost and energy of a run with several tasks are split by each task's share of generation time."]
    out += ["", "## Trade-offs", "", "Each plot marks the Pareto frontier (ringed): no other run is both at least as accurate "
            "and at least as cheap on that axis."]
    for stem, fig in figures.items():
        if fig["path"]:
            out += ["", f"![{stem}]({Path(fig['path']).name})", ""]
            out += [f"- frontier on {task} ({fig['x']}): {', '.join(labels)}" for task, labels in fig["frontier"].items()]
    out += [""] + [f"- note: {n}" for n in notes]
    out += ["", "## Paired tests", ""]
    if not pairs:
        out.append("No two runs share a task and problems: nothing to pair.")
    else:
        out += [f"- {p['summary']}" for p in pairs]
        out += ["", f"Paired on problems both runs answered (matched by task and id, targets equal). McNemar when both drew one "
                f"sample per problem, a paired bootstrap of per-problem mean correctness otherwise. \"noise\": p >= {ALPHA}. "
                "Holm's correction accounts for the number of tests.", "",
                "| A | B | task | n | acc A | acc B | diff (pts) | test | p | p (Holm) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for p in pairs:
            out.append(f"| {p['a']} | {p['b']} | {p['task']} | {p['n']} | {100 * p['acc_a']:.1f}% | {100 * p['acc_b']:.1f}% | "
                       f"{100 * p['diff']:+.1f} | {p['test']} | {p_value(p['p_value'])} | {p_value(p['p_holm'])} |")
        mism = [p for p in pairs if p["target_mismatch"]]
        out += [f"- {p['a']} vs {p['b']} on {p['task']}: {p['target_mismatch']} problems left out (different targets)" for p in mism]
    return "\n".join(out) + "\n"


def render_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r[k] is None else r[k] for k in CSV_FIELDS})
    return buf.getvalue()


def compare(run_dirs: list[str | Path], output_dir: str | Path) -> dict:
    """Compare runs; write comparison.{md,csv,json} and the Pareto PNGs into output_dir; return the JSON document."""
    from harness.errors import ConfigError
    from harness.results.store import write_text_atomic

    if not run_dirs:
        raise ConfigError("compare needs at least one run folder", "pass run folders written by `harness run`")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = load_runs(list(run_dirs))
    rows = [row for run in runs for row in task_rows(run)]
    figures, notes = pareto_plots(rows, output_dir)
    pairs = pairwise(runs)
    doc = {"runs": rows, "pairs": pairs, "figures": figures, "notes": notes, "alpha": ALPHA,
           "files": {name: str(output_dir / name) for name in ("comparison.md", "comparison.csv", "comparison.json")}}
    write_text_atomic(output_dir / "comparison.csv", render_csv(rows))
    write_text_atomic(output_dir / "comparison.md", render_markdown(rows, pairs, figures, notes, runs))
    write_text_atomic(output_dir / "comparison.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc
