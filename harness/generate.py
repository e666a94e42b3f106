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
                 progress: Callable[[int], None] = lambda n: None) -> list[Batch]:
    batches: list[Batch] = []

    def finished(chunk, done, wall):
        batch = Batch(rows=len(chunk), input_tokens=sum(c.input_tokens or 0 for c in done),
                      output_tokens=sum(c.output_tokens or 0 for c in done),
                      prefill_s=min((c.ttft_s for c in done if c.ttft_s is not None), default=None), wall_s=wall)
        on_batch(chunk, done, batch)
        batches.append(batch)

    in_batches(backend, order(requests, lengths), lambda chunk: backend.generate(list(chunk)), finished, batch_size=batch_size,
               stop_signal=stop_signal, progress=progress,
               oom_fix="use --dtype bfloat16, a smaller --max-new-tokens, --device-map auto with --max-memory (offload), or a smaller model")
    return batches


def in_batches(backend: Backend, queue: Sequence, call: Callable[[Sequence], list], finished: Callable[[Sequence, list, float], None], *,
               batch_size: int | str, oom_fix: str, stop_signal: Callable[[], int | None] = lambda: None,
               progress: Callable[[int], None] = lambda n: None) -> None:
    """The one batching loop (generation and log-likelihood scoring): `call` on each chunk of `queue`
    between device synchronisations, `finished(chunk, results, wall_s)` after each; with "auto" an
    out-of-memory error halves the batch and retries the same chunk. A stop request is honoured between batches."""
    auto = batch_size == "auto"
    size = backend.max_batch_size() if auto else int(batch_size)
    i = 0
    while i < len(queue):
        signum = stop_signal()
        if signum:
            raise Interrupted(signum)
        chunk = queue[i:i + size]
        try:
            backend.synchronize()
            t0 = time.perf_counter()
            done = call(chunk)
            backend.synchronize()
            wall = time.perf_counter() - t0
        except Exception as e:
            if not is_oom(e):
                raise
            _free_cache()
            if auto and size > 1:
                size = max(1, size // 2)
                continue  # the same requests, in a smaller batch
            raise OutOfMemory(f"out of memory at batch size {len(chunk)}", "try --batch-size auto" if not auto else oom_fix) from None
        finished(chunk, done, wall)
        progress(len(chunk))
        i += len(chunk)


def _free_cache() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
