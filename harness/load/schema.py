"""The load folder's types: one request's record (a line of requests.jsonl) and load.json.

Versioned (`schema_version`) and strict (`extra="forbid"`), so a reader can tell an old file from a
broken one. Times are seconds; metric names follow vLLM's `vllm bench serve` (TTFT, TPOT, ITL, E2EL,
request/output/total-token throughput, goodput) with seconds where vLLM prints milliseconds
(docs/load.md maps each to vLLM, GuideLLM and evalscope). A number that was not measured is None
with a reason beside it, never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
Status = Literal["running", "complete", "partial", "failed", "interrupted"]
Mode = Literal["concurrency", "rate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestRecord(_Strict):
    """One request as the client saw it. `sent_s` and `scheduled_s` count from the level's start."""

    kind: Literal["request"] = "request"
    level: int  # index into LoadResult.levels (-1 for warm-up)
    load: float  # the level's concurrency or rate
    repeat: int
    index: int
    warmup: bool = False
    prompt_id: str
    input_tokens: int | None = None
    input_tokens_source: str = "not measured"
    scheduled_s: float | None = None  # open loop: when the schedule said to send it
    sent_s: float
    ok: bool
    status: int | None = None  # HTTP status, when a response arrived
    error: str | None = None
    ttft_s: float | None = None
    itl_s: list[float] = Field(default_factory=list)  # gaps between successive streamed content chunks
    e2el_s: float | None = None
    output_tokens: int = 0
    output_tokens_source: str = "streamed chunks"
    chunks: int = 0  # streamed events that carried content
    finish_reason: str | None = None


class Dist(_Strict):
    """Summary of one latency over a level's completed requests (numpy's linear percentiles)."""

    n: int
    mean: float | None
    median: float | None
    std: float | None
    p90: float | None
    p99: float | None


class Slo(_Strict):
    """Per-request limits (seconds); a request conforms when it succeeded and meets every given one."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2el_s: float | None = None
    attainment: float = 0.9  # a level meets the SLO when at least this fraction of its requests conform

    def describe(self) -> str:
        parts = [f"{k.removesuffix('_s')} <= {v:g} s" for k, v in (("ttft_s", self.ttft_s), ("tpot_s", self.tpot_s),
                                                                   ("e2el_s", self.e2el_s)) if v is not None]
        return f"{' and '.join(parts) or 'no limits'} for at least {self.attainment:.0%} of requests"


class Goodput(_Strict):
    """vLLM's goodput: conforming requests per second; a failed request never conforms."""

    conforming: int
    attainment: float | None  # conforming / (completed + failed)
    request_goodput: float | None  # conforming requests / duration (req/s)
    output_goodput: float | None  # output tokens of conforming requests / duration (tok/s)
    meets_slo: bool


class Achieved(_Strict):
    """What load the client actually delivered, beside what was asked for."""

    mode: Mode
    requested: float  # concurrency, or requests per second
    sent: int
    scheduled_rate: float | None = None  # open loop: the rate of the drawn schedule itself ((n-1) / last send time)
    send_rate: float | None  # requests sent per second over the sending window
    completion_rate: float | None  # completed requests per second over the level's duration
    mean_concurrency: float | None  # time-average of requests in flight (sum of E2EL / duration)
    max_in_flight: int
    schedule_lag_p90_s: float | None = None  # open loop: how late sends were against their schedule
    client_cpu_fraction: float | None = None  # this process's CPU seconds / wall seconds over the level
    client_limited: bool = False
    warnings: list[str] = Field(default_factory=list)


class LevelMetrics(_Strict):
    completed: int
    failed: int
    duration_s: float
    total_input_tokens: int | None
    total_output_tokens: int
    request_throughput: float | None  # completed requests / duration
    output_throughput: float | None  # output tokens / duration
    total_token_throughput: float | None  # (input + output tokens) / duration
    ttft_s: Dist
    tpot_s: Dist  # per request: (E2EL - TTFT) / (output tokens - 1), requests with > 1 token
    itl_s: Dist  # every gap between successive chunks of every completed request
    e2el_s: Dist
    errors: dict[str, int] = Field(default_factory=dict)  # error kind -> count


class Level(_Strict):
    """One load level, one repeat."""

    index: int
    mode: Mode
    load: float
    repeat: int
    stopped: str | None = None  # why the level ended before its request count, if it did
    metrics: LevelMetrics
    achieved: Achieved
    goodput: Goodput | None = None


class Spread(_Strict):
    """One figure over a load's repeats."""

    mean: float | None
    min: float | None
    max: float | None
    std: float | None
    values: list[float | None]


class LoadSummary(_Strict):
    """One load value, its repeats together."""

    mode: Mode
    load: float
    repeats: int
    output_throughput: Spread
    request_throughput: Spread
    p99_ttft_s: Spread
    p99_tpot_s: Spread
    p99_e2el_s: Spread
    attainment: Spread | None = None
    meets_slo: bool | None = None


class Saturation(_Strict):
    mode: Mode
    load: float | None
    criterion: str
    output_throughput: float | None = None
    request_throughput: float | None = None
    reason: str | None = None  # why there is no saturation point, when load is None


class ApiComparison(_Strict):
    api: str
    input_per_1m: float
    output_per_1m: float
    usd_per_1m_output_same_mix: float  # the API's bill for our input:output mix, per 1M output tokens
    source: str
    served_cheaper: bool


class LoadPrice(_Strict):
    """$ per 1M output tokens at one load (mean throughput over its repeats)."""

    load: float
    output_throughput: float | None
    usd_per_1m_output_tokens: float | None
    meets_slo: bool | None


class LoadCost(_Strict):
    price_per_hour_usd: float | None
    price_source: str
    by_load: list[LoadPrice] = Field(default_factory=list)
    at_load: float | None = None
    usd_per_1m_output_tokens: float | None = None
    usd_per_1m_good_output_tokens: float | None = None  # counting only the output of SLO-conforming requests
    apis: list[ApiComparison] = Field(default_factory=list)
    verdict: str | None = None
    caveats: list[str] = Field(default_factory=list)
    reason: str | None = None


class Served(_Strict):
    engine: Literal["llamacpp", "vllm"]
    command: list[str]
    model_path: str
    port: int
    version: str | None
    ready_s: float  # start to first healthy answer
    log: str
    exit: str | None = None  # how it ended: "stopped by harness", or the code it died with
    note: str | None = None  # a workaround harness had to apply to start it, with the reason


class Workload(_Strict):
    source: str  # "synthetic" or the task names
    endpoint: Literal["chat", "completions"]
    prompts: int  # distinct prompts cycled through
    input_tokens: int | None  # requested (synthetic) length
    output_tokens: int | None  # requested fixed output length, None: up to max_tokens, the model stops
    max_tokens: int
    fixed_output_by: str | None  # how a fixed length was enforced (ignore_eos, logit_bias on EOS) or None
    sampling: dict[str, float | int]
    mean_input_tokens: float | None


class LoadPlan(_Strict):
    mode: Mode
    loads: list[float]
    arrivals: str | None
    requests: int
    duration_s: float
    deadline_s: float
    request_timeout_s: float
    repeats: int
    warmup: int
    seed: int
    max_concurrency: int | None


class Warmup(_Strict):
    requests: int
    ok: int
    s: float


class LoadResult(_Strict):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["load"] = "load"
    run_id: str
    created: str
    finished: str | None = None
    status: Status
    status_reason: str | None = None
    harness_version: str
    base_url: str
    model: str
    served: Served | None = None
    workload: Workload
    plan: LoadPlan
    slo: Slo | None = None
    warmup: Warmup | None = None
    levels: list[Level] = Field(default_factory=list)
    summary: list[LoadSummary] = Field(default_factory=list)
    saturation: Saturation | None = None
    cost: LoadCost | None = None
    energy: dict[str, float | str | None] = Field(default_factory=dict)
    machine: dict[str, str | int | float | None] = Field(default_factory=dict)
    versions: dict[str, str | None] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
