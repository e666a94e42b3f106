"""Figures for reports and comparisons, as PNG bytes: histograms, per-level bars, Pareto plots.

matplotlib is imported inside the functions (Agg backend, no display) so that importing this
module costs nothing and `harness --help` stays fast. Every plotting function returns PNG bytes,
or None when there is nothing to draw: a missing measurement is a note in the report, never a
crash and never an empty axis. `pareto_front` is pure and knows nothing about matplotlib.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

# One palette for every figure (colour-blind-safe Okabe-Ito order), so a model keeps its colour.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
ACCENT, WARN = "#0072B2", "#D55E00"
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.color": "#e3e7ec", "grid.linewidth": 0.8,
        "axes.edgecolor": "#8a94a0", "axes.axisbelow": True, "savefig.bbox": "tight",
    })
    return plt


def to_png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    # No "Software" tag: the same results render to the same bytes whatever matplotlib is installed.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """A `data:` URI, so a report embeds its images and needs no other file or network."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _bin_edges(xs: list[float], bins: int) -> list[float]:
    """Bin edges: integer counts (tokens) get whole-number bins, so no bar falls between two integers;
    a single distinct value gets one narrow bin around it instead of a unit-wide one."""
    lo, hi = min(xs), max(xs)
    # A few dozen samples spread over 30 bins would draw as isolated slivers.
    bins = min(bins, max(5, math.ceil(2 * math.sqrt(len(xs)))))
    if all(float(x).is_integer() for x in xs):
        width = max(1, math.ceil((hi - lo + 1) / bins))
        n = int((hi - lo) // width) + 1
        return [lo - 0.5 + width * i for i in range(n + 1)]
    if hi == lo:
        half = abs(lo) * 0.05 or 0.5
        return [lo - half, lo + half]
    return [lo + (hi - lo) * i / bins for i in range(bins + 1)]


def histogram(
    values: Sequence[float | None],
    *,
    title: str,
    xlabel: str,
    highlight: Sequence[bool] | None = None,
    highlight_label: str = "",
    vlines: dict[str, float | None] | None = None,  # a None value keeps its slot (style, label place) but draws nothing
    bins: int = 30,
) -> bytes | None:
    """A histogram of the non-None values; None when there are none.

    highlight: one flag per value (same order as `values`); flagged values are stacked in a second
    colour (e.g. truncated traces). vlines: label -> x for reference lines (p50, p90, a budget).
    """
    flags = list(highlight) if highlight is not None else [False] * len(values)
    if len(flags) != len(values):
        raise ValueError(f"histogram: {len(values)} values but {len(flags)} highlight flags")
    pairs = [(float(v), f) for v, f in zip(values, flags) if v is not None and math.isfinite(float(v))]
    if not pairs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    edges = _bin_edges([v for v, _ in pairs], bins)
    plain = [v for v, f in pairs if not f]
    marked = [v for v, f in pairs if f]
    data, colors, labels = [plain], [ACCENT], ["finished" if marked else None]
    if marked:
        data.append(marked)
        colors.append(WARN)
        labels.append(highlight_label or "highlighted")
    ax.hist(data, bins=edges, stacked=True, color=colors, label=labels, edgecolor="white", linewidth=0.5)
    for i, (name, x) in enumerate((vlines or {}).items()):
        if x is None:
            continue
        ax.axvline(x, color="#333333", linestyle=(0, (4, 2 + 2 * i)), linewidth=1)
        ax.annotate(name, (x, 1), xycoords=("data", "axes fraction"), xytext=(3, -10 - 10 * i), textcoords="offset points",
                    fontsize=8, color="#333333")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if all(v.is_integer() for v, _ in pairs):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    if marked:
        # Head-room above the tallest bar keeps the legend off the data.
        ax.set_ylim(top=ax.get_ylim()[1] * 1.3)
        ax.legend(frameon=False, fontsize=8, loc="upper left", ncol=2)
    return to_png(fig)


def scatter(xs: Sequence[float | None], ys: Sequence[float | None], *, title: str, xlabel: str, ylabel: str) -> bytes | None:
    """A plain scatter of the pairs where both values are present; None when there are none."""
    pts = [(float(x), float(y)) for x, y in zip(xs, ys) if x is not None and y is not None]
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color=ACCENT, alpha=0.7, linewidths=0)
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return to_png(fig)


def level_bars(by_level: dict[str, dict], *, title: str) -> bytes | None:
    """Accuracy per difficulty level with 95% interval whiskers (run.json `tasks.<t>.by_level`)."""
    levels = [(k, v) for k, v in by_level.items() if v.get("accuracy") is not None]
    if not levels:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    xs = range(len(levels))
    acc = [100 * v["accuracy"] for _, v in levels]
    err_lo = [max(0.0, a - 100 * (v.get("ci95") or [v["accuracy"]] * 2)[0]) for a, (_, v) in zip(acc, levels)]
    err_hi = [max(0.0, 100 * (v.get("ci95") or [v["accuracy"]] * 2)[1] - a) for a, (_, v) in zip(acc, levels)]
    ax.bar(xs, acc, color=ACCENT, width=0.65)
    ax.errorbar(xs, acc, yerr=[err_lo, err_hi], fmt="none", ecolor="#333333", capsize=3, linewidth=1)
    ax.set_xticks(list(xs), [f"{k}\nn={v.get('n', '?')}" for k, v in levels])
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, loc="left")
    return to_png(fig)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: lower x (cost) and higher y (accuracy) are better.

    A point is dominated when another has x <= and y >= with at least one strict. Ties (equal
    points) are all kept. Returned in increasing x.
    """
    front = []
    for i, (xi, yi) in enumerate(points):
        dominated = any(
            xj <= xi and yj >= yi and (xj < xi or yj > yi) for j, (xj, yj) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


@dataclass(frozen=True)
class Point:
    """One (run, task) on a Pareto plot. color_key and marker_key pick its colour and marker."""

    x: float
    y: float
    ci95: tuple[float, float] | None
    label: str
    color_key: str
    marker_key: str


def _linear_xlim(ax, xs: list[float]) -> None:
    """Start at zero when the data spread toward it (costs compare as ratios), else zoom on the data."""
    lo, hi = min(xs), max(xs)
    if hi <= 0:
        return
    if lo == hi:
        ax.set_xlim(0.8 * lo, 1.2 * hi)
    elif lo < 0.5 * hi:
        ax.set_xlim(0, hi * 1.08)
    else:
        pad = 0.15 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)


def pareto_plot(panels: dict[str, list[Point]], *, xlabel: str, title: str, ylabel: str = "accuracy (%)") -> bytes | None:
    """One panel per task: accuracy (y, in [0, 1]) against a cost (x) with the Pareto frontier drawn.

    Colours distinguish `color_key` (the model), markers distinguish `marker_key` (device, backend,
    dtype); each point is labelled. None when no panel has a point.
    """
    panels = {k: v for k, v in panels.items() if v}
    if not panels:
        return None
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    all_pts = [p for pts in panels.values() for p in pts]
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(dict.fromkeys(p.color_key for p in all_pts))}
    markers = {k: MARKERS[i % len(MARKERS)] for i, k in enumerate(dict.fromkeys(p.marker_key for p in all_pts))}
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (task, pts) in zip(axes.flat, panels.items()):
        for p in pts:
            yerr = None
            if p.ci95:
                yerr = [[max(0.0, 100 * (p.y - p.ci95[0]))], [max(0.0, 100 * (p.ci95[1] - p.y))]]
            ax.errorbar([p.x], [100 * p.y], yerr=yerr, fmt=markers[p.marker_key], color=colors[p.color_key],
                        markersize=8, capsize=3, elinewidth=1, markeredgecolor="white", markeredgewidth=0.8)
        front = [pts[i] for i in pareto_front([(p.x, p.y) for p in pts])]
        if len(front) > 1:
            ax.step([p.x for p in front], [100 * p.y for p in front], where="post", color="#333333",
                    linestyle="--", linewidth=1, zorder=0, label="Pareto frontier")
        for p in front:
            ax.scatter([p.x], [100 * p.y], s=220, facecolors="none", edgecolors="#333333", linewidths=1, zorder=0)
        xs = [p.x for p in pts]
        if min(xs) > 0 and max(xs) / min(xs) > 30:
            ax.set_xscale("log")
        else:
            _linear_xlim(ax, xs)
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        lo, hi = ax.get_xlim()
        placed: list[tuple[float, float]] = []
        for p in pts:
            # Labels of points in the right part of a panel go to their left, so they stay inside it;
            # a label that would overprint an earlier one near it is stacked above it.
            pos = (math.log(p.x / lo) / math.log(hi / lo)) if ax.get_xscale() == "log" else (p.x - lo) / ((hi - lo) or 1)
            right = pos > 0.55
            clash = sum(abs(pos - q) < 0.3 and abs(p.y - y) < 0.06 for q, y in placed)
            placed.append((pos, p.y))
            ax.annotate(p.label.replace(" · ", "\n", 1), (p.x, 100 * p.y), xytext=(-7 if right else 7, 4 + 22 * clash),
                        textcoords="offset points", fontsize=7, color="#333333", ha="right" if right else "left", va="bottom")
        ax.set_title(task, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-4.0, min(104.0, max(5.0, ax.get_ylim()[1])))  # below 0 so a 0% marker is not cut in half
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=k) for k, c in colors.items()]
    handles += [Line2D([], [], marker=m, linestyle="", color="#555555", label=k) for k, m in markers.items()]
    handles.append(Line2D([], [], marker="o", markersize=12, markerfacecolor="none", markeredgecolor="#333333",
                          linestyle="--", color="#333333", label="Pareto frontier (ringed)"))
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    fig.legend(handles=handles, loc="lower center", ncol=min(3, len(handles)), frameon=False, fontsize=8,
               bbox_to_anchor=(0.5, -0.02 - 0.045 * math.ceil(len(handles) / 3)))
    fig.tight_layout()
    return to_png(fig)
