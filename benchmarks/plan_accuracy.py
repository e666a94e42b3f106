"""Plan, then run, a set of varied jobs and compare the planned whole-run time with the wall clock.

Each job is planned with `harness plan --json` (time.expected_s and time.range_s) and then run with
`harness run` in a fresh process, timed from outside (start-up, imports, load, warm-up, generation,
scoring and reports: what a user waits for). The jobs vary the architecture (random:tiny, a 0.5B
Qwen2.5, a 135M SmolLM2 GGUF on llama.cpp when it is present), the batch size, the output length and
the task. Target: every ratio actual/planned within 0.5x-2x.

    python benchmarks/plan_accuracy.py [--quick] [--output docs/cpu-2026-12-06-plan-accuracy.json]

Runs use the caller's HARNESS_CACHE, so the plans learn from the runs before them, as a user's do;
`--fresh-cache` gives every plan an empty cache (only the profile stored with the harness).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("HARNESS_SHARED") or Path(__file__).resolve().parents[2] / "shared")  # the project's ../shared


def jobs(quick: bool, data: Path | None) -> list[tuple[str, list[str]]]:
    out = [
        ("tiny b4 48 tok synthetic", ["--model", "random:tiny", "--tasks", "synthetic", "--limit", "12", "--max-new-tokens", "48", "--batch-size", "4"]),
        ("tiny b1 16 tok synthetic", ["--model", "random:tiny", "--tasks", "synthetic", "--limit", "4", "--max-new-tokens", "16", "--batch-size", "1"]),
        ("0.5B b2 16 tok synthetic", ["--model", "random:qwen2.5-0.5b-instruct", "--tasks", "synthetic", "--limit", "4", "--max-new-tokens", "16",
                                      "--batch-size", "2"]),
    ]
    if data is not None:
        out.append(("0.5B b1 24 tok gsm8k", ["--model", "random:qwen2.5-0.5b-instruct", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                                             "--max-new-tokens", "24", "--batch-size", "1"]))
    if not quick:
        out.append(("tiny b8 96 tok synthetic", ["--model", "random:tiny", "--tasks", "synthetic", "--limit", "16", "--max-new-tokens", "96",
                                                 "--batch-size", "8"]))
    return out


def one(name: str, args: list[str], tmp: Path, env: dict) -> dict:
    plan = subprocess.run(["harness", "plan", *args, "--json"], capture_output=True, text=True, env=env, timeout=120)
    if plan.returncode != 0:
        return {"job": name, "args": args, "error": f"plan: {plan.stderr.strip()[-200:]}"}
    p = json.loads(plan.stdout)
    load_before = os.getloadavg()[0] / (os.cpu_count() or 1)
    t0 = time.perf_counter()
    run = subprocess.run(["harness", "run", *args, "--output-dir", str(tmp / name.replace(" ", "_")), "--quiet"], capture_output=True, text=True,
                         env=env, timeout=3600)
    actual = time.perf_counter() - t0
    if run.returncode != 0:
        return {"job": name, "args": args, "error": f"run: {run.stderr.strip()[-200:]}"}
    exp = p["time"]["expected_s"]
    return {"job": name, "args": args, "planned_s": exp, "range_s": p["time"]["range_s"], "actual_s": actual, "ratio": actual / exp,
            "within_0.5x_2x": 0.5 <= actual / exp <= 2.0, "phases_s": p["time"]["phases_s"], "sources": p["time"]["sources"],
            "load_per_core_before": load_before, "load_per_core_after": os.getloadavg()[0] / (os.cpu_count() or 1),
            "dtype": p["device"]["dtype"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer jobs")
    ap.add_argument("--fresh-cache", action="store_true", help="each plan with an empty HARNESS_CACHE")
    ap.add_argument("--output", help="write the rows as JSON here")
    a = ap.parse_args()
    data = None
    src = SHARED / "data" / "gsm8k" / "test.jsonl"
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        if src.is_file():
            data = tmp / "g.jsonl"
            data.write_text("".join(src.read_text().splitlines(keepends=True)[:3]))
        print(f"{'job':<28} {'planned':>9} {'range':>15} {'actual':>9} {'ratio':>6}")
        for name, args in jobs(a.quick, data):
            env = dict(os.environ, HF_HUB_OFFLINE="1")
            if a.fresh_cache:
                env["HARNESS_CACHE"] = tempfile.mkdtemp(dir=tmp)
            r = one(name, args, tmp, env)
            rows.append(r)
            if "error" in r:
                print(f"{name:<28} {r['error']}")
                continue
            print(f"{name:<28} {r['planned_s']:>8.1f}s {r['range_s'][0]:>6.0f}-{r['range_s'][1]:<6.0f}s {r['actual_s']:>8.1f}s {r['ratio']:>6.2f}",
                  flush=True)
    ok = [r for r in rows if r.get("within_0.5x_2x")]
    print(f"{len(ok)}/{len(rows)} jobs within 0.5x-2x of the plan")
    if a.output:
        Path(a.output).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": os.uname().nodename, "cpu_count": os.cpu_count(),
                                              "rows": rows}, indent=1))
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
