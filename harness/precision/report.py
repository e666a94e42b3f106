"""Renders a precision matrix: the console table, matrix.md, and report.html with the accuracy-versus-memory
and accuracy-versus-speed charts and their Pareto frontiers. Computes nothing new: every number is
matrix.json's (harness/precision/schema.py).
"""

from __future__ import annotations

import html

from harness.precision.schema import MatrixResult, Row
from harness.reports.format import pct

COLUMNS = ("precision", "status", "accuracy [95%]", "Δ vs ref [95%]", "McNemar p", "non-inferiority", "KL", "ppl",
           "out tok Δ", "trunc Δ", "weights", "peak mem", "tok/s", "$/1M tok", "$/correct")


def _gib(n: int | None) -> str:
    return "—" if n is None else (f"{n / 2**30:.2f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:.0f} MiB")


def _num(x: float | None, fmt: str = "{:.3g}") -> str:
    return "—" if x is None else fmt.format(x)


def _pts(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}"


def cells(row: Row, task: str) -> list[str]:
    c = row.tasks.get(task)
    acc = "—" if c is None or c.accuracy is None else f"{pct(c.accuracy)}" + (
        f" [{pct(c.accuracy_ci95[0])}, {pct(c.accuracy_ci95[1])}]" if c.accuracy_ci95 else "")
    paired = c.paired if c else None
    diff = "ref" if row.is_reference else ("—" if paired is None else f"{_pts(paired.diff)} [{_pts(paired.ci95[0])}, {_pts(paired.ci95[1])}]")
    p = "—" if paired is None else f"{paired.p_value:.3g}"
    ni = "ref" if row.is_reference else ("—" if c is None or c.non_inferiority is None else c.non_inferiority.text.split(":")[0]
                                         + (f" (+{c.non_inferiority.more_problems_needed:,} problems)" if c.non_inferiority.more_problems_needed else ""))
    d = row.divergence
    status = row.status if row.status == "complete" else f"{row.status}: {row.reason or ''}"
    return [row.precision + (" (ref)" if row.is_reference else ""), status[:60], acc, diff, p, ni,
            _num(d.kl_divergence_mean if d else None, "{:.4f}"), _num(d.perplexity if d else None, "{:.2f}"),
            _num(c.output_tokens_shift if c else None, "{:+.1f}"), _pts(c.truncation_shift if c else None),
            _gib(row.weight_bytes), _gib(row.peak_memory_bytes), _num(row.output_tokens_per_s, "{:.1f}"),
            _num(row.usd_per_1m_output_tokens, "{:.3g}"), _num(row.usd_per_correct, "{:.3g}")]


def console_table(m: MatrixResult) -> str:
    out = []
    for task in m.tasks:
        table = [list(COLUMNS)] + [cells(r, task) for r in m.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
        out.append(f"{task}: {len(m.rows)} precisions, reference {m.reference}, margin {100 * m.margin:g} points")
        out += ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in table]
    out += [f"note: {n}" for n in m.notes]
    if m.missing:
        out.append("missing: " + "; ".join(m.missing))
    if m.same_items_and_seeds is not None:
        out.append("same items and seeds in every complete variant: " + ("yes" if m.same_items_and_seeds else "NO"))
    from harness.precision.claims import describe

    out += [f"claim {describe(j)}" for j in m.claims]
    return "\n".join(out)


def render_markdown(m: MatrixResult) -> str:
    lines = [f"# Precision matrix: {m.model}", "", (f"Status {m.status}; reference **{m.reference}**; non-inferiority margin "
             f"{100 * m.margin:g} points (95% two-sided interval); device {m.device}; created {m.created_utc}."), ""]
    lines += [f"- {n}" for n in m.notes] + [""]
    for task in m.tasks:
        lines += [f"## {task}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(x.replace("|", "/") for x in cells(r, task)) + " |" for r in m.rows]
        lines.append("")
    lines += [f"KL: {m.kl_method}; texts: {m.kl_texts}.", ""]
    if m.missing:
        lines += ["## Missing", ""] + [f"- {x}" for x in m.missing] + [""]
    if m.claims:
        from harness.precision.claims import describe

        lines += ["## Published quantisation claims", ""] + [f"- {describe(j)}" for j in m.claims] + [""]
    return "\n".join(lines)


def _charts(m: MatrixResult) -> list[tuple[str, str | None, str]]:
    """(title, data URI or None, note) for accuracy vs weight memory and vs time per token."""
    from harness.reports import plots

    out = []
    for title, xlabel, get in (("accuracy vs weight memory", "weights (GiB)", lambda r: r.weight_bytes / 2**30 if r.weight_bytes else None),
                               ("accuracy vs speed", "ms per output token", lambda r: 1000 / r.output_tokens_per_s if r.output_tokens_per_s else None)):
        panels: dict[str, list] = {}
        left = []
        for task in m.tasks:
            for r in m.rows:
                c = r.tasks.get(task)
                x = get(r)
                if c is None or c.accuracy is None or x is None:
                    left.append(r.precision)
                    continue
                panels.setdefault(task, []).append(plots.Point(x=float(x), y=float(c.accuracy), ci95=c.accuracy_ci95, label=r.precision,
                                                               color_key=r.engine, marker_key=r.kind))
        frontier = {t: [pts[i].label for i in plots.pareto_front([(p.x, p.y) for p in pts])] for t, pts in panels.items()}
        png = plots.pareto_plot(panels, xlabel=xlabel, title=f"{title} (up and left is better)")
        note = "; ".join(f"{t}: Pareto frontier {', '.join(f)}" for t, f in frontier.items())
        if left:
            note += f"; left out (no value): {', '.join(sorted(set(left)))}"
        out.append((title, plots.data_uri(png) if png else None, note))
    return out


def render_html(m: MatrixResult) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>precision matrix</title><style>",
             ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}.note{color:#555}</style></head><body>"),
             f"<h1>Precision matrix: {e(m.model)}</h1>",
             (f"<p>Status <b>{e(m.status)}</b>; reference <b>{e(m.reference)}</b>; non-inferiority margin {100 * m.margin:g} points "
             f"(95% two-sided interval); device {e(str(m.device))}; created {e(m.created_utc)}.</p><ul>")]
    parts += [f"<li>{e(n)}</li>" for n in m.notes] + ["</ul>"]
    for task in m.tasks:
        parts.append(f"<h2>{e(task)}</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(x)}</td>" for x in cells(r, task)) + "</tr>" for r in m.rows]
        parts.append("</table>")
    for title, uri, note in _charts(m):
        parts.append(f"<h2>{e(title)}</h2>")
        parts.append(f"<img alt='{e(title)}' src='{uri}'>" if uri else "<p>no variant has both values yet</p>")
        parts.append(f"<p class='note'>{e(note)}</p>")
    parts.append(f"<p class='note'>KL: {e(m.kl_method)}; texts: {e(m.kl_texts)}.</p>")
    if m.missing:
        parts += ["<h2>Missing</h2><ul>"] + [f"<li>{e(x)}</li>" for x in m.missing] + ["</ul>"]
    if m.claims:
        from harness.precision.claims import describe

        parts += ["<h2>Published quantisation claims</h2><ul>"] + [f"<li>{e(describe(j))}</li>" for j in m.claims] + ["</ul>"]
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["console_table", "render_html", "render_markdown"]
