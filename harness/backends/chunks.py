"""The one batching loop shared by generation and log-likelihood scoring, and out-of-memory detection.

`in_batches` runs a call on each chunk of a queue between device synchronisations; with "auto" an
out-of-memory error halves the batch and retries the same chunk. It lives with the engines (not
with the orchestration that calls it) because engines' own scoring paths batch through it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from harness.backends.base import Backend
from harness.errors import Interrupted, OutOfMemory

_OOM_TYPES = {"OutOfMemoryError", "OutOfMemory"}  # torch.cuda / torch.OutOfMemoryError, and others' wrappers


_OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory",
             "failed to allocate memory", "mps backend out of memory", "allocation failed", "memory allocation failed")


def is_oom(exc: BaseException) -> bool:
    """Out of device or host memory, on CPU (DefaultCPUAllocator), CUDA/ROCm, MPS, XPU or NPU."""
    if type(exc).__name__ in _OOM_TYPES or isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return any(t in text for t in _OOM_TEXT)


def start_size(batch_size: int | str, backend: Backend, auto_start: int | None = None) -> int:
    """The first batch's size: the given one, or for "auto" the measured start (runtime/batch_size.py)
    or else the engine's default."""
    return (auto_start or backend.max_batch_size()) if batch_size == "auto" else int(batch_size)


def in_batches(backend: Backend, queue: Sequence, call: Callable[[Backend, Sequence], list], finished: Callable[[Sequence, list, float], None], *,
               batch_size: int | str, oom_fix: str, stop_signal: Callable[[], int | None] = lambda: None,
               progress: Callable[[int], None] = lambda n: None, auto_start: int | None = None) -> None:
    """The one batching loop (generation and log-likelihood scoring): `call(backend, chunk)` on each chunk of `queue`
    between device synchronisations, `finished(chunk, results, wall_s)` after each; with "auto" an
    out-of-memory error halves the batch and retries the same chunk. A stop request is honoured between batches."""
    auto = batch_size == "auto"
    size = start_size(batch_size, backend, auto_start)
    i = 0
    while i < len(queue):
        signum = stop_signal()
        if signum:
            raise Interrupted(signum)
        chunk = queue[i:i + size]
        try:
            done, wall = clocked(backend, call, chunk)
        except Exception as e:
            if not is_oom(e):
                raise
            free_cache()
            if auto and size > 1:
                size = max(1, size // 2)
                continue  # the same requests, in a smaller batch
            raise OutOfMemory(f"out of memory at batch size {len(chunk)}", "try --batch-size auto" if not auto else oom_fix) from None
        finished(chunk, done, wall)
        progress(len(chunk))
        i += len(chunk)


def clocked(backend: Backend, call: Callable[[Backend, Sequence], list], chunk: Sequence) -> tuple[list, float]:
    """`call(backend, chunk)` between device synchronisations, and its wall time."""
    backend.synchronize()
    t0 = time.perf_counter()
    done = call(backend, chunk)
    backend.synchronize()
    return done, time.perf_counter() - t0


def free_cache() -> None:
    import gc

    gc.collect()
    try:
        import torch

        for name in ("cuda", "xpu", "npu", "mps"):
            mod = getattr(torch, name, None)
            if mod is not None and getattr(mod, "is_available", lambda: False)() and hasattr(mod, "empty_cache"):
                mod.empty_cache()
    except ImportError:
        pass
