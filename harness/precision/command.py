"""`harness precision`: flags in, matrix out. Parses nothing itself (cli.py registered the flags)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PRECISION_EXAMPLES = """examples:
  harness precision --model ./qwen2.5-0.5b-instruct --precisions bf16,q8_0,q4_k_m --tasks gsm8k --limit 50
  harness precision --model ./m --precisions bf16,q8_0,q4_k_m,torchao:int4wo --tasks gsm8k --dry-run   # what fits, speed, cost
  harness precision --resume results/precision_m_1a2b3c4d                                           # build and run what is missing

precisions: GGUF types (f32 f16 bf16 q8_0 q6_k q5_k_m q4_k_m q4_0 ...) are built with llama.cpp from the model's own
weights and run on llama.cpp; hf:bf16 hf:f16 hf:f32 run the folder on transformers; torchao:int8wo torchao:int4wo
bnb:int8 bnb:nf4 fp8 are listed with the reason where they cannot be built; a path to a .gguf runs as given.
"""


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precisions", help="comma-separated precisions (see below); the first is the reference unless --reference")
    p.add_argument("--reference", help="the precision every other is compared with (default: the first listed)")
    p.add_argument("--margin", type=float, default=None, help="non-inferiority margin as a fraction (default 0.02 = 2 points)")
    p.add_argument("--kl-texts", help="texts for the divergence and perplexity: a .json {\"texts\": [{\"id\", \"text\"}]} or a .txt "
                                      "(default: the built-in fixed set)")
    p.add_argument("--dry-run", action="store_true", help="print which precisions fit here, their expected speed and cost; build nothing")


def cmd_precision(args, values: dict) -> int:
    """`values`: the run settings the user gave (cli.run_values), as config keys."""
    from harness.errors import ConfigError
    from harness.precision import matrix as mx

    resume = values.pop("resume", None)
    if resume:
        folder = Path(resume)
        spec = mx.Spec.load(folder)
        given = [k for k in ("model", "tasks", "data_files", "max_new_tokens", "temperature", "seed", "limit") if k in values]
        if given or args.precisions:
            raise ConfigError(f"--resume continues the matrix as it was asked; it takes no {', '.join(given) or '--precisions'}",
                              "drop those flags, or start a new matrix without --resume")
    else:
        if not args.precisions:
            raise ConfigError("harness precision needs --precisions", "e.g. --precisions bf16,q8_0,q4_k_m")
        from harness.planning.preflight import check_inputs

        check_inputs(values, loading=False)
        margin = mx.DEFAULT_MARGIN if args.margin is None else args.margin
        spec = mx.new_spec(values, args.precisions, args.reference, margin, args.kl_texts)
    if args.dry_run:
        from harness.precision.plan import plan_lines

        print("\n".join(plan_lines(spec, spec.run_values.get("price_per_hour"))))
        return 0
    if not resume:
        folder = mx.open_folder(spec, str(values.get("output_dir") or "results"))
    print(f"precision matrix folder: {folder}", file=sys.stderr, flush=True)

    def log(text: str, raw: bool = False) -> None:
        print(text if raw else f"precision: {text}", file=sys.stderr, flush=True)

    matrix = mx.run_matrix(spec, folder, log=log)
    from harness.precision.report import console_table

    print(console_table(matrix))
    print(f"matrix: {folder / 'matrix.json'}\nreport: {folder / 'report.html'}")
    if any(r.status == "failed" for r in matrix.rows):
        print(f"error: the matrix is partial: {'; '.join(matrix.missing)[:400]} — fix the cause, then "
              f"`harness precision --resume {folder}` builds and runs only what is missing", file=sys.stderr)
        return 4
    if matrix.missing:
        print(f"note: not in the matrix: {'; '.join(matrix.missing)[:600]}", file=sys.stderr)
    return 0


__all__ = ["PRECISION_EXAMPLES", "add_flags", "cmd_precision"]
