"""`harness bench`: a performance sweep of batch sizes x prompt lengths x output lengths.

Each cell generates a fixed number of tokens (min = max new tokens, so EOS cannot end a row
early), after warm-up iterations that are excluded, repeated `iterations` times. Prints a table
and one JSON document last (or writes it with --output). Works for any model spec, `random:`
ones included, so an architecture can be timed without downloading its weights.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

from harness.core.types import Request, Sampling
from harness.errors import ConfigError
from harness.stats import percentiles

FILLER = "The quick brown fox counts 12 apples and 7 pears, then sells 3 of them at the market. "


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated positive integers, got {text!r}", f"e.g. {flag} 1,4,8") from None
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{flag} must be comma-separated positive integers, got {text!r}", f"e.g. {flag} 1,4,8")
    return values


def prompt_of(backend, n_tokens: int) -> str:
    """Plain text of about `n_tokens` tokens for this backend's tokenizer."""
    text = FILLER * (n_tokens // 4 + 2)
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix with at most n_tokens tokens
        mid = (lo + hi + 1) // 2
        n = backend.count_tokens(text[:mid])
        if n is None:
            return text[: n_tokens * 4]
        lo, hi = (mid, hi) if n <= n_tokens else (lo, mid - 1)
    return text[:lo]


CELL_BUDGET_S = 60.0  # a cell stops repeating once its timed iterations have taken this long


def sweep(backend, batch_sizes, prompt_tokens, output_tokens, *, iterations: int, warmup: int, progress=lambda: None,
          budget_s: float | None = CELL_BUDGET_S, batching: str = "static") -> list[dict]:
    """Every cell is timed `iterations` times, or fewer (at least once) when those taken already add up
    to `budget_s`: a 7B model on a CPU takes tens of seconds per generation, and three of them per
    cell would turn a quick look into a long wait. Each cell records how many iterations it ran."""
    cells = []
    if batching == "continuous":  # batch size = sequences in flight
        def generate(reqs):
            return backend.generate_continuous(reqs, len(reqs))
    else:
        generate = backend.generate
    for bs, pt, ot in itertools.product(batch_sizes, prompt_tokens, output_tokens):
        text = prompt_of(backend, pt)
        backend.reset_peak_memory()  # each cell reports its own peak
        reqs = [Request(key=f"bench/{i}", messages=({"role": "user", "content": text},), chat=False,
                        sampling=Sampling(max_new_tokens=ot, min_new_tokens=ot), seed=i) for i in range(bs)]
        for _ in range(warmup):
            generate(reqs)
        walls, ttfts, tpots, outs, ins = [], [], [], [], []
        for _ in range(iterations):
            backend.synchronize()
            t0 = time.perf_counter()
            done = generate(reqs)
            backend.synchronize()
            walls.append(time.perf_counter() - t0)
            for c in done:
                ttfts.append(c.ttft_s)
                if c.e2e_s is not None and c.ttft_s is not None and (c.output_tokens or 0) > 1:
                    tpots.append((c.e2e_s - c.ttft_s) / (c.output_tokens - 1))
            outs.append(sum(c.output_tokens or 0 for c in done))
            ins.append(sum(c.input_tokens or 0 for c in done) / len(done))
            progress()
            if budget_s is not None and sum(walls) >= budget_s and len(walls) < iterations:
                print(f"note: batch {bs}, prompt {pt}, output {ot}: {len(walls)} of {iterations} iterations, "
                      f"{sum(walls):.0f} s over the {budget_s:.0f} s budget per cell (--cell-budget-s)", file=sys.stderr)
                break
        cells.append({"batch_size": bs, "prompt_tokens": pt, "prompt_tokens_actual": sum(ins) / len(ins), "output_tokens": ot,
                      "iterations": len(walls), "iterations_requested": iterations, "warmup": warmup, "wall_s": percentiles(walls), "ttft_s": percentiles(ttfts),
                      "tpot_s": percentiles(tpots), "output_tokens_per_s": sum(outs) / sum(walls),
                      # the spread: each iteration's own rate (the same definition: output tokens / wall seconds)
                      "output_tokens_per_s_each": [o / w for o, w in zip(outs, walls) if w > 0],
                      "memory": backend.memory()})
    base = {(c["prompt_tokens"], c["output_tokens"]): c["output_tokens_per_s"] for c in cells if c["batch_size"] == min(batch_sizes)}
    for c in cells:
        b = base.get((c["prompt_tokens"], c["output_tokens"]))
        c["speedup_vs_smallest_batch"] = c["output_tokens_per_s"] / b if b else None
    return cells


def run_bench(args) -> int:
    from harness.backends import load_backend
    from harness.config import make_config
    from harness.runtime import device as devices

    batch_sizes, prompt_tokens = _ints(args.batch_sizes, "--batch-sizes"), _ints(args.prompt_tokens, "--prompt-tokens")
    output_tokens = _ints(args.output_tokens, "--output-tokens")
    if args.iterations <= 0 or args.warmup < 0:
        raise ConfigError("--iterations must be > 0 and --warmup >= 0", "e.g. --iterations 3 --warmup 1")
    budget = getattr(args, "cell_budget_s", CELL_BUDGET_S)
    if not 0 < budget <= 86400:
        raise ConfigError(f"--cell-budget-s must be from 0 to 86400 seconds, got {budget}", "e.g. --cell-budget-s 60")
    cfg = make_config(model=args.model, backend=args.backend, device=args.device, dtype=args.dtype, tokenizer=args.tokenizer,
                      compile=getattr(args, "compile", "auto"))
    from harness.planning.prepare import prepare_model
    from harness.runtime.batching import choose

    ready = prepare_model(cfg, devices.resolve(cfg.device, cfg.dtype), batch=max(batch_sizes), context=max(prompt_tokens) + max(output_tokens),
                          force=getattr(args, "force", False), what="bench")   # its largest cell
    dev = ready.device
    for note in ready.preflight.notes if ready.preflight else []:
        print(f"note: {note}", file=sys.stderr)
    t0 = time.perf_counter()
    backend = load_backend(cfg, dev)
    load_s = time.perf_counter() - t0
    batching, batching_reason = choose(args.batching, backend, dev.type)
    total = len(batch_sizes) * len(prompt_tokens) * len(output_tokens) * args.iterations
    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            t = bar.add_task("bench", total=total)
            cells = sweep(backend, batch_sizes, prompt_tokens, output_tokens, iterations=args.iterations, warmup=args.warmup,
                          progress=lambda: bar.advance(t), budget_s=budget, batching=batching)
    else:
        cells = sweep(backend, batch_sizes, prompt_tokens, output_tokens, iterations=args.iterations, warmup=args.warmup,
                      budget_s=budget, batching=batching)
    info = backend.info
    doc = {"model": info.name_or_path, "backend": info.backend, "random_weights": info.random_weights, "dtype": info.dtype,
           "num_parameters": info.num_parameters, "load_s": load_s, "cells": cells,
           "device": {"type": dev.type, "name": dev.name, "dtype_reason": dev.dtype_reason, "dtype_measurements": dev.dtype_measurements},
           "engine": {**info.engine, "batching": batching, "batching_reason": batching_reason}}
    _table(cells)
    text = json.dumps(doc, indent=2)
    if args.output:
        from pathlib import Path

        from harness.results.store import write_text_atomic

        write_text_atomic(Path(args.output), text + "\n")
        print(f"wrote {args.output}")
    else:
        print(text)
    backend.close()
    return 0


def _fixed(v: float | None, scale: float = 1.0) -> str:
    """A number in plain notation (9,660, not 9.66e+03), three significant digits below 100."""
    if v is None:
        return "—"
    x = v * scale
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _table(cells) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="harness bench")
    for col in ("batch", "prompt", "output", "wall p50 s", "TTFT p50 ms", "TPOT p50 ms", "tok/s", "tok/s min-max (n)", "x smallest batch"):
        t.add_column(col, justify="right")
    for c in cells:
        each = c.get("output_tokens_per_s_each") or []
        spread = f"{min(each):,.1f}-{max(each):,.1f} ({len(each)})" if each else "—"
        t.add_row(str(c["batch_size"]), str(c["prompt_tokens"]), str(c["output_tokens"]), _fixed(c["wall_s"]["p50"]),
                  _fixed(c["ttft_s"]["p50"], 1e3), _fixed(c["tpot_s"]["p50"], 1e3), _fixed(c["output_tokens_per_s"]), spread,
                  _fixed(c["speedup_vs_smallest_batch"]))
    Console(stderr=True).print(t)
