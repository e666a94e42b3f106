"""CPU `--dtype auto` against both dtypes, side by side in one run.

    python benchmarks/cpu_dtype.py --model random:qwen2.5-0.5b-instruct --batch-sizes 1,8 --new-tokens 32

For each batch size, the same requests (forced to --new-tokens with min = max new tokens) go
through `harness.orchestration.generate.generate_all`, the path `harness run` takes, in float32 and in bfloat16,
passes alternating which dtype goes first. Then `--dtype auto` is resolved the way `harness run`
resolves it (preflight: the generation probe of runtime/cpu_dtype.py, then the memory check), in a
fresh cache so the probe really runs and its time is reported. Reported per batch size: output
tokens/s of each dtype (median over passes), the faster one, what auto chose and auto's rate as a
fraction of the faster (the target: at least 0.95). Prints one JSON document last. A benchmark,
never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.orchestration.generate import generate_all
from harness.runtime.device import resolve

QUESTION = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell?"


def requests(n: int, new_tokens: int) -> list[Request]:
    return [Request(key=f"dtype/{i}/0", messages=({"role": "user", "content": f"{QUESTION} (case {i})"},),
                    sampling=Sampling(max_new_tokens=new_tokens, min_new_tokens=new_tokens), seed=i) for i in range(n)]


def rate(backend, reqs, batch: int) -> float:
    lens = [backend.count_tokens(backend.render(r)) for r in reqs]
    backend.synchronize()
    t0 = time.perf_counter()
    batches = generate_all(backend, reqs, lens, batch_size=batch, on_batch=lambda *a: None, batching="static")
    backend.synchronize()
    return sum(b.output_tokens for b in batches) / (time.perf_counter() - t0)


def auto_choice(model: str) -> dict:
    """`--dtype auto` as `harness run` decides it, timed, in a fresh decision cache."""
    from harness.config import make_config
    from harness.planning.fitting import run_dtype
    from harness.planning.preflight import model_shape

    os.environ["HARNESS_CACHE"] = tempfile.mkdtemp(prefix="cpu-dtype-")
    cfg = make_config(model=model, device="cpu")
    t0 = time.perf_counter()
    dev, _, _ = run_dtype(cfg, resolve("cpu", "auto"), model_shape(model), 1, 512)
    return {"dtype": dev.dtype, "reason": dev.dtype_reason, "decision_s": time.perf_counter() - t0, "measurements": dev.dtype_measurements}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="random:qwen2.5-0.5b-instruct")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="passes per dtype, alternating which dtype goes first")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    backends = {d: TransformersBackend.from_options(args.model, device=resolve("cpu", d)) for d in ("float32", "bfloat16")}
    for be in backends.values():
        rate(be, requests(1, 2), 1)  # warm-up outside the timed passes
    rates: dict[str, dict[str, list[float]]] = {str(b): {"float32": [], "bfloat16": []} for b in sizes}
    for rep in range(args.repeats):
        order = ("float32", "bfloat16") if rep % 2 == 0 else ("bfloat16", "float32")
        for b in sizes:
            for d in order:
                r = rate(backends[d], requests(b * 2 if b == 1 else b, args.new_tokens), b)
                rates[str(b)][d].append(r)
                print(f"batch {b:3d} {d:9s} pass {rep}: {r:8.2f} tok/s", file=sys.stderr)
    auto = auto_choice(args.model)
    rows = {}
    for b, by in rates.items():
        med = {d: statistics.median(v) for d, v in by.items()}
        best = max(med, key=med.get)
        rows[b] = {"tokens_per_s": med, "passes": by, "faster": best, "auto": auto["dtype"],
                   "auto_over_faster": med[auto["dtype"]] / med[best]}
    doc = {"model": args.model, "device": resolve("cpu", "float32").name, "new_tokens": args.new_tokens, "repeats": args.repeats,
           "by_batch": rows, "auto": auto}
    print(json.dumps(doc, indent=2))
    return 0 if all(r["auto_over_faster"] >= 0.95 for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
