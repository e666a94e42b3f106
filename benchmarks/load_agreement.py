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

  python benchmarks/load_agreement.py --guidellm <guidellm venv>/bin/guidellm \
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


def guidellm_run(exe: str, target: str, model: str, tokenizer: str, streams: int, n: int, warm: int, pin: int, pout: int, bias: dict,
                 out: Path) -> dict:
    scenario = {
        "spec": {
            "backend": {"kind": "openai_http", "target": target, "model": model, "request_format": "/v1/completions",
                        "validate_backend": False,  # it asks /health, which llama-cpp-python lacks
                        "extras": {"body": {"logit_bias": bias, "temperature": 0.0, "top_p": 1.0, "repeat_penalty": 1.0}}},
            "profile": {"kind": "concurrent", "streams": streams, "warmup": {"value": warm, "mode": "requests"}},
            "data": [{"kind": "synthetic_text", "prompt_tokens": pin, "output_tokens": pout}],
            "tokenizer": {"kind": "huggingface_auto", "model": tokenizer},
            "constraints": [{"kind": "max_requests", "count": n + warm}],
            "outputs": [{"kind": "json", "path": str(out)}],
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


def harness_run(base: str, model: str, streams: int, n: int, warm: int, pin: int, pout: int, out_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "harness", "load", "--base-url", base, "--model", model, "--concurrency", str(streams),
           "--requests", str(n), "--warmup", str(warm), "--input-tokens", str(pin), "--output-tokens", str(pout), "--prompts", str(n),
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

    def mean(name: str, stat: str = "mean") -> float | None:
        v = m.get(name)
        if isinstance(v, dict):
            s = v.get("successful") or v
            return s.get(stat)
        return None

    return {"ttft_mean_s": (mean("time_to_first_token_ms") or 0) / 1000, "ttft_median_s": (mean("time_to_first_token_ms", "median") or 0) / 1000,
            "tpot_mean_s": (mean("inter_token_latency_ms") or 0) / 1000, "tpot_median_s": (mean("inter_token_latency_ms", "median") or 0) / 1000,
            "e2el_mean_s": mean("request_latency"), "e2el_median_s": mean("request_latency", "median"),
            "output_throughput": mean("output_tokens_per_second"),
            "request_throughput": mean("requests_per_second"), "output_tokens_mean": mean("output_token_count"),
            "completed": (b.get("scheduler_metrics") or {}).get("requests_made", {}).get("successful")}


def harness_figures(doc: dict) -> dict:
    lv = doc["levels"][0]["metrics"]
    return {"ttft_mean_s": lv["ttft_s"]["mean"], "ttft_median_s": lv["ttft_s"]["median"], "tpot_mean_s": lv["tpot_s"]["mean"],
            "tpot_median_s": lv["tpot_s"]["median"], "e2el_mean_s": lv["e2el_s"]["mean"], "e2el_median_s": lv["e2el_s"]["median"],
            "output_throughput": lv["output_throughput"], "request_throughput": lv["request_throughput"],
            "output_tokens_mean": lv["total_output_tokens"] / max(lv["completed"], 1), "completed": lv["completed"]}


def server_entries(log: Path) -> list[tuple[float, float, int, float]]:
    """llama.cpp's own timing of each request, in order: (prompt eval ms, eval ms, eval runs, total ms)."""
    out, prompt, ev, runs = [], 0.0, 0.0, 0
    for line in log.read_text(errors="replace").splitlines():
        if "prompt eval time =" in line:
            prompt = float(line.split("=")[1].split("ms")[0])
        elif "eval time =" in line:
            ev = float(line.split("=")[1].split("ms")[0])
            runs = int(line.split("/")[1].split("runs")[0])
        elif "total time =" in line:
            out.append((prompt, ev, runs, float(line.split("=")[1].split("ms")[0])))
    return out


def per_request_referee(client: list[dict], server: list[tuple[float, float, int, float]]) -> dict:
    """At concurrency 1 the server runs requests one at a time in the order sent: pair each client
    request with the server's own timing of it, and give the medians of client / server."""
    full = [e for e in server if e[2] > 1][-len(client):]  # the max_tokens=1 prompt probes have one run
    pairs = list(zip(client, full))

    def med(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    return {"n": len(pairs),
            "e2el_over_server_total": med([c["e2el_s"] * 1000 / s[3] for c, s in pairs]),
            "tpot_over_server_decode": med([c["tpot_s"] * 1000 / (s[1] / s[2]) for c, s in pairs if c["tpot_s"]]),
            "ttft_minus_server_prompt_ms": med([c["ttft_s"] * 1000 - s[0] for c, s in pairs]),
            "server_decode_ms_per_token": med([s[1] / s[2] for _, s in pairs])}


def client_requests_harness(folder: Path) -> list[dict]:
    rows = [json.loads(x) for x in next(folder.glob("*/requests.jsonl")).read_text().splitlines() if x.strip()]
    rows = sorted((r for r in rows if not r["warmup"] and r["ok"]), key=lambda r: r["sent_s"])
    return [{"ttft_s": r["ttft_s"], "e2el_s": r["e2el_s"], "tpot_s": (r["e2el_s"] - r["ttft_s"]) / (r["output_tokens"] - 1)} for r in rows]


def client_requests_guidellm(doc: dict, warm: int) -> list[dict]:
    reqs = sorted(doc["benchmarks"][0]["requests"]["successful"], key=lambda r: r["request_start_time"])[warm:]
    return [{"ttft_s": r["time_to_first_token_ms"] / 1000, "e2el_s": r["request_latency"], "tpot_s": r["inter_token_latency_ms"] / 1000}
            for r in reqs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--guidellm", required=True, help="the guidellm executable (its own venv)")
    ap.add_argument("--tokenizer", required=True, help="a Hugging Face tokenizer folder for the model")
    ap.add_argument("--model", required=True, help="the GGUF file")
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3, help="requests each tool sends first and leaves out, per level")
    ap.add_argument("--input-tokens", type=int, default=64)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--out", default="docs/cpu-2026-12-06-load-agreement.json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="load-agreement-"))
    bias = {str(i): -1e9 for i in eos_ids(a.model)}
    rows: list[dict] = []
    referee: list[dict] = []
    with ManagedServer("llamacpp", a.model, work / "server.log", n_ctx=1024) as srv:
        base = srv.base_url
        target = base.removesuffix("/v1")
        for i, c in enumerate(int(x) for x in a.concurrency.split(",")):
            def g_run(c: int = c) -> dict:
                doc = guidellm_run(a.guidellm, target, a.model, a.tokenizer, c, a.requests, a.warmup, a.input_tokens,
                                   a.output_tokens, bias, work / f"guidellm-c{c}.json")
                if c == 1:
                    referee.append({"tool": "guidellm", **per_request_referee(client_requests_guidellm(doc, a.warmup),
                                                                               server_entries(work / "server.log"))})
                return guidellm_figures(doc)

            def h_run(c: int = c) -> dict:
                doc = harness_run(base, a.model, c, a.requests, a.warmup, a.input_tokens, a.output_tokens, work / f"harness-c{c}")
                if c == 1:
                    referee.append({"tool": "harness", **per_request_referee(client_requests_harness(work / f"harness-c{c}"),
                                                                              server_entries(work / "server.log"))})
                return harness_figures(doc)
            if i % 2 == 0:  # alternate which tool goes first, so drift on a shared machine does not favour one
                g, h = g_run(), h_run()
            else:
                h, g = h_run(), g_run()
            for k in g:
                ratio = (h[k] / g[k]) if isinstance(h[k], (int, float)) and isinstance(g[k], (int, float)) and g[k] else None
                rows.append({"concurrency": c, "figure": k, "harness": h[k], "guidellm": g[k], "ratio": ratio})
                print(f"c={c:<3} {k:<20} harness {h[k]!s:<22} guidellm {g[k]!s:<22} ratio {'' if ratio is None else f'{ratio:.3f}'}")
        note = srv.note
    for r in referee:
        print(f"c=1 {r['tool']:<9} per request against llama.cpp's own timing (median of {r['n']}): E2EL/server total "
              f"{r['e2el_over_server_total']:.3f}, TPOT/server decode {r['tpot_over_server_decode']:.3f}, TTFT - server prompt eval "
              f"{r['ttft_minus_server_prompt_ms']:.0f} ms (server decode {r['server_decode_ms_per_token']:.1f} ms/token)")
    out = {"date": "2026-12-06", "machine": "2-core AMD EPYC VM, no GPU", "model": Path(a.model).name, "server": "llama-cpp-python server",
           "server_note": note, "input_tokens": a.input_tokens, "output_tokens": a.output_tokens, "requests": a.requests,
           "warmup_per_level": a.warmup,
           "order": "same server; GuideLLM first at the 1st, 3rd... concurrency, harness load first at the others", "rows": rows, "per_request_vs_server_c1": referee, "raw_folder": str(work)}
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}; raw files in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
