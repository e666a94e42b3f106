"""Roofline arithmetic, KV bytes from real configs, bandwidth measurement and its cache; memory."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.measure.memory import device_peak, host_peak_rss_bytes, reset_device_peak
from harness.measure.roofline import cache_path, cached_bandwidth, decode_bound, kv_bytes_per_token, measure_bandwidth, roofline

CONFIGS = Path(__file__).resolve().parents[1] / "harness" / "data" / "configs"


def _config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "name,expected",
    [
        # 2 x layers x kv_heads x head_dim x 2 bytes (bf16)
        ("r1-distill-qwen-7b", 2 * 28 * 4 * (3584 // 28) * 2),  # head_dim from hidden/heads
        ("qwen2.5-0.5b-instruct", 2 * 24 * 2 * 64 * 2),
        ("qwen3-0.6b", 2 * 28 * 8 * 128 * 2),  # explicit head_dim 128, not 1024/16 = 64
        ("r1-distill-llama-70b", 2 * 80 * 8 * 128 * 2),
    ],
)
def test_kv_bytes_per_token_from_real_configs(name, expected):
    assert kv_bytes_per_token(_config(name)) == expected


def test_kv_bytes_per_token_variants():
    cfg = _config("r1-distill-qwen-7b")
    assert kv_bytes_per_token(SimpleNamespace(**cfg)) == 57344  # a config object works too
    assert kv_bytes_per_token(cfg, dtype_bytes=4) == 2 * 57344
    no_gqa = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64, "torch_dtype": "float32"}
    assert kv_bytes_per_token(no_gqa) == 2 * 2 * 4 * 16 * 4
    assert kv_bytes_per_token({"text_config": no_gqa}) == kv_bytes_per_token(no_gqa)
    mla = _config("deepseek-v2-lite-chat")  # 27 layers, 16 heads, K 128+64, V 128
    assert kv_bytes_per_token(mla) == 27 * 16 * (192 + 128) * 2
    assert kv_bytes_per_token(mla, mla_compressed=True) == 27 * (512 + 64) * 2


def test_decode_bound_and_roofline_known_values():
    # 1 GB of weights, 1 MB of KV per token, 1,000 tokens of context: 2 GB per token.
    b = decode_bound(100.0, 10**9, 10**6, 1000)
    assert b == {"bytes_per_token": 2 * 10**9, "bound_tokens_per_s": 50.0}
    r = roofline(100.0, "measured", 10**9, 10**6, 1000, 40.0)
    assert r == {
        "bandwidth_gbps": 100.0,
        "bandwidth_source": "measured",
        "bytes_per_token": 2 * 10**9,
        "bound_tokens_per_s": 50.0,
        "measured_tokens_per_s": 40.0,
        "fraction": 0.8,
    }
    assert roofline(100.0, "m", 10**9, 0, 0, None)["fraction"] is None


def test_measure_bandwidth_on_cpu_is_positive():
    gbps = measure_bandwidth("cpu", nbytes=32 * 2**20, repeats=2)
    assert gbps > 0.1


def test_cached_bandwidth_measures_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    assert cache_path() == tmp_path / "cache" / "bandwidth.json"
    calls = []

    def measure():
        calls.append(1)
        return 42.0

    gbps, source = cached_bandwidth("cpu:Test CPU", measure)
    assert (gbps, len(calls)) == (42.0, 1) and source.startswith("measured now")
    gbps, source = cached_bandwidth("cpu:Test CPU", measure)
    assert (gbps, len(calls)) == (42.0, 1) and "cached" in source
    cached_bandwidth("cuda:Other", lambda: 7.0)
    stored = json.loads(cache_path().read_text())
    assert stored["cpu:Test CPU"]["gbps"] == 42.0 and stored["cuda:Other"]["gbps"] == 7.0


def test_cached_bandwidth_survives_a_corrupt_cache(tmp_path):
    path = tmp_path / "bandwidth.json"
    path.write_text("{not json")
    assert cached_bandwidth("k", lambda: 3.0, path=path)[0] == 3.0
    assert json.loads(path.read_text())["k"]["gbps"] == 3.0


def test_memory_probes_on_cpu():
    rss = host_peak_rss_bytes()
    assert rss > 10 * 2**20  # this process has imported numpy and pytest: well over 10 MiB
    assert device_peak("cpu") is None and device_peak("mps") is None
    reset_device_peak("cpu")  # a no-op, must not raise
    import torch

    if torch.cuda.is_available():
        assert set(device_peak("cuda")) == {"allocated", "reserved"}
    else:
        assert device_peak("cuda") is None  # no GPU: no counter, rather than zeros
