"""The `training` section of a model card: a published training-cost claim, figure by figure.

A training-cost claim ("the final run cost $5.576M") rests on a handful of published figures:
tokens, parameters (total and active), the GPU and how many, GPU-hours per stage, the price per
GPU-hour assumed, and what the figure leaves out. Each figure carries its own source and status,
like an accuracy claim, so the arithmetic in harness/training/check.py can say which inputs it trusts.
`arch` holds the architecture dims the attention and MTP terms need (config.json key names).

Kept apart from harness/cards.py (which only wires `Card.training`) so the schema has one job.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The same four statuses as harness/cards.Status (a test keeps them equal).
Status = Literal["verified", "secondary", "derived", "UNVERIFIED"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Sourced(_Strict):
    """A published value with where it comes from; null only when nobody published it."""

    status: Status
    source: str
    note: str | None = None

    @model_validator(mode="after")
    def check_value(self):
        if self.value is None and self.status != "UNVERIFIED":
            raise ValueError("value may be null only with status UNVERIFIED (nothing published)")
        return self


class Figure(_Sourced):
    """One published number."""

    value: float | None = Field(None, ge=0)


class Name(_Sourced):
    """A published name (the GPU model)."""

    value: str | None = None


class Stage(_Strict):
    """One training stage with its own GPU-hours (pre-training, context extension, RL, ...)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str
    gpu_hours: Figure
    tokens: Figure | None = None          # training tokens of the stage (null: not published)
    context_length: Figure | None = None  # sequence length the stage trained at
    notes: list[str] = Field(default_factory=list)


class Arch(_Strict):
    """Architecture dims for the attention and MTP terms, with config.json key names."""

    config: dict[str, float | None]
    source: str
    status: Status


class Precision(_Strict):
    """The number formats a training run's matrix multiplies used: the body's linear layers (`matmul`),
    attention's score and value products (`attention`) and the output head (`head`)."""

    matmul: Literal["bf16", "fp8"]
    attention: Literal["bf16", "fp8"] = "bf16"
    head: Literal["bf16", "fp8"] = "bf16"
    status: Status
    source: str


class TrainingCost(_Strict):
    """A published training-cost claim: figures per stage, the assumed price and the claimed total."""

    claim: str
    gpu: Name                                 # the GPU model, e.g. H800
    gpu_count: Figure | None = None
    params_total_b: Figure
    params_active_b: Figure
    mtp_active_b: Figure | None = None      # multi-token-prediction module, activated per token (no embedding)
    price_per_gpu_hour_usd: Figure
    total_gpu_hours: Figure | None = None
    total_cost_usd: Figure | None = None
    stages: list[Stage]
    arch: Arch | None = None
    precision: Precision | None = None  # the stated precision mix: sets the effective peak (harness/training/check.py)
    excludes: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def check_stages(self):
        names = [s.name for s in self.stages]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate stage names: {names}")
        if not self.stages:
            raise ValueError("a training claim needs at least one stage")
        return self
