"""How much of a bfloat16 model's greedy output is decided by the rounding of its output head.

    python benchmarks/greedy_head.py --model-dir QWEN_BF16_FOLDER --prompts 30 --max-new-tokens 128 \
        --vllm --out docs/cpu-<date>-greedy-head.json

The first --prompts GSM8K questions, rendered by the harness (chat template), greedy, batches of 8
in file order, token ids compared between:
  hf-bf16     transformers `generate`, bfloat16 model and head (logits rounded to bfloat16)
  hf-head32   the same bfloat16 model, its head computed in float32 (hidden and weight upcast): what
              the harness's transformers engine decides greedy tokens from (backends/head.py)
  hf-fp32     the whole model in float32 (the reference `harness diff` re-scores with)
  vllm-bf16   (--vllm) vLLM, bfloat16, its default head (bfloat16 logits)
  vllm-head32 (--vllm) vLLM with hf_overrides head_dtype=float32
Prints identical/total for every pair (whole output and first 64 tokens) and writes the counts and
each pair's first divergent step per prompt (no prompt text) to --out. vLLM runs in a child process
(its engine takes the machine's cores). A benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"


def prompts(model_dir: str, data: Path, n: int) -> list[str]:
    """The prompts `harness run --tasks gsm8k` sends this model (protocol qwen: its chat template)."""
    from engine_agreement import gsm8k_requests
    from transformers import AutoTokenizer

    from harness.backends.base import Sampling
    from harness.core.prompt import hf_template, render

    template = hf_template(AutoTokenizer.from_pretrained(model_dir))
    return [render(r, template) for r in gsm8k_requests(data, n, Sampling())]


def transformers_variants(model_dir: str, texts: list[str], n_new: int) -> dict[str, list[list[int]]]:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    ids = [tok(t, add_special_tokens=False).input_ids for t in texts]

    def generate(model) -> list[list[int]]:
        out = []
        for k in range(0, len(ids), 8):
            enc = tok.pad({"input_ids": ids[k:k + 8]}, return_tensors="pt")
            with torch.inference_mode():
                o = model.generate(**enc, max_new_tokens=n_new, do_sample=False, temperature=None, top_p=None, top_k=None,
                                   repetition_penalty=None, pad_token_id=tok.pad_token_id)
            out += [row[enc.input_ids.shape[1]:].tolist() for row in o]
        return out

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    found = {"hf-bf16": generate(model)}
    weight = model.lm_head.weight

    class Float32Head(torch.nn.Module):
        def forward(self, h):
            return F.linear(h.float(), weight.float())

    model.lm_head = Float32Head()
    found["hf-head32"] = generate(model)
    del model
    found["hf-fp32"] = generate(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval())
    return found


def vllm_variant(model_dir: str, texts: list[str], n_new: int, head32: bool) -> list[list[int]]:
    """In a child process: vLLM's engine with its default head or a float32 one."""
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"model": model_dir, "texts": texts, "n": n_new, "head32": head32}))
        code = ("import json, sys, vllm\n"
                "s = json.load(open(sys.argv[1]))\n"
                "kw = dict(model=s['model'], dtype='bfloat16', enforce_eager=True, generation_config='vllm')\n"
                "if s['head32']: kw['hf_overrides'] = {'head_dtype': 'float32'}\n"
                "llm = vllm.LLM(**kw); tok = llm.get_tokenizer()\n"
                "ps = [vllm.inputs.TokensPrompt(prompt_token_ids=tok(t, add_special_tokens=False).input_ids) for t in s['texts']]\n"
                "res = llm.generate(ps, vllm.SamplingParams(temperature=0, max_tokens=s['n']))\n"
                "json.dump([list(r.outputs[0].token_ids) for r in res], open(sys.argv[2], 'w'))\n")
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
        subprocess.run([sys.executable, "-c", code, str(spec), str(out)], check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return json.loads(out.read_text())


def first_divergence(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--data", type=Path, default=SHARED / "data/gsm8k/test.jsonl")
    ap.add_argument("--prompts", type=int, default=30)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--vllm", action="store_true", help="also vLLM with its bfloat16 and a float32 head")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    texts = prompts(args.model_dir, args.data, args.prompts)
    found = transformers_variants(args.model_dir, texts, args.max_new_tokens)
    if args.vllm:
        found["vllm-bf16"] = vllm_variant(args.model_dir, texts, args.max_new_tokens, False)
        found["vllm-head32"] = vllm_variant(args.model_dir, texts, args.max_new_tokens, True)
    names, pairs = list(found), []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            at = [first_divergence(x, y) for x, y in zip(found[a], found[b], strict=True)]
            same = sum(d is None for d in at)
            first64 = sum(d is None or d >= 64 for d in at)
            pairs.append({"a": a, "b": b, "identical": same, "identical_first_64": first64, "n": len(texts), "first_divergence": at})
            print(f"{a:12s} {b:12s} identical {same}/{len(texts)}  (first 64 tokens: {first64}/{len(texts)})")
    if args.out:
        args.out.write_text(json.dumps({"benchmark": "greedy_head", "model": args.model_dir, "prompts": len(texts),
                                        "max_new_tokens": args.max_new_tokens, "pairs": pairs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
