"""Does vLLM give the same greedy tokens when the same batch runs again? With and without prefix caching.

    python benchmarks/vllm_repeat.py --model-dir QWEN_BF16_FOLDER --passes 6 --out docs/cpu-<date>-vllm-repeat.json

One engine per setting (prefix caching on, as vLLM defaults, and off, as the harness builds it), the
first --prompts GSM8K items as `harness run` renders them, greedy, --max-new-tokens; the same batch
submitted --passes times, alternating the harness's engine (`VLLMBackend.generate`) and
`vllm.LLM.generate` on the same ids and SamplingParams. Prints, per pass, which outputs equal the
first pass's. A benchmark, never a timed unit test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"


def passes(model_dir: str, data: Path, n: int, n_new: int, rounds: int, prefix_caching: bool) -> list[dict]:
    from engine_agreement import gsm8k_requests, harness_and_direct

    from harness.backends.base import Sampling
    from harness.backends.vllm import VLLMBackend

    backend = VLLMBackend(model_dir, dtype="bfloat16", prefix_caching=prefix_caching)
    through_harness, direct = harness_and_direct(backend, gsm8k_requests(data, n, Sampling(max_new_tokens=n_new)))
    found = []
    for i in range(rounds):
        _, toks = (through_harness if i % 2 == 0 else direct)()
        found.append({"pass": i + 1, "through": "harness" if i % 2 == 0 else "direct", "tokens": toks})
    backend.close()
    first = found[0]["tokens"]
    return [{"pass": p["pass"], "through": p["through"], "same_as_first": [a == b for a, b in zip(p["tokens"], first, strict=True)]}
            for p in found]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--data", type=Path, default=SHARED / "data/gsm8k/test.jsonl")
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--passes", type=int, default=6)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    doc: dict = {"benchmark": "vllm_repeat", "model": args.model_dir, "prompts": args.prompts, "max_new_tokens": args.max_new_tokens}
    for caching in (True, False):
        rows = passes(args.model_dir, args.data, args.prompts, args.max_new_tokens, args.passes, caching)
        doc[f"prefix_caching_{'on' if caching else 'off'}"] = rows
        for r in rows:
            print(f"prefix caching {'on ' if caching else 'off'} pass {r['pass']} ({r['through']:7s}) same as pass 1: "
                  f"{sum(r['same_as_first'])}/{len(r['same_as_first'])} {r['same_as_first']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
