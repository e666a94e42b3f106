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
from itertools import combinations
from pathlib import Path

from harness.claims.comparability import pair_reasons, sentence
from harness.reports import plots
from harness.reports.format import interval, num, p_value, pct, seconds, usd
from harness.reports.markdown import progress
from harness.results.runs import ALPHA, LoadedRun, load_runs, paired_test
from harness.results.schema import Cost, Metric, Perf
from harness.sanitize import csv_cell
from harness.stats import holm, percentiles

__all__ = ["compare", "holm", "load_runs", "paired_test", "pairwise", "time_share"]

CSV_FIELDS = ("label", "run_id", "run_dir", "task", "model", "device", "device_type", "dtype", "backend", "quantization",
              "random_weights", "n", "k", "accuracy", "ci95_lo", "ci95_hi", "cost_usd", "usd_per_correct",
              "usd_per_1m_output_tokens", "p50_e2e_s", "mean_output_tokens", "output_tokens_per_s", "energy_j", "joules_per_correct")
# (file stem, CSV column, axis label)
PARETO = (("pareto_cost", "usd_per_correct", "$ per correct answer"),
          ("pareto_latency", "p50_e2e_s", "p50 end-to-end latency (s)"),
          ("pareto_tokens", "mean_output_tokens", "mean output tokens per answer"))


def time_share(samples: list[dict], task: str) -> float:
    """The task's share of the run's generation time (each row: batch wall / batch size).

    Falls back to its share of output tokens, then of samples, when batch timings are missing.
    """
    for weight in (lambda r: r["batch_wall_s"] / r["batch_size"] if r.get("batch_wall_s") is not None and r.get("batch_size") else None,
                   lambda r: r.get("output_tokens"), lambda r: 1):
        w = [(r["task"], x) for r in samples if (x := weight(r)) is not None]
        if w and len(w) == len(samples) and sum(x for _, x in w) > 0:
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


def describe_pair(pair: dict) -> str:
    test = "McNemar" if pair["test"] == "mcnemar" else "paired bootstrap"
    p = p_value(pair["p_value"])
    verdict = pair["verdict"] + (f" (indicative: {pair['indicative_verdict']})" if pair.get("indicative_verdict") else "")
    head = f"{pair['a']} vs {pair['b']} on {pair['task']}: {100 * pair['diff']:+.1f} pts, {test} p{'' if p[0] == '<' else '='}{p}: {verdict}"
    return head + (f" — {pair['note']}" if pair.get("note") else "")


def pairwise(runs: list[LoadedRun], verdicts: str = "strict") -> list[dict]:
    """A paired test for every pair of runs and every task both ran on shared problems.

    A pair the runs cannot support (harness/claims/comparability.py: random weights, truncation,
    different protocol or decoding) gets verdict "not_comparable" with its reasons; with
    verdicts="indicative" the statistical verdict is kept beside it as `indicative_verdict`."""
    jobs = [(a, b, t) for a, b in combinations(runs, 2) for t in a.data.tasks if t in b.data.tasks]
    pairs = []
    with progress("paired tests", total=len(jobs)) as advance:
        for a, b, task in jobs:
            res = paired_test(a.samples, b.samples, task)
            if res is not None:
                reasons, caveats = pair_reasons(a.data.model_dump(mode="json"), b.data.model_dump(mode="json"), task)
                pairs.append({"a": a.label, "b": b.label, **res, "comparable": not reasons, "reasons": reasons, "caveats": caveats})
            advance()
    for pair, adj in zip(pairs, holm([p["p_value"] for p in pairs])):
        pair["p_holm"] = adj
        if pair["p_value"] >= ALPHA or pair["diff"] == 0:
            stat = "noise"
        elif adj >= ALPHA:  # "better" only at the multiplicity-adjusted level
            stat = f"noise after Holm correction for {len(pairs)} tests (unadjusted p < {ALPHA})"
        else:
            better = pair["a"] if pair["diff"] > 0 else pair["b"]
            stat = f"{better} better"
        pair["verdict"], pair["indicative_verdict"] = stat, None
        if pair["reasons"]:
            pair["verdict"], pair["note"] = "not_comparable", sentence(pair["reasons"])
            pair["indicative_verdict"] = stat if verdicts == "indicative" else None
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
    for run in runs:
        m, dev = run.data.model, run.data.device
        out.append(f"| {run.label} | {m.name_or_path} | {dev.name} | {m.dtype} | {m.backend} | {run.path} |")
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
                "A pair marked not_comparable (random weights, truncation, different protocol or decoding) gets no verdict; "
                "its numbers are indicative only" + (", and its indicative verdict is for exploration only." if any(p.get("indicative_verdict") and p["reasons"] for p in pairs) else "."), "",
                "| A | B | task | n | acc A | acc B | diff (pts) | 95% CI | test | p | p (Holm) | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in pairs:
            verdict = p["verdict"] + (f" (indicative: {p['indicative_verdict']})" if p["reasons"] and p.get("indicative_verdict") else "")
            out.append(f"| {p['a']} | {p['b']} | {p['task']} | {p['n']} | {100 * p['acc_a']:.1f}% | {100 * p['acc_b']:.1f}% | "
                       f"{100 * p['diff']:+.1f} | [{100 * p['ci95'][0]:+.1f}, {100 * p['ci95'][1]:+.1f}] | {p['test']} | {p_value(p['p_value'])} | "
                       f"{p_value(p['p_holm'])} | {verdict} |")
        mism = [p for p in pairs if p["target_mismatch"]]
        out += [f"- {p['a']} vs {p['b']} on {p['task']}: {p['target_mismatch']} problems left out (different targets)" for p in mism]
    return "\n".join(out) + "\n"


def render_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r[k] is None else csv_cell(r[k]) for k in CSV_FIELDS})  # no formula, no escape sequence
    return buf.getvalue()


def compare(run_dirs: list[str | Path], output_dir: str | Path, verdicts: str = "strict") -> dict:
    """Compare runs; write comparison.{md,csv,json} and the Pareto PNGs into output_dir; return the JSON document."""
    from harness.errors import ConfigError
    from harness.results.store import write_text_atomic

    if not run_dirs:
        raise ConfigError("compare needs at least one run folder", "pass run folders written by `harness run`")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with progress("reading runs", total=len(run_dirs)) as advance:
        runs = load_runs(list(run_dirs), advance)
    rows = [row for run in runs for row in task_rows(run)]
    figures, notes = pareto_plots(rows, output_dir)
    pairs = pairwise(runs, verdicts)
    doc = {"runs": rows, "pairs": pairs, "figures": figures, "notes": notes, "alpha": ALPHA, "verdicts_mode": verdicts,
           "files": {name: str(output_dir / name) for name in ("comparison.md", "comparison.csv", "comparison.json")}}
    write_text_atomic(output_dir / "comparison.csv", render_csv(rows))
    write_text_atomic(output_dir / "comparison.md", render_markdown(rows, pairs, figures, notes, runs))
    write_text_atomic(output_dir / "comparison.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return doc
