"""Ragged-length workload: continuous vs static batching, side by side in one run.

    python benchmarks/ragged.py --model random:qwen2.5-0.5b-instruct --device cpu --requests 64 --min-tokens 16 --max-tokens 1024

Each request gets its own output length, drawn from a log-normal distribution clipped to
[min, max] (a long tail, as reasoning traces have) and forced with min = max new tokens, so a
random-weight model produces exactly that many tokens. Both modes go through
`harness.orchestration.generate.generate_all`, the path `harness run` takes, with the same slots (`--batch-size`):
static cuts the queue into batches that run to their longest row; continuous lets a row leave
when it ends and a waiting request take its slot. Passes alternate which mode goes first.

Reported: useful output tokens/s (tokens the requests asked for, over wall time), the static
batches' padding share, and how many requests' greedy outputs differ between the modes. In
float32 they are identical; in bfloat16 a row's rounding depends on the rows and padding it shares
a batch with, in static batching too: `--baseline` adds a static pass at batch 1 and counts how
many outputs static batching itself changes between batch 1 and --batch-size, the yardstick for
the continuous-vs-static count. Prints one JSON document last. A benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time

from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.orchestration.generate import generate_all, order
from harness.runtime.device import resolve

QUESTIONS = ["What is 2 + 3?", "Tom has 5 apples and buys 7 more. How many now?", "小明有15个苹果，给了小红4个。还剩几个？",
             "Compute 3/4 + 1/4, then multiply by 12 and subtract 5.", "Name three prime numbers and add them.",
             "A train travels 60 km in 45 minutes. What is its speed in km/h?"]


def lengths(n: int, lo: int, hi: int, seed: int) -> list[int]:
    """Log-normal output lengths, median about lo * 4, clipped to [lo, hi]."""
    rng = random.Random(seed)
    mu, sigma = math.log(lo * 4), 1.0
    return [max(lo, min(hi, int(rng.lognormvariate(mu, sigma)))) for _ in range(n)]


def workload(n: int, lo: int, hi: int, seed: int) -> list[Request]:
    return [Request(key=f"ragged/{i}", messages=({"role": "user", "content": QUESTIONS[i % len(QUESTIONS)] + f" (case {i})"},),
                    sampling=Sampling(max_new_tokens=m, min_new_tokens=m), seed=i)
            for i, m in enumerate(lengths(n, lo, hi, seed))]


def truncated(spec: str, layers: int) -> str:
    """A folder holding random:<name> with only its first `layers` layers (random weights, local tokenizer)."""
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM

    from harness.backends.models import LOCAL_TOKENIZER, arch_dict, hf_config, load_tokenizer, random_config

    if not spec.startswith("random:"):
        raise SystemExit("--layers works on random:<name> models only")
    config = hf_config(arch_dict(random_config(spec.split(":", 1)[1]), layers))
    torch.manual_seed(0)
    folder = tempfile.mkdtemp(prefix="ragged-")
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    load_tokenizer(LOCAL_TOKENIZER).save_pretrained(folder)
    return folder


def one_pass(backend, reqs, slots: int, mode: str) -> tuple[float, dict]:
    lens = [backend.count_tokens(backend.render(r)) for r in reqs]
    out = {}

    def on_batch(chunk, done, batch):
        for r, c in zip(chunk, done):
            out[r.key] = (c.text, c.output_tokens)

    backend.synchronize()
    t0 = time.perf_counter()
    generate_all(backend, reqs, lens, batch_size=slots, on_batch=on_batch, batching=mode)
    backend.synchronize()
    return time.perf_counter() - t0, out


def padding_share(reqs, lens, slots: int) -> float:
    """Share of static-batch row-steps that decode past their row's end."""
    queue = order(reqs, lens)
    steps = padded = 0
    for i in range(0, len(queue), slots):
        batch = [r.sampling.max_new_tokens for r in queue[i:i + slots]]
        steps += max(batch) * len(batch)
        padded += sum(max(batch) - m for m in batch)
    return padded / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="random:qwen2.5-0.5b-instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--min-tokens", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=8, help="slots: static batch size = sequences in flight")
    ap.add_argument("--repeats", type=int, default=1, help="pairs of passes, alternating which mode goes first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", default="auto", help="static batches' compiled decoding on CUDA: auto | on | off")
    ap.add_argument("--layers", type=int, help="random: models only: keep the first N layers (full-size embedding and head), "
                                               "for a quick comparison on a slow machine")
    ap.add_argument("--baseline", action="store_true", help="also count outputs static batching changes between batch 1 and --batch-size")
    ap.add_argument("--threads", type=int, help="torch CPU threads (on a loaded shared VM, 1 avoids OpenMP spin contention)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    dev = resolve(args.device, args.dtype)
    model = truncated(args.model, args.layers) if args.layers else args.model
    backend = TransformersBackend.from_options(model, device=dev, compile=args.compile)
    reqs = workload(args.requests, args.min_tokens, args.max_tokens, args.seed)
    asked = sum(r.sampling.max_new_tokens for r in reqs)
    one_pass(backend, reqs[:2], 2, "static")  # warm-up outside the timed passes
    walls = {"static": [], "continuous": []}
    outs = {}
    for rep in range(args.repeats):
        modes = ("static", "continuous") if rep % 2 == 0 else ("continuous", "static")
        for mode in modes:
            wall, out = one_pass(backend, reqs, args.batch_size, mode)
            walls[mode].append(wall)
            outs.setdefault(mode, out)
            print(f"{mode:10s} pass {rep}: {wall:8.2f} s, {asked / wall:8.2f} useful tok/s", file=sys.stderr)
    same = outs["static"] == outs["continuous"]
    differ = sum(outs["static"][k] != outs["continuous"][k] for k in outs["static"])
    baseline = None
    if args.baseline:
        _, one = one_pass(backend, reqs, 1, "static")
        baseline = sum(one[k] != outs["static"][k] for k in one)
    got = sum(n for _, n in outs["continuous"].values())
    lens = [backend.count_tokens(backend.render(r)) for r in reqs]
    rate = {m: asked / statistics.median(w) for m, w in walls.items()}
    doc = {"model": args.model, "layers": args.layers or "all", "threads": args.threads or "default", "device": dev.name, "dtype": dev.dtype, "requests": args.requests,
           "output_tokens": {"min": min(r.sampling.max_new_tokens for r in reqs), "max": max(r.sampling.max_new_tokens for r in reqs),
                             "total": asked, "produced": got},
           "engine": dict(backend.info.engine), "slots": args.batch_size, "repeats": args.repeats, "wall_s": walls, "useful_tokens_per_s": rate,
           "continuous_over_static": rate["continuous"] / rate["static"],
           "static_padding_share": padding_share(reqs, lens, args.batch_size), "identical_outputs": same,
           "differing_outputs": differ, "static_batch1_vs_static_differing": baseline}
    print(json.dumps(doc, indent=2))
    return 0 if got == asked and (same or dev.dtype != "float32") else 1


if __name__ == "__main__":
    raise SystemExit(main())
