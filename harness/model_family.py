"""What a local model is, read from its own files, for choosing its default prompt protocol.

A file or folder name is whatever someone called it: the same Qwen weights saved as `model.gguf`
and as `qwen2.5-bf16/` once got two different default prompts, so an engine comparison compared two
prompts. For a local model the protocol therefore comes from what the files say:
- a GGUF: its metadata (`general.name`, `general.basename`, `general.finetune`,
  `general.architecture`) and whether it embeds a chat template (`tokenizer.chat_template`);
- a Hugging Face folder: its model card's front matter (`base_model`, `model_name`), the
  `_name_or_path` in config.json when that is a hub id, its `model_type`, and its chat template
  (tokenizer_config.json's `chat_template` or chat_template.jinja).
A name found in the metadata goes through `protocols.default_protocol` (the publisher's protocol
for that family); without one the architecture and the chat template decide: a template that opens
a `<think>` block on a non-Qwen3 architecture is an R1 distill, a Qwen3 template is qwen3-think,
Qwen2 with a template is qwen, any model without a template gets the plain-text few-shot protocol.
Remote names (hub ids, `random:<arch>`) are identities already and are left to the name rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from harness.protocols import default_protocol


@dataclass(frozen=True)
class ModelFacts:
    """What a model's files say about it (None where they say nothing)."""

    name: str | None  # a publisher's model name from the metadata, never the file name
    name_source: str | None
    architecture: str | None  # model_type / general.architecture, lower case
    chat_template: str | None
    where: str  # "GGUF metadata" or "model folder"


def _gguf_facts(path: Path) -> ModelFacts | None:
    from harness.backends.gguf_file import read_header

    try:
        meta = read_header(path).metadata
    except (OSError, ValueError):
        return None
    parts = [meta.get(k) for k in ("general.name", "general.basename", "general.finetune")]
    words = " ".join(dict.fromkeys(str(p) for p in parts if isinstance(p, str) and p.strip()))
    template = meta.get("tokenizer.chat_template")
    arch = meta.get("general.architecture")
    return ModelFacts(words or None, "GGUF general.name" if words else None, str(arch).lower() if arch else None,
                      template if isinstance(template, str) else None, "GGUF metadata")


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _card_name(folder: Path) -> str | None:
    """`base_model` or `model_name` from README.md's YAML front matter."""
    try:
        text = (folder / "README.md").read_text(encoding="utf-8")[:20000]
    except OSError:
        return None
    head = re.match(r"---\n(.*?)\n---", text, re.S)
    if not head:
        return None
    for key in ("model_name", "base_model"):
        m = re.search(rf"^{key}:\s*(?:\n\s*-\s*)?['\"]?([^'\"\n]+)", head.group(1), re.M)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return None


def _hub_id(value: object) -> str | None:
    """A config's `_name_or_path` when it is a hub id (owner/name), not a local path."""
    if isinstance(value, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", value) and not Path(value).exists():
        return value
    return None


def _folder_facts(folder: Path) -> ModelFacts | None:
    config = _json(folder / "config.json")
    if not config:
        return None
    tok = _json(folder / "tokenizer_config.json")
    template = tok.get("chat_template")
    if isinstance(template, list):  # several named templates: the default one
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"), None)
    jinja = folder / "chat_template.jinja"
    if not isinstance(template, str) and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    name: str | None = _card_name(folder)
    source: str | None = "model card"
    if not name:  # transformers writes a GGUF's general.name here when it converts one
        given = config.get("_model_name_or_path")
        name, source = (given.strip(), "config.json _model_name_or_path") if isinstance(given, str) and given.strip() else (None, None)
    if not name:
        name, source = _hub_id(config.get("_name_or_path")), "config.json _name_or_path"
    arch = config.get("model_type")
    return ModelFacts(name, source if name else None, str(arch).lower() if arch else None,
                      template if isinstance(template, str) else None, "model folder")


def model_facts(model: str) -> ModelFacts | None:
    """The facts of a local GGUF file or Hugging Face folder; None for anything else."""
    path = Path(model)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _gguf_facts(path)
    if path.is_dir():
        return _folder_facts(path)
    return None


def protocol_from_facts(facts: ModelFacts) -> tuple[str, str]:
    """(protocol name, the reason in words)."""
    if facts.name:
        guess = default_protocol(facts.name)
        if guess != "plain":
            return guess, f"{facts.name_source} {facts.name!r}"
    arch, template = facts.architecture or "", facts.chat_template
    if not template:
        return "fewshot", f"{facts.where}: no chat template (a base model)"
    opens_think = "<think>" in template
    if arch.startswith("qwen3"):
        return "qwen3-think", f"{facts.where}: {arch} architecture with a chat template"
    if opens_think:
        return "r1", f"{facts.where}: {arch or 'a'} model whose chat template opens <think> (an R1-style reasoner)"
    if arch.startswith("qwen2"):
        return "qwen", f"{facts.where}: {arch} architecture with a chat template"
    return "plain", f"{facts.where}: {arch or 'unknown'} architecture with a chat template"


def model_protocol(model: str) -> tuple[str, str] | None:
    """(protocol name, source) for a local model from its own files; None for a remote name."""
    facts = model_facts(model)
    if facts is None:
        return None
    name, why = protocol_from_facts(facts)
    return name, why


__all__ = ["ModelFacts", "model_facts", "model_protocol", "protocol_from_facts"]
