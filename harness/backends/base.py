"""The backend interface: one required method, `generate`, and optional hooks with defaults.

Every backend returns the same `Completion` record per request, so runs on different engines
compare fairly. What a backend cannot measure it leaves as None and explains in `unmeasured`.
This module imports no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sampling:
    """Decoding settings for one request. temperature 0 means greedy."""

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    min_new_tokens: int = 0  # bench sets min = max for a fixed output length
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Request:
    """One generation: chat messages plus an optional assistant prefill (e.g. a forced "<think>\\n")."""

    key: str  # unique within a run: "<task>/<item id>/<sample index>"
    messages: tuple[dict, ...]
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
    reasoning_tokens: int | None = None
    batch_size: int = 1
    batch_wall_s: float | None = None  # wall time of the whole batch this row was part of
    unmeasured: dict[str, str] = field(default_factory=dict)  # field -> why it is None


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
    weight_bytes: int | None = None  # bytes read per decoded token for weights (roofline)
    kv_bytes_per_token: int | None = None  # KV cache bytes per token of context (roofline)
    quantization: str | None = None
    notes: list[str] = field(default_factory=list)
    engine: dict = field(default_factory=dict)  # how it generates: batching mode, compiled decoding, with reasons


class Backend:
    """Subclass and implement `generate`. Hooks have working defaults."""

    name = "base"
    info: ModelInfo

    def generate(self, requests: list[Request]) -> list[Completion]:
        """Generate one Completion per request, in the same order."""
        raise NotImplementedError

    # ---- optional hooks -------------------------------------------------------------------
    def render(self, request: Request) -> str:
        """The exact prompt text the model sees (chat template applied where there is one)."""
        return json.dumps(list(request.messages), ensure_ascii=False) + request.prefill

    def count_tokens(self, text: str) -> int | None:
        """Token count of `text` with the model's tokenizer, or None when unknown."""
        return None

    def synchronize(self) -> None:
        """Wait for queued device work; called around every timed region."""

    def memory(self) -> dict:
        """Peak memory so far: {"device": {"allocated": b, "reserved": b} | None, ...}."""
        return {"device": None}

    def reset_peak_memory(self) -> None:
        """Start a fresh peak-memory window (after load, before warm-up)."""

    def max_batch_size(self) -> int:
        """Starting point for `--batch-size auto`."""
        return 8

    def close(self) -> None:
        """Free the model."""
