"""Kill a run with SIGKILL at random moments, resume it, and check nothing was lost or repeated.

    python benchmarks/crash_resume.py [--trials 20] [--limit 30] [--seed 0]

A clean, uninterrupted run gives the reference samples and metrics. Each trial starts the same
run, kills the whole process group with SIGKILL at a random moment inside the clean run's
duration, then runs `harness run --resume DIR` until the run is complete. A trial passes when
samples.jsonl has every (task, id, sample) exactly once and the final accuracy equals the clean
run's (greedy decoding, so outputs are reproducible). Prints `N/N resumed, L lost, D duplicated`
last; exit 0 only when all trials pass.
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


def command(data: Path, limit: int, out: Path) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
            "--limit", str(limit), "--batch-size", "2", "--max-new-tokens", "32", "--quiet", "--output-dir", str(out)]


def rows_of(run_dir: Path) -> list[dict]:
    return [json.loads(l) for l in (run_dir / "samples.jsonl").read_text().splitlines() if l.strip()]


def the_run_dir(out: Path) -> Path | None:
    dirs = [p for p in out.glob("*") if p.is_dir()] if out.exists() else []
    return dirs[0] if dirs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="crash-resume-"))
    data = data_file(tmp)
    t0 = time.perf_counter()
    subprocess.run(command(data, args.limit, tmp / "clean"), check=True)
    clean_s = time.perf_counter() - t0
    clean = the_run_dir(tmp / "clean")
    ref_acc = json.loads((clean / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]["accuracy"]["value"]
    ref_outputs = {(r["id"], r["sample"]): r["output"] for r in rows_of(clean)}
    passed = lost = duplicated = killed_mid = 0
    for trial in range(args.trials):
        out = tmp / f"t{trial}"
        proc = subprocess.Popen(command(data, args.limit, out), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.15, 0.85) * clean_s)  # inside the clean run, start-up included
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_mid += 1
        proc.wait()
        run_dir = the_run_dir(out)
        resumes = 0
        while run_dir is not None and resumes < 3:
            doc = run_dir / "run.json"
            if doc.exists() and json.loads(doc.read_text()).get("status") == "complete":
                break
            if not (run_dir / "config.json").exists():
                run_dir = None  # killed before the folder was usable: a fresh run is the recovery
                break
            subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(run_dir), "--quiet"], stdout=subprocess.DEVNULL)
            resumes += 1
        if run_dir is None:
            subprocess.run(command(data, args.limit, tmp / f"t{trial}-fresh"), check=True, stdout=subprocess.DEVNULL)
            run_dir = the_run_dir(tmp / f"t{trial}-fresh")
        rows = rows_of(run_dir)
        keys = [(r["id"], r["sample"]) for r in rows]
        t_lost = len(set(ref_outputs) - set(keys))
        t_dup = len(keys) - len(set(keys))
        acc = json.loads((run_dir / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]["accuracy"]["value"]
        same = all(ref_outputs.get(k) == r["output"] for k, r in zip(keys, rows))
        ok = t_lost == 0 and t_dup == 0 and acc == ref_acc and same
        passed += ok
        lost += t_lost
        duplicated += t_dup
        print(f"trial {trial + 1}: {len(rows)} rows, {resumes} resume(s), lost {t_lost}, duplicated {t_dup}, "
              f"same outputs {same}, accuracy {'=' if acc == ref_acc else '!='} clean", flush=True)
    print(f"(clean run {clean_s:.1f} s; {killed_mid} of {args.trials} kills landed mid-run)")
    print(f"{passed}/{args.trials} resumed, {lost} lost, {duplicated} duplicated")
    return 0 if passed == args.trials else 1


if __name__ == "__main__":
    raise SystemExit(main())
