"""llama.cpp through the harness vs llama-cpp-python called directly, and both vs transformers, in one run.

    python benchmarks/llamacpp_direct.py --model random:qwen2.5-0.5b-instruct --outtype f16,q8_0
    python benchmarks/llamacpp_direct.py --gguf path/to/model.gguf

1. engine vs direct, per GGUF: the harness's llama.cpp engine (harness/backends/llamacpp.py, built
   the way `harness run --backend llamacpp` builds it) and a plain `llama_cpp.Llama` with the same
   n_threads, n_ctx and prompt tokens, greedy, on the same prompts and number of new tokens. Passes
   run in pairs, one prompt at a time, alternating which goes first; the ratio is the median of
   the per-pair ratios and each rate the median over pairs.
   Decode rate excludes prompt processing the same way for both: (tokens - 1) / (time of the last
   token - time of the first). Greedy token ids must be identical. A third arm, the engine with a
   fixed length (min = max new tokens, as `harness bench` asks), shows what its end-of-generation
   ban costs. Target: engine / direct >= 0.95.
2. transformers (harness/backends/hf.py) on the same weights in float32 and bfloat16 on CPU, batch 1,
   the same prompts and lengths, timed the same way: when does a GGUF on llama.cpp beat it?
   Decoding is memory-bound, so the weight bytes read per token (file tensors for llama.cpp, the
   dtype's width x parameters for transformers) are printed beside each rate.

Without --gguf the GGUFs are built from a random-weight model (`--model random:<name>`, `--layers N`
to cut its depth) with the real Qwen2.5 tokenizer (../shared/fixtures, or --tokenizer) through
llama.cpp's own converter (harness.backends.gguf_convert, as the tests do). Prints one JSON document
last. A benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness.core.types import Request, Sampling

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = ["Tom has 5 apples and buys 7 more. How many apples does he have now? Explain step by step.",
             "小明有15个苹果，给了小红4个，又买了6个。他现在有几个苹果？请一步一步地推理。",
             "A train travels 60 km in 45 minutes. What is its average speed in km/h? Show your reasoning."]


def random_folder(spec: str, out: Path, layers: int | None, tokenizer: Path, init_std: float | None) -> Path:
    """Save random:<name> (random weights, seed 0; the first `layers` layers when given) with the
    real tokenizer, as safetensors: the weights both engines read."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.models import arch_dict, hf_config, random_config

    if not spec.startswith("random:"):
        raise SystemExit("error: --model takes random:<name>; pass an existing GGUF with --gguf")
    raw = arch_dict(random_config(spec.split(":", 1)[1]), layers or None)
    if init_std:
        raw["initializer_range"] = init_std
    tok = AutoTokenizer.from_pretrained(tokenizer)
    config = hf_config(raw)
    config.eos_token_id = tok.convert_tokens_to_ids("<|im_end|>")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def requests(n_new: int, fixed: bool) -> list[Request]:
    return [Request(key=f"q{i}", messages=({"role": "user", "content": q},),
                    sampling=Sampling(max_new_tokens=n_new, min_new_tokens=n_new if fixed else 0), seed=0)
            for i, q in enumerate(QUESTIONS)]


def harness_pass(backend, reqs) -> tuple[float, dict]:
    """(decode tok/s over all prompts, {key: token ids}) through the backend's own timings."""
    tokens = seconds = 0.0
    ids = {}
    for r in reqs:
        c = backend.generate([r])[0]
        if c.output_tokens > 1:  # a one-token answer has no decode step to time
            tokens, seconds = tokens + c.output_tokens - 1, seconds + c.e2e_s - c.ttft_s
        ids[r.key] = list(c.token_ids or [])
    return tokens / seconds if seconds else float("nan"), ids


def direct_pass(llm, prompts: dict[str, list[int]], n_new: int, stop_at_eog) -> tuple[float, dict]:
    """The same through a plain llama_cpp.Llama: timestamp every token as `generate` yields it."""
    tokens = seconds = 0.0
    ids = {}
    for key, prompt in prompts.items():
        out, stamps = [], []
        llm.reset()
        for token in llm.generate(prompt, temp=0.0, repeat_penalty=1.0, reset=True):
            stamps.append(time.perf_counter())
            out.append(int(token))
            if (stop_at_eog and stop_at_eog(token)) or len(out) >= n_new:
                break
        if len(out) > 1:
            tokens, seconds = tokens + len(out) - 1, seconds + stamps[-1] - stamps[0]
        ids[key] = out
    return tokens / seconds if seconds else float("nan"), ids


def paired(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


def compare_gguf(path: Path, args) -> dict:
    import llama_cpp

    from harness.backends.gguf_file import read_header
    from harness.backends.llamacpp import LlamaCppBackend, physical_cores

    threads = args.threads or physical_cores()
    engine = LlamaCppBackend.from_options(str(path), n_threads=threads, n_ctx=args.n_ctx, device="cpu")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=args.n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    free, fixed = requests(args.new_tokens, False), requests(args.new_tokens, True)
    prompts = {r.key: llm.tokenize(engine.render(r).encode("utf-8"), add_bos=False, special=True) for r in free}
    vocab = llm._model.vocab

    def stop(token) -> bool:
        return llama_cpp.llama_vocab_is_eog(vocab, token)

    harness_pass(engine, free[:1]), direct_pass(llm, dict(list(prompts.items())[:1]), 8, stop)  # warm-up
    arms = {"engine": [], "direct": [], "engine_fixed": [], "direct_fixed": []}
    ids: dict[str, dict] = {arm: {} for arm in arms}
    for rep in range(args.repeats):
        for i, (one, one_fixed) in enumerate(zip(free, fixed)):
            # pairs per prompt, alternating which arm goes first: a neighbour's burst on a shared
            # machine hits one short pair, not a whole pass
            for arm in ("engine", "direct") if (rep + i) % 2 == 0 else ("direct", "engine"):
                if arm == "engine":
                    r, got = harness_pass(engine, [one])
                    r_fixed, got_fixed = harness_pass(engine, [one_fixed])
                else:
                    r, got = direct_pass(llm, {one.key: prompts[one.key]}, args.new_tokens, stop)
                    r_fixed, got_fixed = direct_pass(llm, {one.key: prompts[one.key]}, args.new_tokens, None)
                arms[arm].append(r)
                arms[f"{arm}_fixed"].append(r_fixed)
                if rep == 0:
                    ids[arm].update(got), ids[f"{arm}_fixed"].update(got_fixed)
        print(f"{path.name} round {rep}: engine {statistics.median(arms['engine']):7.2f}, direct {statistics.median(arms['direct']):7.2f} "
              f"decode tok/s so far (fixed length {statistics.median(arms['engine_fixed']):7.2f} vs "
              f"{statistics.median(arms['direct_fixed']):7.2f})", file=sys.stderr, flush=True)
    header = read_header(path)
    engine_inputs = [engine.count_tokens(engine.render(r)) for r in free]
    doc = {"gguf": str(path), "file_type": engine.info.dtype, "tensor_bytes": header.tensor_bytes, "parameters": header.parameters,
           "threads": threads, "n_ctx": args.n_ctx, "decode_tok_s": {k: statistics.median(v) for k, v in arms.items()},
           "pairs": arms, "engine_over_direct": paired(arms["engine"], arms["direct"]),
           "engine_fixed_over_direct_fixed": paired(arms["engine_fixed"], arms["direct_fixed"]),
           "identical_tokens": ids["engine"] == ids["direct"], "identical_tokens_fixed": ids["engine_fixed"] == ids["direct_fixed"],
           "same_prompt_tokens": engine_inputs == [len(p) for p in prompts.values()],
           "tokens_per_prompt": [len(v) for v in ids["engine"].values()],
           "distinct_tokens": len({t for v in ids["engine"].values() for t in v})}
    engine.close()
    llm.close()
    return doc


def time_transformers(model: str, dtype: str, args) -> dict:
    from harness.backends.hf import TransformersBackend
    from harness.runtime.device import resolve

    backend = TransformersBackend.from_options(model, device=resolve("cpu", dtype))
    reqs = requests(args.new_tokens, True)  # forced length: random weights may otherwise stop at once
    harness_pass(backend, reqs[:1])  # warm-up
    rates = []
    for rep in range(args.transformers_repeats):
        r, _ = harness_pass(backend, reqs)
        rates.append(r)
        print(f"transformers {dtype:8s} pass {rep}: {r:7.2f} decode tok/s", file=sys.stderr, flush=True)
    params = backend.info.num_parameters
    backend.close()
    return {"dtype": dtype, "decode_tok_s": statistics.median(rates), "passes": rates, "parameters": params,
            "weight_bytes": params * (4 if dtype == "float32" else 2) if params else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", action="append", type=Path, help="an existing GGUF (repeat for several); else built from --model")
    ap.add_argument("--model", default="random:qwen2.5-0.5b-instruct")
    ap.add_argument("--layers", type=int, help="random: models only: keep the first N layers")
    ap.add_argument("--outtype", default="f16,q8_0", help="GGUF types to build, comma-separated: f32, f16, bf16, q8_0")
    ap.add_argument("--tokenizer", type=Path, default=REPO.parent / "shared" / "fixtures" / "qwen2.5-tokenizer")
    ap.add_argument("--init-std", type=float, help="random weights' std (default: the config's initializer_range)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4, help="rounds over the prompts; each prompt is one engine/direct pair")
    ap.add_argument("--threads", type=int, help="llama.cpp threads (default: the engine's, one per physical core)")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--transformers-repeats", type=int, default=2, help="passes per transformers dtype")
    ap.add_argument("--transformers-dtypes", default="float32,bfloat16", help="comma-separated; empty to skip")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()  # a shared machine: a busy neighbour slows llama.cpp's spinning threads most
    tmp = Path(tempfile.mkdtemp(prefix="llamacpp-direct-"))
    folder = None
    if args.gguf:
        ggufs = args.gguf
    else:
        if not (args.tokenizer / "tokenizer.json").is_file():
            raise SystemExit(f"error: no tokenizer at {args.tokenizer}: pass --tokenizer DIR with the Qwen2.5 tokenizer.json")
        from harness.backends.gguf_convert import convert_to_gguf

        t0 = time.perf_counter()
        folder = random_folder(args.model, tmp / "hf", args.layers, args.tokenizer, args.init_std)
        ggufs = [convert_to_gguf([(folder, tmp / f"model-{t}.gguf")], t, timeout=1800)[0] for t in args.outtype.split(",")]
        print(f"built {', '.join(p.name for p in ggufs)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    doc = {"model": str(args.gguf) if args.gguf else args.model, "layers": args.layers or "all", "new_tokens": args.new_tokens,
           "prompts": len(QUESTIONS), "repeats": args.repeats, "llamacpp": [compare_gguf(p, args) for p in ggufs]}
    source = str(folder or ggufs[0])  # transformers: the same weights (a GGUF is dequantized to the dtype)
    doc["transformers"] = [time_transformers(source, d, args) for d in args.transformers_dtypes.split(",") if d]
    doc["load_average"] = {"before": load_before, "after": os.getloadavg()}
    for g in doc["llamacpp"]:
        print(f"{Path(g['gguf']).name}: engine {g['decode_tok_s']['engine']:.2f} vs direct {g['decode_tok_s']['direct']:.2f} decode tok/s, "
              f"ratio {g['engine_over_direct']:.3f} (target >= 0.95); identical tokens {g['identical_tokens']}", flush=True)
    for t in doc["transformers"]:
        print(f"transformers {t['dtype']}: {t['decode_tok_s']:.2f} decode tok/s", flush=True)
    print(json.dumps(doc, indent=2))
    ok = all(g["identical_tokens"] and g["same_prompt_tokens"] for g in doc["llamacpp"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
