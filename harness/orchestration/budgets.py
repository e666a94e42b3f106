"""Thinking budgets: accuracy and cost at several caps on thinking tokens.

`run_budgets` runs the same configuration once per budget (through `harness.backends.budget`),
writes one run folder per budget inside one budgets folder, and draws the accuracy-versus-budget
curve there. The budgets folder holds the sweep's config.json, so `harness run --resume FOLDER`
resumes the sweep as a whole: finished budgets are kept, an interrupted one is resumed, missing
ones are run.
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
    from harness.results.store import write_config

    if cfg.resume:
        folder = Path(cfg.resume)
        _check_sweep(cfg, folder)
    else:
        folder = results.create_run_dir(cfg.output_dir, results.run_dir_name(cfg.model, ["budgets"], results.new_run_id()))
        write_config(folder, cfg.stored(), run_id=folder.name.rsplit("_", 1)[-1], created=results.utc_now())
    existing = _budget_runs(folder)
    card = pipeline.card_of(cfg)
    widest = cfg.model_copy(update={"think_budgets": (), "think_budget": max(cfg.think_budgets), "resume": None})
    dev = prepare(widest, make_plan(widest, card), card).device   # the dtype and memory decision `run` makes, at the largest budget
    backend = load_backend(cfg, dev)
    runs = []
    try:
        for budget in sorted(cfg.think_budgets):
            sub = existing.get(budget)
            if sub is not None and _complete(sub):
                runs.append(sub)
                continue
            one = cfg.model_copy(update={"think_budgets": (), "think_budget": budget, "output_dir": str(folder),
                                         "resume": str(sub) if sub is not None else None})
            runs.append(pipeline.run(one, backend=backend, device=dev))
    finally:
        backend.close()
    write_curve(folder, runs)
    return [folder, *runs]


def _check_sweep(cfg, folder: Path) -> None:
    from harness.errors import ConfigError
    from harness.results.store import read_config

    diff = cfg.differs_from(read_config(folder))
    if diff:
        raise ConfigError(f"--resume of a budget sweep with settings that differ from the stored sweep: {', '.join(diff)}",
                          f"resume with the original settings (see {folder / 'config.json'}) or start a new sweep")


def _budget_runs(folder: Path) -> dict[int, Path]:
    """The run folder already made for each budget (a sweep killed mid-way), by its stored budget."""
    from harness.errors import HarnessError
    from harness.results.store import read_config

    out: dict[int, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            budget = read_config(sub).get("think_budget")
        except HarnessError:
            continue  # not a run folder (or a broken one): a fresh run is made for its budget
        if isinstance(budget, int) and budget not in out:
            out[budget] = sub
    return out


def _complete(run_dir: Path) -> bool:
    from harness.errors import HarnessError
    from harness.results.store import load_run

    try:
        return load_run(run_dir).status == "complete"
    except HarnessError:
        return False


def curve_points(run_dirs: list[Path]) -> list[dict]:
    from harness.errors import DataError
    from harness.results.store import load_run

    points = []
    for d in run_dirs:
        run = load_run(d)
        for task, t in run.tasks.items():
            acc = t.metrics["accuracy"]
            if acc.value is None or acc.ci95 is None:  # no answered sample: nothing to plot
                raise DataError(f"{d}: {task} has no accuracy with an interval", "see its report.md: no sample of that task was answered")
            points.append({"run_dir": d.name, "task": task, "budget": run.config["think_budget"], "accuracy": acc.value,
                           "ci95": list(acc.ci95), "mean_output_tokens": t.mean_output_tokens, "truncation_rate": t.truncation_rate,
                           "usd_per_correct": run.cost.usd_per_correct if run.cost else None,
                           "wall_s": run.perf.wall_s if run.perf else None})
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
