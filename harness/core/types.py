"""The request and result types every layer shares: decoding settings (`Sampling`), one generation
(`Request`), what it produced (`Completion`) and what was loaded (`ModelInfo`). Plain frozen
dataclasses; no torch, no engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.core.generation import DEFAULT_MAX_NEW_TOKENS
from harness.errors import ConfigError


class LogprobsUnsupported(ConfigError):
    """The engine gives no token log-probabilities for a prompt (backends/logprobs.py)."""


Message = dict[str, Any]  # one chat message: {"role": ..., "content": ...}

@dataclass(frozen=True)
class Sampling:
    """Decoding settings for one request. temperature 0 means greedy. Every knob an engine has is
    here with its neutral value, and every engine sets all of them explicitly: a server's or a
    model's own default (llama.cpp's repeat penalty 1.1, a generation_config.json repetition
    penalty) must never change what "greedy" means."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # multiplicative (transformers, vLLM, llama.cpp's repeat_penalty)
    presence_penalty: float = 0.0  # additive, OpenAI-style
    frequency_penalty: float = 0.0
    min_new_tokens: int = 0  # bench sets min = max for a fixed output length
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Request:
    """One generation: chat messages plus an optional assistant prefill (e.g. a forced "<think>\\n")."""

    key: str  # unique within a run: "<task>/<item id>/<sample index>"
    messages: tuple[Message, ...]
    sampling: Sampling
    seed: int  # per request, so a sample is reproducible whatever batch it lands in
    prefill: str = ""
    chat: bool = True  # False: a plain-text prompt, no chat template (base models, few-shot)
    template_kwargs: tuple[tuple[str, object], ...] = ()  # e.g. (("enable_thinking", True),)


@dataclass
class Completion:
    """What one request produced, with true (unpadded) token counts and its own timings.

    ttft_s: request start to first generated token. In a static batch every row starts together,
    so each row's TTFT is the batch's prefill time (time to the batch's first token).
    e2e_s: request start to the row's own last token (not the batch's end).
    """

    text: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str  # "eos" | "stop" | "length" | "error"
    ttft_s: float | None
    e2e_s: float | None
    reasoning_text: str | None = None  # thinking returned separately (API reasoning_content)
    reasoning_tokens: int | None = None  # the server's count of reasoning tokens (usage), where it gives one
    token_ids: list[int] | None = None  # the generated ids (EOS included when sampled), where the engine has them
    thinking_tokens: int | None = None  # set by an engine that knows the split itself (two-phase budgets)
    batch_size: int = 1
    batch_wall_s: float | None = None  # wall time of the whole batch this row was part of
    unmeasured: dict[str, str] = field(default_factory=dict)  # field -> why it is None
    error: str | None = None  # with finish_reason "error": why there is no answer


@dataclass
class ModelInfo:
    name_or_path: str
    backend: str
    revision: str | None = None  # the resolved commit sha where known
    dtype: str | None = None
    num_parameters: int | None = None
    random_weights: bool = False
    architecture: str | None = None
    context_length: int | None = None
    weight_bytes: int | None = None  # every weight's bytes (roofline falls back to reading all of them per step)
    weight_layout: object | None = None  # harness.core.architecture.WeightLayout: weight bytes by how a step reads them
    kv_bytes_per_token: int | None = None  # KV cache bytes per token of context (roofline)
    quantization: str | None = None
    notes: list[str] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)  # how it generates: batching mode, compiled decoding, with reasons
    sampling: dict[str, dict[str, Any]] = field(default_factory=dict)  # per task: the engine's effective decoding parameters
    overridden_defaults: dict[str, object] = field(default_factory=dict)  # model/server defaults set aside
    # Architecture values read from the loaded weights (model_type, num_layers, hidden_size, intermediate_size,
    # num_attention_heads, num_key_value_heads, vocab_size, bos_token_id, eos_token_id): a local model's identity.
    fingerprint: dict[str, object] = field(default_factory=dict)
    reported_models: list[str] = field(default_factory=list)  # what a server said it served, in its responses


@dataclass(frozen=True)
class Score:
    """Strict and lenient verdicts on one answer (harness.scoring.grader, or a task's own `score`)."""

    extracted: str | None
    correct: bool
    extracted_lenient: str | None
    correct_lenient: bool
    limit_hit: tuple[str, ...] = ()  # comparisons that ran past symbolic.LIMIT_S (counted not equal)
