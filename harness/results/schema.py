"""run.json's schema, once: pydantic models that the summary writes through and every reader
loads through (`load`), so a field exists only where it is declared here.

Every model forbids unknown keys: a misspelt or undeclared field is an error at write time, not a
silent hole in a report. Values are fractions in [0, 1] for accuracies, seconds for times, bytes
for memory, USD for money. results/README.md's "run.json" section and results/run.schema.json
are generated from these models (`python -m harness.results`); a test keeps them equal.

Versioning: `SCHEMA_VERSION` is MAJOR.MINOR. Within a MAJOR, fields are only added (optional, with
a default), so this reader validates every file of its MAJOR up to its own MINOR. 1.1 added
optional fields only (claim `reasons`, verdict `not_comparable`, status `partial`, error counts,
batching mode, plugin providers); 1.2 added the model's per-task engine `sampling` and its
`overridden_defaults`, the protocol's `source`, and `scoring`; 1.3 added task `version`, `dataset_size`
and `lm_eval_config`, and `versions.git_hash` (for `harness export --format lm-eval`), the model's
`engine` (batching and compiled decoding, with reasons) and the device's `dtype_measurements`;
older files read unchanged. 1.4 added claim comparability, `verdicts_mode`, `intervals`, metric `n_eff`,
and the roofline's batch fields. 1.5 added the model's `fingerprint` and `reported_models`, task `data` (the
problems against the official set) and the reason codes model, data and subset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import SCHEMA_VERSION
from harness.errors import ConfigError, validation_message

Status = Literal["running", "complete", "partial", "failed", "interrupted"]
Verdict = Literal["consistent", "below", "above", "inconclusive", "not_comparable"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metric(_Model):
    """One task metric with its 95% interval."""

    value: float | None = Field(description="the estimate, a fraction in [0, 1]")
    ci95: tuple[float, float] | None = Field(None, description="95% interval [low, high]")
    method: str | None = Field(None, description="how the interval was computed (cluster_wilson; older files: wilson, clustered_bootstrap)")
    n: int | None = Field(None, description="problems the metric is over")
    n_eff: float | None = Field(None, description="effective sample size behind the interval (problems <= n_eff <= samples)")
    design_effect: float | None = Field(None, description="samples / n_eff: how much clustering within problems widened the interval")


class Level(_Model):
    """Accuracy on one difficulty level."""

    n: int
    accuracy: float
    ci95: tuple[float, float] | None = None


class TaskResult(_Model):
    """`tasks.<task>`: one task's scores."""

    n: int = Field(description="problems")
    k: int = Field(description="samples per problem")
    metrics: dict[str, Metric] = Field(description="accuracy, accuracy_lenient, and with k > 1 pass@k and maj@k")
    truncation_rate: float | None = Field(None, description="share of samples cut off at max_new_tokens")
    mean_output_tokens: float | None = None
    mean_thinking_tokens: float | None = None
    by_level: dict[str, Level] = Field(default_factory=dict, description="accuracy per difficulty level")
    source: str | None = Field(None, description="the data file, or the task's built-in source")
    answer_type: str | None = Field(None, description="number, math or choice")
    settings: dict[str, Any] = Field(default_factory=dict, description="the settings used (for protocol differences)")
    errors: int | None = Field(None, description="samples that ended in an error row (not scored as answers)")
    version: float | str | None = Field(None, description="the task definition's version (an lm-eval task's metadata.version)")
    dataset_size: int | None = Field(None, description="problems in the task's data before --limit, where the task records it")
    lm_eval_config: dict[str, Any] | None = Field(None, description="for lm_eval:<task>: the task's config as lm-eval records it")
    data: DataIdentity | None = Field(None, description="which problems ran, against the official set (1.5)")


class Percentiles(_Model):
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class Warmup(_Model):
    s: float = Field(description="seconds spent warming up (excluded from every timing)")
    requests: int
    max_new_tokens: int | None = None
    batch_size: int | None = Field(None, description="rows per warm-up batch")


class DeviceMemory(_Model):
    allocated: int | None = None
    reserved: int | None = None


class PeakMemory(_Model):
    device: DeviceMemory | None = Field(None, description="peak device memory, bytes (null on CPU)")
    host: int | None = Field(None, description="peak resident host memory, bytes")
    per_process_device: list[DeviceMemory] | None = None


class Roofline(_Model):
    """How close decoding came to the memory-bandwidth bound, at the run's real batch and context."""

    bandwidth_gbps: float | None = Field(None, description="measured: device copy, bytes read + written, best of several passes")
    bandwidth_source: str | None = None
    bandwidth_measured_utc: str | None = Field(None, description="when the bandwidth was measured (it is cached, and re-measured when old)")
    bandwidth_method: str | None = None
    bandwidth_passes: list[float] | None = Field(None, description="GB/s of each pass; bandwidth_gbps is the best")
    peak_bandwidth_gbps: float | None = Field(None, description="the device's published peak bandwidth, where known")
    peak_bandwidth_source: str | None = None
    batch: int | None = Field(None, description="sequences decoded together (tokens per step)")
    mean_context_tokens: float | None = Field(None, description="mean context per sequence while decoding")
    weight_bytes_per_step: float | None = None
    kv_bytes_per_step: float | None = None
    bytes_per_step: float | None = None
    tokens_per_step: int | None = None
    weights: dict[str, int | bool] | None = Field(None, description="weight bytes by how a step reads them (roofline.WeightLayout)")
    bytes_per_token: float | None = None
    bound_tokens_per_s_per_sequence: float | None = None
    bound_tokens_per_s: float | None = Field(None, description="aggregate bound: batch x steps/s")
    measured_tokens_per_s_per_sequence: float | None = None
    measured_tokens_per_s: float | None = Field(None, description="aggregate: batch x the per-sequence rate")
    fraction: float | None = None
    note: str | None = None


class ProcessPerf(_Model):
    rank: int
    wall_s: float | None = None
    load_s: float | None = None
    energy_j: float | None = None
    device_memory: DeviceMemory | None = None


class Perf(_Model):
    """Speed, memory and energy. Throughputs are ratios of sums over batches (warm-up excluded)."""

    wall_s: float = Field(description="generation wall time, seconds (load and warm-up excluded)")
    load_s: float | None = None
    warmup: Warmup | None = None
    ttft_s: Percentiles | None = Field(None, description="time to first token per request")
    tpot_s: Percentiles | None = Field(None, description="time per output token after the first")
    e2e_s: Percentiles | None = Field(None, description="end-to-end latency per request")
    input_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_per_s: float | None = None
    prefill_tokens_per_s: float | None = None
    decode_tokens_per_s: float | None = None
    per_process_output_tokens_per_s: float | None = None
    energy_j: float | None = None
    energy_source: str | None = None
    joules_per_output_token: float | None = None
    joules_per_correct: float | None = None
    peak_memory_bytes: PeakMemory | None = None
    processes: int | None = None
    per_process: list[ProcessPerf] | None = None
    roofline: Roofline | None = None
    batching: str | None = Field(None, description="how requests were batched (static, continuous, ...)")


class Cost(_Model):
    price_per_hour_usd: float | None = None
    price_source: str | None = None
    basis: Literal["time", "tokens"] = Field(description="time: a machine by the hour; tokens: an API by the token")
    usd_total: float | None = None
    usd_per_1m_output_tokens: float | None = None
    usd_per_correct: float | None = None
    billed_s: float | None = None
    billed: str | None = None


class ModelRecord(_Model):
    name_or_path: str
    backend: str
    revision: str | None = Field(None, description="the resolved commit sha where known")
    dtype: str | None = None
    num_parameters: int | None = None
    random_weights: bool = False
    architecture: str | None = None
    context_length: int | None = None
    quantization: str | None = None
    notes: list[str] = Field(default_factory=list)
    sampling: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "per task: the decoding parameters the engine was given, by the engine's own names, neutral values included"))
    overridden_defaults: dict[str, Any] = Field(default_factory=dict, description=(
        "decoding defaults of the model (generation_config.json) or server that the run set aside"))
    engine: dict[str, Any] = Field(default_factory=dict, description=(
        "how the engine generated: batching (static or continuous) and batching_reason, compiled decoding and compile_reason, "
        "compile warm-up seconds and shapes, llama.cpp n_ctx/n_threads; with --batch-size auto: batch_size, batch_size_reason and "
        "batch_size_measurements (the probes' prefill, step and rate per batch)"))
    fingerprint: dict[str, Any] | None = Field(None, description=(
        "architecture values read from the loaded weights (model_type, layers, hidden size, heads, vocabulary, bos/eos ids): "
        "what identifies a local folder or GGUF file against a card (harness/cards/identity.py)"))
    reported_models: list[str] = Field(default_factory=list, description=(
        "openai: the model names the server reported in its responses (a served name is the server's assertion)"))


class DataIdentity(_Model):
    """`tasks.<task>.data`: the problems a run measured, against the task's official set (harness/tasks/official.py)."""

    selection: Literal["official", "sample", "subset", "other", "unknown"] = Field(description=(
        "official: the whole official set (any order); sample: a seeded uniform --sample of it; subset: other problems of it "
        "(--limit, a hand-picked file, a narrowing task option); other: problems not in it; unknown: no official set recorded"))
    n: int = Field(description="problems run")
    n_official: int | None = Field(None, description="problems in the official set")
    n_matched: int = Field(0, description="problems run that are in the official set")
    sha256: str = Field(description="order-independent hash of the run's normalised problems")
    official_sha256: str | None = None
    source: str | None = Field(None, description="where the official set is published")
    how: str = Field(description="how the problems were chosen")
    seed: int | None = Field(None, description="--sample's seed")
    detail: str = ""


class DeviceRecord(_Model):
    type: str = Field(description="cpu, cuda, mps, xpu or npu")
    index: int | None = None
    name: str | None = None
    count: int | None = None
    runtime: str | None = None
    dtype: str | None = None
    dtype_reason: str | None = None
    dtype_measurements: dict[str, Any] | None = Field(None, description=(
        "what an auto CPU dtype was decided from: per dtype, generation timed on the architecture"))
    device_reason: str | None = None
    processes: int | None = None


class ProtocolRecord(_Model):
    """The prompt protocol the run used."""

    name: str
    system_prompt: str | None = None
    suffix: dict[str, str] | str | None = None
    force_think: bool | None = None
    fewshot: int | None = None
    chat: bool | None = None
    source: str | None = Field(None, description="where it was chosen: --protocol, card, served model metadata (...), model name")


class Reason(_Model):
    """One failed comparability condition."""
    code: str = Field(description="model, data, subset, random_weights, truncation, protocol, sampling, budget, samples or scripted")
    detail: str = Field(description="the sentence a reader sees")


class Claim(_Model):
    """One published claim of the model card, compared with this run's measurement."""

    task: str
    metric: str = Field(description="our metric name in tasks.<task>.metrics")
    published_metric: str | None = None
    claimed: float | None = Field(None, description="the published value as a fraction; null when the card has none")
    measured: float | None = None
    ci95: tuple[float, float] | None = None
    verdict: Verdict
    gap: float | None = Field(None, description="measured - claimed")
    source: str | None = None
    status: str | None = None
    protocol_differences: list[str] = Field(default_factory=list)
    comparable: bool | None = Field(None, description="whether the run can support a verdict on this claim (harness/claims/comparability.py)")
    reasons: list[Reason] | None = Field(None, description="why a claim is not_comparable")
    caveats: list[str] = Field(default_factory=list, description="differences that do not stop the verdict (dtype, quantisation)")
    indicative: bool | None = Field(None, description="the measured value and interval are indicative only")
    indicative_verdict: Verdict | None = Field(None, description="--verdicts indicative: the statistical verdict of a not_comparable claim")
    note: str = ""


class Samples(_Model):
    done: int
    planned: int
    errors: int | None = Field(None, description="samples that ended in an error row")


class Errors(_Model):
    count: int = Field(description="samples whose request failed (finish_reason error); not in any metric")
    first: str = Field(description="the first failure's message")
    retry: str = Field(description="how to retry them")


class Scoring(_Model):
    """How answers were judged and thinking tokens counted, so a verdict can be reproduced."""

    symbolic: str = Field(description="how symbolic equality was decided")
    symbolic_limit_s: float = Field(description="time limit per symbolic comparison; past it, not equal")
    limit_hits: int = Field(0, description="samples with a comparison that hit the limit (their rows list it)")
    token_split: dict[str, int] = Field(default_factory=dict, description="samples per way thinking tokens were split (ids, exact, engine, server, estimated)")


class Provider(_Model):
    """Where a plugin came from: built in, or an installed distribution."""

    name: str
    provider: str = Field(description="'builtin' or the distribution's name")
    version: str | None = None


class RunResult(_Model):
    """run.json: one run's summary. Everything in it can be recomputed from samples.jsonl,
    batches.jsonl and config.json."""

    schema_version: str = Field(description="MAJOR.MINOR")
    run_id: str
    status: Status = Field(description="running, complete, partial, failed or interrupted")
    created_utc: str | None = None
    finished_utc: str | None = None
    versions: dict[str, str | None] = Field(default_factory=dict, description="python, torch, transformers, harness, platform, git_hash")
    config: dict[str, Any] = Field(default_factory=dict, description="the run's settings as given (no secrets)")
    model: ModelRecord
    device: DeviceRecord
    protocol: ProtocolRecord | None = None
    tasks: dict[str, TaskResult] = Field(default_factory=dict)
    perf: Perf | None = None
    cost: Cost | None = None
    claims: list[Claim] = Field(default_factory=list, description="with --card: the card's claims and their verdicts")
    verdicts_mode: Literal["strict", "indicative"] | None = Field(None, description="indicative: verdicts of not_comparable claims kept, marked")
    intervals: dict[str, str] | None = Field(None, description="how every 95% interval in this file was computed, with its reference")
    card: str | None = Field(None, description="the card's name, with --card")
    samples: Samples | None = None
    errors: Errors | None = Field(None, description="with status partial or failed: the failed samples, retried by --resume")
    protocol_differences: dict[str, list[str]] = Field(default_factory=dict,
                                                       description="per task: how this run differs from the card's protocol")
    warnings: list[str] = Field(default_factory=list, description="things a reader must know")
    scoring: Scoring | None = None
    plugins: dict[str, Provider] | None = Field(None, description="the task and backend plugins used, with their providers")


def check_version(version: Any, where: str) -> None:
    """Refuse a file of another MAJOR, or a newer MINOR than this reader knows."""
    mine = [int(x) for x in SCHEMA_VERSION.split(".")]
    try:
        theirs = [int(x) for x in str(version).split(".")]
    except ValueError:
        theirs = []
    if len(theirs) != 2 or theirs[0] != mine[0]:
        raise ConfigError(f"{where} has schema {version}, this harness reads {mine[0]}.x", "use a matching harness version")
    if theirs[1] > mine[1]:
        raise ConfigError(f"{where} has schema {version}, newer than this harness's {SCHEMA_VERSION}", "upgrade the harness")


def validate(data: Any, where: str = "run.json") -> RunResult:
    """A run.json document as a RunResult; one clear error line when it does not fit the schema."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} is not a JSON object", "pass a run folder written by `harness run`")
    check_version(data.get("schema_version"), where)
    try:
        return RunResult.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{where} does not fit the run.json schema: {validation_message(e, RunResult)}",
                          "re-render it with `harness run --resume`, or use the harness version that wrote it") from None


def load(path: str | Path) -> RunResult:
    """Read and validate one run.json file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {path} ({e.strerror or e})", "check the run folder's permissions") from None
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON", "re-render it with `harness run --resume`") from None
    return validate(data, str(path))


def as_run(run: RunResult | dict) -> RunResult:
    """A RunResult as is; a run.json document validated into one (renderers take either)."""
    return run if isinstance(run, RunResult) else validate(run)


def dump(run: RunResult) -> dict:
    """The JSON document for a RunResult (what run.json holds)."""
    return run.model_dump(mode="json")
