"""Know before you spend: the plan (requests, tokens, settings and their sources, memory, time,
dollars), the memory refusal, the automatic dtype that fits, card samples only where a claim needs
them, the small cap for random: models, and errors caught before torch is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import gsm8k_rows, run_cli, write_jsonl

from harness.cli import main
from harness.planning import estimate as est

ROOT = Path(__file__).resolve().parents[1]


# ---- parameter counts and memory ---------------------------------------------------------------------

def test_memory_estimate_names_every_part():
    config = json.loads((ROOT / "harness/data/configs/qwen2.5-7b-instruct.json").read_text())
    m = est.memory_estimate(config, 7_615_616_512, "bfloat16", batch=8, context=1000)
    assert m["weights"] == 2 * 7_615_616_512
    assert m["kv_per_token"] == 2 * 28 * 4 * 128 * 2  # K and V x layers x KV heads x head dim x 2 bytes
    assert m["kv_cache"] == m["kv_per_token"] * 8 * 1000
    assert m["total"] == m["weights"] + m["kv_cache"] + m["activations"] + m["runtime"]
    assert est.memory_estimate(config, 7_615_616_512, "float32", 1, 10)["weights"] == 4 * 7_615_616_512


def test_host_available_respects_the_address_space_limit():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.RLIM_INFINITY)); "
            "from harness.planning.estimate import host_available; a, why = host_available(); print(a, '|', why)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    avail, why = out.split("|")
    assert int(avail) < 8 << 30 and "ulimit -v" in why


# ---- the plan --------------------------------------------------------------------------------------

@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_rows(6))


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, data, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(["run", "--dry-run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                               "--num-samples", "2", "--output-dir", str(out), "--price-per-hour", "3.6"], capsys)
    assert code == 0
    assert not out.exists()
    assert "gsm8k: 6 problems x 2 samples = 12 requests" in stdout
    assert "max 64 output tokens" in stdout and "random: models" in stdout  # the cap, and why
    assert "num_samples = 2  [flag --num-samples]" in stdout
    assert "memory: about" in stdout and "fits" in stdout
    assert "time (transformers):" in stdout and "cost $" in stdout


def test_plan_command_is_the_dry_run(tmp_path, data, capsys):
    code, stdout, _ = run_cli(["plan", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}"], capsys)
    assert code == 0 and "6 requests" in stdout


def test_time_comes_from_an_earlier_run_of_the_same_model_here(tmp_path, data, capsys):
    out = tmp_path / "out"
    assert main(["run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--limit", "2",
                 "--max-new-tokens", "4", "--output-dir", str(out), "--quiet"]) == 0
    capsys.readouterr()
    code, stdout, _ = run_cli(["plan", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                               "--output-dir", str(out)], capsys)
    assert code == 0 and "earlier run" in stdout and str(out) in stdout


def test_card_samples_apply_only_to_tasks_with_a_claim(tmp_path, capsys):
    from harness.cards.loader import find_card
    from harness.config import make_config
    from harness.planning.plan import make_plan

    rows = [{"problem": "1+1?", "answer": "2"}]
    m = write_jsonl(tmp_path / "m.jsonl", rows)
    g = write_jsonl(tmp_path / "g.jsonl", gsm8k_rows(1))
    cfg = make_config(model="random:tiny", card="r1-distill-qwen-7b", tasks=["math500", "gsm8k"],
                      data_files={"math500": str(m), "gsm8k": str(g)})
    plan = make_plan(cfg, find_card("r1-distill-qwen-7b"))
    assert plan.tasks["math500"].k == 64 and "pass@1 claim on math500 used 64" in plan.tasks["math500"].sources["num_samples"]
    assert plan.tasks["gsm8k"].k == 1  # the card says 4 for gsm8k, but it makes no claim with a value there
    assert "no claim with a value on gsm8k" in plan.tasks["gsm8k"].sources["num_samples"]
    assert plan.tasks["math500"].sources["max_new_tokens"].startswith("card r1-distill-qwen-7b")


def test_random_models_get_a_small_cap_real_ones_keep_the_default(tmp_path):
    from harness.config import make_config
    from harness.planning.plan import DEFAULT_MAX_NEW_TOKENS, RANDOM_MAX_NEW_TOKENS, make_plan

    g = write_jsonl(tmp_path / "g.jsonl", gsm8k_rows(1))
    def cap(model, **kw):
        return make_plan(make_config(model=model, tasks=["gsm8k"], data_files={"gsm8k": str(g)}, **kw)).tasks["gsm8k"].sampling.max_new_tokens
    assert cap("random:tiny") == RANDOM_MAX_NEW_TOKENS
    assert cap("fake:echo") == DEFAULT_MAX_NEW_TOKENS
    assert cap("random:tiny", max_new_tokens=300) == 300


def test_card_without_model_runs_the_cards_model():
    from harness.planning.card_run import card_model

    assert card_model({"card": "r1-distill-qwen-7b"})["model"] == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert card_model({"card": "r1-distill-qwen-7b", "model": "random:tiny"})["model"] == "random:tiny"
    api = card_model({"card": "o1-1217"})
    assert api["model"] == "openai:o1-2024-12-17" and api["api_key_env"] == "OPENAI_API_KEY"


def test_faithful_card_plan_without_a_model_download(shared, capsys):
    code, stdout, _ = run_cli(["plan", "--card", "r1-distill-qwen-7b", "--tasks", "math500", "--dtype", "bfloat16",
                               "--data-file", f"math500={shared / 'data/math500/test.jsonl'}"], capsys)
    assert code == 0
    assert "500 problems x 64 samples = 32000 requests" in stdout
    assert "bfloat16 weights 14.2 GiB" in stdout  # 7.6 B parameters x 2 bytes, from the card's config
    assert "hours" in stdout


# ---- refusing what cannot fit ---------------------------------------------------------------------------

def _tiny_memory(monkeypatch, gib: float = 0.001):
    monkeypatch.setattr(est, "device_available", lambda kind, index: (int(gib * est.GiB), "test limit"))


def test_run_that_does_not_fit_is_refused_before_anything_loads(tmp_path, data, monkeypatch, capsys):
    _tiny_memory(monkeypatch)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", "--model", "random:qwen2.5-7b", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                            "--output-dir", str(out), "--quiet"], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: this run needs about") and "available" in line and "--force" in line and "--dtype" in line
    assert not out.exists()  # no half-made run folder


def test_force_runs_anyway(tmp_path, data, monkeypatch):
    _tiny_memory(monkeypatch)
    out = tmp_path / "out"
    assert main(["run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--limit", "1",
                 "--max-new-tokens", "2", "--output-dir", str(out), "--quiet", "--force"]) == 0


def test_bench_that_does_not_fit_is_refused(monkeypatch, capsys):
    _tiny_memory(monkeypatch)
    t0 = time.perf_counter()
    code, _, err = run_cli(["bench", "--model", "random:qwen2.5-7b", "--batch-sizes", "1", "--prompt-tokens", "8",
                            "--output-tokens", "2"], capsys)
    assert code == 2 and "this bench needs about" in err and time.perf_counter() - t0 < 30


def test_auto_float32_that_does_not_fit_becomes_bfloat16(monkeypatch):
    from harness.config import make_config
    from harness.planning import fitting, preflight
    from harness.runtime.device import DeviceChoice

    dev = DeviceChoice("cpu", None, "test cpu", "float32", "auto", "auto: float32 measured faster")
    shape = preflight.model_shape("random:qwen2.5-7b")
    need32 = est.memory_estimate(shape["config"], shape["params"], "float32", 1, 100)["total"]
    monkeypatch.setattr(est, "device_available", lambda kind, index: (need32 - 1, "test"))
    new, memory, notes = fitting.fit_dtype(make_config(model="random:qwen2.5-7b"), dev, shape, 1, 100)
    assert new.dtype == "bfloat16" and memory["dtype"] == "bfloat16" and "float32 would need" in new.dtype_reason
    explicit, _, _ = fitting.fit_dtype(make_config(model="random:qwen2.5-7b", dtype="float32"), dev, shape, 1, 100)
    assert explicit.dtype == "float32"  # an explicit dtype is never changed; the refusal says what to do


# ---- errors before torch ----------------------------------------------------------------------------------

FAST_ERRORS = [
    (["--model", "./no/such/folder"], "model path not found"),
    (["--model", "/no/such/model.gguf"], "model path not found"),
    (["--tasks", "gsm9k"], "unknown task 'gsm9k'"),
    (["--data-file", "gsm8k"], "--data-file expects KEY=VALUE"),
    (["--data-file", "gsm8k=/no/such.jsonl"], "data file not found"),
    (["--data-file", "gsm8k=/"], "data file is a directory"),
    (["--card", "no-such-card"], "no model card named"),
    (["--backend", "nosuch"], "unknown backend"),
    (["--model", "random:nosuch"], "unknown random model"),
]


@pytest.mark.parametrize("args, message", FAST_ERRORS, ids=[a[1] for a, _ in FAST_ERRORS])
def test_mistakes_are_reported_before_torch_is_imported(args, message):
    code = ("import sys, time; t = time.perf_counter(); from harness.cli import main; rc = main(['run', *sys.argv[1:]]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc, round(time.perf_counter() - t, 2))")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    torch_flag, rc, _ = p.stdout.split()
    assert rc == "2" and torch_flag == "NO-TORCH", p.stdout + p.stderr
    assert message in p.stderr and p.stderr.count("error:") == 1


# ---- flags and config ----------------------------------------------------------------------------------

def test_config_accepts_the_flag_spelling_and_suggests_the_closest_key(tmp_path, data, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(f"model: random:tiny\ntasks: gsm8k\nmax-new-tokens: 3\n--num-samples: 2\ndata-files: {{gsm8k: {data}}}\n")
    code, stdout, err = run_cli(["plan", "--config", str(good)], capsys)
    assert code == 0, err
    assert "max 3 output tokens" in stdout and "x 2 samples" in stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_new_tokns: 3\n")
    code, _, err = run_cli(["plan", "--config", str(bad)], capsys)
    assert code == 2 and "did you mean 'max_new_tokens'" in err and "underscores" in err
    twice = tmp_path / "twice.yaml"
    twice.write_text("max_new_tokens: 3\nmax-new-tokens: 4\n")
    code, _, err = run_cli(["plan", "--config", str(twice)], capsys)
    assert code == 2 and "given twice" in err


@pytest.mark.parametrize("command", ["run", "plan", "bench", "cards"])
def test_unknown_flag_points_at_the_subcommands_help(command, capsys):
    code, _, err = run_cli([command, "--modle", "x"], capsys)
    assert code == 2 and f"see `harness {command} --help`" in err
    if command != "cards":
        assert "did you mean --model" in err


def test_run_help_shows_defaults_and_three_examples(capsys):
    code, stdout, _ = run_cli(["run", "--help"], capsys)
    assert code == 0
    assert "(default: random:tiny)" in stdout and "(default: 8)" in stdout and "(default: results)" in stdout
    assert stdout.count("\n  harness run ") >= 3


def test_bench_cells_stop_repeating_after_their_time_budget(capsys):
    from harness.backends.fake import FakeBackend
    from harness.orchestration.bench import sweep

    backend = FakeBackend(None, "fake:echo")
    (cell,) = sweep(backend, [1], [8], [2], iterations=3, warmup=0, budget_s=1e-9)
    assert cell["iterations"] == 1 and cell["iterations_requested"] == 3
    assert "1 of 3 iterations" in capsys.readouterr().err
    (cell,) = sweep(backend, [1], [8], [2], iterations=3, warmup=0, budget_s=None)
    assert cell["iterations"] == 3


def test_offline_hub_model_missing_from_the_cache_fails_before_the_plan_but_can_be_planned(tmp_path, data, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    args = ["--model", "Qwen/Qwen2.5-7B-Instruct", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--output-dir", str(tmp_path / "o")]
    code, out, err = run_cli(["run", *args], capsys)
    assert code == 2 and (out + err).strip().count("\n") == 0 and "not in the local Hugging Face cache" in err
    code, out, _ = run_cli(["plan", *args, "--dtype", "bfloat16"], capsys)  # knowing the cost comes before the 15 GB download
    assert code == 0 and "bfloat16 weights 14.2 GiB" in out
