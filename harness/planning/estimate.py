"""What a run will need before it loads anything: parameter count from a config, memory
(weights in the run dtype + KV cache at batch x context + an activation margin) against what
this machine has, and time from earlier runs of the same model here or the bandwidth roofline.

Pure arithmetic on config dicts plus two cheap reads of the machine (/proc/meminfo and the
address-space limit); no torch, so `harness plan` can refuse a run before the slow imports.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.core.architecture import dtype_bytes, kv_bytes_or_none

GiB = 2**30
ACTIVATION_MARGIN = 0.10  # of the weights: logits, MLP intermediates, allocator slack
RUNTIME_BYTES = {"cpu": int(1.5 * GiB), "cuda": int(1.0 * GiB)}  # torch + transformers themselves (CUDA context)


def memory_estimate(config: Mapping, params: int, dtype: str, batch: int, context: int, device_type: str = "cpu") -> dict:
    """Bytes this run needs: weights in `dtype`, KV cache for `batch` sequences of `context`
    tokens, an activation margin and the runtime itself; every part named."""
    width = dtype_bytes(dtype)
    weights = params * width
    kv_per_token = kv_bytes_or_none(dict(config), width) or 0
    kv = kv_per_token * batch * context
    margin = int(ACTIVATION_MARGIN * weights)
    runtime = RUNTIME_BYTES.get(device_type, RUNTIME_BYTES["cuda"])
    return {"weights": weights, "kv_cache": kv, "kv_per_token": kv_per_token, "activations": margin, "runtime": runtime,
            "total": weights + kv + margin + runtime, "dtype": dtype, "batch": batch, "context": context}


def _meminfo() -> dict[str, int]:
    try:
        rows = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for row in rows:
        key, _, rest = row.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def _vm_size() -> int:
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmSize:"):
                return int(row.split()[1]) * 1024
    except OSError:
        pass
    return 0


def host_available() -> tuple[int | None, str]:
    """(bytes this process can still allocate on the host, how that was found): the smaller of
    MemAvailable and what the address-space limit (`ulimit -v`) leaves."""
    info = _meminfo()
    avail, why = info.get("MemAvailable"), "MemAvailable"
    if avail is None:
        try:
            import psutil

            avail, why = int(psutil.virtual_memory().available), "psutil available"
        except Exception:
            avail, why = None, "unknown"
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        # torch maps far more address space than it touches: count the runtime against the limit too
        left = soft - _vm_size() - RUNTIME_BYTES["cpu"]
        if avail is None or left < avail:
            avail, why = max(left, 0), f"address-space limit (ulimit -v) of {soft / GiB:.1f} GiB"
    return avail, why


def device_available(device_type: str, index: int | None) -> tuple[int | None, str]:
    """Free accelerator memory (torch is imported only for a non-CPU device, already chosen)."""
    if device_type == "cpu":
        return host_available()
    try:
        import torch

        mod = getattr(torch, device_type)
        free, total = mod.mem_get_info(index or 0)
        return int(free), f"{device_type} free memory ({total / GiB:.0f} GiB total)"
    except Exception:
        return None, "unknown"


def fits(estimate: dict, available: int | None) -> bool:
    return available is None or estimate["total"] <= available


def previous_speed(output_dir: str | Path, model: str | list[str], device_name: str | None, backend: str | None = None) -> dict[str, Any] | None:
    """Output tokens/s of the newest earlier run of `model` (or any of a list of names for the same
    architecture) on this device, from the run.json files under `output_dir`."""
    names = [model] if isinstance(model, str) else list(model)
    from harness.errors import HarnessError
    from harness.results.store import load_run

    best: dict[str, Any] | None = None
    for path in Path(output_dir).glob("*/run.json"):
        try:
            run = load_run(path.parent)  # through the schema, like every reader of run.json
        except (HarnessError, OSError, ValueError):
            continue  # a foreign or broken folder says nothing about speed
        tps = run.perf.output_tokens_per_s if run.perf is not None else None  # a run that never generated has no perf
        if run.model.name_or_path not in names or not tps:
            continue
        if device_name and run.device.name not in (None, device_name):
            continue
        if backend and run.model.backend != backend:
            continue
        stamp = run.created_utc or ""
        if best is None or stamp > best["created_utc"]:
            best = {"tokens_per_s": float(tps), "run": str(path.parent), "created_utc": stamp, "model": run.model.name_or_path}
    return best


def roofline_speed(bandwidth_gbps: float, weights: int, kv_per_token: int, context: float, batch: int) -> float | None:
    """Output tokens/s if decoding ran at the memory-bandwidth bound: each step reads the weights
    once for the whole batch plus each sequence's KV cache. An upper bound, so times are lower bounds."""
    per_step = weights + kv_per_token * context * batch
    return bandwidth_gbps * 1e9 / per_step * batch if per_step > 0 else None


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    return f"{n / GiB:.1f} GiB" if n >= GiB / 10 else f"{n / 2**20:.1f} MiB"


def human_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} minutes"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} hours"
    return f"{s / 3600:,.0f} hours ({s / 86400:,.0f} days)"
