"""One registry for plugins: backends and tasks.

Built-in backends are listed lazily as "module:attribute" strings, so listing them imports no
engine. Built-in tasks need no list: every module in harness/tasks/ is read (they are small and
import nothing heavy) and each Task subclass there that sets its own `name` is one task, so a new
task is one file. Third-party plugins are found through the entry-point groups `harness.backends`
and `harness.tasks` (set HARNESS_NO_PLUGINS=1 to switch autoload off). Each entry records where
it came from (built in, or which distribution and version); run.json keeps that record.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from dataclasses import dataclass
from importlib import metadata

from harness.errors import ConfigError

KINDS = ("backends", "tasks")
BUILTIN = "builtin"

BUILTIN_BACKENDS: dict[str, str] = {
    "transformers": "harness.backends.hf:TransformersBackend",
    "vllm": "harness.backends.vllm:VLLMBackend",
    "llamacpp": "harness.backends.llamacpp:LlamaCppBackend",
    "openai": "harness.backends.openai:OpenAIBackend",
    "fake": "harness.backends.fake:FakeBackend",
}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    target: str  # "module:attribute"
    provider: str = BUILTIN  # "builtin" or the distribution that registered it
    version: str | None = None  # the distribution's version (the harness's own for built-ins)

    def load(self):
        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def record(self) -> dict:
        """run.json's `plugins` entry: what ran, and who provided it."""
        return {"name": self.name, "provider": self.provider, "version": self.version}


@functools.lru_cache(maxsize=1)
def builtin_tasks() -> dict[str, str]:
    """name -> "module:Class" for every task defined in a module of harness/tasks/, in module order."""
    import harness.tasks
    from harness.tasks.base import Task

    found: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(harness.tasks.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in ("base", "options", "lmeval"):  # lmeval: reached as lm_eval:<task>
            continue
        module = importlib.import_module(f"harness.tasks.{info.name}")
        for attr, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, Task) and obj.__module__ == module.__name__ and "name" in vars(obj):
                if obj.name in found:
                    raise ConfigError(f"two built-in tasks are named {obj.name!r}", f"rename one ({found[obj.name]}, {module.__name__}:{attr})")
                found[obj.name] = f"{module.__name__}:{attr}"
    return found


def _builtins(kind: str) -> dict[str, str]:
    return BUILTIN_BACKENDS if kind == "backends" else builtin_tasks()


def _plugins(kind: str) -> dict[str, Entry]:
    if os.environ.get("HARNESS_NO_PLUGINS"):
        return {}
    found = {}
    for ep in metadata.entry_points(group=f"harness.{kind}"):
        dist = getattr(ep, "dist", None)
        found[ep.name] = Entry(kind, ep.name, ep.value, dist.name if dist else "entry point", dist.version if dist else None)
    return found


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of one kind; plugins never shadow built-ins."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r}", f"use one of {', '.join(KINDS)}")
    from harness import __version__

    table = {n: Entry(kind, n, t, BUILTIN, __version__) for n, t in _builtins(kind).items()}
    for name, entry in _plugins(kind).items():
        table.setdefault(name, entry)
    return table


def get(kind: str, name: str) -> Entry:
    table = entries(kind)
    if name not in table:
        raise ConfigError(f"unknown {kind[:-1]} {name!r}", f"choose one of: {', '.join(sorted(table))} (see `harness list {kind}`)")
    return table[name]
