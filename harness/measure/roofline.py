"""Memory-bandwidth roofline for decoding: how close measured decode speed is to its bound.

At batch 1 every decoded token reads all weights plus the KV cache of the context so far, so
    bound tokens/s = bandwidth / (weight bytes + KV bytes per token x context tokens).
Bandwidth is measured here (a device tensor copy, bytes read + written, best of a few repeats),
not taken from a datasheet, and cached per device under
${HARNESS_CACHE:-~/.cache/cnllm-harness}/bandwidth.json. torch is imported only inside
`measure_bandwidth`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

CPU_BYTES = 512 * 2**20
GPU_BYTES = 2 * 2**30
_DTYPE_BYTES = {"float32": 4, "float": 4, "float16": 2, "half": 2, "bfloat16": 2, "float8_e4m3fn": 1, "int8": 1}


def sync_device(device) -> None:
    import torch

    kind = device.type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind in ("xpu", "mps", "npu") and hasattr(getattr(torch, kind, None), "synchronize"):
        getattr(torch, kind).synchronize()


def measure_bandwidth(device: str = "cpu", nbytes: int | None = None, repeats: int = 5) -> float:
    """Device memory bandwidth in GB/s (1e9 bytes/s): best of `repeats` copies of `nbytes`,
    counting the bytes read plus the bytes written. Default size: 512 MiB on CPU, 2 GiB on
    accelerators (large enough to defeat caches)."""
    import torch

    dev = torch.device(device)
    size = nbytes or (CPU_BYTES if dev.type == "cpu" else GPU_BYTES)
    n = max(1, size // 4)
    src = torch.ones(n, dtype=torch.float32, device=dev)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up: first touch of the pages, kernel selection
    best = float("inf")
    for _ in range(max(1, repeats)):
        sync_device(dev)
        t0 = time.perf_counter()
        dst.copy_(src)
        sync_device(dev)
        best = min(best, time.perf_counter() - t0)
    moved = 2 * n * 4  # read src + write dst
    return moved / best / 1e9


def cache_path() -> Path:
    root = os.environ.get("HARNESS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "cnllm-harness")
    return Path(root) / "bandwidth.json"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # missing or corrupt: measure again
    return data if isinstance(data, dict) else {}


def cached_bandwidth(
    device_key: str, measure: Callable[[], float], *, path: Path | None = None
) -> tuple[float, str]:
    """(GB/s, source) for `device_key` (e.g. "cuda:NVIDIA H100 80GB HBM3"), measuring once and
    caching the result; a cached value says when it was measured."""
    path = path or cache_path()
    cache = _read_cache(path)
    hit = cache.get(device_key)
    if isinstance(hit, dict) and isinstance(hit.get("gbps"), (int, float)) and hit["gbps"] > 0:
        return float(hit["gbps"]), f"measured {hit.get('measured_utc', '?')} (cached in {path})"
    gbps = float(measure())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    cache[device_key] = {"gbps": gbps, "measured_utc": stamp, "method": "torch tensor copy, bytes read + written"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bandwidth.", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(cache, f, indent=2, sort_keys=True)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    except OSError:
        return gbps, f"measured now {stamp} (cache not writable: {path})"
    return gbps, f"measured now {stamp} (cached in {path})"


def decode_bound(bandwidth_gbps: float, weight_bytes: int, kv_bytes_per_token: int, context_tokens: float) -> dict:
    """Bytes read per decoded token at batch 1 and the tokens/s that bandwidth allows."""
    per_token = weight_bytes + kv_bytes_per_token * context_tokens
    bound = bandwidth_gbps * 1e9 / per_token if per_token > 0 else None
    return {"bytes_per_token": per_token, "bound_tokens_per_s": bound}


def roofline(
    bandwidth_gbps: float,
    source: str,
    weight_bytes: int,
    kv_bytes_per_token: int,
    mean_context_tokens: float,
    measured_decode_tokens_per_s_batch1_equiv: float | None,
) -> dict:
    """run.json's `perf.roofline`. `measured...` is the decode rate per sequence (batch-1
    equivalent), since at batch B one weight read serves B tokens. fraction = measured / bound."""
    b = decode_bound(bandwidth_gbps, weight_bytes, kv_bytes_per_token, mean_context_tokens)
    measured = measured_decode_tokens_per_s_batch1_equiv
    bound = b["bound_tokens_per_s"]
    return {
        "bandwidth_gbps": bandwidth_gbps,
        "bandwidth_source": source,
        "bytes_per_token": b["bytes_per_token"],
        "bound_tokens_per_s": bound,
        "measured_tokens_per_s": measured,
        "fraction": measured / bound if measured is not None and bound else None,
    }


def dtype_bytes(dtype) -> int:
    """Bytes per element of a dtype name ("bfloat16", "torch.float32", ...); 2 when unknown."""
    return _DTYPE_BYTES.get(str(dtype).replace("torch.", ""), 2)


def _get(config, key: str):
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def kv_bytes_per_token(config, dtype_bytes: int | None = None, *, mla_compressed: bool = False) -> int:
    """KV-cache bytes per token of context: 2 (K and V) x layers x KV heads x head dim x bytes.

    `config` is a transformers config object or its dict. head_dim defaults to
    hidden_size / num_attention_heads when the config lacks it (Qwen2) and is read when present
    (Qwen3, whose head_dim differs from that ratio). dtype_bytes defaults to the config's dtype
    (2 when absent). MLA models (DeepSeek-V2): transformers caches decompressed K and V per head;
    `mla_compressed=True` gives the latent cache engines such as vLLM keep instead.
    """
    text = _get(config, "text_config")
    if text is not None and _get(config, "num_hidden_layers") is None:
        config = text  # multimodal wrappers keep the language model's shape in text_config
    if dtype_bytes is None:
        dtype = _get(config, "torch_dtype") or _get(config, "dtype")
        dtype_bytes = _DTYPE_BYTES.get(str(dtype).replace("torch.", ""), 2)
    layers = int(_get(config, "num_hidden_layers"))
    heads = int(_get(config, "num_attention_heads"))
    if _get(config, "kv_lora_rank") is not None:
        rope = int(_get(config, "qk_rope_head_dim"))
        if mla_compressed:
            return layers * (int(_get(config, "kv_lora_rank")) + rope) * dtype_bytes
        k_dim = int(_get(config, "qk_nope_head_dim")) + rope
        return layers * heads * (k_dim + int(_get(config, "v_head_dim"))) * dtype_bytes
    kv_heads = int(_get(config, "num_key_value_heads") or heads)
    head_dim = _get(config, "head_dim") or int(_get(config, "hidden_size")) // heads
    return 2 * layers * kv_heads * int(head_dim) * dtype_bytes


def kv_bytes_or_none(config, dtype_bytes: int | None = None, *, mla_compressed: bool = False) -> int | None:
    """`kv_bytes_per_token`, or None when the config lacks a field it needs (backends report
    an unknown KV size rather than fail a run over the roofline)."""
    try:
        return kv_bytes_per_token(config, dtype_bytes, mla_compressed=mla_compressed)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
