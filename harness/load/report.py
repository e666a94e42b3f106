"""report.html for a load folder: the numbers of load.json as tables, and two kinds of figure.

- latency versus throughput: for TTFT, TPOT, ITL and E2EL, one line per statistic (mean, p50, p90,
  p99) against output tokens per second, one point per load level, with the SLO limit drawn;
- the SLO frontier: goodput and throughput against the offered load, with the saturation point.
Self-contained (PNG figures inline as base64, as harness/reports does). Computes nothing new.
"""

from __future__ import annotations

import html
from pathlib import Path

from harness.load.folder import REPORT
from harness.load.schema import Level, LoadResult
from harness.reports.plots import PALETTE, data_uri, to_png
from harness.results.store import write_text_atomic

METRICS = (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2el_s", "E2EL"))
STATS = ("mean", "median", "p90", "p99")


def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _points(levels: list[Level], metric: str, stat: str) -> list[tuple[float, float]]:
    pts = []
    for lv in levels:
        x = lv.metrics.output_throughput
        y = getattr(getattr(lv.metrics, metric), stat)
        if x is not None and y is not None:
            pts.append((x, y))
    return sorted(pts)


def latency_figure(result: LoadResult) -> bytes | None:
    levels = [lv for lv in result.levels if lv.metrics.completed]
    if not levels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 6.5))
    for ax, (metric, name) in zip(axes.flat, METRICS):
        for i, stat in enumerate(STATS):
            pts = _points(levels, metric, stat)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] * 1000 for p in pts], marker="o", color=PALETTE[i], label=stat)
        limit = getattr(result.slo, metric, None) if result.slo and metric != "itl_s" else None
        if limit:
            ax.axhline(limit * 1000, color="#D55E00", linestyle="--", linewidth=1, label="SLO")
        ax.set_title(f"{name} vs throughput")
        ax.set_xlabel("output tokens / s")
        ax.set_ylabel(f"{name} (ms)")
        ax.legend(fontsize=7)
    fig.suptitle("latency versus throughput, one point per load level")
    fig.tight_layout()
    return to_png(fig)


def frontier_figure(result: LoadResult) -> bytes | None:
    if not result.summary:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    xs = [s.load for s in result.summary]
    thr = [s.output_throughput.mean or 0.0 for s in result.summary]
    ax.plot(xs, thr, marker="o", color=PALETTE[0], label="output tok/s")
    lo = [s.output_throughput.min or 0.0 for s in result.summary]
    hi = [s.output_throughput.max or 0.0 for s in result.summary]
    ax.fill_between(xs, lo, hi, color=PALETTE[0], alpha=0.15, linewidth=0)
    if result.slo:
        good = []
        for s in result.summary:
            vals = [lv.goodput.output_goodput or 0.0 for lv in result.levels if lv.load == s.load and lv.goodput]
            good.append(sum(vals) / len(vals) if vals else 0.0)
        ax.plot(xs, good, marker="s", color=PALETTE[2], label="goodput (output tok/s of SLO-conforming requests)")
        for s, y in zip(result.summary, thr):
            ax.annotate("meets SLO" if s.meets_slo else "misses SLO", (s.load, y), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=7, color="#009E73" if s.meets_slo else "#D55E00")
    sat = result.saturation
    if sat and sat.load is not None:
        ax.axvline(sat.load, color="#D55E00", linestyle=":", label=f"saturation point ({sat.load:g})")
    ax.set_xlabel("concurrency" if result.plan.mode == "concurrency" else "requested rate (req/s)")
    ax.set_ylabel("tokens / s")
    ax.set_title("SLO frontier: throughput and goodput against offered load")
    ax.legend(fontsize=7)
    return to_png(fig)


def _fmt(x: float | None, scale: float = 1.0, digits: str = ".3g") -> str:
    return "–" if x is None else format(x * scale, digits)


def _table(result: LoadResult) -> str:
    head = ("load", "repeat", "ok", "failed", "req/s", "out tok/s", "achieved", "client-limited",
            *(f"{n} {s} (ms)" for _, n in METRICS for s in ("p50", "p90", "p99")), "goodput req/s", "within SLO")
    rows = []
    for lv in result.levels:
        m, a = lv.metrics, lv.achieved
        got = (f"{_fmt(a.send_rate)} req/s sent" if lv.mode == "rate" else f"{_fmt(a.mean_concurrency)} in flight")
        cells = [f"{lv.load:g}", str(lv.repeat + 1), str(m.completed), str(m.failed), _fmt(m.request_throughput),
                 _fmt(m.output_throughput), got, "yes" if a.client_limited else "no"]
        for metric, _ in METRICS:
            d = getattr(m, metric)
            cells += [_fmt(d.median, 1000), _fmt(d.p90, 1000), _fmt(d.p99, 1000)]
        cells += [_fmt(lv.goodput.request_goodput) if lv.goodput else "–",
                  f"{lv.goodput.attainment:.0%}" if lv.goodput and lv.goodput.attainment is not None else "–"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>")


def render(result: LoadResult) -> str:
    e = html.escape
    parts = [f"<h1>Load test: {e(result.model)}</h1>",
             f"<p>status <b>{e(result.status)}</b>{': ' + e(result.status_reason) if result.status_reason else ''} · "
             f"{e(result.plan.mode)} {', '.join(f'{x:g}' for x in result.plan.loads)}"
             f"{' · arrivals ' + e(result.plan.arrivals) if result.plan.arrivals else ''} · {result.plan.requests} requests per level · "
             f"{result.plan.repeats} repeat(s) · warm-up {result.warmup.requests if result.warmup else 0} request(s), excluded</p>",
             f"<p>workload: {e(result.workload.source)} over the {e(result.workload.endpoint)} endpoint, {result.workload.prompts} prompts, "
             f"mean input {_fmt(result.workload.mean_input_tokens)} tokens, max_tokens {result.workload.max_tokens}"
             f"{', fixed output by ' + e(result.workload.fixed_output_by) if result.workload.fixed_output_by else ''}</p>"]
    if result.served:
        s = result.served
        parts.append(f"<p>server: {e(s.engine)} {e(s.version or '')} started by harness on port {s.port}, ready in {s.ready_s:.1f} s, "
                     f"{e(s.exit or '')}</p>")
    if result.slo:
        parts.append(f"<p>SLO: {e(result.slo.describe())}</p>")
    sat = result.saturation
    if sat:
        parts.append(f"<p>saturation point: <b>{_fmt(sat.load)}</b> ({e(sat.criterion)}){' — ' + e(sat.reason) if sat.reason else ''}, "
                     f"{_fmt(sat.output_throughput)} output tok/s</p>")
    if result.cost:
        c = result.cost
        parts.append(f"<p>cost: {('$' + _fmt(c.usd_per_1m_output_tokens) + ' per 1M output tokens') if c.usd_per_1m_output_tokens else e(c.reason or '')}"
                     f" at ${_fmt(c.price_per_hour_usd)}/h ({e(c.price_source)})</p>")
        if c.by_load:
            parts.append("<table><tr><th>load</th><th>output tok/s</th><th>$ per 1M output tokens</th><th>meets SLO</th></tr>" + "".join(
                f"<tr><td>{p.load:g}</td><td>{_fmt(p.output_throughput)}</td><td>{_fmt(p.usd_per_1m_output_tokens)}</td>"
                f"<td>{'–' if p.meets_slo is None else ('yes' if p.meets_slo else 'no')}</td></tr>" for p in c.by_load) + "</table>")
        if c.verdict:
            parts.append(f"<p><b>{e(c.verdict)}</b></p><ul>" + "".join(f"<li>{e(x)}</li>" for x in c.caveats) + "</ul>")
    for w in result.warnings:
        parts.append(f"<p class='warn'>warning: {e(w)}</p>")
    for png, caption in ((latency_figure(result), "latency versus throughput"), (frontier_figure(result), "SLO frontier")):
        if png:
            parts.append(f"<figure><img alt='{e(caption)}' src='{data_uri(png)}'><figcaption>{e(caption)}</figcaption></figure>")
    parts.append("<h2>Levels</h2>" + _table(result))
    parts.append(f"<p>machine: {e(str(result.machine))}<br>versions: {e(str(result.versions))}</p>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#1d2733}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #d6dce3;padding:3px 6px;text-align:right}"
             ".warn{color:#D55E00}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>load {e(result.model)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"


def write_report(folder: Path, result: LoadResult) -> Path:
    path = folder / REPORT
    write_text_atomic(path, render(result))
    return path
