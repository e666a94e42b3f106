"""Kill runs with SIGKILL at observed points of progress, resume them, and check nothing was lost,
repeated or changed.

    python benchmarks/crash_resume.py [--trials 20] [--limit 12] [--max-new-tokens 16] [--seed 0]

A clean, uninterrupted run gives the reference outputs and accuracy. Each attempt starts the same
run in its own process group and watches its folder; it kills the group with SIGKILL when the
progress it was given shows up: a chosen number of rows in samples.jsonl (1 .. limit-1), or,
every fifth attempt, the moment all rows are written and run.json is being written (its
temporary file exists, or the rows are complete but run.json is not there yet). A kill LANDED
when the run had not finished (no run.json saying complete) at the moment of the kill; only
landed kills count, and attempts go on until `--trials` kills have landed (at most 3x as many
attempts). Each landed kill is resumed with `harness run --resume DIR` until the run is complete.
Printed last: attempted, landed, resumed, lost, duplicated, changed; exit 0 only when every landed
kill resumed with 0 lost, 0 duplicated and 0 changed (outputs and accuracy equal to the clean run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def data_file(tmp: Path) -> Path:
    shared = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
    if shared.exists():
        return shared
    path = tmp / "gsm8k.jsonl"  # a stand-in when ../shared is absent
    path.write_text("".join(json.dumps({"question": f"Sam has {i} pens and buys {i + 2} more. How many pens?",
                                        "answer": f"#### {2 * i + 2}"}) + "\n" for i in range(200)))
    return path


def command(data: Path, limit: int, out: Path, tokens: int = 16) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
            "--limit", str(limit), "--batch-size", "1", "--max-new-tokens", str(tokens), "--quiet", "--output-dir", str(out)]


def rows_of(run_dir: Path) -> list[dict]:
    path = run_dir / "samples.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def count_rows(run_dir: Path) -> int:
    try:
        return (run_dir / "samples.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def the_run_dir(out: Path) -> Path | None:
    dirs = [p for p in out.glob("*") if p.is_dir()] if out.exists() else []
    return dirs[0] if dirs else None


def complete(run_dir: Path | None) -> bool:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("status") == "complete"
    except (OSError, ValueError, TypeError):
        return False


def kill_at(proc: subprocess.Popen, out: Path, rows: int | None, limit: int, timeout_s: float) -> bool:
    """Watch the run; SIGKILL its group at the trigger. True when the kill landed before it finished."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        run_dir = the_run_dir(out)
        if run_dir is not None:
            n = count_rows(run_dir)
            writing = n >= limit and (list(run_dir.glob(".run.json.*.tmp")) or not (run_dir / "run.json").exists())
            if (rows is not None and n >= rows) or (rows is None and writing):
                landed = not complete(run_dir)  # read before the kill: the run had not finished
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return landed and not complete(run_dir)
        time.sleep(0.002)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="landed kills to reach")
    ap.add_argument("--limit", type=int, default=12, help="samples per run (each is one batch: batch size 1)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="crash-resume-"))
    data = data_file(tmp)
    t0 = time.perf_counter()
    subprocess.run(command(data, args.limit, tmp / "clean", args.max_new_tokens), check=True)
    clean_s = time.perf_counter() - t0
    clean = the_run_dir(tmp / "clean")
    ref_acc = json.loads((clean / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]["accuracy"]["value"]
    ref = {(r["id"], r["sample"]): r["output"] for r in rows_of(clean)}
    attempted = landed = resumed = lost = duplicated = changed = 0
    while landed < args.trials and attempted < 3 * args.trials:
        attempted += 1
        out = tmp / f"t{attempted}"
        target = None if attempted % 5 == 0 else rng.randint(1, args.limit - 1)
        proc = subprocess.Popen(command(data, args.limit, out, args.max_new_tokens), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not kill_at(proc, out, target, args.limit, timeout_s=10 * clean_s + 60):
            print(f"attempt {attempted}: kill at {target or 'run.json write'} did not land (the run had finished)", flush=True)
            continue
        landed += 1
        run_dir = the_run_dir(out)
        before = count_rows(run_dir)
        tries = 0
        while not complete(run_dir) and tries < 3:
            subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(run_dir), "--quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            tries += 1
        rows = rows_of(run_dir)
        keys = [(r["id"], r["sample"]) for r in rows]
        t_lost = len(set(ref) - set(keys))
        t_dup = len(keys) - len(set(keys))
        t_changed = sum(ref.get(k) != r["output"] for k, r in zip(keys, rows))
        done = complete(run_dir)
        acc = json.loads((run_dir / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]["accuracy"]["value"] if done else None
        t_changed += acc != ref_acc
        resumed += done
        lost, duplicated, changed = lost + t_lost, duplicated + t_dup, changed + t_changed
        print(f"attempt {attempted}: killed at {before} rows ({'at ' + str(target) if target else 'writing run.json'}), "
              f"{tries} resume(s), complete {done}, lost {t_lost}, duplicated {t_dup}, changed {t_changed}", flush=True)
    print(f"(clean run {clean_s:.1f} s, {args.limit} samples)")
    print(f"attempted {attempted}, landed {landed}, resumed {resumed}, lost {lost}, duplicated {duplicated}, changed {changed}")
    return 0 if landed >= args.trials and resumed == landed and lost == duplicated == changed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
