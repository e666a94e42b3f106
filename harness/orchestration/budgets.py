"""Thinking budgets: accuracy and cost at several caps on thinking tokens.

`run_budgets` runs the same configuration once per budget (through `harness.backends.budget`),
writes one run folder per budget inside one budgets folder, and draws the accuracy-versus-budget
curve there.
"""

from __future__ import annotations

from pathlib import Path


def run_budgets(cfg) -> list[Path]:
    """One run per budget, the model loaded once; returns the budgets folder and the run folders."""
    from harness import results
    from harness.backends import load_backend
    from harness.orchestration import pipeline
    from harness.planning.plan import make_plan
    from harness.planning.prepare import prepare

    card = pipeline.card_of(cfg)
    widest = cfg.model_copy(update={"think_budgets": (), "think_budget": max(cfg.think_budgets)})
    dev = prepare(widest, make_plan(widest, card), card).device   # the dtype and memory decision `run` makes, at the largest budget
    folder = results.create_run_dir(cfg.output_dir, results.run_dir_name(cfg.model, ["budgets"], results.new_run_id()))
    backend = load_backend(cfg, dev)
    runs = []
    try:
        for budget in sorted(cfg.think_budgets):
            one = cfg.model_copy(update={"think_budgets": (), "think_budget": budget, "output_dir": str(folder)})
            runs.append(pipeline.run(one, backend=backend, device=dev))
    finally:
        backend.close()
    write_curve(folder, runs)
    return [folder, *runs]


def curve_points(run_dirs: list[Path]) -> list[dict]:
    from harness.results.store import load_run

    points = []
    for d in run_dirs:
        run = load_run(d)
        for task, t in run.tasks.items():
            acc = t.metrics["accuracy"]
            points.append({"run_dir": d.name, "task": task, "budget": run.config["think_budget"], "accuracy": acc.value,
                           "ci95": list(acc.ci95), "mean_output_tokens": t.mean_output_tokens, "truncation_rate": t.truncation_rate,
                           "usd_per_correct": run.cost.usd_per_correct if run.cost else None, "wall_s": run.perf.wall_s})
    return points


def write_curve(folder: Path, run_dirs: list[Path]) -> Path:
    """budgets.json and budget_curve.png: accuracy (with 95% CI) against the thinking budget, per task."""
    from harness.results.store import write_json_atomic

    points = curve_points(run_dirs)
    write_json_atomic(folder / "budgets.json", {"points": points})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for task in sorted({p["task"] for p in points}):
        ps = sorted((p for p in points if p["task"] == task), key=lambda p: p["budget"])
        xs, ys = [p["budget"] for p in ps], [100 * p["accuracy"] for p in ps]
        lo = [100 * (p["accuracy"] - p["ci95"][0]) for p in ps]
        hi = [100 * (p["ci95"][1] - p["accuracy"]) for p in ps]
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=task)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("thinking budget (tokens)")
    ax.set_ylabel("accuracy (%), 95% CI")
    ax.set_title("Accuracy versus thinking budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = folder / "budget_curve.png"
    fig.savefig(path)
    plt.close(fig)
    lines = ["# Thinking budgets", "", "| task | budget | accuracy | 95% CI | mean output tokens | truncated | $/correct | run |", "|---|---|---|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: (p["task"], p["budget"])):
        usd = "—" if p["usd_per_correct"] is None else f"${p['usd_per_correct']:.4g}"
        lines.append(f"| {p['task']} | {p['budget']} | {100 * p['accuracy']:.1f}% | [{100 * p['ci95'][0]:.1f}, {100 * p['ci95'][1]:.1f}] | "
                     f"{p['mean_output_tokens']:.1f} | {100 * p['truncation_rate']:.0f}% | {usd} | {p['run_dir']} |")
    lines += ["", "![accuracy versus thinking budget](budget_curve.png)", ""]
    (folder / "budgets.md").write_text("\n".join(lines), encoding="utf-8")
    return path
