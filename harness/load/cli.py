"""`harness load`'s flags (argparse only, so `harness --help` stays instant) and its command."""

from __future__ import annotations

import argparse

from harness.errors import ConfigError

EXAMPLES = """examples:
  harness load --serve llamacpp --model model.gguf --concurrency 1,4 --requests 16 --output-tokens 32 --slo ttft=2,tpot=0.1 --price-per-hour 1
  harness load --base-url http://127.0.0.1:8000/v1 --model my-model --rate 0.5,1,2 --arrivals poisson --duration 120
  harness load --serve llamacpp --model model.gguf --tasks gsm8k --data-file gsm8k=gsm8k.jsonl --concurrency 1,2 --card qwen2.5-0.5b-instruct --instance aws-g5.xlarge
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("load", help="serving load test: latency and throughput under concurrent load, SLO goodput, $ per 1M tokens",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t = p.add_argument_group("target")
    t.add_argument("--model", required=True, help="with --serve: the local model (.gguf for llamacpp); with --base-url: the served model name")
    t.add_argument("--base-url", help="a running OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    t.add_argument("--serve", choices=["llamacpp", "vllm"], help="start this server on 127.0.0.1 for the test and stop it after")
    t.add_argument("--api-key-env", help="environment variable holding the API key (remote servers)")
    t.add_argument("--server-timeout", type=float, default=300.0, help="seconds to wait for a started server to answer (default 300)")
    t.add_argument("--n-ctx", type=int, help="with --serve: context size (llama.cpp n_ctx, vLLM max-model-len)")
    t.add_argument("--n-threads", type=int, help="with --serve llamacpp: threads")
    ld = p.add_argument_group("load")
    ld.add_argument("--concurrency", help="closed loop: comma-separated requests in flight, e.g. 1,4,16 (default 1)")
    ld.add_argument("--rate", help="open loop: comma-separated requests per second, e.g. 0.5,1,2")
    ld.add_argument("--arrivals", default="poisson", help="open loop: poisson | constant | gamma:BURSTINESS (default poisson)")
    ld.add_argument("--max-concurrency", type=int, help="open loop: at most this many in flight (default: no cap)")
    ld.add_argument("--requests", type=int, default=32, help="requests per level (default 32)")
    ld.add_argument("--duration", type=float, default=300.0, help="seconds per level: no request is sent after it (default 300)")
    ld.add_argument("--deadline", type=float, default=1800.0, help="seconds for the whole test; requests in flight then are cancelled (default 1800)")
    ld.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    ld.add_argument("--repeats", type=int, default=1, help="run every level this many times; the summary gives the spread (default 1)")
    ld.add_argument("--warmup", type=int, default=2, help="requests sent first and left out of every metric (default 2)")
    ld.add_argument("--seed", type=int, default=0)
    w = p.add_argument_group("workload")
    w.add_argument("--tasks", help="real prompts from these tasks (comma-separated), over the chat endpoint")
    w.add_argument("--data-file", action="append", default=[], metavar="TASK=PATH", help="read a task's rows from a local JSONL file")
    w.add_argument("--protocol", help="prompt protocol for task prompts (default: by model)")
    w.add_argument("--prompts", type=int, default=16, help="distinct prompts, cycled (default 16)")
    w.add_argument("--input-tokens", type=int, help="synthetic prompts of this many tokens, as the server counts them (default 128)")
    w.add_argument("--output-tokens", type=int, help="fixed output length (end-of-sequence suppressed)")
    w.add_argument("--max-tokens", type=int, help="without --output-tokens: the cap; the model stops on its own before it (default 256)")
    s = p.add_argument_group("SLO and cost")
    s.add_argument("--slo", help="per-request limits in seconds, e.g. ttft=2,tpot=0.1,e2el=60")
    s.add_argument("--slo-attainment", type=float, default=0.9, help="share of requests that must meet the SLO at a level (default 0.9)")
    s.add_argument("--price-per-hour", type=float, help="USD per hour of the serving machine")
    s.add_argument("--instance", help="a named instance from the price table (`harness list prices`)")
    s.add_argument("--card", help="the served model's card: its API price (or every API priced in the cards) is compared")
    s.add_argument("--api", action="append", default=[], help="an API model from the cards to compare against (repeatable)")
    p.add_argument("--output-dir", default="results", help="where the load folder goes (default results/)")
    p.add_argument("--quiet", action="store_true")


def _numbers(text: str | None, cast: type, flag: str) -> tuple:
    if not text:
        return ()
    try:
        return tuple(cast(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag} expects comma-separated numbers, got {text!r}", f"e.g. {flag} 1,4,16") from None


def config_from_args(args: argparse.Namespace):
    from harness.load.run import LoadConfig

    data_files: dict[str, str] = {}
    for v in args.data_file:
        k, eq, path = v.partition("=")
        if not eq or not k or not path:
            raise ConfigError(f"--data-file expects TASK=PATH, got {v!r}", "e.g. --data-file gsm8k=data/gsm8k.jsonl")
        data_files[k.strip()] = path.strip()
    tasks = tuple(x.strip() for x in (args.tasks or "").split(",") if x.strip()) or tuple(data_files)
    return LoadConfig(
        model=args.model, base_url=args.base_url, serve=args.serve, concurrency=_numbers(args.concurrency, int, "--concurrency"),
        rates=_numbers(args.rate, float, "--rate"), arrivals=args.arrivals, requests=args.requests, duration_s=args.duration,
        deadline_s=args.deadline, request_timeout_s=args.request_timeout, repeats=args.repeats, warmup=args.warmup, seed=args.seed,
        input_tokens=args.input_tokens, output_tokens=args.output_tokens, max_tokens=args.max_tokens, tasks=tasks,
        data_files=data_files, prompts=args.prompts, protocol=args.protocol, slo=args.slo, slo_attainment=args.slo_attainment,
        price_per_hour=args.price_per_hour, instance=args.instance, card=args.card, apis=tuple(args.api),
        output_dir=args.output_dir, api_key_env=args.api_key_env, server_timeout_s=args.server_timeout, n_ctx=args.n_ctx,
        n_threads=args.n_threads, max_concurrency=args.max_concurrency, quiet=args.quiet)


def cmd_load(args: argparse.Namespace) -> int:
    from harness.load.run import run_load

    folder, code = run_load(config_from_args(args))
    return code
