"""CPU `--dtype auto` from a short real generation of the architecture: the faster dtype wins, the
decision and its measurements are cached per CPU, torch and shape, recorded, and only applied where
it means something (CPU, dtype auto, the transformers engine)."""

from __future__ import annotations

import json

import pytest

from harness.backends.models import random_config
from harness.config import make_config
from harness.planning import cpu_dtype
from harness.runtime.device import resolve


def _fake(rates):
    calls = []

    def measure(arch):
        calls.append(arch["hidden_size"])
        return {"layers": 2, "layers_timed": 2, "prompt_tokens": 32, "new_tokens": 16, "batch": 1,
                "dtypes": {k: {"s": 16 / v, "tokens_per_s": v} for k, v in rates.items()}}
    return measure, calls


def test_the_faster_dtype_wins_and_is_cached_per_shape(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    arch = random_config("tiny")
    measure, calls = _fake({"float32": 6.3, "bfloat16": 11.9})
    dtype, reason, measured = cpu_dtype.decide(arch, measure)
    assert dtype == "bfloat16" and "bfloat16 11.9 tok/s" in reason and measured["dtypes"]["float32"]["tokens_per_s"] == 6.3
    again = cpu_dtype.decide(arch, measure)
    assert again[0] == "bfloat16" and "cached" in again[1] and calls == [64]
    other, calls2 = _fake({"float32": 20.0, "bfloat16": 10.0})
    assert cpu_dtype.decide({**arch, "hidden_size": 128}, other)[0] == "float32" and calls2 == [128]  # another shape: measured anew
    assert len(json.loads((tmp_path / "cpu_dtype_generation.json").read_text())) == 2


def test_a_broken_cache_file_only_costs_a_measurement(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    (tmp_path / "cpu_dtype_generation.json").write_text("[not json")
    measure, calls = _fake({"float32": 9.0, "bfloat16": 3.0})
    assert cpu_dtype.decide(random_config("tiny"), measure)[0] == "float32" and calls == [64]


def test_refine_applies_only_to_cpu_auto_transformers(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    measure, calls = _fake({"float32": 1.0, "bfloat16": 2.0})
    monkeypatch.setattr(cpu_dtype, "measure_generation", measure)
    dev = resolve("cpu", "auto")
    unmeasured = cpu_dtype.refine(dev, make_config(model="random:tiny"))  # nothing is timed unless asked
    assert unmeasured.dtype_measurements is None and "not timed yet" in unmeasured.dtype_reason and calls == []
    got = cpu_dtype.refine(dev, make_config(model="random:tiny"), measure=True)
    assert got.dtype == "bfloat16" and got.dtype_measurements["dtypes"]["bfloat16"]["tokens_per_s"] == 2.0
    assert cpu_dtype.refine(resolve("cpu", "float32"), make_config(model="random:tiny", dtype="float32")).dtype == "float32"
    assert cpu_dtype.refine(dev, make_config(model="fake:echo")) is dev
    assert cpu_dtype.refine(dev, make_config(model="random:tiny", backend="llamacpp")) is dev
    assert calls == [64]
    folderless = cpu_dtype.refine(dev, make_config(model=str(tmp_path / "x.gguf")), measure=True)  # no config at hand: a stand-in is timed
    assert folderless.dtype == "bfloat16" and "no config of" in folderless.dtype_reason
    assert "timed on qwen2.5-0.5b-instruct's architecture instead" in folderless.dtype_reason
    assert calls == [64, random_config("qwen2.5-0.5b-instruct")["hidden_size"]]


def test_the_real_measurement_times_both_dtypes():
    measured = cpu_dtype.measure_generation(random_config("tiny"))
    assert set(measured["dtypes"]) == {"float32", "bfloat16"}
    assert all(v["tokens_per_s"] > 0 for v in measured["dtypes"].values())
    assert measured["layers_timed"] == "2" and measured["layers"] == 2  # random:tiny has only 2 layers


def test_depths_scale_to_the_full_model(monkeypatch):
    costs = {2: {"float32": [3.0] * 3, "bfloat16": [2.0] * 3}, 4: {"float32": [4.0] * 3, "bfloat16": [4.0] * 3}}  # bf16 layers cost more
    monkeypatch.setattr(cpu_dtype, "_time_depth", lambda arch, depth, torch: costs[depth])
    m = cpu_dtype.measure_generation({**random_config("tiny"), "num_hidden_layers": 24})
    assert m["layers_timed"] == "2+4"
    assert m["dtypes"]["float32"]["s"] == 3.0 + 22 * 0.5 and m["dtypes"]["bfloat16"]["s"] == 2.0 + 22 * 1.0
    # a deeper model timed faster than the shallow one (noise) never makes a per-layer cost of zero
    noisy = {2: {"float32": [3.0] * 3, "bfloat16": [2.0] * 3}, 4: {"float32": [2.5] * 3, "bfloat16": [4.0] * 3}}
    monkeypatch.setattr(cpu_dtype, "_time_depth", lambda arch, depth, torch: noisy[depth])
    n = cpu_dtype.measure_generation({**random_config("tiny"), "num_hidden_layers": 24})
    assert n["dtypes"]["float32"]["s"] == 3.0 + 22 * 1.5 and "noise" in n["note"]
    monkeypatch.setattr(cpu_dtype, "_time_depth", lambda arch, depth, torch: costs[depth])
    assert cpu_dtype.decide({**random_config("tiny"), "num_hidden_layers": 24}, lambda a: m)[0] == "float32"


@pytest.mark.parametrize("name", ["qwen2.5-0.5b-instruct", "r1-distill-qwen-1.5b"])
def test_shape_keys_tell_architectures_apart(name):
    try:
        arch = random_config(name)
    except Exception:
        pytest.skip(f"no config for {name}")
    assert cpu_dtype.shape_key(arch) != cpu_dtype.shape_key(random_config("tiny"))


def test_plan_run_and_bench_use_the_same_measured_dtype(monkeypatch, tmp_path, capsys):
    """One decision for all three: the plan printed float32 from a matmul timing while the run
    decoded in the dtype a generation measured faster, so the plan's memory, time and dtype line
    described another run."""
    from harness.cli import main

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    measure, calls = _fake({"float32": 1.0, "bfloat16": 3.0})
    monkeypatch.setattr(cpu_dtype, "measure_generation", measure)
    cpu_dtype.decide(random_config("tiny"))  # as `harness plan --calibrate` would: measured once, cached
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "question": "1+1?", "answer": "1+1=2\\n#### 2"}\n')
    args = ["--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--device", "cpu", "--max-new-tokens", "2"]
    assert main(["plan", *args]) == 0
    plan = capsys.readouterr().out
    assert "bfloat16 (auto: generation timed" in plan, plan
    assert main(["run", *args, "--output-dir", str(tmp_path / "out")]) == 0
    run = json.loads(next((tmp_path / "out").rglob("run.json")).read_text())
    assert run["device"]["dtype"] == "bfloat16" and run["device"]["dtype_measurements"]["dtypes"]["bfloat16"]["tokens_per_s"] == 3.0
    assert main(["bench", "--model", "random:tiny", "--device", "cpu", "--batch-sizes", "1", "--prompt-tokens", "4",
                 "--output-tokens", "2", "--iterations", "1", "--output", str(tmp_path / "bench.json")]) == 0
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert bench["dtype"] == "bfloat16" and "generation timed" in bench["device"]["dtype_reason"], bench["device"]
    assert calls == [64]  # measured once, then cached for the run and the bench


def test_a_probe_too_big_for_memory_is_skipped_and_says_so(monkeypatch):
    from harness.planning import estimate

    monkeypatch.setattr(estimate, "device_available", lambda kind, index: (10_000_000, "test"))
    monkeypatch.setattr(cpu_dtype, "measure_generation", lambda arch: pytest.fail("a probe that does not fit must not run"))
    dev = resolve("cpu", "auto")
    got = cpu_dtype.refine(dev, make_config(model="random:qwen2.5-0.5b-instruct"))
    assert got.dtype == dev.dtype and "generation not timed" in got.dtype_reason and "more than 25%" in got.dtype_reason


def test_a_big_architecture_is_timed_on_the_stand_in(monkeypatch, tmp_path):
    """A 7B's probe would need 7.5 GiB here; the stand-in still times this CPU's generation in each
    dtype rather than falling back to the matmul microbenchmark."""
    from harness.planning import estimate

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    measure, calls = _fake({"float32": 1.0, "bfloat16": 2.0})
    monkeypatch.setattr(cpu_dtype, "measure_generation", measure)
    monkeypatch.setattr(estimate, "device_available", lambda kind, index: (8 * 2**30, "test"))
    got = cpu_dtype.refine(resolve("cpu", "auto"), make_config(model="random:qwen2.5-7b"), measure=True)
    assert got.dtype == "bfloat16" and "more than 25%" in got.dtype_reason and "architecture instead" in got.dtype_reason
    assert calls == [random_config("qwen2.5-0.5b-instruct")["hidden_size"]]


def test_a_measured_float32_that_does_not_fit_drops_to_bfloat16_with_both_reasons(monkeypatch, tmp_path):
    from harness.planning import estimate, fitting, preflight

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu_dtype, "measure_generation", _fake({"float32": 5.0, "bfloat16": 1.0})[0])
    monkeypatch.setattr(cpu_dtype, "_probe_too_big", lambda arch: None)
    cfg = make_config(model="random:qwen2.5-0.5b-instruct", device="cpu")
    shape = preflight.model_shape(cfg.model)
    assert fitting.run_dtype(cfg, resolve("cpu", "auto"), shape, 1, 128, measure=True)[0].dtype == "float32"
    f32 = estimate.memory_estimate(shape["config"], shape["params"], "float32", 1, 128, "cpu")["total"]
    monkeypatch.setattr(estimate, "device_available", lambda kind, index: (int(f32 * 0.8), "test"))
    dev, memory, notes = fitting.run_dtype(cfg, resolve("cpu", "auto"), shape, 1, 128)
    assert dev.dtype == "bfloat16" and memory["dtype"] == "bfloat16"
    assert "float32 would need" in dev.dtype_reason and "float32 measured faster" in dev.dtype_reason


def test_a_decision_timed_on_a_busy_machine_is_timed_again_when_quieter(tmp_path, monkeypatch):
    """The plan quoted 'float32 0.2 tok/s, bfloat16 0.5 tok/s' from a probe timed at load ~10 per
    core, against 4.9 and 19.9 on the quiet machine: a busy measurement says so and is redone."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    arch = random_config("tiny")
    busy, calls = _fake({"float32": 0.2, "bfloat16": 0.5})
    dtype, reason, _ = cpu_dtype.decide(arch, busy, load=10.0)
    assert dtype == "bfloat16" and "timed at load 10.0 per core" in reason
    assert "cached" in cpu_dtype.decide(arch, busy, load=9.0)[1] and calls == [64]  # still busy: kept
    quiet, calls2 = _fake({"float32": 4.9, "bfloat16": 19.9})
    dtype, reason, measured = cpu_dtype.decide(arch, quiet, load=0.4)
    assert calls2 == [64] and "bfloat16 19.9 tok/s" in reason and "load" not in reason
    assert "cached" in cpu_dtype.decide(arch, quiet, load=0.1)[1] and calls2 == [64]
