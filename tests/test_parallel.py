"""Data parallelism through accelerate (gloo on CPU): two processes give the same samples as
one, and a run whose processes died part-way resumes with nothing lost or duplicated."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import gsm8k_rows, write_jsonl

pytestmark = pytest.mark.slow
ARGS = ["--model", "random:tiny", "--tasks", "gsm8k", "--limit", "6", "--max-new-tokens", "8", "--device", "cpu", "--quiet"]


def harness(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout, env=env)


def outputs(run_dir):
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {(r["id"], r["sample"]): r["output"] for r in rows}, len(rows)


def only_dir(path):
    (d,) = [p for p in path.iterdir() if p.is_dir()]
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel")
    data = write_jsonl(tmp / "gsm8k.jsonl", gsm8k_rows(6))
    one = harness("run", *ARGS, "--data-file", f"gsm8k={data}", "--output-dir", str(tmp / "one"))
    two = harness("run", *ARGS, "--data-file", f"gsm8k={data}", "--num-processes", "2", "--output-dir", str(tmp / "two"))
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    return tmp, data, only_dir(tmp / "one"), only_dir(tmp / "two")


def test_two_processes_equal_one(runs):
    _, _, one, two = runs
    a, n_a = outputs(one)
    b, n_b = outputs(two)
    assert a == b and n_a == n_b == 6
    doc = json.loads((two / "run.json").read_text())
    assert doc["perf"]["processes"] == 2 and len(doc["perf"]["per_process"]) == 2
    assert not list(two.glob("samples.rank*.jsonl"))  # shards merged away
    assert doc["tasks"]["gsm8k"]["metrics"] == json.loads((one / "run.json").read_text())["tasks"]["gsm8k"]["metrics"]


def test_resume_after_processes_died(runs):
    tmp, data, one, two = runs
    # Rebuild the state two killed processes leave: per-rank shards, one with a torn last line, no run.json.
    rows = (two / "samples.jsonl").read_text().splitlines(keepends=True)
    (two / "samples.rank0.jsonl").write_text("".join(rows[0:2]))
    (two / "samples.rank1.jsonl").write_text(rows[3] + rows[4][: len(rows[4]) // 2])
    (two / "samples.jsonl").unlink()
    (two / "run.json").unlink()
    r = harness("run", "--resume", str(two), "--num-processes", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    b, n = outputs(two)
    assert n == 6 and b == outputs(one)[0]
