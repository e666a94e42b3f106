"""Device memory bandwidth for the roofline: measured, cached with when and how, and set beside
the device's published peak.

Measurement: a device tensor copy, bytes read + written, best of `repeats` copies in each of
`passes` passes (a pause between passes, so one busy moment cannot set the number). The cache
(${HARNESS_CACHE:-~/.cache/cnllm-harness}/bandwidth.json) keeps per device: the GB/s, every
pass, the UTC time, the method, the size and (CPU) the load average per core at the time. A value
older than MAX_AGE_DAYS, a CPU value measured while the machine was busy (runtime/cache.py: load
over BUSY_LOAD per core) once it is less than half as loaded, or any value when HARNESS_REMEASURE_BANDWIDTH=1
(`harness env --remeasure-bandwidth`), is measured again. torch
is imported only inside `measure_bandwidth`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from harness.runtime.cache import BUSY_LOAD, cache_dir, load_per_core, measured_busy, read_cache, write_cache

CPU_BYTES = 512 * 2**20
GPU_BYTES = 2 * 2**30
MAX_AGE_DAYS = 7
PASSES = 3
METHOD = "torch tensor copy, bytes read + written; best of {repeats} copies in each of {passes} passes"
REMEASURE_ENV = "HARNESS_REMEASURE_BANDWIDTH"

_NVIDIA = "NVIDIA datasheet"
# (pattern on the device name, GB/s, source). First match wins, so the specific variants come first.
# Ascend 910B: Huawei's product pages give no memory-bandwidth figure and third-party figures
# disagree by 4x, so no number is claimed for it.
PUBLISHED_PEAKS: tuple[tuple[str, float | None, str], ...] = (
    (r"H200", 4800.0, f"{_NVIDIA}: H200 SXM 141 GB HBM3e, 4.8 TB/s"),
    (r"H100.*NVL", 3900.0, f"{_NVIDIA}: H100 NVL, 3.9 TB/s"),
    (r"H100.*PCIe", 2000.0, f"{_NVIDIA}: H100 PCIe, 2.0 TB/s"),
    (r"H100", 3350.0, f"{_NVIDIA}: H100 SXM, 3.35 TB/s"),
    (r"A100.*80\s*GB.*PCIe", 1935.0, f"{_NVIDIA}: A100 80GB PCIe, 1,935 GB/s"),
    (r"A100.*80\s*GB", 2039.0, f"{_NVIDIA}: A100 80GB SXM, 2,039 GB/s"),
    (r"A100", 1555.0, f"{_NVIDIA}: A100 40GB, 1,555 GB/s"),
    (r"\bL4\b", 300.0, f"{_NVIDIA}: L4, 300 GB/s"),
    (r"RTX 4090", 1008.0, "NVIDIA GeForce RTX 4090 specifications: 1,008 GB/s (21 Gbps GDDR6X, 384-bit)"),
    (r"MI300X", 5300.0, "AMD Instinct MI300X data sheet: 5.3 TB/s"),
    (r"910B", None, "Huawei publishes no memory-bandwidth figure for the Ascend 910B; none is claimed"),
    (r"Apple M4 Max\b", 546.0, "Apple M4 Max tech specs: up to 546 GB/s (410 GB/s on the 14-core CPU part)"),
    (r"Apple M4 Pro\b", 273.0, "Apple M4 Pro tech specs: 273 GB/s"),
    (r"Apple M4\b", 120.0, "Apple M4 tech specs: 120 GB/s"),
    (r"Apple M3 Max\b", 400.0, "Apple M3 Max tech specs: up to 400 GB/s (300 GB/s on the 14-core CPU part)"),
    (r"Apple M3 Pro\b", 150.0, "Apple M3 Pro tech specs: 150 GB/s"),
    (r"Apple M3 Ultra\b", 819.0, "Apple M3 Ultra tech specs: 819 GB/s"),
    (r"Apple M3\b", 100.0, "Apple M3 tech specs: 100 GB/s"),
    (r"Apple M[12] Ultra\b", 800.0, "Apple M1/M2 Ultra tech specs: 800 GB/s"),
    (r"Apple M[12] Max\b", 400.0, "Apple M1/M2 Max tech specs: 400 GB/s"),
    (r"Apple M[12] Pro\b", 200.0, "Apple M1/M2 Pro tech specs: 200 GB/s"),
    (r"Apple M2\b", 100.0, "Apple M2 tech specs: 100 GB/s"),
    (r"Apple M1\b", 68.25, "Apple M1 tech specs: 68.25 GB/s"),
)


def published_peak(device_name: str | None) -> dict:
    """{"gbps", "source"} of the device's published peak memory bandwidth; gbps None when unknown."""
    name = device_name or ""
    for pattern, gbps, source in PUBLISHED_PEAKS:
        if re.search(pattern, name):
            return {"gbps": gbps, "source": source}
    return {"gbps": None, "source": f"no published figure known for {name or 'this device'}"}


def sync_device(device) -> None:
    """Wait for the device to finish queued work (so a host clock can time it)."""
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
    return cache_dir() / "bandwidth.json"


def _age(stamp: str | None, now: datetime) -> timedelta | None:
    try:
        return now - datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def bandwidth_record(device_key: str, measure: Callable[[], float], *, path: Path | None = None, remeasure: bool | None = None,
                     max_age_days: float = MAX_AGE_DAYS, passes: int = PASSES, pause_s: float = 0.2,
                     now: datetime | None = None, load: float | None = None) -> dict:
    """The bandwidth record for `device_key`: {"gbps", "passes", "measured_utc", "method", "age_days",
    "cached", "source"}. Measures (best of `passes` calls of `measure`) when nothing usable is
    cached, when the cached value is older than `max_age_days`, or when `remeasure` (default: the
    HARNESS_REMEASURE_BANDWIDTH environment variable) is set."""
    path = path or cache_path()
    now = now or datetime.now(timezone.utc)
    if remeasure is None:
        remeasure = os.environ.get(REMEASURE_ENV, "") not in ("", "0")
    cache = read_cache(path)
    hit = cache.get(device_key)
    cpu = device_key.startswith("cpu:")
    load = (load if load is not None else load_per_core()) if cpu else None
    busy_then = cpu and isinstance(hit, dict) and measured_busy(hit, load)
    if not remeasure and not busy_then and isinstance(hit, dict) and isinstance(hit.get("gbps"), (int, float)) and hit["gbps"] > 0:
        age = _age(hit.get("measured_utc"), now)
        if age is not None and age <= timedelta(days=max_age_days):
            days = age.total_seconds() / 86400
            return {**hit, "age_days": round(days, 3), "cached": True,
                    "source": f"measured {hit['measured_utc']} ({days:.1f} days ago; {hit.get('method', 'method not recorded')}; cached in {path})"}
    values = []
    for i in range(max(1, passes)):
        if i:
            time.sleep(pause_s)
        values.append(float(measure()))
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    method = METHOD.format(repeats=5, passes=len(values))
    record = {"gbps": max(values), "passes": values, "measured_utc": stamp, "method": method}
    if load is not None:
        record["load_per_core"] = round(load, 2)
    cache[device_key] = record
    where = f"cached in {path}" if write_cache(path, cache) else f"cache not writable: {path}"
    why = ("asked to re-measure" if remeasure else f"the cached value was measured at load {(hit or {}).get('load_per_core', 0):.1f} per core, "
           f"now {load:.1f}" if busy_then else (f"older than {max_age_days:g} days" if hit else "first measurement"))
    if load is not None and load > BUSY_LOAD:
        why += f"; the machine is busy now (load {load:.1f} per core): this may understate the memory"
    return {**record, "age_days": 0.0, "cached": False, "source": f"measured now {stamp} ({why}; {method}; {where})"}


def cached_bandwidth(device_key: str, measure: Callable[[], float], *, path: Path | None = None, **kwargs) -> tuple[float, str]:
    """(GB/s, source) for `device_key`; see `bandwidth_record`."""
    rec = bandwidth_record(device_key, measure, path=path, **kwargs)
    return float(rec["gbps"]), rec["source"]
