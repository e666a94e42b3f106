"""The model-card schema: one YAML file per model in `model_cards/`, typed here.

A card records what a model *is* (Hub id and pinned revision, architecture, parameter count,
license, context, dtype, whether it needs remote code), how its publishers *evaluated* it (the
protocol: system-prompt policy, prompt wording, `<think>` forcing, decoding settings and samples
per query, per benchmark) and what they *claimed* (benchmark, metric, value, source, status).
Hosted models also carry an `api` section with the endpoint and the published prices.

Every model is pydantic with `extra="forbid"`, so an unknown key is an error. Reading files is
harness/cards/loader.py; what a card implies for a run is harness/cards/settings.py;
`model_cards/_template.yaml` documents every field.
"""

from __future__ import annotations

import re
from typing import Literal, overload

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.cards.training import TrainingCost
from harness.protocols import PROTOCOLS

# Prompt protocols are owned by harness/protocols.py; reading their names here makes a card with a
# misspelt protocol fail at validation, not half-way through a run.
PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)

Status = Literal["verified", "secondary", "derived", "UNVERIFIED"]

_SHA = r"^[0-9a-f]{40}$"
_SHORT_SHA = r"^[0-9a-f]{7,40}$"
_HUB_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
_TASK = r"^[a-z][a-z0-9_]*$"
_DATE = r"^\d{4}-\d{2}(-\d{2})?$"
_AS_OF = r"^(\d{4}-\d{2}(-\d{2})?( .+)?|undated: .+)$"
# pass@1, pass@8, cons@64, maj@64, rm@8, or a named score.
_METRIC = r"^(?:(?:pass|cons|maj|rm)@[1-9][0-9]*|accuracy|exact_match|f1|prompt_strict|lc_win_rate|rating|percentile|resolved|score)$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@overload
def _check_protocol(name: str) -> str: ...
@overload
def _check_protocol(name: None) -> None: ...
def _check_protocol(name: str | None) -> str | None:
    if name is not None and name not in PROTOCOL_NAMES:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOL_NAMES)}")
    return name


class Source(_Strict):
    """A cited document: a repository file at a commit, or a web page."""

    repo: str | None = None
    path: str | None = None
    commit: str | None = Field(None, pattern=_SHORT_SHA)
    url: str | None = Field(None, pattern=r"^https?://")
    arxiv: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def check_where(self):
        if not (self.repo or self.url or self.note):
            raise ValueError("a source needs a repo, a url or a note saying where it was seen")
        return self


class EvalSettings(_Strict):
    """Decoding settings; null means "not stated by the publisher"."""

    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)  # 0: no top-k cut
    min_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = None
    repetition_penalty: float | None = Field(None, gt=0)
    max_new_tokens: int | None = Field(None, ge=1)
    num_samples: int | None = Field(None, ge=1)  # samples per query behind pass@1
    num_fewshot: int | None = Field(None, ge=0)


class TaskSettings(EvalSettings):
    """Per-benchmark overrides of the protocol defaults."""

    protocol: str | None = None
    # The publisher scored this task with a prompt the harness has no protocol for (e.g. "simple-evals"
    # for GPQA): a run with any other protocol is not_comparable on it (harness/claims/comparability.py).
    prompt: str | None = None
    mean_output_tokens: int | None = Field(None, ge=1)  # published mean answer length: the plan's expected tokens
    note: str | None = None

    @field_validator("protocol")
    @classmethod
    def check_protocol(cls, v: str | None) -> str | None:
        return _check_protocol(v)


class Protocol(_Strict):
    """How the publisher prompted and decoded when producing the claims."""

    name: str
    system_prompt_policy: Literal["none", "fixed", "template_default"]
    system_prompt: str | None = None
    prompt_suffix: str | None = None
    force_think: bool = False
    enable_thinking: bool | None = None
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
    value: float | None = Field(None, ge=0)
    unit: Literal["percent", "rating"] = "percent"
    status: Status
    source: str
    setting: str | None = None
    protocol: str | None = None
    samples: int | None = Field(None, ge=1)
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
    expert_intermediate_size: int | None = Field(None, ge=1)
    dense_layers: int | None = Field(None, ge=0)


class Architecture(_Strict):
    model_type: str
    class_name: str | None = None
    num_layers: int | None = Field(None, ge=1)
    hidden_size: int | None = Field(None, ge=1)
    intermediate_size: int | None = Field(None, ge=1)
    num_attention_heads: int | None = Field(None, ge=1)
    num_key_value_heads: int | None = Field(None, ge=1)
    head_dim: int | None = Field(None, ge=1)
    vocab_size: int | None = Field(None, ge=1)
    max_position_embeddings: int | None = Field(None, ge=1)
    rope_theta: float | None = Field(None, gt=0)
    tie_word_embeddings: bool | None = None
    attention: str | None = None
    moe: MoE | None = None
    config_file: str | None = None
    config_status: Status | None = None
    notes: list[str] = Field(default_factory=list)


class Parameters(_Strict):
    total_b: float | None = Field(None, gt=0)  # null only for hosted models that do not disclose it
    exact: int | None = Field(None, ge=1)
    active_b: float | None = Field(None, gt=0)
    non_embedding_b: float | None = Field(None, gt=0)
    source: str


class Price(_Strict):
    input_per_1m: float = Field(ge=0)
    cached_input_per_1m: float | None = Field(None, ge=0)
    output_per_1m: float = Field(ge=0)
    currency: Literal["USD"] = "USD"
    source: str
    status: Status
    # When the prices applied: a date (YYYY-MM or YYYY-MM-DD, optionally followed by words), or
    # "undated: <why>" where no source dates them. Never null: a price without a date compares today's
    # price with last year's claim.
    as_of: str = Field(pattern=_AS_OF)
    notes: list[str] = Field(default_factory=list)


class AliasChange(_Strict):
    """The API model name began serving another model on `date`."""

    date: str = Field(pattern=_DATE)
    target: str
    source: str
    status: Status


class ApiAlias(_Strict):
    """An API model name that is an alias (its target can change): when it served the card's model,
    and every later change a source records (harness/cards/identity.py warns on them)."""

    as_of: str = Field(pattern=_DATE)  # the date the alias served this card's model (the claims' date)
    source: str
    changes: list[AliasChange] = Field(default_factory=list)


class ApiInfo(_Strict):
    provider: str
    base_url: str = Field(pattern=r"^https?://")
    model: str
    # Whether `model` is a dated snapshot (fixed) or an alias whose target can change, with its history.
    model_alias: ApiAlias | None = None
    api_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    prices: Price
    context_length: int | None = Field(None, ge=1)
    max_output_tokens: int | None = Field(None, ge=1)
    notes: list[str] = Field(default_factory=list)


class Card(_Strict):
    name: str = Field(pattern=r"^_?[a-z0-9][a-z0-9._-]*$")
    display_name: str
    kind: Literal["open-weights", "api"]
    hub_id: str | None = Field(None, pattern=_HUB_ID)
    revision: str | None = Field(None, pattern=_SHA)
    revision_note: str | None = None
    base_model: str | None = None
    architecture: Architecture
    parameters: Parameters
    license: str
    license_note: str | None = None
    context_length: int | None = Field(None, ge=1)
    context_note: str | None = None
    dtype: Literal["bfloat16", "float16", "float32"] | None = None
    weights_gb: float | None = Field(None, gt=0)
    weights_status: Status | None = None
    trust_remote_code: bool
    min_transformers: str | None = None
    protocol: Protocol
    claims: list[Claim]
    api: ApiInfo | None = None
    training: TrainingCost | None = None  # a published training-cost claim (harness/cards/training.py)
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
