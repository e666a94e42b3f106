"""Batches requests through a backend. The only place in the pipeline that reads the clock.

Requests are sorted by prompt length (longest first, so an out-of-memory error shows up on the
first batch) and cut into batches. Each finished batch is handed to `on_batch` at once, which
writes it durably. With `batch_size="auto"` an out-of-memory error halves the batch and retries
the same requests. A stop request (SIGINT/SIGTERM) is honoured between batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

from harness.backends.base import Backend, Completion, Request
from harness.errors import Interrupted, OutOfMemory


@dataclass(frozen=True)
class Batch:
    rows: int
    input_tokens: int
    output_tokens: int
    prefill_s: float | None
    wall_s: float

    def asdict(self) -> dict:
        return {"rows": self.rows, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "prefill_s": self.prefill_s, "wall_s": self.wall_s}


OnBatch = Callable[[Sequence[Request], Sequence[Completion], Batch], None]


def is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def order(requests: Sequence[Request], lengths: Sequence[int]) -> list[Request]:
    """Longest prompt first; ties keep their given order, so the batching is deterministic."""
    return [r for _, _, r in sorted(zip((-n for n in lengths), range(len(requests)), requests))]


def generate_all(backend: Backend, requests: Sequence[Request], lengths: Sequence[int], *, batch_size: int | str,
                 on_batch: OnBatch, stop_signal: Callable[[], int | None] = lambda: None,
                 progress: Callable[[int], None] = lambda n: None, batching: str = "static") -> list[Batch]:
    auto = batch_size == "auto"
    size = backend.max_batch_size() if auto else int(batch_size)
    queue = order(requests, lengths)
    if batching == "continuous":
        return _continuous(backend, queue, size, on_batch, stop_signal, progress)
    batches: list[Batch] = []
    i = 0
    while i < len(queue):
        signum = stop_signal()
        if signum:
            raise Interrupted(signum)
        chunk = queue[i:i + size]
        try:
            backend.synchronize()
            t0 = time.perf_counter()
            done = backend.generate(list(chunk))
            backend.synchronize()
            wall = time.perf_counter() - t0
        except Exception as e:
            if not is_oom(e):
                raise
            _free_cache()
            if auto and size > 1:
                size = max(1, size // 2)
                continue  # the same requests, in a smaller batch
            raise OutOfMemory(
                f"out of memory at batch size {len(chunk)}",
                "try --batch-size auto" if not auto else
                "use --dtype bfloat16, a smaller --max-new-tokens, --device-map auto with --max-memory (offload), or a smaller model") from None
        batch = Batch(rows=len(chunk), input_tokens=sum(c.input_tokens or 0 for c in done),
                      output_tokens=sum(c.output_tokens or 0 for c in done),
                      prefill_s=min((c.ttft_s for c in done if c.ttft_s is not None), default=None), wall_s=wall)
        on_batch(chunk, done, batch)
        batches.append(batch)
        progress(len(chunk))
        i += len(chunk)
    return batches


def _continuous(backend, queue, slots, on_batch, stop_signal, progress) -> list[Batch]:
    """Rows are handed to `on_batch` as they finish; a `Batch` is the stretch of time since the
    previous hand-over (its prefill_s: the time spent in prefills then), so sums over the run hold."""
    batches: list[Batch] = []

    def on_done(indices, done, seg):
        chunk = [queue[i] for i in indices]
        batch = Batch(rows=len(chunk), input_tokens=sum(c.input_tokens or 0 for c in done),
                      output_tokens=sum(c.output_tokens or 0 for c in done), prefill_s=seg["prefill_s"], wall_s=seg["wall_s"])
        on_batch(chunk, done, batch)
        batches.append(batch)
        progress(len(chunk))

    try:
        backend.generate_continuous(queue, slots, on_done=on_done, should_stop=stop_signal)
    except Exception as e:
        if not is_oom(e):
            raise
        _free_cache()
        raise OutOfMemory(f"out of memory with {slots} sequences in flight", "use a smaller --batch-size") from None
    return batches


def _free_cache() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
