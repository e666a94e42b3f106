"""Model cards: one YAML file per model in `model_cards/`, validated by a typed schema.

A card records what a model *is* (Hub id and pinned revision, architecture, parameter count,
license, context, dtype, whether it needs remote code), how its publishers *evaluated* it (the
protocol: system-prompt policy, prompt wording, `<think>` forcing, decoding settings and samples
per query, per benchmark) and what they *claimed* (benchmark, metric, value, source, status).
Hosted models also carry an `api` section with the endpoint and the published prices.

This module owns the schema (pydantic, `extra="forbid"`, so an unknown key is an error), loading
(`yaml.safe_load` only, so YAML tags cannot build Python objects; duplicate keys are rejected),
lookup by name, the generation defaults a card implies for a task, and the list of ways a run
differs from the card's protocol. These belong together because each reads the same schema; it
makes the module longer than most. Verdicts on claims live in harness/claims/verdicts.py;
`model_cards/_template.yaml` documents every field.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import harness
from harness.errors import ConfigError, validation_message
from harness.protocols import PROTOCOLS

# Prompt protocols are owned by harness/protocols.py; reading their names here makes a card with a
# misspelt protocol fail at validation, not half-way through a run.
PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)

# Used by card_generation_defaults for settings a card leaves unstated (null). They are the
# harness's own choices, never the card's: protocol_differences compares stated values only.
FALLBACK_SETTINGS: dict[str, Any] = {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 2048, "num_samples": 1}

Status = Literal["verified", "secondary", "derived", "UNVERIFIED"]

_SHA = r"^[0-9a-f]{40}$"
_SHORT_SHA = r"^[0-9a-f]{7,40}$"
_HUB_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
_TASK = r"^[a-z][a-z0-9_]*$"
# pass@1, pass@8, cons@64, maj@64, rm@8, or a named score.
_METRIC = r"^(?:(?:pass|cons|maj|rm)@[1-9][0-9]*|accuracy|exact_match|f1|prompt_strict|lc_win_rate|rating|percentile|resolved|score)$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_protocol(name: str | None) -> str | None:
    if name is not None and name not in PROTOCOL_NAMES:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOL_NAMES)}")
    return name


class Source(_Strict):
    """A cited document: a repository file at a commit, or a web page."""

    repo: Optional[str] = None
    path: Optional[str] = None
    commit: Optional[str] = Field(None, pattern=_SHORT_SHA)
    url: Optional[str] = Field(None, pattern=r"^https?://")
    arxiv: Optional[str] = None
    note: Optional[str] = None

    @model_validator(mode="after")
    def check_where(self):
        if not (self.repo or self.url or self.note):
            raise ValueError("a source needs a repo, a url or a note saying where it was seen")
        return self


class EvalSettings(_Strict):
    """Decoding settings; null means "not stated by the publisher"."""

    temperature: Optional[float] = Field(None, ge=0)
    top_p: Optional[float] = Field(None, gt=0, le=1)
    top_k: Optional[int] = Field(None, ge=0)  # 0: no top-k cut
    min_p: Optional[float] = Field(None, ge=0, le=1)
    presence_penalty: Optional[float] = None
    repetition_penalty: Optional[float] = Field(None, gt=0)
    max_new_tokens: Optional[int] = Field(None, ge=1)
    num_samples: Optional[int] = Field(None, ge=1)  # samples per query behind pass@1
    num_fewshot: Optional[int] = Field(None, ge=0)


class TaskSettings(EvalSettings):
    """Per-benchmark overrides of the protocol defaults."""

    protocol: Optional[str] = None
    note: Optional[str] = None

    @field_validator("protocol")
    @classmethod
    def check_protocol(cls, v: str | None) -> str | None:
        return _check_protocol(v)


class Protocol(_Strict):
    """How the publisher prompted and decoded when producing the claims."""

    name: str
    system_prompt_policy: Literal["none", "fixed", "template_default"]
    system_prompt: Optional[str] = None
    prompt_suffix: Optional[str] = None
    force_think: bool = False
    enable_thinking: Optional[bool] = None
    defaults: EvalSettings
    per_task: dict[str, TaskSettings] = Field(default_factory=dict)
    source: str
    # Differences a publisher showed do not move the score (harness/claims/comparability.py):
    # a run that differs only in these still gets a verdict.
    immaterial: list[Literal["protocol", "sampling"]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def check_name(cls, v: str) -> str:
        return _check_protocol(v)

    @field_validator("per_task")
    @classmethod
    def check_task_names(cls, v: dict[str, TaskSettings]):
        bad = [k for k in v if not re.match(_TASK, k)]
        if bad:
            raise ValueError(f"task names must be lower_snake_case: {', '.join(bad)}")
        return v

    @model_validator(mode="after")
    def check_system_prompt(self):
        if self.system_prompt_policy == "fixed" and not self.system_prompt:
            raise ValueError("system_prompt_policy 'fixed' needs the system_prompt text")
        if self.system_prompt_policy != "fixed" and self.system_prompt is not None:
            raise ValueError(f"system_prompt must be null when system_prompt_policy is {self.system_prompt_policy!r}")
        return self


class Claim(_Strict):
    """One published number. `value` is as published (percent, or a rating for unit 'rating')."""

    task: str = Field(pattern=_TASK)
    benchmark: str
    metric: str = Field(pattern=_METRIC)
    value: Optional[float] = Field(None, ge=0)
    unit: Literal["percent", "rating"] = "percent"
    status: Status
    source: str
    setting: Optional[str] = None
    protocol: Optional[str] = None
    samples: Optional[int] = Field(None, ge=1)
    notes: list[str] = Field(default_factory=list)

    @field_validator("protocol")
    @classmethod
    def check_protocol(cls, v: str | None) -> str | None:
        return _check_protocol(v)

    @model_validator(mode="after")
    def check_value(self):
        if self.value is None and self.status != "UNVERIFIED":
            raise ValueError("value may be null only with status UNVERIFIED (no published number found)")
        if self.value is not None and self.unit == "percent" and self.value > 100:
            raise ValueError(f"value {self.value} is over 100 for a percent claim")
        return self


class MoE(_Strict):
    routed_experts: int = Field(ge=1)
    shared_experts: int = Field(0, ge=0)
    experts_per_token: int = Field(ge=1)
    expert_intermediate_size: Optional[int] = Field(None, ge=1)
    dense_layers: Optional[int] = Field(None, ge=0)


class Architecture(_Strict):
    model_type: str
    class_name: Optional[str] = None
    num_layers: Optional[int] = Field(None, ge=1)
    hidden_size: Optional[int] = Field(None, ge=1)
    intermediate_size: Optional[int] = Field(None, ge=1)
    num_attention_heads: Optional[int] = Field(None, ge=1)
    num_key_value_heads: Optional[int] = Field(None, ge=1)
    head_dim: Optional[int] = Field(None, ge=1)
    vocab_size: Optional[int] = Field(None, ge=1)
    max_position_embeddings: Optional[int] = Field(None, ge=1)
    rope_theta: Optional[float] = Field(None, gt=0)
    tie_word_embeddings: Optional[bool] = None
    attention: Optional[str] = None
    moe: Optional[MoE] = None
    config_file: Optional[str] = None
    config_status: Optional[Status] = None
    notes: list[str] = Field(default_factory=list)


class Parameters(_Strict):
    total_b: Optional[float] = Field(None, gt=0)  # null only for hosted models that do not disclose it
    exact: Optional[int] = Field(None, ge=1)
    active_b: Optional[float] = Field(None, gt=0)
    non_embedding_b: Optional[float] = Field(None, gt=0)
    source: str


class Price(_Strict):
    input_per_1m: float = Field(ge=0)
    cached_input_per_1m: Optional[float] = Field(None, ge=0)
    output_per_1m: float = Field(ge=0)
    currency: Literal["USD"] = "USD"
    source: str
    status: Status
    as_of: Optional[str] = None
    notes: list[str] = Field(default_factory=list)


class ApiInfo(_Strict):
    provider: str
    base_url: str = Field(pattern=r"^https?://")
    model: str
    api_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    prices: Price
    context_length: Optional[int] = Field(None, ge=1)
    max_output_tokens: Optional[int] = Field(None, ge=1)
    notes: list[str] = Field(default_factory=list)


class Card(_Strict):
    name: str = Field(pattern=r"^_?[a-z0-9][a-z0-9._-]*$")
    display_name: str
    kind: Literal["open-weights", "api"]
    hub_id: Optional[str] = Field(None, pattern=_HUB_ID)
    revision: Optional[str] = Field(None, pattern=_SHA)
    revision_note: Optional[str] = None
    base_model: Optional[str] = None
    architecture: Architecture
    parameters: Parameters
    license: str
    license_note: Optional[str] = None
    context_length: Optional[int] = Field(None, ge=1)
    context_note: Optional[str] = None
    dtype: Optional[Literal["bfloat16", "float16", "float32"]] = None
    weights_gb: Optional[float] = Field(None, gt=0)
    weights_status: Optional[Status] = None
    trust_remote_code: bool
    min_transformers: Optional[str] = None
    protocol: Protocol
    claims: list[Claim]
    api: Optional[ApiInfo] = None
    sources: dict[str, Source] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def check_consistent(self):
        if self.kind == "open-weights":
            if not self.hub_id:
                raise ValueError("an open-weights card needs hub_id")
            if not self.dtype:
                raise ValueError("an open-weights card needs dtype")
            if self.parameters.total_b is None or self.context_length is None:
                raise ValueError("an open-weights card needs parameters.total_b and context_length")
        if self.kind == "api" and self.api is None:
            raise ValueError("an api card needs an api section")
        if self.revision is None and not self.revision_note:
            # Never invent a sha: an unpinned card must say why.
            raise ValueError("revision is null: add revision_note saying why no commit sha is pinned")
        if self.weights_gb is not None and self.weights_status is None:
            raise ValueError("weights_gb needs weights_status")
        return self


# ---- loading ----------------------------------------------------------------------------------

_NODE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: composing is then fast


def _check_duplicate_keys(node: yaml.Node | None) -> None:
    """safe_load silently keeps the last of two equal keys; in a card that is always a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
            _check_duplicate_keys(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item)


def load_card(path: str | Path) -> Card:
    """Read and validate one card. Every problem is a ConfigError "<file>: <field path>: <reason>"."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read model card ({exc.strerror or exc})", "check the path") from None
    # Cards are frozen and small but pure-Python YAML is slow (~0.1 s each); listing and lookup
    # reread them often, so parse a file once per (path, mtime, size).
    return _load_card(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _load_card(path: Path, _mtime_ns: int, _size: int) -> Card:
    fix = "see model_cards/_template.yaml for every field and its meaning"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read model card ({exc.strerror or exc})", "check the path") from None
    try:
        data = yaml.safe_load(text)  # never yaml.load: a card must not be able to build Python objects
        _check_duplicate_keys(yaml.compose(text, Loader=_NODE_LOADER))  # nodes only, nothing constructed
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}: invalid YAML: {problem}", fix) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): a card must be a YAML mapping, got {type(data).__name__}", fix)
    try:
        card = Card.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_message(exc, Card)}", fix) from None
    if not path.stem.startswith("_") and card.name != path.stem:
        raise ConfigError(f"{path}: name: {card.name!r} must equal the file name {path.stem!r}", "rename the file or the card")
    return card


def cards_dir() -> Path:
    """The cards folder: $HARNESS_CARDS_DIR, else the repository's model_cards/ beside the package."""
    env = os.environ.get("HARNESS_CARDS_DIR")
    return Path(env) if env else Path(harness.__file__).resolve().parents[1] / "model_cards"


def _card_files(directory: Path | None = None) -> list[Path]:
    directory = directory or cards_dir()
    if not directory.is_dir():
        raise ConfigError(f"model cards folder {directory} not found", "set HARNESS_CARDS_DIR to the model_cards/ folder")
    return sorted(directory.glob("*.yaml"))


def list_cards() -> list[Card]:
    """Every card (templates, whose file names start with "_", excluded), sorted by name."""
    return [load_card(p) for p in _card_files() if not p.name.startswith("_")]


def validate_all() -> list[tuple[Path, ConfigError | None]]:
    """Validate every YAML file in the cards folder, template included; never raises per file."""
    out: list[tuple[Path, ConfigError | None]] = []
    for path in _card_files():
        try:
            load_card(path)
            out.append((path, None))
        except ConfigError as exc:
            out.append((path, exc))
    return out


def find_card(name: str) -> Card:
    """A card by file stem, Hub id, API model name or display name (case-insensitive)."""
    want = name.strip().lower()
    files = [p for p in _card_files() if not p.name.startswith("_")]
    for path in files:
        if path.stem.lower() == want:
            return load_card(path)
    keys: list[str] = [p.stem for p in files]
    for card in (load_card(p) for p in files):
        aliases = [card.hub_id, card.display_name, card.api.model if card.api else None]
        if any(a and a.lower() == want for a in aliases):
            return card
        keys += [a for a in aliases if a]
    close = difflib.get_close_matches(name, keys, n=4, cutoff=0.5)
    close += [k for k in keys if want and want in k.lower() and k not in close][: 4 - len(close)]
    hint = f"did you mean: {', '.join(close)}?" if close else f"known cards: {', '.join(p.stem for p in files)}"
    raise ConfigError(f"no model card named {name!r} in {cards_dir()}", f"{hint} (`harness cards` lists them all)")


# ---- what a card implies for a run ---------------------------------------------------------------

def stated_settings(card: Card, task: str) -> dict[str, Any]:
    """The card's stated settings for a task (protocol defaults overlaid with per-task values; null = unstated)."""
    merged = card.protocol.defaults.model_dump()
    override = card.protocol.per_task.get(task)
    if override is not None:
        merged.update({k: v for k, v in override.model_dump().items() if v is not None})
    merged["protocol"] = (override.protocol if override is not None and override.protocol else card.protocol.name)
    return merged


def card_generation_defaults(card: Card, task: str) -> dict:
    """The protocol and decoding settings to run `task` the card's way.

    Returns {"protocol", "temperature", "top_p", "top_k", "max_new_tokens", "num_samples"}.
    Settings the card leaves null take FALLBACK_SETTINGS; the budget never exceeds the context.
    """
    stated = stated_settings(card, task)
    out = {"protocol": stated["protocol"]}
    for key, fallback in FALLBACK_SETTINGS.items():
        out[key] = stated[key] if stated.get(key) is not None else fallback
    if stated.get("max_new_tokens") is None and card.context_length:
        out["max_new_tokens"] = min(out["max_new_tokens"], card.context_length)
    return out


def _same_model(model_source: str, card: Card) -> bool:
    src = model_source.strip().rstrip("/")
    ids = [i for i in (card.hub_id, card.api.model if card.api else None) if i]
    if any(src.lower() == i.lower() for i in ids):
        return True
    # A Hub cache snapshot path names the repo as models--org--name.
    return any(f"models--{i.replace('/', '--')}".lower() in src.lower() for i in ids if "/" in i)


_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def protocol_differences(card: Card, task: str, used: dict, *, random_weights: bool, model_source: str) -> list[str]:
    """Every way a run of `task` differs from the card's protocol, as short sentences.

    `used` may hold: protocol, temperature, top_p, top_k, max_new_tokens, num_samples, dtype,
    quantization, revision, force_think, system_prompt, limit, n (problems run), n_total
    (problems in the full benchmark). Missing keys are not compared; other keys are ignored.
    Only settings the card states are compared.
    """
    stated = stated_settings(card, task)
    diffs: list[str] = []

    if random_weights:
        diffs.append("random weights: the model's parameters are random, not the published checkpoint")
    elif model_source and not _same_model(model_source, card):
        expected = card.hub_id or (card.api.model if card.api else card.name)
        diffs.append(f"model: {model_source} is not the card's {expected}")

    rev = used.get("revision")
    if rev and card.revision and not (card.revision.startswith(rev) or rev.startswith(card.revision)):
        diffs.append(f"revision {used['revision']} instead of the card's pinned {card.revision}")

    if used.get("protocol") and used["protocol"] != stated["protocol"]:
        diffs.append(f"prompt protocol {used['protocol']!r} instead of the card's {stated['protocol']!r}")
    if "force_think" in used and used["force_think"] is not None and bool(used["force_think"]) != card.protocol.force_think:
        diffs.append("the reply was " + ("" if used["force_think"] else "not ") + "forced to start with <think>, unlike the card's protocol")
    if "system_prompt" in used:
        sp, policy = used["system_prompt"], card.protocol.system_prompt_policy
        if policy == "none" and sp:
            diffs.append("a system prompt was used; the card's protocol uses none")
        elif policy == "fixed" and sp != card.protocol.system_prompt:
            diffs.append("the system prompt differs from the card's")

    want_k, got_k = stated.get("num_samples"), used.get("num_samples")
    if want_k is not None and got_k is not None and got_k < want_k:
        diffs.append(f"{got_k} sample{'' if got_k == 1 else 's'} per problem instead of the card's {want_k} for {task}")
    want_t, got_t = stated.get("max_new_tokens"), used.get("max_new_tokens")
    if want_t is not None and got_t is not None and got_t != want_t:
        effect = "smaller token budget" if got_t < want_t else "larger token budget"
        tail = ": long answers are cut off and count as wrong" if got_t < want_t else ""
        diffs.append(f"{effect}: max_new_tokens {got_t} instead of the card's {want_t}{tail}")
    for key in ("temperature", "top_p", "top_k"):
        want, got = stated.get(key), used.get(key)
        if want is not None and got is not None and abs(float(got) - float(want)) > 1e-9:
            greedy = " (greedy)" if key == "temperature" and float(got) == 0.0 else ""
            diffs.append(f"{key} {_num(got)}{greedy} instead of the card's {_num(want)}")

    dtype = str(used.get("dtype") or "").replace("torch.", "")
    dtype = _DTYPE_ALIASES.get(dtype, dtype)
    if dtype and dtype != "auto" and card.dtype and dtype != card.dtype:
        diffs.append(f"dtype {dtype} instead of the card's {card.dtype}")
    if used.get("quantization"):
        diffs.append(f"quantised weights ({used['quantization']}) instead of the card's {card.dtype or 'published'} checkpoint")

    limit, n, n_total = used.get("limit"), used.get("n"), used.get("n_total")
    if limit is not None:
        ran = n if n is not None else limit
        if n_total is not None and ran < n_total:
            diffs.append(f"--limit {limit}: {ran} of {n_total} problems")
        elif n_total is None:
            diffs.append(f"--limit {limit}: {ran} problems, not the full benchmark")
    elif n is not None and n_total is not None and n < n_total:
        diffs.append(f"{n} of {n_total} problems")
    return diffs
