"""What `--model` names, parsed once: the only place that reads a model spec's prefix or suffix.

A spec is one of
- `random:<name>`  a real architecture with random weights (harness.backends.models),
- `openai:<model>` a model served by an OpenAI-compatible server (`--base-url`),
- `fake:<name>`    the scripted test engine,
- a `.gguf` file,
- a local folder (a path that exists, or starts with `.`, `/` or `~`, or has more than one `/`),
- a Hugging Face Hub id (`org/name`).
Everything else in the harness asks a `ModelSpec`, never the string.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["random", "openai", "fake", "gguf", "folder", "hub"]
PREFIXES: dict[str, Kind] = {"random:": "random", "openai:": "openai", "fake:": "fake"}
LOCAL_PREFIXES = (".", "/", "~")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `--model`: its kind and the name without the prefix (a path for files and folders)."""

    text: str
    kind: Kind
    name: str

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    @property
    def is_served(self) -> bool:
        """Weights live elsewhere (an API server or the scripted engine): nothing loads here."""
        return self.kind in ("openai", "fake")

    @property
    def is_local(self) -> bool:
        """Names a file or folder on this machine."""
        return self.kind in ("gguf", "folder")

    @property
    def is_gguf(self) -> bool:
        return self.kind == "gguf"

    @property
    def path(self) -> Path | None:
        return Path(self.name).expanduser() if self.is_local else None

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> ModelSpec:
    """The spec `text` names (see the module docstring); never raises: whether it exists is checked later."""
    text = str(text)
    for prefix, kind in PREFIXES.items():
        if text.startswith(prefix):
            return ModelSpec(text, kind, text[len(prefix):])
    if text.lower().endswith(".gguf"):
        return ModelSpec(text, "gguf", text)
    if text.startswith(LOCAL_PREFIXES) or text.count("/") > 1 or Path(text).expanduser().exists():
        return ModelSpec(text, "folder", text)
    return ModelSpec(text, "hub", text)
