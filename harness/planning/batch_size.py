"""`--batch-size auto`: the batch that generates the most output tokens per second for this run,
chosen by a short measurement on the loaded model instead of a fixed default.

How: the run's own first requests (longest prompts first, as the queue starts) are generated at
batch 1, 2, 4, ... with PROBE_TOKENS forced new tokens, REPEATS times each. A probe gives the batch's prefill time
(its first token) and its decode step ((last token - first token) / (PROBE_TOKENS - 1)); the run's
rate at batch b is b x E / (prefill + (E - 1) x step), from the fastest prefill and step, E being the run's output tokens per
request. Doubling stops at the ceiling (CEILING, the number of requests), at a batch whose memory
estimate for the run's full context does not fit, at an out-of-memory error, when the next size's
probes would take the probing past BUDGET_S or cost more than PROBE_SHARE of the run itself (a
short run is not worth a long probe), or when a doubling gained less than GAIN; the fastest batch
measured wins. The decision and its measurements are cached per device, engine, dtype, model shape and length bucket and
recorded in run.json (engine.batch_size, batch_size_reason, batch_size_measurements). Engines that
batch elsewhere (a server; llama.cpp's one sequence) keep their own starting point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from harness.runtime.cache import cache_dir, load_per_core, recall, remember

METHOD = "forced-length probes at doubling batches, rate at the run's output length"  # part of the cache key
PROBE_TOKENS = 16
REPEATS = 2  # probes per batch size; the fastest counts (a busy machine only ever slows one down)
GAIN = 1.05  # a doubling must be at least this much faster to go on
CEILING = {"cpu": 64}  # other devices: DEFAULT_CEILING
DEFAULT_CEILING = 512
BUDGET_S = 120.0
PROBE_SHARE = 0.1  # probing a further size may cost at most this share of the run's predicted time
CACHE = "batch_size.json"


def choose(backend, queue: Sequence, *, expected_tokens: int, device_type: str, device_name: str,
           total_tokens: int | None = None, fits: Callable[[int], bool] = lambda b: True,
           should_stop: Callable[[], object] = lambda: None, cache: bool = True) -> tuple[int, str, dict | None]:
    """(batch size, reason, measurements or None). `queue`: the run's requests in batching order;
    `total_tokens`: the run's expected output tokens, which bounds what probing may cost."""
    start = backend.max_batch_size()
    if not backend.probes_batch_size:
        return start, f"auto: the {backend.info.backend} engine's own starting point (it batches outside the harness)", None
    ceiling = ceiling_for(device_type, len(queue))
    if ceiling <= 1:
        return 1, f"auto: {len(queue)} request{'s' if len(queue) != 1 else ''} to run", None
    if not fits(2):
        return 1, "auto: batch 2 would not fit memory at the run's context", None
    limit, why_limit = memory_limit(ceiling, fits)
    key = _key(backend, device_name, queue, expected_tokens, limit) + (f" run~{_bucket(total_tokens)}" if total_tokens else "")
    path = cache_dir() / CACHE
    load = load_per_core() if device_type == "cpu" else None  # a CPU probe on a busy machine is redone once it is quieter
    hit = recall(path, key, {"batch_size", "reason", "measured"}, load) if cache else None
    if hit:
        return hit["batch_size"], f"{hit['reason']} (cached in {path})", hit["measured"]
    measured = probe(backend, queue, expected_tokens=expected_tokens, ceiling=limit, total_tokens=total_tokens, should_stop=should_stop)
    if why_limit and measured["stopped"] == f"reached the ceiling {limit}":
        measured["stopped"] = why_limit
    best = max(measured["rates"], key=lambda r: r["tokens_per_s"])
    tried = ", ".join(f"{r['batch']}: {r['tokens_per_s']:.1f}" for r in measured["rates"])
    reason = (f"auto: probes of {PROBE_TOKENS} tokens on this run's first requests, rate at {expected_tokens} output tokens "
              f"per request (batch: tok/s) {tried}; {best['batch']} is fastest ({measured['stopped']})")
    if cache and not measured["interrupted"]:
        remember(path, key, {"batch_size": best["batch"], "reason": reason, "measured": measured}, load)
    return best["batch"], reason, measured


def ceiling_for(device_type: str, requests: int) -> int:
    """The largest batch worth probing: the device's CEILING, and never more than the requests."""
    return max(1, min(CEILING.get(device_type, DEFAULT_CEILING), requests))


def memory_limit(ceiling: int, fits: Callable[[int], bool]) -> tuple[int, str | None]:
    """The largest batch of the doubling ladder up to `ceiling` whose memory estimate fits, and why it stops there."""
    b = 1
    while b < ceiling:
        nxt = min(2 * b, ceiling)
        if not fits(nxt):
            return b, f"batch {nxt} would not fit memory at the run's context"
        b = nxt
    return b, None


def probe(backend, queue: Sequence, *, expected_tokens: int, ceiling: int, total_tokens: int | None = None,
          should_stop: Callable[[], object] = lambda: None) -> dict:
    """Rates at batch 1, 2, 4, ... up to `ceiling`; why the doubling stopped. The next size's probes
    are predicted to take twice this size's (prefill grows with the rows); they are skipped when that
    would pass BUDGET_S in all, or PROBE_SHARE of the run's time at the best rate so far."""
    from harness.backends.chunks import free_cache, is_oom

    forced = [replace(r, sampling=replace(r.sampling, max_new_tokens=PROBE_TOKENS, min_new_tokens=PROBE_TOKENS)) for r in queue]
    backend.generate(forced[:1])  # cold start (allocator, kernels) outside the probes
    rates, spent, stopped, b = [], 0.0, f"reached the ceiling {ceiling}", 1
    while True:
        t0 = time.perf_counter()
        try:
            done = [backend.generate(forced[:b]) for _ in range(REPEATS)]
        except Exception as e:
            if not is_oom(e):
                raise
            free_cache()
            stopped = f"out of memory at batch {b}"
            break
        finally:
            cost = time.perf_counter() - t0
            spent += cost
        rates.append(_rate(b, done, expected_tokens))
        best = max(r["tokens_per_s"] for r in rates[:-1]) if len(rates) > 1 else 0.0
        if len(rates) > 1 and rates[-1]["tokens_per_s"] < GAIN * best:
            stopped = f"batch {b} gained less than {GAIN - 1:.0%}"
            break
        if b >= ceiling:
            break
        nxt = min(2 * b, ceiling)
        if spent + 2 * cost > BUDGET_S:
            stopped = f"probing batch {nxt} would take the probes past {BUDGET_S:.0f} s"
            break
        run_s = total_tokens / max(r["tokens_per_s"] for r in rates) if total_tokens else None
        if run_s is not None and 2 * cost > PROBE_SHARE * run_s:
            stopped = (f"probing batch {nxt} would take about {2 * cost:.3g} s, over {PROBE_SHARE:.0%} of the run's "
                       f"{run_s:.3g} s at the best rate so far")
            break
        if should_stop():
            stopped = "a stop signal arrived"
            break
        b = nxt
    return {"method": METHOD, "probe_tokens": PROBE_TOKENS, "expected_tokens": expected_tokens, "rates": rates,
            "stopped": stopped, "probe_s": spent, "interrupted": stopped == "a stop signal arrived"}


def _rate(b: int, probes, expected: int) -> dict:
    """The rate at batch b from the fastest prefill and the fastest decode step of its probes."""
    first = min(max(c.ttft_s for c in done) for done in probes)
    step = min(max(0.0, max(c.e2e_s for c in done) - max(c.ttft_s for c in done)) / max(1, max(c.output_tokens for c in done) - 1)
               for done in probes)
    return {"batch": b, "prefill_s": first, "step_s": step, "tokens_per_s": b * expected / (first + (expected - 1) * step)}


def _bucket(n: float) -> int:
    return 2 ** round(math.log2(max(1.0, n)))


def _key(backend, device_name: str, queue: Sequence, expected: int, ceiling: int) -> str:
    from harness.planning.cpu_dtype import shape_key

    config = getattr(getattr(backend, "model", None), "config", None)
    shape = shape_key(config.to_dict()) if config is not None else backend.info.name_or_path
    prompt = backend.count_tokens(backend.render(queue[0])) or 1
    return (f"{METHOD} | {device_name} | {backend.info.backend} {backend.info.dtype} | {shape} | "
            f"prompt~{_bucket(prompt)} out~{_bucket(expected)} ceiling {ceiling}")
