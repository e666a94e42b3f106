"""Small builders shared by the tests: a tiny Qwen2 model folder and JSONL writers."""

from __future__ import annotations

import json
from pathlib import Path

from harness.backends.models import LOCAL_TOKENIZER, TINY


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def gsm8k_rows(n: int) -> list[dict]:
    """GSM8K-shaped rows of different lengths (made up here, not copied from the benchmark)."""
    rows = []
    for i in range(n):
        extra = " Each of them also carries a bag." * (i % 4)
        rows.append({"question": f"Tom has {i + 3} apples and buys {2 * i + 1} more.{extra} How many apples does he have?",
                     "answer": f"{i + 3} + {2 * i + 1} = {3 * i + 4}\n#### {3 * i + 4}"})
    return rows


def tiny_model_folder(path: Path, seed: int = 0) -> Path:
    """A Qwen2-architecture model with random weights, saved as safetensors with the local tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    raw = {k: v for k, v in TINY.items() if not k.startswith("_")}
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(LOCAL_TOKENIZER).save_pretrained(path)
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """The real CLI in-process; argparse's usage errors arrive as SystemExit."""
    from harness.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_result(**parts):
    """The smallest valid run.json as a RunResult; `parts` replace or add top-level fields."""
    from harness import SCHEMA_VERSION
    from harness.results.schema import RunResult

    doc = {"schema_version": SCHEMA_VERSION, "run_id": "r1", "status": "complete",
           "model": {"name_or_path": "m", "backend": "transformers"}, "device": {"type": "cpu"}}
    return RunResult.model_validate({**doc, **parts})
