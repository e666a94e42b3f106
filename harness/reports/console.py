"""What a person sees while a run goes: a progress bar on stderr, then where the results are
and the headline numbers. Only the main process prints."""

from __future__ import annotations

import os
import sys


def run_with_progress(cfg) -> int:
    from harness import pipeline

    main = int(os.environ.get("RANK", "0")) == 0
    show = main and not cfg.quiet and sys.stderr.isatty()
    if show:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                       transient=True)
        with bar:
            task = bar.add_task("run", total=None)
            run_dir = pipeline.run(cfg, progress=lambda n: bar.advance(task, n))
    else:
        run_dir = pipeline.run(cfg)
    if main:
        run = summarize(run_dir)
        if run.status in ("partial", "failed"):
            from harness.errors import RunFailed

            n = run.samples
            first = run.errors.first if run.errors else "see run.json"
            raise RunFailed(f"run {run.status}: {n.errors} of {n.errors + n.done} samples failed ({first[:200]})",
                            f"fix the cause, then `harness run --resume {run_dir}` retries only those samples")
    return 0


def summarize(run_dir):
    from harness.reports.format import interval, pct
    from harness.results.store import load_run

    run = load_run(run_dir)
    print(f"run folder: {run_dir}")
    if run.protocol is not None:
        print(f"prompt protocol: {run.protocol.name}" + (f" (from {run.protocol.source})" if run.protocol.source else ""))
    n = run.samples
    if n is not None:
        print(f"status: {run.status} ({n.done} answered, {n.errors or 0} failed, {n.planned} planned)")
    for name, t in run.tasks.items():
        acc = t.metrics["accuracy"]
        extra = "".join(f", {m} {pct(v.value)}" for m, v in t.metrics.items() if m.startswith(("pass@", "maj@")))
        print(f"{name}: accuracy {pct(acc.value)} {interval(acc.ci95)} "
              f"over {t.n} problems x {t.k}{extra}; truncated {pct(t.truncation_rate, 0)}"
              + (f"; {t.errors} failed samples left out" if t.errors else ""))
    perf = run.perf
    tps = perf.output_tokens_per_s
    print(f"perf: {perf.wall_s:.2f} s generating, {tps:.1f} output tok/s" if tps else f"perf: {perf.wall_s:.2f} s generating")
    for c in run.claims:
        print(f"claim {c.task} {c.metric} {pct(c.claimed)}: {c.verdict}")
    for w in run.warnings:
        print(f"warning: {w}")
    return run
