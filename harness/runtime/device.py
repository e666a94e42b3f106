"""Device and dtype, decided once, with the reason recorded.

`auto` tries CUDA (ROCm builds included), Intel XPU, Huawei Ascend NPU (when torch_npu is
installed), Apple MPS, then CPU. An explicit device that is not present is an error, never a
silent fallback. On CPU, `--dtype auto` picks the faster of bfloat16 and float32 for this machine,
measured once (a short matmul timing) and cached.
"""

from __future__ import annotations

import os
import platform
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import DeviceError
from harness.runtime.cache import cache_dir, read_cache, write_cache

DTYPES = ("auto", "bfloat16", "float16", "float32")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|mps|xpu|npu)(?::(\d+))?$")


@dataclass(frozen=True)
class DeviceChoice:
    type: str  # cpu | cuda | mps | xpu | npu
    index: int | None
    name: str
    dtype: str
    device_reason: str
    dtype_reason: str
    count: int = 1  # devices of this type visible
    backend_runtime: str = ""  # e.g. "CUDA 13.0", "ROCm 6.2"
    dtype_measurements: dict | None = None  # what an auto dtype was decided from (harness/planning/cpu_dtype.py)

    @property
    def torch_device(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def asdict(self) -> dict:
        return asdict(self)


def _npu_available(torch) -> bool:
    try:
        import torch_npu  # noqa: F401  (registers torch.npu)
    except ImportError:
        return False
    return bool(getattr(torch, "npu", None) and torch.npu.is_available())


def available(kind: str) -> bool:
    import torch

    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "xpu":
        return bool(getattr(torch, "xpu", None) and torch.xpu.is_available())
    if kind == "npu":
        return _npu_available(torch)
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return False


def _count(torch, kind: str) -> int:
    mod = {"cuda": torch.cuda, "xpu": getattr(torch, "xpu", None), "npu": getattr(torch, "npu", None)}.get(kind)
    return int(mod.device_count()) if mod is not None else 1


def _name(torch, kind: str, index: int | None) -> str:
    i = index or 0
    try:
        if kind == "cuda":
            return torch.cuda.get_device_name(i)
        if kind == "xpu":
            return torch.xpu.get_device_name(i)
        if kind == "npu":
            return torch.npu.get_device_name(i)
    except Exception:  # a name is nice to have, never worth failing for
        pass
    if kind == "mps":  # the chip name (e.g. "Apple M2 Pro") finds its published bandwidth
        try:
            import subprocess

            chip = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            chip = ""
        return f"{chip or 'Apple ' + platform.machine()} (MPS)"
    return cpu_name()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical cores)"


def parse_device(spec: str) -> tuple[str, int | None]:
    m = _DEVICE_RE.match(spec.strip().lower())
    if not m:
        raise DeviceError(f"unknown device {spec!r}", "use auto, cpu, cuda[:N], mps, xpu[:N] or npu[:N]")
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def resolve(device: str = "auto", dtype: str = "auto") -> DeviceChoice:
    """Pick the device and dtype for this run, or raise DeviceError with the fix."""
    kind, index = parse_device(device)
    if dtype not in DTYPES:
        raise DeviceError(f"unknown dtype {dtype!r}", f"use one of {', '.join(DTYPES)}")
    import torch

    if kind == "auto":
        for cand in ("cuda", "xpu", "npu", "mps"):
            if available(cand):
                kind, reason = cand, f"auto: {cand} is available (checked cuda, xpu, npu, mps in that order)"
                break
        else:
            kind, reason = "cpu", "auto: no accelerator found (checked cuda, xpu, npu, mps); using cpu"
    else:
        if not available(kind):
            hint = {"npu": "install torch_npu and the Ascend driver", "cuda": "install a CUDA or ROCm build of torch, or use --device cpu"}
            raise DeviceError(f"device {device!r} was requested but is not available on this machine",
                              hint.get(kind, "use --device auto or --device cpu") + " (see `harness env`)")
        reason = f"requested: {device}"
    count = _count(torch, kind) if kind != "cpu" else 1
    if index is not None and kind in ("cuda", "xpu", "npu") and index >= count:
        raise DeviceError(f"device {device!r} does not exist: {count} {kind} device(s) visible", f"use an index below {count}")
    if kind in ("cuda", "xpu", "npu") and index is None:
        index = 0
    dtype_name, dtype_reason = _choose_dtype(torch, kind, index, dtype)
    runtime = ""
    if kind == "cuda":
        runtime = f"ROCm {torch.version.hip}" if getattr(torch.version, "hip", None) else f"CUDA {torch.version.cuda}"
    return DeviceChoice(kind, index, _name(torch, kind, index), dtype_name, reason, dtype_reason, count, runtime)


def _choose_dtype(torch, kind: str, index: int | None, dtype: str) -> tuple[str, str]:
    if dtype != "auto":
        if kind == "cpu" and dtype == "float16":
            return dtype, "requested (note: float16 matmuls are slow or emulated on most CPUs)"
        if kind == "mps" and dtype == "bfloat16" and not _mps_bf16(torch):
            raise DeviceError("bfloat16 is not supported by this MPS device", "use --dtype float16 or float32")
        if kind == "cuda" and dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            raise DeviceError(f"bfloat16 is not supported on {_name(torch, kind, index)}", "use --dtype float16 (or float32)")
        return dtype, "requested"
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bfloat16", "auto: the GPU supports bfloat16"
        return "float16", "auto: the GPU lacks bfloat16; float16 instead"
    if kind in ("xpu", "npu"):
        return "bfloat16", f"auto: {kind} runs bfloat16 natively"
    if kind == "mps":
        return ("bfloat16", "auto: MPS supports bfloat16") if _mps_bf16(torch) else ("float16", "auto: MPS without bfloat16; float16")
    return cpu_dtype(torch)


def _mps_bf16(torch) -> bool:
    try:
        torch.zeros(1, dtype=torch.bfloat16, device="mps")
        return True
    except Exception:
        return False


def cpu_dtype(torch) -> tuple[str, str]:
    """The faster of bfloat16/float32 matmuls on this CPU, measured once and cached by CPU model."""
    key = cpu_name()
    path = cache_dir() / "cpu_dtype.json"
    cached = read_cache(path)
    if cached.get("cpu") == key and cached.get("torch") == torch.__version__ and {"dtype", "reason"} <= set(cached):
        return cached["dtype"], f"auto: {cached['reason']} (cached in {path})"
    times = {}
    for name in ("float32", "bfloat16"):
        a = torch.randn(384, 384, dtype=getattr(torch, name))
        b = torch.randn(384, 384, dtype=getattr(torch, name))
        a @ b  # warm-up
        t0 = time.perf_counter()
        for _ in range(8):
            a @ b
        times[name] = time.perf_counter() - t0
    best = min(times, key=lambda name: times[name])
    reason = f"measured on this CPU: float32 {times['float32'] * 125:.2f} ms vs bfloat16 {times['bfloat16'] * 125:.2f} ms per 384^3 matmul; {best} is faster"
    write_cache(path, {"cpu": key, "torch": torch.__version__, "dtype": best, "reason": reason})
    return best, f"auto: {reason}"


def inventory() -> list[dict]:
    """What devices this machine has, for `harness env` and `harness list devices`."""
    import torch

    rows = [{"device": "cpu", "available": True, "name": cpu_name()}]
    for kind in ("cuda", "xpu", "npu", "mps"):
        ok = available(kind)
        if ok and kind != "mps":
            for i in range(_count(torch, kind)):
                rows.append({"device": f"{kind}:{i}", "available": True, "name": _name(torch, kind, i)})
        else:
            rows.append({"device": kind, "available": ok, "name": _name(torch, kind, None) if ok else ""})
    return rows
