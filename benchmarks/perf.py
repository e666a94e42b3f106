"""Side-by-side performance checks of the harness's timed path, printed as ratios from one run.

    python benchmarks/perf.py --model random:qwen2.5-0.5b --device cpu

1. overhead: the harness generation stage (length-sorted batches, per-step clock, per-row
   sampler, scoring, durable fsync'd appends) over a plain batched `model.generate` loop on the
   same rendered prompts, same batches, same greedy settings and fixed output length
   (`--batching continuous`: the harness side runs its continuous scheduler with --batch-size
   slots, the path `--batching auto` takes where it measured faster). Passes run
   in pairs, alternating which goes first; the ratio is the median of the per-pair ratios (the
   ratio of the medians is printed too). Target <= 1.05.
2. timing: at batch 1, the harness's TTFT and decode rate against an independent measurement of
   the same generation: a transformers streamer that timestamps every token as `generate` emits
   it. Target: within 5%.
3. scaling: output tokens/s at batch 1, 4, 8, 16 over batch 1.
Prints one JSON document last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers.generation.streamers import BaseStreamer

from harness.backends.hf import TransformersBackend
from harness.core.types import Request, Sampling
from harness.orchestration.generate import generate_all, order
from harness.results.store import SampleWriter
from harness.runtime.device import resolve
from harness.scoring.record import sample_row
from harness.tasks.synthetic import Synthetic


def requests_for(n: int, max_new: int, fixed: bool = True) -> tuple[list[Request], dict]:
    task = Synthetic(language="mixed", steps=4)
    items = task.load(limit=n)
    reqs = [Request(key=f"synthetic/{it.id}/0", messages=({"role": "user", "content": it.question + "\nPlease reason step by step."},),
                    sampling=Sampling(max_new_tokens=max_new, min_new_tokens=max_new if fixed else 0), seed=i)
            for i, it in enumerate(items)]
    return reqs, {r.key: it for r, it in zip(reqs, items)}


def harness_pass(backend, reqs, items, batch_size, out: Path, batching: str = "static") -> float:
    prompts = {r.key: backend.render(r) for r in reqs}
    lengths = [backend.count_tokens(prompts[r.key]) for r in reqs]
    writer = SampleWriter(out)

    def on_batch(chunk, done, batch):
        writer.append([sample_row(r, c, task="synthetic", answer_type="number", item=items[r.key], sample=0, prompt=prompts[r.key],
                                  backend=backend) for r, c in zip(chunk, done)])

    backend.synchronize()
    t0 = time.perf_counter()
    generate_all(backend, reqs, lengths, batch_size=batch_size, on_batch=on_batch, batching=batching)
    backend.synchronize()
    wall = time.perf_counter() - t0
    writer.close()
    return wall


def plain_pass(backend, reqs, batch_size) -> float:
    tok, model = backend.tokenizer, backend.model
    prompts = [backend.render(r) for r in reqs]
    lengths = [backend.count_tokens(p) for p in prompts]
    ordered = [backend.render(r) for r in order(reqs, lengths)]
    n = reqs[0].sampling.max_new_tokens
    backend.synchronize()
    t0 = time.perf_counter()
    for i in range(0, len(ordered), batch_size):
        enc = tok(ordered[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(backend.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
        tok.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
    backend.synchronize()
    return time.perf_counter() - t0


class Stamps(BaseStreamer):
    """Timestamps each `put` from generate: the prompt first, then one call per new token."""

    def __init__(self, sync):
        self.sync, self.times, self.calls = sync, [], 0

    def put(self, value):
        self.calls += 1
        if self.calls > 1:  # the first call carries the prompt
            self.sync()
            self.times.append(time.perf_counter())

    def end(self):
        pass


def timing_check(backend, req, repeats: int) -> dict:
    real = backend.model.generate
    h_ttft, h_rate, s_ttft, s_rate = [], [], [], []
    for _ in range(repeats):
        stamps = Stamps(backend.synchronize)
        start = {}

        def generate(*a, **kw):
            backend.synchronize()
            start["t"] = time.perf_counter()  # noqa: B023  (called within this iteration)
            return real(*a, streamer=stamps, **kw)  # noqa: B023

        backend.model.generate = generate
        try:
            c = backend.generate([req])[0]
        finally:
            backend.model.generate = real
        h_ttft.append(c.ttft_s)
        h_rate.append((c.output_tokens - 1) / (c.e2e_s - c.ttft_s))
        s_ttft.append(stamps.times[0] - start["t"])
        s_rate.append((len(stamps.times) - 1) / (stamps.times[-1] - stamps.times[0]))
    med = statistics.median
    return {"harness_ttft_s": med(h_ttft), "streamer_ttft_s": med(s_ttft), "ttft_ratio": med(h_ttft) / med(s_ttft),
            "harness_decode_tok_s": med(h_rate), "streamer_decode_tok_s": med(s_rate), "decode_ratio": med(h_rate) / med(s_rate)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="random:qwen2.5-0.5b")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scaling", default="1,4,8,16")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: overhead,timing,scaling")
    ap.add_argument("--batching", default="static", choices=("static", "continuous"),
                    help="the harness path of the overhead check (the plain loop is static batches of --batch-size)")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    dev = resolve(args.device, args.dtype)
    backend = TransformersBackend.from_options(args.model, device=dev)
    reqs, items = requests_for(args.prompts, args.max_new_tokens)
    backend.generate(reqs[: args.batch_size])  # warm-up for both paths
    doc = {"model": args.model, "device": dev.name, "dtype": dev.dtype, "prompts": args.prompts, "batch_size": args.batch_size,
           "batching": args.batching,
           "max_new_tokens": args.max_new_tokens, "repeats": args.repeats, "torch_threads": torch.get_num_threads()}
    if "overhead" not in skip:
        h, p = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeats):  # pairs, alternating which goes first, so drift cancels
                if i % 2 == 0:
                    h.append(harness_pass(backend, reqs, items, args.batch_size, Path(tmp) / f"s{i}.jsonl", args.batching))
                    p.append(plain_pass(backend, reqs, args.batch_size))
                else:
                    p.append(plain_pass(backend, reqs, args.batch_size))
                    h.append(harness_pass(backend, reqs, items, args.batch_size, Path(tmp) / f"s{i}.jsonl", args.batching))
        paired = statistics.median(a / b for a, b in zip(h, p))
        ratio = statistics.median(h) / statistics.median(p)
        doc["overhead"] = {"harness_s": h, "plain_s": p, "ratio": paired, "ratio_of_medians": ratio}
        print(f"overhead: harness / plain generate = {paired:.3f} (median of {args.repeats} paired ratios; ratio of medians "
              f"{ratio:.3f}; target <= 1.05)", flush=True)
    if "timing" not in skip:
        t = timing_check(backend, reqs[0], args.repeats)
        doc["timing"] = t
        print(f"timing: TTFT harness/streamer = {t['ttft_ratio']:.3f}, decode rate harness/streamer = {t['decode_ratio']:.3f} "
              f"(target within 0.95..1.05)", flush=True)
    if "scaling" not in skip:
        sizes = [int(x) for x in args.scaling.split(",")]
        rates = {}
        for bs in sizes:
            batch = (reqs * ((bs + len(reqs) - 1) // len(reqs)))[:bs]
            batch = [Request(key=f"{r.key}#{i}", messages=r.messages, sampling=r.sampling, seed=i) for i, r in enumerate(batch)]
            backend.generate(batch)
            best = float("inf")
            for _ in range(args.repeats):
                backend.synchronize()
                t0 = time.perf_counter()
                done = backend.generate(batch)
                backend.synchronize()
                best = min(best, time.perf_counter() - t0)
            rates[bs] = sum(c.output_tokens for c in done) / best
        doc["scaling"] = {str(bs): {"output_tokens_per_s": r, "vs_batch_1": r / rates[sizes[0]]} for bs, r in rates.items()}
        print("scaling: " + ", ".join(f"batch {bs}: {r:.1f} tok/s ({r / rates[sizes[0]]:.2f}x)" for bs, r in rates.items()), flush=True)
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
