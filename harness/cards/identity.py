"""Whether a run measured the card's model: the evidence, its strength, and what is missing.

A verdict on a card's claim needs evidence that the run's model is the card's model
(harness/claims/comparability.py turns the outcome into a `model` reason or a caveat):

- a Hub id: the card's `hub_id` (case-insensitive), and the card's pinned `revision` when both the
  card and the run record one (a Hub cache snapshot folder names both: models--org--name/snapshots/<sha>);
- a local folder or GGUF file: its fingerprint (harness/core/fingerprint.py: model type, layers,
  widths, heads, vocabulary and the tokenizer's bos/eos ids) and parameter count agree with the
  card's architecture and config (harness/data/configs/<config_file>). A fingerprint cannot tell
  apart two fine-tunes of one architecture that share a tokenizer: the verdict says so;
- a served model (`openai:`): the requested name is the card's Hub id, its last part or the card's
  API model name, and every name the server reported in its responses says the same. The server's
  word is an assertion, never verified here: the verdict says so. A reported name that is another
  model's refuses the verdict.
A quantised file of the card's model keeps its verdict with a caveat (comparability.py adds it).
Random weights and the scripted engine have reasons of their own and are not judged here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.cards.schema import Card
from harness.core.fingerprint import FIELDS
from harness.core.spec import parse as parse_spec

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
PARAMETER_TOLERANCE = 0.02  # a GGUF's count (llama.cpp) and a config's can differ by a norm or a bias, never by 2%
_SNAPSHOT = re.compile(r"models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\]([0-9a-f]{7,40})")
# A served name may carry a quantisation suffix (`...-Q4_K_M`, `...:q8_0`, `...-GGUF`) and still name the same model.
_QUANT_SUFFIX = re.compile(r"([-_.:](gguf|awq|gptq|fp8|int[48]|[qQ][2-8](_[0-9kKsSmMlL]+)*|bf16|f16))+$", re.IGNORECASE)


@dataclass
class Identity:
    """The outcome: `verified` (evidence found), `asserted` (a server's word), `mismatch` (another
    model, or no evidence). `evidence` says what matched; `problems` why not; `caveats` stay with a verdict."""

    status: str
    evidence: str = ""
    problems: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("verified", "asserted")


def _norm(name: str) -> str:
    return name.strip().strip("/").lower()


def _base(name: str) -> str:
    return _norm(name).rsplit("/", 1)[-1]


def card_names(card: Card) -> list[str]:
    """The names the card's model goes by: Hub id and API model name."""
    return [n for n in (card.hub_id, card.api.model if card.api else None) if n]


def names_card(name: str, card: Card) -> bool:
    """Whether a served name names the card's model: its Hub id, the id's last part, or its API model
    name (case-insensitive), with a quantisation suffix allowed."""
    wanted = {_norm(n) for n in card_names(card)} | {_base(n) for n in card_names(card)}
    got = _norm(name)
    stripped = _QUANT_SUFFIX.sub("", got)
    return bool(got in wanted or _base(got) in wanted or stripped in wanted or _base(stripped) in wanted)


@lru_cache(maxsize=64)
def _config(name: str) -> dict[str, Any]:
    path = CONFIGS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def card_fingerprint(card: Card) -> dict[str, Any]:
    """The fingerprint a checkpoint of the card's model has, from its architecture and config file."""
    a = card.architecture
    out: dict[str, Any] = {"model_type": a.model_type, "num_layers": a.num_layers, "hidden_size": a.hidden_size,
                           "intermediate_size": a.intermediate_size, "num_attention_heads": a.num_attention_heads,
                           "num_key_value_heads": a.num_key_value_heads, "vocab_size": a.vocab_size,
                           "max_position_embeddings": a.max_position_embeddings, "tie_word_embeddings": a.tie_word_embeddings}
    config = _config(a.config_file) if a.config_file else {}
    for key in ("bos_token_id", "eos_token_id"):
        value = config.get(key)
        out[key] = value[0] if isinstance(value, list) and value else value
    return {k: v for k, v in out.items() if v is not None}


def compare_fingerprints(got: dict[str, Any], want: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(differences, fields compared) between a run's fingerprint and the card's."""
    compared = [k for k in FIELDS if got.get(k) is not None and want.get(k) is not None]
    diffs = [f"{k} {got[k]} (card {want[k]})" for k in compared if str(got[k]).lower() != str(want[k]).lower()]
    return diffs, compared


def _revision_problem(card: Card, revision: str | None) -> tuple[str | None, str | None]:
    """(problem, caveat) for a run revision against the card's pinned one."""
    if not card.revision:
        return None, None
    if not revision:
        return None, f"the run recorded no revision; the card pins {card.revision[:12]}"
    if card.revision.startswith(revision) or revision.startswith(card.revision):
        return None, None
    return f"revision {revision} is not the card's pinned {card.revision}", None


def model_identity(card: Card, model: dict[str, Any]) -> Identity:
    """Whether run.json `model` is the card's model (see the module docstring)."""
    name = str(model.get("name_or_path") or "")
    spec = parse_spec(name)
    expected = card.hub_id or (card.api.model if card.api else card.name)
    # the card's API model name (deepseek-reasoner) is served, never loaded, whichever engine a record names
    api_name = spec.kind == "hub" and card.api is not None and _norm(name) == _norm(card.api.model)
    if model.get("backend") == "openai" or spec.kind == "openai" or api_name:
        served = spec.name if spec.kind == "openai" else name
        reported = [str(r) for r in model.get("reported_models") or []]
        if not names_card(served, card):
            return Identity("mismatch", problems=[f"served model {served!r} is not the card's {expected}"])
        others = [r for r in reported if not names_card(r, card)]
        if others:
            return Identity("mismatch", problems=[f"the server reported {', '.join(repr(r) for r in others)} in its responses, "
                                                  f"not the card's {expected} (requested as {served!r})"])
        said = f" (the server reported {', '.join(repr(r) for r in reported)})" if reported else " (the server reported no model name)"
        return Identity("asserted", evidence=f"served as {served!r}",
                        caveats=[f"model {served!r} is asserted by the server, not verified{said}", *alias_warnings(card, served, reported)])
    snapshot = _SNAPSHOT.search(name)
    if spec.kind == "hub" or snapshot:
        repo = f"{snapshot.group(1)}/{snapshot.group(2)}" if snapshot else spec.name
        revision = model.get("revision") or (snapshot.group(3) if snapshot else None)
        if not card.hub_id or _norm(repo) != _norm(card.hub_id):
            return Identity("mismatch", problems=[f"model {repo} is not the card's {expected}"])
        problem, caveat = _revision_problem(card, revision)
        if problem:
            return Identity("mismatch", problems=[problem])
        return Identity("verified", evidence=f"Hub id {repo}" + (f" at {revision[:12]}" if revision else ""),
                        caveats=[caveat] if caveat else [])
    return _by_fingerprint(card, model, name, expected)


def _by_fingerprint(card: Card, model: dict[str, Any], name: str, expected: str) -> Identity:
    got = dict(model.get("fingerprint") or {})
    if not got:
        return Identity("mismatch", problems=[f"{name} is a local model and this engine recorded no fingerprint "
                                              f"(architecture values, tokenizer ids): cannot tell whether it is the card's {expected}"])
    want = card_fingerprint(card)
    diffs, compared = compare_fingerprints(got, want)
    problems = [f"{name} differs from the card's {expected}: " + ", ".join(diffs)] if diffs else []
    n, exact = model.get("num_parameters"), card.parameters.exact
    if n and exact and abs(int(n) - exact) > PARAMETER_TOLERANCE * exact:
        problems.append(f"{name} has {int(n):,} parameters, the card's {expected} {exact:,}")
    if not problems and not {"model_type", "num_layers", "hidden_size", "vocab_size"} <= set(compared):
        problems.append(f"{name}: too few architecture values recorded to identify it ({', '.join(compared) or 'none'})")
    if problems:
        return Identity("mismatch", problems=problems)
    tokenizer = " and tokenizer ids" if {"bos_token_id", "eos_token_id"} & set(compared) else ""
    return Identity("verified", evidence=f"fingerprint ({len(compared)} architecture values{tokenizer}, parameter count)",
                    caveats=[f"identified by fingerprint ({', '.join(compared)}), not by Hub id: another fine-tune of the same "
                             "architecture with the same tokenizer would match too"])


def alias_warnings(card: Card, served: str, reported: list[str]) -> list[str]:
    """Warnings when `served` is the card's API alias and a source records that its target changed
    after the date the alias served the card's model (the claims' date)."""
    api = card.api
    if api is None or api.model_alias is None or _norm(served) != _norm(api.model):
        return []
    alias = api.model_alias
    later = [c for c in alias.changes if c.date > alias.as_of]
    if not later:
        return []
    since = "; ".join(f"{c.target} from {c.date} [{c.status}: {c.source}]" for c in later)
    said = ", ".join(repr(r) for r in reported) or "no model name"
    return [f"API model {api.model!r} is an alias: it served {card.display_name} on {alias.as_of} (the claims' date) and has "
            f"served other models since ({since}); the server reported {said}: this run may measure a newer model than the claims"]
