"""Peak memory: the host process's resident set and the accelerator allocator's peak.

Device numbers are the framework allocator's own peak counters (what torch allocated and what
its caching allocator reserved), not what `nvidia-smi` shows, which also counts the CUDA
context. torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def host_peak_rss_bytes() -> int:
    """Peak resident set size of this process, in bytes."""
    try:
        import resource
    except ImportError:  # Windows has no `resource`; psutil reports the peak working set there
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _module(device_type: str):
    """The torch submodule with max_memory_allocated/max_memory_reserved for this device type."""
    import torch

    if device_type == "npu":
        try:
            import torch_npu  # noqa: F401  (registers torch.npu)
        except ImportError:
            return None
    mod = getattr(torch, device_type, None)
    if mod is None or not hasattr(mod, "max_memory_allocated") or not mod.is_available():
        return None
    return mod


def device_peak(device_type: str, indices: Sequence[int] | None = None) -> dict | None:
    """{"allocated": bytes, "reserved": bytes}: allocator peaks summed over `indices` (default:
    every visible device of that type), or None where there is no peak counter.

    None on CPU (the host figure covers it) and on MPS: torch.mps exposes only current, not
    peak, allocation, and a current value reported as a peak would be wrong.
    """
    if device_type in ("cpu", "mps"):
        return None
    mod = _module(device_type)
    if mod is None:
        return None
    ids = list(indices) if indices is not None else list(range(mod.device_count()))
    return {
        "allocated": int(sum(mod.max_memory_allocated(i) for i in ids)),
        "reserved": int(sum(mod.max_memory_reserved(i) for i in ids)),
    }


def reset_device_peak(device_type: str, indices: Sequence[int] | None = None) -> None:
    """Start a fresh peak window (after loading, before warm-up) where the device supports it."""
    if device_type in ("cpu", "mps"):
        return
    mod = _module(device_type)
    if mod is None or not hasattr(mod, "reset_peak_memory_stats"):
        return
    for i in list(indices) if indices is not None else range(mod.device_count()):
        mod.reset_peak_memory_stats(i)
