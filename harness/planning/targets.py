"""Devices a plan can be computed for: this machine, or a named target (`--target h100-sxm`) with its
published memory, memory bandwidth and dense bf16 compute, each with its source, so memory fit, time
and dollars are those of that device. Also the torch-free device choice a plan uses on a CPU-only
machine (a plan must not pay torch's import to say "cpu").
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

GB = 1e9


@dataclass(frozen=True)
class Target:
    """A device's published figures (decimal GB, GB/s, dense bf16 TFLOP/s without sparsity)."""

    key: str
    name: str
    type: str  # the torch device kind it would run as
    memory_gb: float
    bandwidth_gbps: float | None
    bf16_tflops: float | None
    source: str
    gpu_match: tuple[str, ...]  # words of a price table entry's `gpu` that name this device


_NV = "NVIDIA data sheet"
TARGETS: dict[str, Target] = {t.key: t for t in (
    Target("h100-sxm", "NVIDIA H100 SXM 80GB", "cuda", 80, 3350, 989,
           f"{_NV} (H100 Tensor Core GPU): 80 GB HBM3, 3.35 TB/s, 989 TFLOP/s dense BF16", ("H100", "SXM")),
    Target("h100-pcie", "NVIDIA H100 PCIe 80GB", "cuda", 80, 2000, 756,
           f"{_NV} (H100 Tensor Core GPU): PCIe 80 GB HBM2e, 2.0 TB/s, 756 TFLOP/s dense BF16", ("H100", "PCIe")),
    Target("h200", "NVIDIA H200 SXM 141GB", "cuda", 141, 4800, 989,
           f"{_NV} (H200 Tensor Core GPU): 141 GB HBM3e, 4.8 TB/s, 989 TFLOP/s dense BF16", ("H200",)),
    Target("a100-80gb", "NVIDIA A100 SXM 80GB", "cuda", 80, 2039, 312,
           f"{_NV} (A100 Tensor Core GPU): 80 GB HBM2e, 2,039 GB/s, 312 TFLOP/s dense BF16", ("A100", "80")),
    Target("a100-40gb", "NVIDIA A100 40GB", "cuda", 40, 1555, 312,
           f"{_NV} (A100 Tensor Core GPU): 40 GB HBM2, 1,555 GB/s, 312 TFLOP/s dense BF16", ("A100", "40")),
    Target("a10g", "NVIDIA A10G 24GB", "cuda", 24, 600, 70,
           "AWS G5 instance page / NVIDIA A10 data sheet: 24 GB GDDR6, 600 GB/s, about 70 TFLOP/s dense BF16", ("A10G",)),
    Target("l4", "NVIDIA L4 24GB", "cuda", 24, 300, 121,
           f"{_NV} (L4 Tensor Core GPU): 24 GB GDDR6, 300 GB/s, 121 TFLOP/s dense BF16", ("L4",)),
    Target("rtx-4090", "NVIDIA GeForce RTX 4090", "cuda", 24, 1008, 165,
           "NVIDIA RTX 4090 specifications and Ada whitepaper: 24 GB GDDR6X, 1,008 GB/s, 165 TFLOP/s dense BF16 (FP32 accumulate)",
           ("4090",)),
    Target("ascend-910b", "Huawei Ascend 910B", "npu", 64, None, 313,
           "Huawei Ascend 910B product page: 64 GB HBM2e, about 313 TFLOP/s FP16; no memory-bandwidth figure is published "
           "(third-party figures disagree), so decoding time is not computed from one", ("910B",)),
)}


def target(key: str) -> Target:
    """The named target, or a one-line error listing them."""
    k = key.strip().lower()
    if k in TARGETS:
        return TARGETS[k]
    import difflib

    close = difflib.get_close_matches(k, list(TARGETS), n=1)
    raise ConfigError(f"unknown --target {key!r}" + (f" (did you mean {close[0]}?)" if close else ""),
                      f"use one of {', '.join(TARGETS)}, or leave it out to plan for this machine")


def prices_device(instance_gpu: str | None, device_name: str, device_type: str) -> bool:
    """Whether a price table entry whose `gpu` is `instance_gpu` rents the device the time is for."""
    gpu = (instance_gpu or "").lower()
    if device_type == "cpu":
        return gpu in ("", "none")
    for t in TARGETS.values():
        if t.name == device_name:
            return all(w.lower() in gpu for w in t.gpu_match)
    return bool(gpu) and any(w.lower() in device_name.lower() for w in gpu.replace("nvidia", "").split() if len(w) > 2)


def accelerator_hint() -> str | None:
    """A cheap sign of an accelerator on this machine (device files, macOS), without importing torch;
    None when there is none and `--device auto` means the CPU."""
    if platform.system() == "Darwin":
        return "macOS (MPS)"
    for path in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/davinci0", "/dev/dxg"):
        if Path(path).exists():
            return path
    if os.environ.get("HARNESS_ASSUME_ACCELERATOR"):
        return "HARNESS_ASSUME_ACCELERATOR"
    return None


def cpu_choice(device: str, dtype: str):
    """The DeviceChoice for a CPU run, built without torch; None when it is not clearly a CPU run
    (then runtime/device.resolve, which imports torch, decides)."""
    from harness.runtime.device import DTYPES, DeviceChoice, cpu_name

    dev = device.strip().lower()
    if dev not in ("cpu", "auto") or dtype not in DTYPES or (dev == "auto" and accelerator_hint()):
        return None
    reason = "requested: cpu" if dev == "cpu" else "auto: no accelerator found (no GPU or NPU device files); using cpu"
    name = dtype if dtype != "auto" else "float32"  # cpu_dtype.refine decides an automatic one
    return DeviceChoice("cpu", None, cpu_name(), name, reason, "requested" if dtype != "auto" else "auto", 1, "")


def target_choice(t: Target, dtype: str):
    """A DeviceChoice standing for a target device this machine need not have."""
    from harness.runtime.device import DeviceChoice

    name = "bfloat16" if dtype == "auto" else dtype
    return DeviceChoice(t.type, 0, t.name, name, f"--target {t.key}: planned for that device, not this machine",
                        "auto: bfloat16 (the target runs it natively)" if dtype == "auto" else "requested", 1, "")


# A target device's decoding efficiency is not measured here: these are the stated assumptions.
TARGET_BW_EFFICIENCY = (0.35, 0.55, 0.8)  # low, expected, high fraction of published bandwidth
TARGET_FLOP_EFFICIENCY = 0.5
TARGET_LAYER_OVERHEAD_S = (5e-5, 1.2e-4, 3e-4)  # per layer and step: kernel launches of eager decoding
TARGET_LOAD_GBPS = 2.0  # weights read from local NVMe


def estimate_target(j, t: Target, device_name_here: str):
    """The run's time on a device this machine is not (`t`: a targets.Target): decoding at the
    published bandwidth and compute at a stated efficiency range (not measured), the load from
    local NVMe, start-up as measured on this machine."""
    import math

    from harness.planning.timing import TimeEstimate, load_profile

    p, psource = load_profile(device_name_here)
    startup = p.startup_s if p else 10.0
    batch = max(1, min(j.batch, j.requests))
    batches = math.ceil(j.requests / batch)
    out = []
    if t.bandwidth_gbps is None:
        return TimeEstimate(float("nan"), (float("nan"), float("nan")), {}, {"decode": t.source}, None,
                            [f"{t.name}: no published memory bandwidth, so no decoding time"])
    for eff, overhead in zip(TARGET_BW_EFFICIENCY, reversed(TARGET_LAYER_OVERHEAD_S)):  # slowest first
        bw, fl = t.bandwidth_gbps * 1e9 * eff, (t.bf16_tflops or 100) * 1e12 * TARGET_FLOP_EFFICIENCY
        ctx = j.prompt_tokens + j.new_tokens / 2
        step = j.layers * overhead + max((j.weight_bytes + j.kv_per_token * ctx * batch) / bw, batch * j.flops_per_token / fl)
        decode = batches * j.new_tokens * step
        prefill = batches * (j.layers * overhead + batch * j.prompt_tokens * j.flops_per_token / fl)
        load = j.weight_bytes / (TARGET_LOAD_GBPS * 1e9)
        out.append({"startup": startup, "load": load, "warmup": 0.0, "prefill": prefill, "decode": decode})
    lo, mid, hi = (sum(x.values()) for x in (out[2], out[1], out[0]))
    assumed = (f"{t.name} ({t.source}) at {TARGET_BW_EFFICIENCY[1]:.0%} of its published bandwidth "
               f"(range {TARGET_BW_EFFICIENCY[0]:.0%}-{TARGET_BW_EFFICIENCY[2]:.0%}, assumed: not measured on that device) and "
               f"{TARGET_LAYER_OVERHEAD_S[1] * 1e6:.0f} us per layer and step of kernel launches")
    roof = math.ceil(j.requests / batch) * j.new_tokens * (j.weight_bytes + j.kv_per_token * (j.prompt_tokens + j.new_tokens / 2) * batch) / (
        t.bandwidth_gbps * 1e9)
    return TimeEstimate(mid, (lo, hi), {k: round(v, 3) for k, v in out[1].items()},
                        {"startup": f"this machine's start-up ({psource})" if p else "assumed 10 s", "load": f"weights from NVMe at {TARGET_LOAD_GBPS:g} GB/s (assumed)",
                         "prefill": assumed, "decode": assumed, "warmup": "not counted"}, roof,
                        [f"planned for {t.name}, not measured on it: run there once to replace the assumptions"])


__all__ = ["estimate_target", "TARGETS", "Target", "accelerator_hint", "cpu_choice", "prices_device", "target", "target_choice"]
