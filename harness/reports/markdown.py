"""Run reports: report.md rendered from run.json alone (numbers written by reports/format.py, as in
report.html), and (through `write_reports`) the
self-contained report.html of harness/reports/html.py. Reports compute nothing new, so a report
can always be re-rendered from the results it describes (`harness report RUN_DIR`).

Also owns `progress`, the stderr progress bar that report and compare show on long steps.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.claims.verdicts import failure_bounds
from harness.reports.format import interval, nbytes, num, pct, pts, usd
from harness.results.schema import Cost, PeakMemory, Percentiles, Perf, Roofline, RunResult, as_run


def render_markdown(run: RunResult | dict) -> str:
    d = as_run(run)
    m, dev = d.model, d.device
    perf, cost = d.perf or Perf(wall_s=0.0), d.cost or Cost(basis="time")
    done, planned = (d.samples.done, d.samples.planned) if d.samples else ("?", "?")
    out = [f"# Run {d.run_id}: {m.name_or_path}", ""]
    failed = (f", {d.samples.errors} failed (left out of every metric; `harness run --resume` retries them)"
              if d.samples and d.samples.errors else "")
    out += [f"- status: **{d.status}** ({done}/{planned} samples answered{failed})",
            f"- model: {m.name_or_path} ({m.architecture or '?'}, {num(m.num_parameters, '{:,}')} parameters, "
            f"{m.dtype}, backend {m.backend}{', revision ' + m.revision if m.revision else ''})",
            f"- device: {dev.type} — {dev.name} ({dev.device_reason}); dtype {dev.dtype}: {dev.dtype_reason}",
            f"- protocol: {d.protocol.name if d.protocol else None}"
            + (f" (from {d.protocol.source})" if d.protocol and d.protocol.source else ""), f"- created {d.created_utc}, finished {d.finished_utc}", ""]
    for w in d.warnings:
        out.append(f"> **Warning:** {w}")
    if d.warnings:
        out.append("")
    out += ["## Accuracy", "", "| task | n | k | failed | metric | value | if failed rows were wrong / right | 95% CI | method | truncated | "
            "mean output tokens |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, t in d.tasks.items():
        for metric, v in t.metrics.items():
            b = failure_bounds(v.value, {"errors": t.errors, "n": t.n, "k": t.k}) if v.value is not None else None
            bounds = f"{pct(b[0])} / {pct(b[1])}" if b else "—"
            out.append(f"| {name} | {t.n} | {t.k} | {t.errors or 0} | {metric} | {pct(v.value)} | {bounds} | {interval(v.ci95)} | "
                       f"{v.method or ''} | {pct(t.truncation_rate)} | {num(t.mean_output_tokens, '{:.1f}')} |")
    levels = [(name, t.by_level) for name, t in d.tasks.items() if t.by_level]
    if levels:
        out += ["", "## Accuracy by difficulty level", "", "| task | level | n | accuracy | 95% CI |", "|---|---|---|---|---|"]
        for name, by in levels:
            for level, lv in by.items():
                out.append(f"| {name} | {level} | {lv.n} | {pct(lv.accuracy)} | {interval(lv.ci95)} |")
    subsets = [(name, t.data) for name, t in d.tasks.items() if t.data is not None and t.data.selection != "official"]
    if subsets:
        out += ["", "## Data", ""] + [f"- {name} ({data.selection}): {data.detail}" for name, data in subsets]
    if d.claims:
        from harness.claims.verdicts import verdict_label

        out += ["", "## Published claims: verdicts", "", "| task | metric | claimed | measured | 95% CI | verdict | gap | source |", "|---|---|---|---|---|---|---|---|"]
        for c in d.claims:
            measured = pct(c.measured) + (" (indicative)" if c.indicative else "")
            out.append(f"| {c.task} | {c.metric} | {pct(c.claimed)} | {measured} | {interval(c.ci95)} | **{verdict_label(c)}** | "
                       f"{pts(c.gap) + ' pts' if c.gap is not None else '—'} | {c.source or ''} |")
        why = [c for c in d.claims if c.reasons]
        if why:
            out += ["", "Not comparable (no verdict; the measured value and interval are indicative only):", ""]
            out += [f"- {c.task} {c.metric}: " + "; ".join(f"`{r.code}` {r.detail}" for r in c.reasons or ()) for c in why]
        if any(c.indicative_verdict for c in d.claims):
            out += ["", "**Indicative verdicts** (`--verdicts indicative`): computed although the run cannot support them; "
                    "for exploration only, not a finding."]
        caveats = sorted({x for c in d.claims for x in c.caveats})
        if caveats:
            out += ["", "Caveats:", ""] + [f"- {x}" for x in caveats]
        notes = sorted({n for c in d.claims for n in c.protocol_differences})
        if notes:
            out += ["", "Protocol differences (why a verdict may not transfer to the published setting):", ""] + [f"- {n}" for n in notes]
    out += ["", "## Performance", "", "| measure | mean | p50 | p90 | p99 |", "|---|---|---|---|---|"]
    for k in ("ttft_s", "tpot_s", "e2e_s"):
        p = getattr(perf, k) or Percentiles()
        out.append(f"| {k} | " + " | ".join(num(getattr(p, q)) for q in ("mean", "p50", "p90", "p99")) + " |")
    mem = perf.peak_memory_bytes or PeakMemory()
    roof = perf.roofline or Roofline()
    device_mem = f"{nbytes(mem.device.reserved)} reserved ({nbytes(mem.device.allocated)} allocated)" if mem.device else "—"
    out += ["", f"- generation wall time: {num(perf.wall_s)} s; model load {num(perf.load_s)} s; "
                f"warm-up {num(perf.warmup.s if perf.warmup else None)} s (excluded)",
            f"- throughput: output {num(perf.output_tokens_per_s)} tok/s, prefill {num(perf.prefill_tokens_per_s)} tok/s, "
            f"decode {num(perf.decode_tokens_per_s)} tok/s",
            f"- tokens: {perf.input_tokens} in, {perf.output_tokens} out",
            f"- peak memory: device {device_mem}, host RSS {nbytes(mem.host)}",
            f"- energy: {num(perf.energy_j)} J ({perf.energy_source}); {num(perf.joules_per_output_token)} J/token",
            f"- roofline: measured {num(roof.bandwidth_gbps)} GB/s ({roof.bandwidth_source or '—'}); published peak "
            f"{num(roof.peak_bandwidth_gbps)} GB/s ({roof.peak_bandwidth_source or '—'}); decode bound at batch {roof.batch or '—'} "
            f"and mean context {num(roof.mean_context_tokens, '{:.0f}')}: {num(roof.bound_tokens_per_s_per_sequence)} tok/s per sequence, "
            f"{num(roof.bound_tokens_per_s)} tok/s in aggregate; measured {num(roof.measured_tokens_per_s_per_sequence)} per sequence, "
            f"{num(roof.measured_tokens_per_s)} in aggregate: {pct(roof.fraction)} of the bound",
            f"- cost: {usd(cost.usd_total)} total, {usd(cost.usd_per_1m_output_tokens)} per 1M output tokens, "
            f"{usd(cost.usd_per_correct)} per correct answer ({cost.price_source or 'no price given'})", ""]
    return "\n".join(out)


def write_markdown(run_dir: Path, run: RunResult | dict) -> Path:
    from harness.results.store import write_text_atomic

    path = Path(run_dir) / "report.md"
    write_text_atomic(path, render_markdown(run))
    return path


@contextmanager
def progress(description: str, total: int | None = None, *, show: bool | None = None) -> Iterator[Callable[..., None]]:
    """Yields `advance(n=1, description=None)`; draws a rich bar on stderr only when it is a terminal.

    Redirected output (logs, CI, tests) stays clean: there the bar is a no-op.
    """
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        yield lambda n=1, description=None: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1, description: str | None = None) -> None:
            bar.update(task, advance=n, description=description or None)  # None (or ""): the description stays

        yield advance


def write_reports(run_dir: str | Path, *, max_samples: int | None = None) -> tuple[Path, Path]:
    """Write report.md and report.html into a run folder from its run.json and samples; return both paths."""
    from harness.reports.html import MAX_SAMPLES, render_html
    from harness.results.store import all_samples, load_run, write_text_atomic

    run_dir = Path(run_dir)
    data = load_run(run_dir)
    samples = all_samples(run_dir)
    md = write_markdown(run_dir, data)
    levels = sum(1 for t in data.tasks.values() if t.by_level)
    with progress("rendering report.html", total=7 + levels) as advance:
        page = render_html(data, samples, max_samples=MAX_SAMPLES if max_samples is None else max_samples,
                           step=lambda what: advance(description=f"report: {what}"))
    path = run_dir / "report.html"
    write_text_atomic(path, page)
    return md, path
