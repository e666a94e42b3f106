"""matrix.json's schema: pydantic models with unknown keys forbidden, versioned like run.json.

`MATRIX_SCHEMA_VERSION` is MAJOR.MINOR; within a MAJOR fields are only added, optional. Fractions in
[0, 1] for accuracies and rates, bytes for memory, tokens/s for speed, USD for money, nats for KL.
Every row is present for every precision asked for: a variant that could not be built here, or
whose run failed, keeps its row with `status` and `reason`, and `missing` lists it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import ConfigError, validation_message

MATRIX_SCHEMA_VERSION = "1.0"
RowStatus = Literal["complete", "not_buildable", "failed", "pending"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class McNemar(_Model):
    b01: int = Field(description="problems the reference got right and the variant wrong")
    b10: int = Field(description="problems the variant got right and the reference wrong")
    p_value: float
    method: str = Field(description="exact_binomial below 25 flips, else chi2_continuity")


class NonInferiorityRecord(_Model):
    margin: float = Field(description="the margin as a fraction (0.02 = 2 points)")
    level: str = "95% two-sided interval (97.5% one-sided)"
    verdict: Literal["non-inferior", "inferior", "inconclusive", "reference"]
    text: str
    problems_needed: int | None = None
    more_problems_needed: int | None = None


class PairedDifference(_Model):
    n: int = Field(description="problems both runs answered with the same target")
    diff: float = Field(description="accuracy(variant) - accuracy(reference) over those problems")
    ci95: tuple[float, float]
    ci_method: str
    test: str = Field(description="mcnemar (one sample per problem) or paired_bootstrap")
    p_value: float
    mcnemar: McNemar | None = None


class TaskCell(_Model):
    """One task of one variant."""

    n: int
    k: int
    accuracy: float | None
    accuracy_ci95: tuple[float, float] | None = None
    paired: PairedDifference | None = Field(None, description="against the reference; null on the reference's own row")
    non_inferiority: NonInferiorityRecord | None = None
    mean_output_tokens: float | None = None
    output_tokens_shift: float | None = Field(None, description="mean output tokens minus the reference's")
    truncation_rate: float | None = None
    truncation_shift: float | None = Field(None, description="truncation rate minus the reference's")


class DivergenceRecord(_Model):
    kl_divergence_mean: float | None = Field(None, description="mean KL(reference || variant) per position, nats")
    kl_divergence_p95: float | None = None
    kl_divergence_max: float | None = None
    same_top_token: float | None = Field(None, description="share of positions whose most likely next token is the reference's")
    perplexity: float | None = None
    positions: int | None = None
    reference_tail_mass_mean: float | None = Field(None, description="mean probability the reference puts outside its stored top-K")
    engine: str | None = None
    note: str | None = None


class BuildRecord(_Model):
    artifact: str | None = Field(None, description="the file or folder the variant ran")
    derived_from: str | None = None
    cached: bool = False
    build_s: float | None = None


class Row(_Model):
    """One precision."""

    precision: str
    is_reference: bool = False
    status: RowStatus
    reason: str | None = Field(None, description="why the row is not complete")
    kind: str = Field(description="gguf, hf, quantize_on_load or given")
    engine: str
    build: BuildRecord | None = None
    run_dir: str | None = None
    weight_bytes: int | None = Field(None, description="bytes of weights as stored (a GGUF's tensors; parameters x bits for a folder)")
    bits_per_weight: float | None = None
    peak_memory_bytes: int | None = Field(None, description="peak resident host memory of the variant's run process")
    peak_device_memory_bytes: int | None = None
    output_tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
    usd_per_1m_output_tokens: float | None = None
    usd_per_correct: float | None = None
    tasks: dict[str, TaskCell] = Field(default_factory=dict)
    divergence: DivergenceRecord | None = None
    notes: list[str] = Field(default_factory=list)


class ClaimJudgement(_Model):
    id: str
    text: str
    source: str
    status: str
    precision: str | None = Field(None, description="the matrix row the claim was read against")
    claimed_recovery: float | None = None
    measured_recovery: float | None = Field(None, description="accuracy(variant) / accuracy(reference)")
    recovery_ci95: tuple[float, float] | None = None
    verdict: Literal["consistent", "below", "above", "inconclusive", "not_comparable"]
    reasons: list[dict[str, str]] = Field(default_factory=list)
    indicative_verdict: str | None = None


class MatrixResult(_Model):
    schema_version: str = MATRIX_SCHEMA_VERSION
    status: Literal["complete", "partial", "running"]
    created_utc: str
    finished_utc: str | None = None
    model: str
    source_fingerprint: str
    source_notes: list[str] = Field(default_factory=list)
    reference: str
    margin: float
    tasks: list[str]
    settings: dict[str, object] = Field(default_factory=dict, description="the run settings every variant shared")
    same_items_and_seeds: bool | None = Field(None, description="every completed variant answered the same (task, id, sample, seed) keys")
    kl_method: str
    kl_texts: str
    device: str | None = None
    price_per_hour_usd: float | None = None
    rows: list[Row]
    missing: list[str] = Field(default_factory=list, description="precisions without a complete row, with why")
    claims: list[ClaimJudgement] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def load_matrix(path: str | Path) -> MatrixResult:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {p}: {e}", "pass a folder written by `harness precision`") from None
    major = str(data.get("schema_version", "")).split(".")[0]
    if major != MATRIX_SCHEMA_VERSION.split(".")[0]:
        raise ConfigError(f"{p} has matrix schema {data.get('schema_version')}, this harness reads {MATRIX_SCHEMA_VERSION}",
                          "use the harness version that wrote it")
    try:
        return MatrixResult.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{p} does not fit the matrix schema: {validation_message(e, MatrixResult)}", "rerun with --resume") from None


__all__ = ["MATRIX_SCHEMA_VERSION", "MatrixResult", "Row", "TaskCell", "load_matrix"]
