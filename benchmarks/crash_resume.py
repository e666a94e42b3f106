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

Two more scenarios (`--scenarios rows,scoring,merge`, `--special-trials N` each):
- scoring: a scripted model (fake:) answers MATH-500 problems in forms that only the symbolic
  grader (math-verify, in its worker process) can match, so each row is scored symbolically. Half
  the attempts SIGKILL the run while the grader worker is alive at a chosen row; the other half
  SIGKILL only the grader worker (as a Ctrl-C or a forwarded signal would), and the run goes on.
  Either way the resumed run must match the clean one: outputs, per-row verdicts and accuracy.
- merge: `--num-processes 2` writes per-rank shards that the finish merges into samples.jsonl;
  the group is SIGKILLed as soon as every row is in the shards (the finish, shard merge included,
  is then in progress), and the resume (one process) must give the clean run's rows once each.
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


def command(data: Path, limit: int, out: Path, tokens: int = 16, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
            "--limit", str(limit), "--batch-size", "1", "--max-new-tokens", str(tokens), "--quiet", "--output-dir", str(out), *extra]


def math_command(tmp: Path, limit: int, out: Path) -> list[str] | None:
    """A fake: model answering the first `limit` MATH-500 problems as "<gold> + 0" (or the gold's
    number times 2/2), forms only the symbolic grader can match; None when the data is absent."""
    data = ROOT.parent / "shared" / "data" / "math500" / "test.jsonl"
    if not data.exists():
        return None
    script = {}
    for line in data.read_text(encoding="utf-8").splitlines()[:limit]:
        row = json.loads(line)
        script[row["problem"][:60]] = f"The answer is $\\boxed{{{row['answer']} + 0}}$."
    path = tmp / "math-script.json"
    path.write_text(json.dumps(script))
    return [sys.executable, "-m", "harness", "run", "--model", f"fake:{path}", "--tasks", "math500", "--data-file", f"math500={data}",
            "--limit", str(limit), "--batch-size", "1", "--quiet", "--output-dir", str(out)]


def grader_pid(parent: int) -> int | None:
    """The symbolic grader worker started by `parent` (its own session, so not in the run's group)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"harness.scoring.symbolic" in cmd:
            return int(d.name)
    return None


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


def shard_rows(run_dir: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in run_dir.glob("samples.rank*.jsonl"))


def kill_at(proc: subprocess.Popen, out: Path, rows: int | None, limit: int, timeout_s: float, mode: str = "rows") -> bool:
    """Watch the run; SIGKILL its group at the trigger. True when the kill landed before it finished.
    mode "rows": at `rows` rows (None: while run.json is written); "scoring": at `rows` rows with the
    grader worker alive; "grader": SIGKILL only the grader worker at `rows` rows, then let the run
    end; "merge": when every row is in the per-rank shards."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        run_dir = the_run_dir(out)
        if run_dir is not None:
            try:
                n = count_rows(run_dir) if mode != "merge" else shard_rows(run_dir)
            except OSError:
                n = 0
            if mode in ("scoring", "grader") and rows is not None and n >= rows:
                pid = grader_pid(proc.pid)
                if pid is None:
                    time.sleep(0.002)
                    continue
                if mode == "grader":
                    os.kill(pid, signal.SIGKILL)
                    proc.wait(timeout=timeout_s)
                    return True  # the run went on; landed when it had to replace its grader mid-run
            writing = n >= limit and (list(run_dir.glob(".run.json.*.tmp")) or not (run_dir / "run.json").exists())
            merging = mode == "merge" and (list(run_dir.glob(".samples.jsonl.*.tmp")) or list(run_dir.glob(".batches.jsonl.*.tmp"))
                                           or (count_rows(run_dir) > 0 and n > 0))  # merged file started, shards still there
            if mode == "merge" and rows is None and n >= limit and not merging:
                time.sleep(0.001)  # every row is in the shards: wait for the merge itself (its temp file, or its result)
                continue
            if (rows is not None and n >= rows) or (rows is None and writing) or merging:
                landed = not complete(run_dir)  # read before the kill: the run had not finished
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return landed and not complete(run_dir)
        time.sleep(0.002)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return False


def check(run_dir: Path, ref: dict, ref_acc, task: str) -> tuple[bool, int, int, int, int]:
    """(complete, lost, duplicated, changed, resumes) after resuming until complete (at most 3 times)."""
    tries = 0
    while not complete(run_dir) and tries < 3:
        subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(run_dir), "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tries += 1
    rows = rows_of(run_dir)
    keys = [(r["id"], r["sample"]) for r in rows]
    lost, dup = len(set(ref) - set(keys)), len(keys) - len(set(keys))
    changed = sum(ref.get(k) != (r["output"], r.get("correct")) for k, r in zip(keys, rows))
    done = complete(run_dir)
    acc = json.loads((run_dir / "run.json").read_text())["tasks"][task]["metrics"]["accuracy"]["value"] if done else None
    return done, lost, dup, changed + (acc != ref_acc), tries


def special(kind: str, trials: int, tmp: Path, limit: int, data: Path, tokens: int, rng: random.Random) -> tuple[int, ...]:
    """The scoring and merge scenarios: (attempted, landed, resumed, lost, duplicated, changed)."""
    if kind == "scoring":
        def make(out):
            return math_command(tmp, limit, out)
        task = "math500"
        if make(tmp / "probe") is None:
            print("scoring: ../shared/data/math500 absent, skipped")
            return 0, 0, 0, 0, 0, 0
    else:
        def make(out):
            return command(data, limit, out, tokens, ("--num-processes", "2"))
        task = "gsm8k"
    t0 = time.perf_counter()
    subprocess.run(make(tmp / f"clean-{kind}"), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clean_s = time.perf_counter() - t0
    clean = the_run_dir(tmp / f"clean-{kind}")
    ref_acc = json.loads((clean / "run.json").read_text())["tasks"][task]["metrics"]["accuracy"]["value"]
    ref = {(r["id"], r["sample"]): (r["output"], r.get("correct")) for r in rows_of(clean)}
    totals = [0] * 6
    while totals[1] < trials and totals[0] < 3 * trials:
        totals[0] += 1
        out = tmp / f"{kind}{totals[0]}"
        mode = ("grader" if totals[0] % 2 else "scoring") if kind == "scoring" else "merge"
        target = rng.randint(1, limit - 1) if kind == "scoring" else (limit if totals[0] % 2 else None)
        proc = subprocess.Popen(make(out), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not kill_at(proc, out, target, limit, timeout_s=10 * clean_s + 60, mode=mode):
            print(f"{kind} attempt {totals[0]}: the kill did not land", flush=True)
            continue
        totals[1] += 1
        run_dir = the_run_dir(out)
        shards = len(list(run_dir.glob("samples.rank*.jsonl")))
        merged = count_rows(run_dir)
        temps = len(list(run_dir.glob(".*.jsonl.*.tmp")))  # a merged file being written when the kill came
        done, lost, dup, changed, tries = check(run_dir, ref, ref_acc, task)
        totals[2] += done
        totals[3], totals[4], totals[5] = totals[3] + lost, totals[4] + dup, totals[5] + changed
        where = {"grader": f"grader worker killed at row {target}", "scoring": f"run killed while scoring, at row {target}",
                 "merge": f"run killed {'in the merge' if merged or temps else 'before the merge'} ({shards} shard file(s) left, "
                          f"{temps} merge temp file(s), {merged} row(s) in samples.jsonl)"}[mode]
        print(f"{kind} attempt {totals[0]}: {where}, {tries} resume(s), complete {done}, lost {lost}, duplicated {dup}, "
              f"changed {changed}", flush=True)
    print(f"{kind}: (clean run {clean_s:.1f} s) attempted {totals[0]}, landed {totals[1]}, resumed {totals[2]}, "
          f"lost {totals[3]}, duplicated {totals[4]}, changed {totals[5]}", flush=True)
    return tuple(totals)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20, help="landed kills to reach")
    ap.add_argument("--limit", type=int, default=12, help="samples per run (each is one batch: batch size 1)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenarios", default="rows,scoring,merge", help="which kills: rows (any point), scoring, merge")
    ap.add_argument("--special-trials", type=int, default=6, help="landed kills to reach in each of scoring and merge")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="crash-resume-"))
    data = data_file(tmp)
    scenarios = set(args.scenarios.split(","))
    ok = True
    for kind in ("scoring", "merge"):
        if kind in scenarios:
            att, land, res, lo, du, ch = special(kind, args.special_trials, tmp, args.limit, data, args.max_new_tokens, rng)
            ok = ok and (att == 0 or (land >= args.special_trials and res == land and lo == du == ch == 0))
    if "rows" not in scenarios:
        return 0 if ok else 1
    t0 = time.perf_counter()
    subprocess.run(command(data, args.limit, tmp / "clean", args.max_new_tokens), check=True)
    clean_s = time.perf_counter() - t0
    clean = the_run_dir(tmp / "clean")
    ref_acc = json.loads((clean / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]["accuracy"]["value"]
    ref = {(r["id"], r["sample"]): (r["output"], r.get("correct")) for r in rows_of(clean)}
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
        done, t_lost, t_dup, t_changed, tries = check(run_dir, ref, ref_acc, "gsm8k")  # the same check as the special scenarios
        resumed += done
        lost, duplicated, changed = lost + t_lost, duplicated + t_dup, changed + t_changed
        print(f"attempt {attempted}: killed at {before} rows ({'at ' + str(target) if target else 'writing run.json'}), "
              f"{tries} resume(s), complete {done}, lost {t_lost}, duplicated {t_dup}, changed {t_changed}", flush=True)
    print(f"(clean run {clean_s:.1f} s, {args.limit} samples)")
    print(f"attempted {attempted}, landed {landed}, resumed {resumed}, lost {lost}, duplicated {duplicated}, changed {changed}")
    return 0 if ok and landed >= args.trials and resumed == landed and lost == duplicated == changed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
