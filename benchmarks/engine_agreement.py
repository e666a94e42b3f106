"""Every engine on the same real model and prompts, greedy, checked against the others sample by sample.

    python benchmarks/engine_agreement.py --model-dir QWEN_BF16_FOLDER --gguf QWEN_Q4_K_M.gguf \
        --prompts 6 --max-new-tokens 96 --out docs/cpu-2026-12-06-engine-agreement.json

1. Agreement: `harness run` (the CLI, as a user runs it; one process per engine, each loading its own
   model) on the first --prompts GSM8K items with --temperature 0, through:
   transformers static and continuous batching (bfloat16), vLLM in-process (bfloat16), llama.cpp on
   the Q4_K_M GGUF, llama.cpp on a GGUF converted from the bf16 folder by llama.cpp's own converter
   (harness/backends/gguf_convert.py; bf16 out), and `vllm serve` on loopback through our `openai:`
   engine. Each run is paired with the transformers static run (and the served one with in-process
   vLLM) by `harness diff` (harness/diff.py): identical outputs, and every divergence re-scored by the
   bf16 folder in float32, so a divergence at a near-tie (<= 0.5 nats between the two tokens) is told
   apart from one at a wide margin. Note the bf16 folder is dequantized from the Q4_K_M file, so all
   six engines hold (nearly) the same weights.
2. Overhead, vLLM: the harness's vLLM engine (`VLLMBackend.generate`: rendering, ids, SamplingParams,
   Completion records) vs `vllm.LLM.generate` called directly with the same prompt ids and
   SamplingParams, on one engine, passes alternating which goes first; ratio of medians (target <= 1.05).
3. Overhead, llama.cpp: benchmarks/llamacpp_direct.py on the real GGUF (engine / direct decode rate,
   target >= 0.95).
Prints a table and writes one JSON document (--out). A benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def harness_run(name: str, model: str, data: Path, out: Path, args, extra: list[str]) -> dict:
    """One `harness run`; returns its folder, wall time and headline numbers."""
    done = sorted((out / name).glob("*/run.json"))
    if args.reuse and done:  # --workdir of an earlier call: keep what finished
        return summarise(name, done[-1], None)
    cmd = [sys.executable, "-m", "harness", "run", "--model", model, "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
           "--max-new-tokens", str(args.max_new_tokens), "--temperature", "0", "--device", "cpu", "--dtype", "bfloat16",
           "--output-dir", str(out / name), "--quiet", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - t0
    runs = sorted((out / name).glob("*/run.json"))
    if proc.returncode != 0 or not runs:
        print(f"{name}: FAILED ({proc.returncode}): {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}", file=sys.stderr, flush=True)
        return {"engine": name, "error": (proc.stderr or proc.stdout)[-2000:], "process_wall_s": wall}
    print(f"{name}: done in {wall:.0f} s", file=sys.stderr, flush=True)
    return summarise(name, runs[-1], wall)


def summarise(name: str, run_json: Path, wall: float | None) -> dict:
    """The headline numbers of one finished run."""
    run = json.loads(run_json.read_text())
    perf, task = run.get("perf") or {}, run["tasks"]["gsm8k"]
    return {"engine": name, "run_dir": str(run_json.parent), "process_wall_s": wall, "load_s": perf.get("load_s"),
            "generation_wall_s": perf.get("wall_s"), "output_tokens": perf.get("output_tokens"),
            "output_tokens_per_s": perf.get("output_tokens_per_s"), "ttft_p50_s": (perf.get("ttft_s") or {}).get("p50"),
            "tpot_p50_s": (perf.get("tpot_s") or {}).get("p50"), "accuracy": task["metrics"]["accuracy"]["value"],
            "protocol": task["settings"].get("protocol"), "backend": run["model"]["backend"], "sampling": run["model"].get("sampling")}


def agreement(ref: dict, other: dict, model_dir: str) -> dict:
    """`harness diff` of two runs, reduced to what the table shows (divergences kept in full)."""
    from harness.diff import diff_runs

    d = diff_runs(ref["run_dir"], other["run_dir"], reference=model_dir)
    return {"a": ref["engine"], "b": other["engine"], "identical": d.identical, "n": d.n, "near_tie": d.near_tie,
            "wide_margin": d.wide_margin, "margin_unknown": d.margin_unknown, "ttft_ratio_b_over_a": d.ttft_ratio_b_over_a,
            "tpot_ratio_b_over_a": d.tpot_ratio_b_over_a, "mcnemar_p": d.mcnemar["p_value"],
            "divergences": [{"key": p.key, "at": p.diverge_at, "a": p.token_a, "b": p.token_b, "margin": p.margin,
                             "why_unknown": p.margin_unknown} for p in d.pairs if not p.identical]}


def gsm8k_requests(data: Path, n: int, sampling) -> list:
    """The first `n` GSM8K items as `harness run --tasks gsm8k` asks a Qwen chat model for them (protocol qwen)."""
    from harness import protocols
    from harness.planning.plan import TaskPlan, request_for
    from harness.tasks.gsm8k import GSM8K  # type: ignore[attr-defined]

    task = GSM8K()
    items = task.load(str(data), n)
    plan = TaskPlan("gsm8k", task, items, 1, sampling, str(data), {"seed": 1234})
    return [request_for(protocols.get("qwen"), plan, item, 0) for item in items]


def harness_and_direct(backend, reqs: list):
    """Two ways to run `reqs` on one vLLM engine, each returning (seconds, token ids per request):
    the harness's engine (`VLLMBackend.generate`) and `vllm.LLM.generate` on the same ids and SamplingParams."""
    from harness.backends.vllm import sampling_kwargs

    ids = [{"prompt_token_ids": backend.prompt_ids(r)} for r in reqs]
    params = [backend._vllm.SamplingParams(**sampling_kwargs(r.sampling, r.seed)) for r in reqs]

    def through_harness() -> tuple[float, list]:
        t0 = time.perf_counter()
        out = backend.generate(reqs)
        return time.perf_counter() - t0, [c.token_ids for c in out]

    def direct() -> tuple[float, list]:
        t0 = time.perf_counter()
        out = backend._llm.generate(ids, params, use_tqdm=False)
        return time.perf_counter() - t0, [list(o.outputs[0].token_ids) for o in out]

    return through_harness, direct


def vllm_overhead(model_dir: str, data: Path, args) -> dict:
    """The harness's vLLM engine vs vllm.LLM.generate on the same ids and SamplingParams, alternating."""
    from harness.backends.base import Sampling
    from harness.backends.vllm import VLLMBackend

    backend = VLLMBackend(model_dir, dtype="bfloat16")
    through_harness, direct = harness_and_direct(backend, gsm8k_requests(data, args.prompts, Sampling(max_new_tokens=args.max_new_tokens)))
    _, first = through_harness()  # warm-up, not timed; its tokens are what every later pass must give
    h: list[float] = []
    d: list[float] = []
    same = True
    for i in range(args.overhead_rounds):
        for fn in ((through_harness, direct) if i % 2 == 0 else (direct, through_harness)):
            wall, toks = fn()
            (h if fn is through_harness else d).append(wall)
            same = same and toks == first
    backend.close()
    ratio = statistics.median(h) / statistics.median(d)
    return {"rounds": args.overhead_rounds, "harness_s": h, "direct_s": d, "harness_over_direct": ratio, "identical_tokens": same,
            "note": "ratio of median pass times, passes alternating which goes first; one engine, the same ids and SamplingParams"}


def llamacpp_overhead(gguf: str, args) -> dict:
    """benchmarks/llamacpp_direct.py on the real GGUF: the harness's llama.cpp engine vs llama-cpp-python direct."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "llamacpp_direct.py"), "--gguf", gguf, "--transformers-dtypes", "",
           "--new-tokens", str(min(64, args.max_new_tokens)), "--repeats", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    text = proc.stdout
    start = text.find("{\n")
    doc = json.loads(text[start:]) if start >= 0 else {"error": (proc.stderr or text)[-2000:]}
    return doc


def main(argv: list[str] | None = None) -> int:
    """Run the engines, pair them, measure the overheads, print the table and the JSON document."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True, help="the bf16 Hugging Face folder (get.sh qwen-coder-hf)")
    ap.add_argument("--gguf", help="the Q4_K_M GGUF (get.sh qwen-coder); skipped when absent")
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "gsm8k" / "test.jsonl")
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--engines", default="hf-static,hf-continuous,vllm,llamacpp-q4km,llamacpp-converted,openai-vllm-serve")
    ap.add_argument("--overhead-rounds", type=int, default=4)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--out", type=Path, help="write the JSON document here too")
    ap.add_argument("--workdir", type=Path, help="keep runs here; a later call with the same folder reuses finished runs")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    engines = args.engines.split(",")
    args.reuse = args.workdir is not None
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="engine-agreement-"))
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "gsm8k.jsonl"
    data.write_text("".join(args.data.read_text(encoding="utf-8").splitlines(keepends=True)[:args.prompts]), encoding="utf-8")
    load_before = os.getloadavg()
    runs: dict[str, dict] = {}
    plan = {"hf-static": (args.model_dir, ["--batching", "static", "--batch-size", str(args.prompts)]),
            "hf-continuous": (args.model_dir, ["--batching", "continuous", "--batch-size", str(args.prompts)]),
            "vllm": (args.model_dir, ["--backend", "vllm"]),
            "llamacpp-q4km": (args.gguf, ["--backend", "llamacpp"])}
    for name in engines:
        if name in plan and plan[name][0]:
            runs[name] = harness_run(name, plan[name][0], data, tmp, args, plan[name][1])
    if "llamacpp-converted" in engines:
        from harness.backends.gguf_convert import convert_to_gguf

        t0 = time.perf_counter()
        try:
            converted = tmp / "converted-bf16.gguf"
            if not converted.is_file():
                converted = convert_to_gguf([(Path(args.model_dir), converted)], "bf16", timeout=1800)[0]
            print(f"converted the bf16 folder to GGUF in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
            runs["llamacpp-converted"] = harness_run("llamacpp-converted", str(converted), data, tmp, args, ["--backend", "llamacpp"])
        except Exception as exc:  # the converter is optional: record why it did not run
            runs["llamacpp-converted"] = {"engine": "llamacpp-converted", "error": f"{type(exc).__name__}: {exc}"[:500]}
    served_done = sorted((tmp / "openai-vllm-serve").glob("*/run.json"))
    if "openai-vllm-serve" in engines and args.reuse and served_done:
        runs["openai-vllm-serve"] = summarise("openai-vllm-serve", served_done[-1], None)
    elif "openai-vllm-serve" in engines:
        from harness.errors import HarnessError
        from harness.load.server import ManagedServer

        try:  # the launcher `harness load --serve vllm` uses: loopback, neutral generation_config, eager on CPU, always stopped
            with ManagedServer("vllm", args.model_dir, tmp / "vllm-serve.log", ready_timeout_s=args.timeout,
                               prefix_caching=False) as server:
                print(f"vllm serve ready in {server.ready_s:.0f} s", file=sys.stderr, flush=True)
                runs["openai-vllm-serve"] = harness_run("openai-vllm-serve", f"openai:{args.model_dir}", data, tmp, args,
                                                        ["--base-url", server.base_url, "--batch-size", str(args.prompts),
                                                         "--backend-option", f"tokenizer={args.model_dir}"])
        except (HarnessError, OSError) as exc:
            runs["openai-vllm-serve"] = {"engine": "openai-vllm-serve", "error": str(exc)}
    ok = {k: v for k, v in runs.items() if "run_dir" in v}
    pairs = []
    if "hf-static" in ok:
        pairs += [agreement(ok["hf-static"], ok[k], args.model_dir) for k in ok if k != "hf-static"]
    if "vllm" in ok and "openai-vllm-serve" in ok:
        pairs.append(agreement(ok["vllm"], ok["openai-vllm-serve"], args.model_dir))
    if "llamacpp-q4km" in ok and "llamacpp-converted" in ok:
        pairs.append(agreement(ok["llamacpp-q4km"], ok["llamacpp-converted"], args.model_dir))
    doc: dict = {"date": time.strftime("%Y-%m-%d"), "model_dir": args.model_dir, "gguf": args.gguf, "prompts": args.prompts,
                 "max_new_tokens": args.max_new_tokens, "runs": runs, "agreement": pairs}
    if not args.skip_overhead:
        if "vllm" in engines:
            doc["vllm_overhead"] = vllm_overhead(args.model_dir, data, args)
        if args.gguf:
            doc["llamacpp_overhead"] = llamacpp_overhead(args.gguf, args)
    doc["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(f"{'engine':22} {'acc':>5} {'tok/s':>7} {'TTFT p50':>9} {'TPOT p50':>9} {'load s':>7}")
    for name, r in runs.items():
        if "error" in r:
            print(f"{name:22} error: {r['error'][-160:]!r}")
            continue
        print(f"{name:22} {r['accuracy']:5.2f} {r['output_tokens_per_s'] or 0:7.2f} {r['ttft_p50_s'] or 0:9.3f} {r['tpot_p50_s'] or 0:9.4f} "
              f"{r['load_s'] or 0:7.1f}")
    for p in pairs:
        print(f"{p['a']} vs {p['b']}: identical {p['identical']}/{p['n']}, near-tie {p['near_tie']}, wide margin {p['wide_margin']}, "
              f"unknown {p['margin_unknown']}")
    if "vllm_overhead" in doc:
        print(f"harness vLLM engine / vllm.LLM direct: {doc['vllm_overhead']['harness_over_direct']:.3f} (target <= 1.05)")
    for g in (doc.get("llamacpp_overhead") or {}).get("llamacpp", []):
        print(f"harness llama.cpp engine / llama-cpp-python direct (decode rate): {g['engine_over_direct']:.3f} (target >= 0.95)")
    text = json.dumps(doc, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
