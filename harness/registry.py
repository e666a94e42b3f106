"""One registry for plugins: backends and tasks.

Built-ins are listed lazily as "module:attribute" strings, so listing them imports nothing heavy.
Third-party plugins are found through the entry-point groups `harness.backends` and `harness.tasks`
(set HARNESS_NO_PLUGINS=1 to switch autoload off). Each entry records where it came from, so a
run can say exactly which code produced it.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

from harness.errors import ConfigError

KINDS = ("backends", "tasks")

BUILTINS: dict[str, dict[str, str]] = {
    "backends": {
        "transformers": "harness.backends.hf:TransformersBackend",
        "vllm": "harness.backends.vllm:VLLMBackend",
        "llamacpp": "harness.backends.llamacpp:LlamaCppBackend",
        "openai": "harness.backends.openai:OpenAIBackend",
        "fake": "harness.backends.fake:FakeBackend",
    },
    "tasks": {
        "synthetic": "harness.tasks.synthetic:Synthetic",
        "gsm8k": "harness.tasks.gsm8k:GSM8K",
        "math500": "harness.tasks.math500:Math500",
        "aime24": "harness.tasks.aime:AIME24",
        "aime25": "harness.tasks.aime:AIME25",
        "gpqa_diamond": "harness.tasks.gpqa:GPQADiamond",
        "arc_challenge": "harness.tasks.arc:ARCChallenge",
        "cmath": "harness.tasks.cmath:CMath",
        "ceval": "harness.tasks.ceval:CEval",
    },
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    target: str  # "module:attribute"
    provider: str  # "builtin" or the distribution that registered it

    def load(self):
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


def _plugins(kind: str) -> dict[str, Entry]:
    if os.environ.get("HARNESS_NO_PLUGINS"):
        return {}
    found = {}
    for ep in metadata.entry_points(group=f"harness.{kind}"):
        dist = getattr(ep, "dist", None)
        provider = f"{dist.name} {dist.version}" if dist else "entry point"
        found[ep.name] = Entry(kind, ep.name, ep.value, provider)
    return found


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of one kind; plugins never shadow built-ins."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r}", f"use one of {', '.join(KINDS)}")
    table = {n: Entry(kind, n, t, "builtin") for n, t in BUILTINS[kind].items()}
    for name, entry in _plugins(kind).items():
        table.setdefault(name, entry)
    return table


def get(kind: str, name: str) -> Entry:
    table = entries(kind)
    if name not in table:
        raise ConfigError(f"unknown {kind[:-1]} {name!r}", f"choose one of: {', '.join(sorted(table))} (see `harness list {kind}`)")
    return table[name]
