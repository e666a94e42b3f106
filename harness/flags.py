"""The run flags as data: each flag's config key, type and help, the switches, the examples `--help` shows,
and the KEY=VALUE examples. cli.py builds its parsers from these tables; nothing here parses."""

from __future__ import annotations

RUN_FLAGS = {  # flag -> (config key, type, help)
    "--model": ("model", str, "random:<name>, a Hub id, a local folder, a .gguf file, or openai:<name>"),
    "--backend": ("backend", str, "transformers | vllm | llamacpp | openai | fake (default: from --model)"),
    "--revision": ("revision", str, "Hub branch, tag or commit; the resolved sha is recorded"),
    "--tokenizer": ("tokenizer", str, "tokenizer folder (e.g. the real one for a random: model)"),
    "--card": ("card", str, "model card name: run with the card's protocol and check its claims"),
    "--tasks": ("tasks", str, "comma-separated tasks; lm_eval:<task> runs an lm-eval task"),
    "--limit": ("limit", int, "at most this many problems per task: the first N (a quick look; claims are then not_comparable)"),
    "--sample": ("sample", int, "a seeded uniform sample of N problems per task (seed: --seed); claims get a verdict on it"),
    "--batch-size": ("batch_size", str, "N or auto (transformers: the fastest batch measured on the run's first requests; halves on out-of-memory); with continuous batching: sequences in flight"),
    "--batching": ("batching", str, "auto | static | continuous (rows leave when done, waiting requests take their slots)"),
    "--compile": ("compile", str, "auto | on | off: static KV cache + torch.compile for decoding (transformers on CUDA)"),
    "--max-new-tokens": ("max_new_tokens", int, "token budget per answer, thinking included (default: the card's, else the task's, else 1024; 64 for random: models)"),
    "--num-samples": ("num_samples", int, "samples per problem (k): accuracy, pass@k, maj@k (default: the card's where it has a claim on the task, else 1)"),
    "--temperature": ("temperature", float, "0 = greedy (default: the card's; else 0.6 when k > 1, 0 otherwise)"),
    "--top-p": ("top_p", float, "nucleus sampling (default: the card's; else 0.95 when sampling, 1 when greedy)"),
    "--top-k": ("top_k", int, "0 = off (default: the card's, else 0)"),
    "--protocol": ("protocol", str, "prompt protocol: r1, qwen, qwen3-think, qwen3-nothink, fewshot, plain (default: by model)"),
    "--think-budgets": ("think_budgets", str, "comma-separated caps on thinking tokens, one run each"),
    "--answer-tokens": ("answer_tokens", int, "with --think-budgets: tokens for the answer after a capped trace"),
    "--device": ("device", str, "auto | cpu | cuda[:N] | mps | xpu | npu"),
    "--dtype": ("dtype", str, "auto | bfloat16 | float16 | float32"),
    "--device-map": ("device_map", str, "accelerate device_map (e.g. auto) for multi-GPU or offload"),
    "--seed": ("seed", int, "base seed; each sample's seed derives from it"),
    "--warmup": ("warmup", int, "warm-up generations before timing"),
    "--output-dir": ("output_dir", str, "where run folders go"),
    "--resume": ("resume", str, "continue an interrupted run folder"),
    "--price-per-hour": ("price_per_hour", float, "USD per hour of this machine, for cost"),
    "--instance": ("instance", str, "a named instance from the price table (see `harness list prices`)"),
    "--base-url": ("base_url", str, "OpenAI-compatible server URL"),
    "--api-key-env": ("api_key_env", str, "name of the environment variable holding the API key"),
    "--n-ctx": ("n_ctx", int, "llama.cpp context size in tokens (vLLM: max model length); default: the model's, capped at 32768"),
    "--n-threads": ("n_threads", int, "llama.cpp threads (default: one per physical core, as backends/llamacpp.py counts them)"),
    "--max-concurrency": ("max_concurrency", int, "parallel API requests"),
    "--tensor-parallel-size": ("tensor_parallel_size", int, "vLLM tensor parallelism"),
    "--num-processes": ("num_processes", int, "data-parallel processes through accelerate"),
    "--verdicts": ("verdicts", str, "strict (default): no verdict on a claim the run cannot support (not_comparable); "
                                    "indicative: compute it anyway, marked indicative"),
}


SWITCHES = {"--allow-pickle": "allow_pickle", "--trust-remote-code": "trust_remote_code", "--quiet": "quiet",
            "--force": "force"}


SWITCH_HELP = {"--allow-pickle": "load pickle (.bin/.pt) weights, which can run code", "--trust-remote-code": "run the model repository's own code",
               "--quiet": "no progress output", "--force": "start even when the memory estimate exceeds what is available"}


RUN_EXAMPLES = """examples:
  harness run --model random:tiny --limit 8                      # a one-minute smoke run on any CPU
  harness run --dry-run --card r1-distill-qwen-7b --tasks math500    # the plan (time, memory, dollars); nothing runs
  harness run --model Qwen/Qwen2.5-0.5B-Instruct --tasks gsm8k --limit 200 --batch-size auto --instance laptop
"""


PAIR_EXAMPLES = {"--data-file": "gsm8k=data/gsm8k.jsonl", "--max-memory": "0=20GiB", "--task-option": "synthetic.steps=4",
                 "--backend-option": "n_ctx=4096"}
