"""Does `harness load` measure what GuideLLM measures? Same llama.cpp server, same load, side by side.

Starts one llama-cpp-python server on loopback (through harness.load.server, so with the same
workaround where this CPU needs it), then for each concurrency runs GuideLLM (its own venv: it pins
other versions of torch and transformers) and `harness load` against it, alternating, with the same
synthetic shape (prompt and output tokens, end-of-sequence suppressed on both by the same logit
bias). Prints one line per figure with both values and their ratio, and writes every raw file.

Definitions mapped (docs/load.md): GuideLLM's `time_to_first_token_ms` = our TTFT; its
`inter_token_latency_ms` = (E2E - TTFT) / (output tokens - 1) per request = our (vLLM's) TPOT;
its `time_per_output_token_ms` = E2E / output tokens (first token included, no counterpart in vLLM);
its `output_tokens_per_second` = output tokens / benchmark duration = our output_throughput.

  python benchmarks/load_agreement.py --guidellm /work/venv-guidellm/bin/guidellm \
      --tokenizer /tmp/smollm2-tokenizer --model SmolLM2.gguf --concurrency 1,2 --requests 12 \
      --out docs/cpu-2026-12-06-load-agreement.json
The tokenizer folder (GuideLLM needs one to build prompts of a token length) is the GGUF's own,
saved by transformers: AutoTokenizer.from_pretrained(dir, gguf_file=...).save_pretrained(...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.load.prompts import eos_ids  # noqa: E402
from harness.load.server import ManagedServer  # noqa: E402


def guidellm_run(exe: str, target: str, model: str, tokenizer: str, streams: int, n: int, pin: int, pout: int, bias: dict, out: Path) -> dict:
    scenario = {
        "spec": {
            "backend": {"kind": "openai_http", "target": target, "model": model, "request_format": "/v1/completions",
                        "extras": {"body": {"logit_bias": bias, "temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0}}},
            "profile": {"kind": "concurrent", "streams": streams},
            "data": [{"kind": "synthetic_text", "prompt_tokens": pin, "output_tokens": pout}],
            "tokenizer": {"kind": "huggingface_auto", "path": tokenizer},
            "constraints": [{"kind": "max_requests", "count": n}],
            "output": [{"kind": "json", "path": str(out)}],
        }
    }
    cfg = out.with_suffix(".scenario.json")
    cfg.write_text(json.dumps(scenario, indent=2))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    p = subprocess.run([exe, "run", "-c", str(cfg), "--disable-console-interactive"], capture_output=True, text=True, env=env, timeout=900)
    (out.with_suffix(".log")).write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        raise SystemExit(f"guidellm failed ({p.returncode}): {(p.stdout + p.stderr)[-1500:]}")
    return json.loads(out.read_text())


def harness_run(base: str, model: str, streams: int, n: int, pin: int, pout: int, out_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "harness", "load", "--base-url", base, "--model", model, "--concurrency", str(streams),
           "--requests", str(n), "--warmup", "0", "--input-tokens", str(pin), "--output-tokens", str(pout), "--prompts", str(n),
           "--output-dir", str(out_dir), "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if p.returncode != 0:
        raise SystemExit(f"harness load failed ({p.returncode}): {p.stderr[-1500:]}")
    folders = sorted(out_dir.glob("*/load.json"), key=lambda x: x.stat().st_mtime)
    return json.loads(folders[-1].read_text())


def find(obj, key: str):  # first value under `key` anywhere in a nested JSON document
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            got = find(v, key)
            if got is not None:
                return got
    elif isinstance(obj, list):
        for v in obj:
            got = find(v, key)
            if got is not None:
                return got
    return None


def guidellm_figures(doc: dict) -> dict:
    b = doc["benchmarks"][0]
    m = b["metrics"]

    def mean(name: str) -> float | None:
        v = m.get(name)
        if isinstance(v, dict):
            s = v.get("successful") or v
            return s.get("mean")
        return None

    return {"ttft_mean_s": (mean("time_to_first_token_ms") or 0) / 1000, "tpot_mean_s": (mean("inter_token_latency_ms") or 0) / 1000,
            "e2el_mean_s": mean("request_latency"), "output_throughput": mean("output_tokens_per_second"),
            "request_throughput": mean("requests_per_second"), "output_tokens_mean": mean("output_token_count"),
            "completed": (b.get("scheduler_metrics") or {}).get("requests_made", {}).get("successful")}


def harness_figures(doc: dict) -> dict:
    lv = doc["levels"][0]["metrics"]
    return {"ttft_mean_s": lv["ttft_s"]["mean"], "tpot_mean_s": lv["tpot_s"]["mean"], "e2el_mean_s": lv["e2el_s"]["mean"],
            "output_throughput": lv["output_throughput"], "request_throughput": lv["request_throughput"],
            "output_tokens_mean": lv["total_output_tokens"] / max(lv["completed"], 1), "completed": lv["completed"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--guidellm", required=True, help="the guidellm executable (its own venv)")
    ap.add_argument("--tokenizer", required=True, help="a Hugging Face tokenizer folder for the model")
    ap.add_argument("--model", required=True, help="the GGUF file")
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--input-tokens", type=int, default=64)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--out", default="docs/cpu-2026-12-06-load-agreement.json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="load-agreement-"))
    bias = {str(i): -1e9 for i in eos_ids(a.model)}
    rows = []
    with ManagedServer("llamacpp", a.model, work / "server.log", n_ctx=1024) as srv:
        base = srv.base_url
        target = base.removesuffix("/v1")
        # one warm-up pass by each tool, discarded
        harness_run(base, a.model, 1, 2, a.input_tokens, a.output_tokens, work / "warm")
        for c in [int(x) for x in a.concurrency.split(",")]:
            g = guidellm_figures(guidellm_run(a.guidellm, target, a.model, a.tokenizer, c, a.requests, a.input_tokens, a.output_tokens,
                                              bias, work / f"guidellm-c{c}.json"))
            h = harness_figures(harness_run(base, a.model, c, a.requests, a.input_tokens, a.output_tokens, work / f"harness-c{c}"))
            for k in g:
                ratio = (h[k] / g[k]) if isinstance(h[k], (int, float)) and isinstance(g[k], (int, float)) and g[k] else None
                rows.append({"concurrency": c, "figure": k, "harness": h[k], "guidellm": g[k], "ratio": ratio})
                print(f"c={c:<3} {k:<20} harness {h[k]!s:<22} guidellm {g[k]!s:<22} ratio {'' if ratio is None else f'{ratio:.3f}'}")
        note = srv.note
    out = {"date": "2026-12-06", "machine": "2-core AMD EPYC VM, no GPU", "model": Path(a.model).name, "server": "llama-cpp-python server",
           "server_note": note, "input_tokens": a.input_tokens, "output_tokens": a.output_tokens, "requests": a.requests,
           "order": "per concurrency: GuideLLM first, then harness load, same server", "rows": rows, "raw_folder": str(work)}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}; raw files in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
