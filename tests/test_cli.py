"""The command line: start-up stays light, the listing commands, bench, env and thinking budgets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.cli import main

TASKS = ["gsm8k", "math500", "aime24", "aime25", "gpqa_diamond", "arc_challenge", "cmath", "ceval", "synthetic"]


def test_help_imports_nothing_heavy():
    code = ("import sys; from harness.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'pydantic', 'datasets', 'numpy') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_list_tasks_names_every_task_with_its_source(capsys):
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    for t in TASKS:
        assert t in out
    assert "openai/gsm8k" in out and "HuggingFaceH4/MATH-500" in out


def test_list_models_and_backends(capsys):
    assert main(["list", "models"]) == 0 and main(["list", "backends"]) == 0
    out = capsys.readouterr().out
    for name in ("random:tiny", "random:qwen2.5-7b-instruct", "random:r1-distill-qwen-32b", "random:qwen3-8b"):
        assert name in out
    for b in ("transformers", "vllm", "llamacpp", "openai"):
        assert b in out


def test_env_reports_bandwidth_and_energy(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "GB/s" in out and "energy counter" in out


def test_bench_sweeps_batch_sizes(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "random:tiny", "--batch-sizes", "1,4", "--output-tokens", "16", "--prompt-tokens", "32",
                 "--iterations", "2", "--device", "cpu", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    cells = doc["cells"]
    assert [c["batch_size"] for c in cells] == [1, 4]
    for c in cells:
        assert c["output_tokens_per_s"] > 0 and set(c["tpot_s"]) == {"mean", "p50", "p90", "p99"}
        assert abs(c["prompt_tokens_actual"] - 32) <= 1
    assert cells[0]["speedup_vs_smallest_batch"] == pytest.approx(1.0)


def test_bench_rejects_bad_sizes(capsys):
    assert main(["bench", "--model", "random:tiny", "--batch-sizes", "0,x"]) == 2
    assert "error: --batch-sizes" in capsys.readouterr().err


def test_think_budgets_write_one_run_per_budget_and_the_curve(tmp_path):
    assert main(["run", "--model", "random:tiny", "--think-budgets", "4,8", "--answer-tokens", "4", "--limit", "2", "--device", "cpu",
                 "--output-dir", str(tmp_path), "--quiet"]) == 0
    (folder,) = list(tmp_path.iterdir())
    runs = sorted(p.parent for p in folder.glob("*/run.json"))
    assert len(runs) == 2
    budgets = sorted(json.loads((r / "run.json").read_text())["config"]["think_budget"] for r in runs)
    assert budgets == [4, 8]
    for r in runs:
        for row in (r / "samples.jsonl").read_text().splitlines():
            s = json.loads(row)
            assert s["output_tokens"] <= json.loads((r / "run.json").read_text())["config"]["think_budget"] + 4
    points = json.loads((folder / "budgets.json").read_text())["points"]
    assert sorted(p["budget"] for p in points) == [4, 8]
    assert (folder / "budget_curve.png").stat().st_size > 5000
