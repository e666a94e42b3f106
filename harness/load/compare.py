"""`harness compare A B` for two (or more) load folders: per load level, the figures side by side,
with the ratio of each to the first folder's, and the saturation points and costs.

Levels are matched by (mode, load); figures of a load that has several repeats are their mean.
Writes load_comparison.md and load_comparison.json into the output folder, and prints the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.load.folder import is_load_folder, read_result
from harness.load.schema import LoadResult
from harness.results.store import write_json_atomic, write_text_atomic

FIGURES = (("output tok/s", "output_throughput", None), ("req/s", "request_throughput", None),
           ("TTFT p50 s", "ttft_s", "median"), ("TTFT p99 s", "ttft_s", "p99"), ("TPOT p50 s", "tpot_s", "median"),
           ("ITL p50 s", "itl_s", "median"), ("E2EL p99 s", "e2el_s", "p99"))


def _figures(result: LoadResult) -> dict[tuple[str, float], dict[str, float | None]]:
    out: dict[tuple[str, float], dict[str, float | None]] = {}
    by: dict[tuple[str, float], list] = {}
    for lv in result.levels:
        by.setdefault((lv.mode, lv.load), []).append(lv)
    for key, lvs in by.items():
        row: dict[str, float | None] = {}
        for name, attr, stat in FIGURES:
            vals = [getattr(getattr(lv.metrics, attr), stat) if stat else getattr(lv.metrics, attr) for lv in lvs]
            xs = [v for v in vals if v is not None]
            row[name] = sum(xs) / len(xs) if xs else None
        out[key] = row
    return out


def compare_loads(folders: list[str], output_dir: str | Path) -> dict:
    bad = [f for f in folders if not is_load_folder(f)]
    if bad:
        raise ConfigError(f"{bad[0]} is not a load folder (no load.json) while others are",
                          "compare load folders with load folders, and run folders with run folders")
    if len(folders) < 2:
        raise ConfigError("compare needs at least two load folders", "e.g. harness compare results/A results/B")
    results = [read_result(f) for f in folders]
    figs = [_figures(r) for r in results]
    keys = sorted({k for f in figs for k in f}, key=lambda k: (k[0], k[1]))
    labels = [f"{Path(f).name}" for f in folders]
    rows: list[dict[str, Any]] = []
    for key in keys:
        for name, _, _ in FIGURES:
            vals = [f.get(key, {}).get(name) for f in figs]
            base = vals[0]
            ratios = [None if v is None or not base else v / base for v in vals]
            rows.append({"mode": key[0], "load": key[1], "figure": name, "values": vals, "ratio_to_first": ratios})
    sats: list[dict[str, Any]] = [{"folder": lab, "saturation": r.saturation.model_dump() if r.saturation else None,
             "usd_per_1m_output_tokens": r.cost.usd_per_1m_output_tokens if r.cost else None, "status": r.status,
             "model": r.model, "engine": r.served.engine if r.served else "external"} for lab, r in zip(labels, results)]
    out = {"folders": labels, "rows": rows, "saturation": sats}
    md = ["# Load comparison", "", "| load | figure | " + " | ".join(labels) + " | ratio to first |", "|---|---|" + "---|" * (len(labels) + 1)]
    for r in rows:
        shown = " | ".join("–" if v is None else f"{v:.4g}" for v in r["values"])
        ratio = ", ".join("–" if x is None else f"{x:.3g}" for x in r["ratio_to_first"][1:])
        md.append(f"| {r['mode']} {r['load']:g} | {r['figure']} | {shown} | {ratio} |")
    md += ["", "| folder | model | engine | status | saturation | $ per 1M output |", "|---|---|---|---|---|---|"]
    for s in sats:
        sat = s["saturation"] or {}
        usd = s["usd_per_1m_output_tokens"]
        md.append(f"| {s['folder']} | {s['model']} | {s['engine']} | {s['status']} | {sat.get('load')} | {'–' if usd is None else f'{usd:.3g}'} |")
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "load_comparison.json", out)
    write_text_atomic(folder / "load_comparison.md", "\n".join(md) + "\n")
    out["markdown"] = "\n".join(md)
    return out


def cmd_compare_loads(folders: list[str], output_dir: str) -> int:
    out = compare_loads(folders, output_dir)
    print(out["markdown"])
    print(f"wrote {output_dir}: load_comparison.json, load_comparison.md")
    return 0
