"""Batches requests through a backend: warm-up, timed batches, retries, out-of-memory back-off.

Requests are sorted by prompt length (longest first, so an out-of-memory error shows up on the
first batch) and cut into batches. The warm-up runs that same first batch, cut short, so the
first timed batch pays no cold start for its shape. Each batch is timed between device
synchronisations and handed to `on_batch` at once, which writes it durably. With
`batch_size="auto"` an out-of-memory error halves the batch and retries the same requests. A
request that fails (an engine exception, or a backend's finish_reason "error") is retried a
bounded number of times with backoff and otherwise comes back as an error completion: the run
records it, counts it and retries it on --resume, and never scores it. A stop request
(SIGINT/SIGTERM) is honoured between batches. Backoff sleeps are not part of a batch's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from harness.backends.base import Backend
from harness.backends.chunks import clocked, free_cache, in_batches, is_oom, start_size
from harness.core.generation import WARMUP_TOKENS
from harness.core.types import Completion, Request
from harness.errors import HarnessError, OutOfMemory

RETRIES = 2  # further attempts for failed requests within a run
BACKOFF_S = 1.0  # before retry n: BACKOFF_S * 2**n


@dataclass(frozen=True)
class Batch:
    rows: int
    input_tokens: int
    output_tokens: int
    prefill_s: float | None
    wall_s: float
    elapsed_s: float = 0.0  # from the start of generate_all to this batch's end: each session's time, from the durable log

    def asdict(self) -> dict:
        return {"rows": self.rows, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "prefill_s": self.prefill_s, "wall_s": self.wall_s, "elapsed_s": self.elapsed_s}


OnBatch = Callable[[Sequence[Request], Sequence[Completion], Batch], None]


def is_error(c: Completion) -> bool:
    return c.finish_reason == "error"


def order(requests: Sequence[Request], lengths: Sequence[int]) -> list[Request]:
    """Longest prompt first; ties keep their given order, so the batching is deterministic."""
    return [r for _, _, r in sorted(zip((-n for n in lengths), range(len(requests)), requests))]


def first_batch(requests: Sequence[Request], lengths: Sequence[int], batch_size: int | str, backend: Backend,
                auto_start: int | None = None) -> list[Request]:
    return order(requests, lengths)[:start_size(batch_size, backend, auto_start)]


def warm_up(backend: Backend, requests: Sequence[Request], times: int) -> dict:
    """Untimed generations before timing, so compilation, caches and allocator growth for the run's
    own batch shape stay out of the numbers. `requests` is the run's first batch; each generates
    at most WARMUP_TOKENS tokens (min_new_tokens 0, so none is forced to run longer)."""
    if not requests or times == 0:
        return {"s": 0.0, "requests": 0}
    short = [replace(r, sampling=replace(r.sampling, max_new_tokens=min(WARMUP_TOKENS, r.sampling.max_new_tokens), min_new_tokens=0))
             for r in requests]
    t0 = time.perf_counter()
    for _ in range(times):
        try:
            backend.generate(short)
        except Exception as e:  # the timed batches meet the same problem and handle it there
            if is_oom(e):
                free_cache()
            break
    backend.synchronize()
    backend.reset_peak_memory()
    return {"s": time.perf_counter() - t0, "requests": len(short) * times, "batch_size": len(short),
            "max_new_tokens": short[0].sampling.max_new_tokens}


def generate_all(backend: Backend, requests: Sequence[Request], lengths: Sequence[int], *, batch_size: int | str,
                 on_batch: OnBatch, stop_signal: Callable[[], int | None] = lambda: None,
                 progress: Callable[[int], None] = lambda n: None, retries: int | None = None,
                 backoff_s: float | None = None, batching: str = "static", auto_start: int | None = None) -> list[Batch]:
    if batching == "continuous":  # batch_size: sequences in flight
        slots = start_size(batch_size, backend, auto_start)
        return _continuous(backend, order(requests, lengths), slots, on_batch, stop_signal, progress)
    retries = RETRIES if retries is None else retries
    if getattr(backend, "retries_inside", False):  # the backend retried each request already: attempts must not multiply
        retries = 0
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s
    batches: list[Batch] = []
    start = time.perf_counter()

    def finished(chunk, done, wall):
        done = list(done)
        for attempt in range(retries):
            failed = [n for n, c in enumerate(done) if is_error(c)]
            if not failed or stop_signal():
                break
            time.sleep(backoff_s * 2 ** attempt)
            again, extra = clocked(backend, _generate, [chunk[n] for n in failed])
            wall += extra
            for n, c in zip(failed, again):
                done[n] = c
        batch = _batch(done, min((c.ttft_s for c in done if c.ttft_s is not None), default=None), wall, start)
        on_batch(chunk, done, batch)
        batches.append(batch)

    in_batches(backend, order(requests, lengths), _generate, finished, batch_size=batch_size, auto_start=auto_start,
               stop_signal=stop_signal, progress=progress,
               oom_fix="use --dtype bfloat16, a smaller --max-new-tokens, --device-map auto with --max-memory (offload), or a smaller model")
    return batches


def _batch(done: Sequence[Completion], prefill_s: float | None, wall_s: float, start: float) -> Batch:
    return Batch(rows=len(done), input_tokens=sum(c.input_tokens or 0 for c in done), output_tokens=sum(c.output_tokens or 0 for c in done),
                 prefill_s=prefill_s, wall_s=wall_s, elapsed_s=time.perf_counter() - start)


def _generate(backend: Backend, chunk: Sequence[Request]) -> list[Completion]:
    """An engine exception other than out of memory becomes an error completion per request, so one
    bad batch does not end the run."""
    try:
        return list(backend.generate(list(chunk)))
    except Exception as e:
        if is_oom(e) or isinstance(e, HarnessError):  # out of memory is backed off; a user error stops the run
            raise
        why = f"{type(e).__name__}: {str(e).strip()[:300]}"
        return [Completion("", None, None, "error", None, None, batch_size=len(chunk), error=why,
                           unmeasured={f: why for f in ("input_tokens", "output_tokens", "ttft_s", "e2e_s")}) for _ in chunk]


def _continuous(backend, queue, slots, on_batch, stop_signal, progress) -> list[Batch]:
    """Rows are handed to `on_batch` as they finish; a `Batch` is the stretch of time since the
    previous hand-over (its prefill_s: the time spent in prefills then), so sums over the run hold."""
    batches: list[Batch] = []
    start = time.perf_counter()

    def on_done(indices, done, seg):
        chunk = [queue[i] for i in indices]
        batch = _batch(done, seg["prefill_s"], seg["wall_s"], start)
        on_batch(chunk, done, batch)
        batches.append(batch)
        progress(len(chunk))

    try:
        backend.generate_continuous(queue, slots, on_done=on_done, should_stop=stop_signal)
    except Exception as e:
        if not is_oom(e):
            raise
        free_cache()
        raise OutOfMemory(f"out of memory with {slots} sequences in flight", "use a smaller --batch-size") from None
    return batches


