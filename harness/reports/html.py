"""report.html: one self-contained page for one run, rendered from run.json and samples.jsonl.

Self-contained means no external URL of any kind: CSS is inline, figures are `data:` PNGs, there
are no fonts to fetch and no scripts (a Content-Security-Policy forbids them, so even a mistake
in escaping cannot run a model's output as code). Every piece of text that came from a model, a
dataset or a config is HTML-escaped. Like report.md, it summarises what was measured and
computes nothing new beyond histograms of per-sample values.

The markup is a jinja2 template with autoescaping (templates/report.html.j2, styles in
templates/report.css); this module gathers what it shows: the run, the figures as `data:` PNGs
and the sample rows. Numbers are written by harness/reports/format.py, as in report.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources

from harness.reports import format as fmt
from harness.reports import plots
from harness.results.schema import RunResult, as_run

MAX_SAMPLES = 500  # beyond this the page gets slow to open; samples.jsonl holds them all
CLIP_HEAD, CLIP_TAIL = 6000, 2000  # characters of one long text kept from its start and end
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PERF_FIELDS = (("ttft_s", "time to first token (TTFT)"), ("tpot_s", "time per output token (TPOT)"), ("e2e_s", "end-to-end latency"))


def clip(text: str | None, head: int = CLIP_HEAD, tail: int = CLIP_TAIL) -> str:
    """Long texts keep their start and end; the middle is replaced by a count (the full text is in samples.jsonl)."""
    text = text or ""
    if len(text) <= head + tail + 200:
        return text
    return f"{text[:head]}\n\n[… {len(text) - head - tail:,} characters omitted: the full text is in samples.jsonl …]\n\n{text[-tail:]}"


def verdict_class(verdict: str | None) -> str:
    v = (verdict or "").lower()
    return {"consistent": "good", "below": "bad", "above": "mid", "not_comparable": "mid"}.get(v, "")


def sample_verdict(row: dict) -> tuple[str, str]:
    """(label, css class) of one sample's outcome."""
    if row.get("finish_reason") == "error":
        return "error", "bad"
    if row.get("correct"):
        return "correct", "good"
    if row.get("finish_reason") == "length":
        return "truncated", "mid"
    if row.get("correct_lenient"):
        return "lenient only", "mid"
    return "wrong", "bad"


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters.update(pct=fmt.pct, pct_sig=fmt.pct_sig, pct_interval=fmt.pct_interval, num=fmt.num, count=fmt.count,
                       nbytes=fmt.nbytes, usd=fmt.usd, seconds=fmt.seconds, clip=clip,
                       dash=lambda x: fmt.NONE if x is None else x,
                       yes=lambda x: fmt.NONE if x is None else ("yes" if x else "no"),
                       pts_suffix=lambda x: fmt.NONE if x is None else f"{fmt.pts(x)} pts")
    from harness.claims.verdicts import verdict_label

    env.globals.update(verdict_class=verdict_class, verdict_label=verdict_label, csp=CSP)
    return env


@functools.lru_cache(maxsize=1)
def css() -> str:
    """The pages' shared style sheet (templates/report.css), inlined into each page."""
    return (resources.files("harness.reports") / "templates" / "report.css").read_text(encoding="utf-8")


def render_page(template: str, **context) -> str:
    """One of templates/*.html.j2, autoescaped, with the shared filters, CSP and style sheet."""
    return _environment().get_template(template).render(css=css(), **context) + "\n"


def _figure(png: bytes | None, caption: str, missing: str) -> dict:
    return {"uri": plots.data_uri(png) if png is not None else None, "caption": caption, "missing": missing}


def _unmeasured(samples: list[dict], field: str) -> str:
    reasons = {r["unmeasured"][field] for r in samples if field in (r.get("unmeasured") or {})}
    return "; ".join(sorted(reasons)) or "not measured in this run"


def _latency_figures(run: RunResult, samples: list[dict], step: Callable[[str], None]) -> list[dict]:
    out = []
    for key, label in PERF_FIELDS:
        vals = [r.get(key) for r in samples]
        p = getattr(run.perf, key) if run.perf else None
        p50, p90 = (p.p50, p.p90) if p else (None, None)
        # Sub-second latencies read better in milliseconds.
        scale, unit = (1000.0, "ms") if max((v for v in vals if v is not None), default=1.0) < 1 else (1.0, "s")
        png = plots.histogram([None if v is None else v * scale for v in vals], title=label, xlabel=unit,
                              # a None line is skipped by histogram (keeping the other's dash and label slot);
                              # plots.histogram's vlines annotation (dict[str, float]) does not admit that
                              vlines={"p50": None if p50 is None else p50 * scale, "p90": None if p90 is None else p90 * scale})
        n = sum(v is not None for v in vals)
        out.append(_figure(png, f"{label}: {n:,} requests · p50 {fmt.seconds(p50)} · p90 {fmt.seconds(p90)}", _unmeasured(samples, key)))
        step(f"{key} histogram")
    png = plots.scatter([r.get("output_tokens") for r in samples], [r.get("e2e_s") for r in samples],
                        title="latency vs answer length", xlabel="output tokens", ylabel="end-to-end (s)")
    out.append(_figure(png, "end-to-end latency against output tokens (slope = time per token)", "needs output tokens and e2e"))
    step("latency scatter")
    return out


def _length_figures(budget, samples: list[dict], step: Callable[[str], None]) -> list[dict]:
    truncated = [r.get("finish_reason") == "length" for r in samples]
    thinking = [r.get("thinking_tokens") for r in samples]
    think = None
    if any(thinking):  # all zero: the protocol has no thinking trace, and a bar at 0 says nothing
        think = plots.histogram(thinking, title="thinking length", xlabel="thinking tokens",
                                highlight=truncated, highlight_label="truncated (hit the budget)")
    think_missing = "no sample has a thinking trace" if any(t is not None for t in thinking) else "no thinking tokens counted"
    step("thinking histogram")
    outlen = plots.histogram([r.get("output_tokens") for r in samples], title="output length (thinking included)",
                             xlabel="output tokens", highlight=truncated, highlight_label="truncated (hit the budget)",
                             vlines={"budget": budget} if isinstance(budget, (int, float)) else None)
    step("output-length histogram")
    return [_figure(think, "thinking tokens per sample", think_missing), _figure(outlen, "output tokens per sample", "output tokens not measured")]


def _levels(run: RunResult, step: Callable[[str], None]) -> list[dict]:
    out = []
    for name, t in run.tasks.items():
        if not t.by_level:
            continue
        rows = {lv: v.model_dump() for lv, v in t.by_level.items()}
        png = plots.level_bars(rows, title=f"{name}: accuracy by level")
        step(f"{name} levels")
        out.append({"task": name, "rows": rows, "figure": _figure(png, f"{name} accuracy by level", "no levels")})
    return out


def render_html(run: RunResult | dict, samples: list[dict], *, max_samples: int = MAX_SAMPLES,
                step: Callable[[str], None] | None = None) -> str:
    """The whole page. `step(description)` is called after each figure or section (for a progress bar)."""
    step = step or (lambda _: None)
    run = as_run(run)
    levels = _levels(run, step)
    latency = _latency_figures(run, samples, step)
    budget = run.config.get("max_new_tokens")
    lengths = _length_figures(budget, samples, step)
    shown = samples[:max_samples]
    caption = (f"Showing the first {len(shown):,} of {len(samples):,} samples; samples.jsonl holds them all."
               if len(samples) > len(shown) else f"All {len(samples):,} samples.")
    # anchors come from our counter, never from data, so they are always valid ids
    rows = [{"index": i, "anchor": f"s-{i}", "row": r, **dict(zip(("label", "cls"), sample_verdict(r)))} for i, r in enumerate(shown)]
    step("samples")
    nav = [("accuracy", "Accuracy"), ("claims", "Claims"), ("performance", "Performance"), ("lengths", "Lengths"),
           ("levels", "By level"), ("samples", "Samples")]
    nav = [(k, label) for k, label in nav if (k != "claims" or run.claims) and (k != "levels" or levels)]
    differences = sorted({x for c in run.claims for x in c.protocol_differences})
    differences += sorted({f"caveat: {x}" for c in run.claims for x in c.caveats})
    differences += [f"data, {name} ({t.data.selection}): {t.data.detail}" for name, t in run.tasks.items()
                    if t.data is not None and t.data.selection != "official"]
    return render_page("report.html.j2", run=run, nav=nav, perf_fields=PERF_FIELDS, latency_figures=latency, length_figures=lengths,
                       budget=budget, levels=levels, samples=rows, samples_caption=caption, claim_differences=differences)
