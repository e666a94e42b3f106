"""Which engine decodes faster here: a GGUF's header read without llama.cpp, the bytes each engine
reads per token (harness/planning/engines.py), and the plan's line naming the faster engine and why."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import gsm8k_rows, run_cli, write_jsonl

from harness.backends.gguf_file import read_header
from harness.core.architecture import count_parameters
from harness.planning import engines
from harness.planning import estimate as est

try:
    from engine_fixtures import tiny_gguf, tiny_models  # fixtures, used by name
except ImportError:  # pytest run from the repository root with tests/ as a package
    from tests.engine_fixtures import tiny_gguf, tiny_models  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
HIDDEN, VOCAB, LAYERS, HEADS, KV_HEADS = 64, 256, 2, 4, 2


def write_gguf(path: Path, kind: str = "Q8_0") -> Path:
    """A GGUF with Qwen2's metadata, a 1,000-string vocabulary and one weight tensor stored as
    `kind` (Q8_0: 34 bytes a block of 32 weights; F32: 4 bytes a weight) plus an f32 norm."""
    import numpy as np

    gguf = pytest.importorskip("gguf")  # the dev extra's writer makes the synthetic files
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_block_count(LAYERS)
    w.add_embedding_length(HIDDEN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_token_list([f"tok{i}" for i in range(1000)])
    w.add_token_scores([0.0] * 1000)
    if kind == "Q8_0":
        blocks = np.zeros((VOCAB, HIDDEN // 32 * 34), dtype=np.uint8)
        w.add_tensor("token_embd.weight", blocks, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        w.add_tensor("token_embd.weight", np.zeros((VOCAB, HIDDEN), dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ---- the header --------------------------------------------------------------------------------------

def test_header_gives_parameters_tensor_bytes_and_kv_shape(tmp_path):
    h = read_header(write_gguf(tmp_path / "m.gguf"))
    assert h.parameters == VOCAB * HIDDEN + HIDDEN
    reader = pytest.importorskip("gguf").GGUFReader(str(tmp_path / "m.gguf"))
    assert h.data_offset == reader.data_offset  # past the 1,000-string vocabulary, aligned
    assert h.tensor_bytes == (tmp_path / "m.gguf").stat().st_size - reader.data_offset
    assert VOCAB * HIDDEN // 32 * 34 + HIDDEN * 4 <= h.tensor_bytes < VOCAB * HIDDEN // 32 * 34 + HIDDEN * 4 + 64  # + alignment
    assert h.kv_bytes_per_token(2) == LAYERS * KV_HEADS * (HIDDEN // HEADS) * 2 * 2  # K and V, f16


@pytest.mark.parametrize("content", [b"not a gguf at all", b"GGUF\x03\x00\x00\x00" + b"\x05" * 8])
def test_a_file_that_is_not_a_complete_gguf_is_a_value_error(tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match="GGUF"):
        read_header(bad)


def test_truncated_gguf_is_a_value_error(tmp_path):
    good = write_gguf(tmp_path / "m.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good[:200])  # inside the vocabulary
    with pytest.raises(ValueError, match="not a complete GGUF"):
        read_header(cut)


def test_header_agrees_with_llama_cpp_on_a_converted_model(tiny_gguf):
    llama_cpp = pytest.importorskip("llama_cpp")
    h = read_header(tiny_gguf)
    llm = llama_cpp.Llama(model_path=str(tiny_gguf), n_ctx=64, verbose=False)
    try:
        assert h.parameters == llm._model.n_params()
        assert abs(h.tensor_bytes - llm._model.size()) <= 64 * len(h.tensors)  # alignment padding only
    finally:
        llm.close()


# ---- bytes per engine ----------------------------------------------------------------------------------

def test_each_engine_reads_its_own_bytes_for_a_gguf(tmp_path):
    from harness.planning.preflight import model_shape

    path = write_gguf(tmp_path / "m.gguf")
    shape = model_shape(str(path))
    h = shape["gguf"]
    cpp = engines.reads("llamacpp", shape, None, "bfloat16", 8)
    hf = engines.reads("transformers", shape, None, "bfloat16", 8)
    assert (cpp.weights, cpp.batch) == (h.tensor_bytes, 1)  # the quantized file, one request at a time
    assert (hf.weights, hf.batch) == (h.parameters * 2, 8)  # dequantized to bfloat16, batched
    assert engines.reads("transformers", shape, None, "float32", 8).weights == h.parameters * 4
    assert cpp.kv_per_token == h.kv_bytes_per_token(2)


def test_a_safetensors_model_reads_the_run_dtype_on_every_engine_but_llama_cpp_runs_batch_1():
    memory = {"weights": 1000, "kv_per_token": 10, "dtype": "bfloat16"}
    assert engines.reads("transformers", {"gguf": None}, memory, "bfloat16", 4) == engines.Reads(1000, 10, 4, "bfloat16 weights")
    assert engines.reads("llamacpp", {"gguf": None}, memory, "bfloat16", 4).batch == 1
    assert engines.reads("transformers", {"gguf": None}, None, "bfloat16", 4) is None


# ---- the plan's line -------------------------------------------------------------------------------------

@pytest.fixture
def data(tmp_path):
    return write_jsonl(tmp_path / "gsm8k.jsonl", gsm8k_rows(4))


@pytest.fixture(autouse=True)
def fixed_bandwidth(monkeypatch):
    monkeypatch.setattr(engines, "bandwidth", lambda dev: (10.0, "test bandwidth"))


def plan(model: str, data, capsys, *extra: str) -> str:
    code, out, err = run_cli(["plan", "--model", model, "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--device", "cpu",
                              "--dtype", "bfloat16", "--batch-size", "1", "--max-new-tokens", "64", *extra], capsys)
    assert code == 0, err
    return out


def engine_line(out: str) -> str | None:
    lines = [x for x in out.splitlines() if x.startswith("  engine: ")]
    assert len(lines) <= 1
    return lines[0] if lines else None


def test_plan_times_each_engine_from_its_own_bytes_for_a_gguf(tmp_path, data, capsys):
    path = write_gguf(tmp_path / "m.gguf")
    out = plan(str(path), data, capsys, "--backend", "transformers")
    h = read_header(path)
    assert f"{est.human_bytes(h.parameters * 2)} of bfloat16 weights dequantized from the GGUF" in out
    out = plan(str(path), data, capsys, "--backend", "llamacpp")
    assert f"{est.human_bytes(h.tensor_bytes)} of GGUF tensors as stored" in out


def test_plan_says_llama_cpp_is_faster_for_a_q8_gguf_and_why(tmp_path, data, capsys):
    path = write_gguf(tmp_path / "m.gguf")
    line = engine_line(plan(str(path), data, capsys))
    assert line is not None and "faster here: llama.cpp" in line
    bits = 8 * read_header(path).tensor_bytes / read_header(path).parameters
    assert 8.5 <= bits < 9  # Q8_0 plus a small f32 norm and alignment
    assert "memory-bound" in line and f"{bits:.1f} bits a weight" in line and "dequantizes it to bfloat16" in line
    assert "not yet measured here" in line


def test_plan_says_transformers_is_faster_for_an_f32_gguf_at_bfloat16(tmp_path, data, capsys):
    line = engine_line(plan(str(write_gguf(tmp_path / "m.gguf", "F32")), data, capsys))
    assert "faster here: transformers" in line and "32.0 bits a weight" in line


def test_a_measured_ratio_from_earlier_runs_decides_and_is_quoted(tmp_path, data, capsys, monkeypatch):
    speeds = {"transformers": 30.0, "llamacpp": 12.0}  # measured: transformers faster, against the bound
    monkeypatch.setattr(est, "previous_speed", lambda out, names, dev, backend=None: {
        "tokens_per_s": speeds[backend], "run": f"results/{backend}", "created_utc": "", "model": names[0]})
    line = engine_line(plan(str(write_gguf(tmp_path / "m.gguf")), data, capsys))
    assert "faster here: transformers" in line
    assert "measured in earlier runs here: llama.cpp 12 vs transformers 30 output tok/s (0.40x)" in line


def test_plan_offers_a_gguf_for_a_safetensors_model_on_cpu(tmp_path, data, capsys):
    folder = tmp_path / "qwen"
    folder.mkdir()
    shutil.copy(ROOT / "harness/data/configs/qwen2.5-0.5b-instruct.json", folder / "config.json")
    params = count_parameters(json.loads((folder / "config.json").read_text()))
    line = engine_line(plan(str(folder), data, capsys, "--dtype", "float32"))
    assert line is not None and "a GGUF on llama.cpp would read" in line
    assert f"{est.human_bytes(params * 8.5 / 8)} as Q8_0" in line and "as Q4_K_M" in line
    assert f"instead of {est.human_bytes(params * 4)} of float32 weights" in line
    assert "memory-bound" in line and "--backend llamacpp --model path/to/file.gguf" in line
    q8, q4 = map(float, re.search(r"speed bound is ([\d.]+)x and ([\d.]+)x this run's", line).groups())
    assert 3.7 <= q8 <= 3.9 and 6.4 <= q4 <= 6.7  # 32 bits over 8.5 and 4.89 (3.76, 6.54); the KV cache f16, not f32


@pytest.mark.parametrize("model", ["fake:echo", "openai:some-model"])
def test_no_engine_line_for_served_or_fake_models(model, data, capsys):
    extra = ("--base-url", "http://127.0.0.1:9/v1", "--protocol", "plain") if model.startswith("openai:") else ()
    assert engine_line(plan(model, data, capsys, *extra)) is None


def test_no_engine_line_off_the_cpu():
    from types import SimpleNamespace

    cfg = SimpleNamespace(model="random:qwen2.5-0.5b-instruct", backend="auto", output_dir="results")
    pre = SimpleNamespace(device=SimpleNamespace(type="cuda", name="gpu", dtype="bfloat16"), tasks=[], memory={"weights": 1})
    assert engines.EngineEstimates(cfg, pre, {"params": 1, "gguf": None}, 1, 10).choice() is None


def test_a_cpu_roofline_time_is_an_estimate_never_a_minimum(tmp_path, data, capsys, monkeypatch):
    """A torch copy understates a CPU's memory peak (llama.cpp streamed faster than it here), so the
    plan may not print "at least" a time or call the speed an upper bound on a CPU; on a GPU it does."""
    out = plan(str(write_gguf(tmp_path / "m.gguf")), data, capsys)
    times = [x for x in out.splitlines() if x.startswith("  time (")]
    assert times and all("at least" not in x and "upper bound" not in x and "an estimate, not a bound" in x for x in times)
    assert engines.ROOFLINE_KIND.get("cuda", engines.UPPER_BOUND) == engines.UPPER_BOUND
