"""Flags the fast paths added, and a guard for the class of bug where a message advises a flag
that does not exist (an error once said "raise --n-ctx" before there was one)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import harness
from harness.cli import build_parser, run_values
from harness.config import make_config
from harness.errors import ConfigError

# `--x` strings in the source that are not this program's flags, each for a stated reason
NOT_OURS = {
    "--api-key": "named in cli.py as the abbreviation that must be refused",
    "--cpu": "accelerate launch's flag (launch.py)",
    "--always": "git describe's flag (lmeval/export.py)",
    "--outtype": "llama.cpp's convert_hf_to_gguf.py flag (engines.py's GGUF advice, backends/gguf_convert.py)",
    "--outfile": "llama.cpp's convert_hf_to_gguf.py flag (backends/gguf_convert.py)",
    "--no-deps": "pip's flag (backends/gguf_convert.py fetches the converter's sdist)",
    "--burstiness": "vLLM bench serve's flag, named in load/arrivals.py's docstring",
    "--host": "llama_cpp.server's and vLLM's flag (load/server.py starts them)",
    "--port": "llama_cpp.server's and vLLM's flag (load/server.py starts them)",
    "--generation-config": "vLLM server's flag (load/server.py)",
    "--enforce-eager": "vLLM server's flag (load/server.py)",
    "--no-enable-prefix-caching": "vLLM server's flag (load/server.py)",
    "--max-model-len": "vLLM server's flag (load/server.py)",
    "--no-binary": "pip's flag (backends/gguf_convert.py)",
}
SKIP_FILES = {"report_html.py"}  # CSS custom properties (--bg, --fg, ...)


def _all_flags() -> set[str]:
    flags: set[str] = set()

    def walk(parser):
        for action in parser._actions:
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())
    return flags


def test_every_flag_the_code_mentions_exists():
    flags = _all_flags()
    missing = {}
    for f in Path(harness.__file__).parent.rglob("*.py"):
        if f.name in SKIP_FILES:
            continue
        for m in re.finditer(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])", f.read_text(encoding="utf-8")):
            if m.group() not in flags and m.group() not in NOT_OURS:
                missing.setdefault(m.group(), f.name)
    assert not missing, f"messages or help name flags that do not exist: {missing}"


def _values(*argv):
    return run_values(build_parser().parse_args(["run", *argv]))


def test_engine_flags_reach_the_config():
    cfg = make_config(**_values("--n-ctx", "4096", "--n-threads", "2", "--batching", "continuous"))
    assert (cfg.n_ctx, cfg.n_threads, cfg.batching) == (4096, 2, "continuous")
    assert make_config().batching == "auto"
    for bad in (("--n-threads", "0"), ("--n-ctx", "-1"), ("--batching", "sometimes")):
        try:
            make_config(**_values(*bad))
        except ConfigError as e:
            assert bad[0] in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")
