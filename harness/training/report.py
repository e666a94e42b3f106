"""Console text, report.md and report.html of a `harness bench --train` result (train.json).

All three render the same rows from train.json alone and compute nothing new, so a report can be
re-rendered from the result it describes. `write_reports` writes train.json atomically first.
"""

from __future__ import annotations

import json
from pathlib import Path


def _si(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if abs(x) >= 1e18:
        return f"{x:.3g} {unit}"
    for prefix, size in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def _pct(x: float | None) -> str:
    return "—" if x is None else (f"{100 * x:.2g}%" if abs(x) < 0.01 else f"{100 * x:.1f}%")


def _usd(x: float | None) -> str:
    return "—" if x is None else f"${x:,.0f}"


def _gib(x: int | None) -> str:
    return "—" if x is None else f"{x / 2**30:.2f} GiB"


def _budget(t: dict) -> str:
    stopped = t["timed_steps"] < t["requested_steps"]
    return (f"; {t['timed_steps']} of {t['requested_steps']} requested: the {t['budget_s']:g} s time budget was reached" if stopped else "") + \
        ("; fused AdamW" if t["fused_adamw"] else "; AdamW (no fused kernel here)")


def rows(d: dict) -> list[tuple[str, str]]:
    """(label, value) rows shared by the console, markdown and HTML renderings."""
    m, dev, sh, t, fl, th, pk, mfu, mem = (d[k] for k in ("model", "device", "shape", "timing", "flops", "throughput", "peak", "mfu", "memory"))
    kind = "MoE" if m["moe"] else "dense"
    out = [("model", f"{m['name']} ({m['model_type']}, {kind}, random weights, {m['num_hidden_layers']} layers, {m['num_parameters']:,} parameters)"),
           ("shape overrides", "; ".join(m["overrides"]) or "none: the real config"),
           ("device", f"{dev['type']} — {dev['name']}; dtype {dev['dtype']} ({dev['dtype_reason']})"),
           ("step", f"micro-batch {sh['micro_batch']} x seq-len {sh['seq_len']} = {sh['tokens_per_step']:,} tokens; forward + backward + AdamW"),
           ("timing", f"{t['timed_steps']} timed step{'' if t['timed_steps'] == 1 else 's'} after {t['warmup_steps']} warm-up: median {t['step_s_median']:.3g} s/step "
                      f"(all: {', '.join(f'{s:.3g}' for s in t['step_s'])} s)" + _budget(t)),
           ("model FLOPs", f"{_si(fl['per_token']['total'], 'FLOP')}/token x {sh['tokens_per_step']:,} = {_si(fl['per_step'], 'FLOP')}/step "
                           f"({fl['method']}; active matmul weights {m['active_matmul_params']:,})"),
           ("throughput", f"{th['tokens_per_s']:,.1f} tokens/s; achieved {_si(th['achieved_flops_per_s'], 'FLOP/s')}"),
           ("MFU vs measured matmul peak", f"{_pct(mfu['vs_measured_matmul'])} of {_si(pk['measured_matmul_flops_per_s'], 'FLOP/s')} ({pk['measured_method']})")]
    if pk["published"]:
        p = pk["published"]
        out.append(("MFU vs published peak", f"{_pct(mfu['vs_published'])} of {_si(p['flops'], 'FLOP/s')} ({p['gpu']} {p['precision']}; {p['status']}: {p['source']})"))
    else:
        out.append(("MFU vs published peak", f"— ({pk['published_note']})"))
    dev_peak = mem["device_peak"]
    out.append(("peak memory", f"host RSS {_gib(mem['host_peak_rss_bytes'])}" + (f"; {dev['type']} allocated {_gib(dev_peak['allocated'])}, "
                                                                                f"reserved {_gib(dev_peak['reserved'])}" if dev_peak else "") + f" ({mem['note']})"))
    p = d.get("projection")
    if p:
        out.append(("projection", projection_sentence(p)))
    return out


def projection_sentence(p: dict) -> str:
    price = (f" = {_usd(p['usd'])} at your ${p['price_per_hour']:g}/hour" if p["usd"] is not None
             else f" = {_usd(p['usd_at_published_price'])} at the report's ${p['published_price']:g}/GPU-hour (pass --price-per-hour for yours)")
    return (f"at the MFU measured here, {p['display']}'s {p['tokens'] / 1e12:g}T {p['stage']} tokens ({_si(p['model_flops'], 'FLOP')}) would take "
            f"{p['device_hours']:,.3g} {_unit(p.get('device'))}{price}; published: {p['published_gpu_hours']:,.0f} "
            f"{p['published_gpu']} GPU-hours")


def _unit(device_type: str | None) -> str:
    return "hours of this machine's CPU" if device_type == "cpu" else "GPU-hours of this device"


def render_text(d: dict) -> str:
    out = ["harness bench --train: one measured training step", ""]
    out += [f"{k}: {v}" for k, v in rows(d)]
    return "\n".join(out) + "\n"


def render_markdown(d: dict) -> str:
    out = [f"# Training step: {d['model']['name']}", "", f"- created {d['created_utc']}; schema {d['schema_version']}", "",
           "| measure | value |", "|---|---|"]
    out += [f"| {k} | {v.replace('|', '/')} |" for k, v in rows(d)]
    if d.get("projection"):
        out += ["", "## Projection", "", projection_sentence(d["projection"]) + "."]
    out += ["", "Model FLOPs follow the PaLM convention (6 x active matmul weights + attention); see docs/training-cost.md for the method and its limits."]
    return "\n".join(out) + "\n"


def render_html(d: dict) -> str:
    """The same rows as report.md, through a jinja2 template with autoescaping and report.html's styles."""
    from harness.reports.html import render_page

    projection = projection_sentence(d["projection"]) if d.get("projection") else None
    return render_page("train.html.j2", name=d["model"]["name"], created=d["created_utc"], rows=rows(d), projection=projection)


def write_reports(run_dir: Path, doc: dict, *, with_result: bool = True) -> list[Path]:
    """train.json (atomically, first, unless re-rendering), then report.md and report.html from it."""
    from harness.results import write_text_atomic

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if with_result:
        write_text_atomic(run_dir / "train.json", json.dumps(doc, indent=2) + "\n")
    paths = [run_dir / "report.md", run_dir / "report.html"]
    write_text_atomic(paths[0], render_markdown(doc))
    write_text_atomic(paths[1], render_html(doc))
    return paths
