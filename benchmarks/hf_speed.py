"""The transformers engine's own decoding speed on CPU, against lm-eval's `hf` model on identical work.

    python benchmarks/hf_speed.py --model-dir QWEN_BF16_FOLDER --out docs/cpu-<date>-hf-speed.json

Work: the first --prompts GSM8K questions (16), each one user message with a step-by-step
instruction, rendered once by the harness's renderer (the model's chat template; not the gsm8k
task's system-prompt protocol) and given to both as the same text, greedy, every row forced to --max-new-tokens (256: min = max, so
EOS cannot end a row early and both do exactly prompts x tokens decode steps' worth), bfloat16,
batches of --batch-size (8) in lm-eval's order (longest prompt first), one process, each model
loaded once. Passes alternate which engine goes first; the figures are harness / lm-eval as the
ratio of median pass walls and paired (median over passes of the same pass's ratio; target <= 0.8),
with every pass kept in the JSON.

Variants measured in the same run (each a separate model copy):
  harness          TransformersBackend as `harness run` builds it on CPU (oneDNN-prepacked linears,
                   backends/cpu_linear.py), static batches
  harness-plain    the same with --backend-option cpu_prepack=false (PyTorch's plain matmul)
  lm-eval          lm_eval.models.huggingface.HFLM.generate_until, batch_size=--batch-size
  compiled         (--compiled) transformers' generate with a static cache and torch.compile on
                   CPU (inductor), the path the harness uses on CUDA; its compile time is reported
                   apart from its steady passes
Outputs are compared token for token between the harness variants (prepacking must not change them).
A benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
INSTRUCTION = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def questions(path: Path, n: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:n]
    return [r["question"] + INSTRUCTION for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True, help="a bfloat16 Hugging Face folder (../shared/models/get.sh qwen-coder-hf)")
    ap.add_argument("--data", type=Path, default=SHARED / "data/gsm8k/test.jsonl")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--passes", type=int, default=3, help="timed passes per engine (alternating order)")
    ap.add_argument("--compiled", action="store_true", help="also time torch.compile with a static cache on CPU")
    ap.add_argument("--knobs", action="store_true", help="only time the harness engine's thread count and attention kernel "
                                                         "(64 tokens, alternating, --passes each) and exit")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.backends.hf import TransformersBackend
    from harness.core.types import Request, Sampling
    from harness.runtime.device import cpu_name, resolve

    n_new = args.max_new_tokens
    device = resolve("cpu", "bfloat16")
    harness = TransformersBackend.from_options(args.model_dir, device=device)
    plain = TransformersBackend.from_options(args.model_dir, device=device, cpu_prepack=False)
    lm = HFLM(pretrained=args.model_dir, dtype="bfloat16", batch_size=args.batch_size, device="cpu")
    questions_ = questions(args.data, args.prompts)
    texts = [harness.render(Request(key="", messages=({"role": "user", "content": q},), sampling=Sampling(), seed=0)) for q in questions_]
    # lm-eval's order: longest prompt first, consecutive batches; the harness gets the same batches
    order = sorted(range(len(texts)), key=lambda i: -harness.count_tokens(texts[i]))

    def run_backend(backend, n):
        ids = {}
        sampling = Sampling(max_new_tokens=n, min_new_tokens=n)
        reqs = [Request(key=f"q{i}", messages=({"role": "user", "content": questions_[i]},), sampling=sampling, seed=i) for i in order]
        for k in range(0, len(reqs), args.batch_size):
            batch = reqs[k:k + args.batch_size]
            for r, c in zip(batch, backend.generate(batch), strict=True):
                assert c.output_tokens == n, (r.key, c.output_tokens)
                ids[r.key] = c.token_ids
        return ids

    def run_lmeval(n):
        instances = [Instance(request_type="generate_until", doc={}, idx=i,
                              arguments=(texts[i], {"until": [], "max_gen_toks": n, "min_new_tokens": n, "do_sample": False}))
                     for i in range(len(texts))]
        assert len(lm.generate_until(instances, disable_tqdm=True)) == len(texts)

    if args.knobs:
        return knobs(harness, run_backend, args)
    engines = {"harness": lambda n: run_backend(harness, n), "harness-plain": lambda n: run_backend(plain, n), "lm-eval": run_lmeval}
    compile_s = None
    if args.compiled:
        compile_s, engines["compiled"] = compiled_engine(args.model_dir, texts, order, args.batch_size, n_new)
    for name, fn in engines.items():  # warm-up: first-call allocations, lazy imports (compiled: built and run above)
        if name != "compiled":
            fn(16)
    walls: dict[str, list[float]] = {name: [] for name in engines}
    outputs: dict[str, dict] = {}
    names = list(engines)
    for p in range(args.passes):
        for name in (names if p % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            outputs[name] = engines[name](n_new)
            walls[name].append(time.perf_counter() - t0)
            print(f"pass {p + 1} {name:14s} {walls[name][-1]:7.2f} s", file=sys.stderr, flush=True)
    med = {name: statistics.median(w) for name, w in walls.items()}
    tokens = len(texts) * n_new
    same = sum(outputs["harness"][k] == outputs["harness-plain"][k] for k in outputs["harness"])
    doc = {
        "benchmark": "hf_speed", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "load_avg": os.getloadavg()},
        "model": args.model_dir, "prompts": len(texts), "max_new_tokens": n_new, "batch_size": args.batch_size, "passes": args.passes,
        "harness_engine": harness.info.engine, "walls_s": walls, "median_wall_s": med,
        "tokens_per_s": {k: tokens / v for k, v in med.items()},
        "ratio_harness_over_lmeval": med["harness"] / med["lm-eval"],
        "paired_ratio_harness_over_lmeval": paired(walls["harness"], walls["lm-eval"]),
        "ratio_plain_over_lmeval": med["harness-plain"] / med["lm-eval"],
        "prepack_identical_outputs": f"{same}/{len(texts)}", "compile_warmup_s": compile_s,
    }
    if "compiled" in med:
        doc["ratio_compiled_over_lmeval"] = med["compiled"] / med["lm-eval"]
    print(f"\n{len(texts)} prompts x {n_new} tokens, batch {args.batch_size}, bfloat16, {doc['machine']['cpu']}")
    for name in names:
        print(f"  {name:14s} median {med[name]:7.2f} s  {tokens / med[name]:6.1f} tok/s  / lm-eval {med[name] / med['lm-eval']:.3f}")
    print(f"  harness vs harness-plain outputs identical: {same}/{len(texts)}")
    if compile_s is not None:
        print(f"  compiled: {compile_s:.1f} s of compilation before its passes")
    print(f"harness / lm-eval = {doc['ratio_harness_over_lmeval']:.3f} (ratio of medians; paired per pass "
          f"{doc['paired_ratio_harness_over_lmeval']:.3f}; target <= 0.8)")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


def knobs(backend, run_backend, args) -> int:
    """The harness engine at 64 tokens with its default settings, one intra-op thread, and eager attention."""
    import torch

    from harness.runtime.device import cpu_name

    threads = torch.get_num_threads()
    default_attn = backend.model.config._attn_implementation

    def setting(name):
        torch.set_num_threads(1 if name == "1 thread" else threads)
        backend.model.set_attn_implementation("eager" if name == "eager attention" else default_attn)

    names = ["default", "1 thread", "eager attention"]
    walls: dict[str, list[float]] = {n: [] for n in names}
    run_backend(backend, 16)
    for p in range(args.passes):
        for name in (names if p % 2 == 0 else names[::-1]):
            setting(name)
            t0 = time.perf_counter()
            run_backend(backend, 64)
            walls[name].append(time.perf_counter() - t0)
    setting("default")
    doc = {"benchmark": "hf_speed knobs", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_name(),
           "cores": os.cpu_count(), "default_threads": threads, "default_attention": default_attn, "max_new_tokens": 64,
           "walls_s": walls, "paired_over_default": {n: paired(walls[n], walls["default"]) for n in names}}
    for n in names:
        print(f"  {n:16s} median {statistics.median(walls[n]):6.2f} s  paired / default {doc['paired_over_default'][n]:.3f}")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


def paired(a: list[float], b: list[float]) -> float:
    """The median over passes of a/b for the same pass (cancels drift between passes)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def compiled_engine(model_dir: str, texts: list[str], order: list[int], batch_size: int, n_new: int):
    """transformers' generate with a static cache, compiled by inductor on CPU; (compile seconds, a pass)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.configuration_utils import CompileConfig

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    cc = CompileConfig(fullgraph=False, dynamic=False)
    cc._compile_all_devices = True  # transformers auto-compiles on CUDA/XPU only
    batches = [[texts[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]
    width = max(len(tok(t, add_special_tokens=False).input_ids) for t in texts)

    def one_pass(n=n_new):
        for batch in batches:  # one padded width and cache size for every batch: one compiled graph
            enc = tok(batch, return_tensors="pt", padding="max_length", max_length=width, add_special_tokens=False)
            with torch.inference_mode():
                model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, temperature=None, top_p=None,
                               top_k=None, cache_implementation="static", compile_config=cc, pad_token_id=tok.pad_token_id)

    t0 = time.perf_counter()
    one_pass()  # compiles (and runs once)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    one_pass()
    return first - (time.perf_counter() - t0), one_pass


if __name__ == "__main__":
    sys.exit(main())
