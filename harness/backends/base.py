"""The backend interface: one required method, `generate`, and optional hooks with defaults.

Every backend returns the same `Completion` record per request, so runs on different engines
compare fairly. What a backend cannot measure it leaves as None and explains in `unmeasured`.
This module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.errors import ConfigError, validation_message


class LogprobsUnsupported(ConfigError):
    """The engine gives no token log-probabilities for a prompt (backends/logprobs.py)."""


@dataclass(frozen=True)
class Sampling:
    """Decoding settings for one request. temperature 0 means greedy. Every knob an engine has is
    here with its neutral value, and every engine sets all of them explicitly: a server's or a
    model's own default (llama.cpp's repeat penalty 1.1, a generation_config.json repetition
    penalty) must never change what "greedy" means."""

    max_new_tokens: int = 512
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
    weight_layout: object | None = None  # harness.measure.roofline.WeightLayout: weight bytes by how a step reads them
    kv_bytes_per_token: int | None = None  # KV cache bytes per token of context (roofline)
    quantization: str | None = None
    notes: list[str] = field(default_factory=list)
    engine: dict = field(default_factory=dict)  # how it generates: batching mode, compiled decoding, with reasons
    sampling: dict[str, dict] = field(default_factory=dict)  # per task: the engine's effective decoding parameters
    overridden_defaults: dict[str, object] = field(default_factory=dict)  # model/server defaults set aside


class BackendOptions(BaseModel):
    """The options a backend takes, declared once: subclass per engine with typed fields and a
    description each. Unknown keys are errors (`--backend-option`); `harness list backends` shows them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Passed to every backend by the pipeline; an engine that has no use for them ignores them
# without a note (per-request seeds are what make samples reproducible).
QUIET_OPTIONS = frozenset({"device", "seed"})


def split_options(options: Mapping, accepted: Iterable[str]) -> tuple[dict, list[str]]:
    """(the options this engine takes, set; the names of set options it ignores, for a note)."""
    accepted = set(accepted)
    taken = {k: v for k, v in options.items() if k in accepted and v is not None}
    ignored = sorted(k for k, v in options.items()
                     if k not in accepted and k not in QUIET_OPTIONS and v not in (None, False, (), [], {}))
    return taken, ignored


class Backend:
    """Subclass and implement `generate`. Hooks have working defaults.

    A backend plugin is one class: `name`, `Options` (its BackendOptions), `install` (how to get
    its engine, for `harness list backends`), `generate`; `from_options` builds it from a run's
    options (the default passes the declared options to the constructor)."""

    name = "base"
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    install: ClassVar[str] = "built in"
    info: ModelInfo

    @classmethod
    def check_options(cls, options: Mapping) -> BackendOptions:
        """The options validated against `Options`: one error line naming the bad key and the allowed ones."""
        try:
            return cls.Options.model_validate(dict(options))
        except ValidationError as e:
            raise ConfigError(f"backend {cls.name}: {validation_message(e, cls.Options)}",
                              f"pass only the options `harness list backends` shows for {cls.name}") from None

    @classmethod
    def from_options(cls, model: str, **options) -> Backend:
        """Build for `model` from a run's options: the ones `Options` declares are validated and passed
        to the constructor; the others (meant for other engines) are noted and ignored."""
        taken, ignored = split_options(options, cls.Options.model_fields)
        backend = cls(model, **cls.check_options(taken).model_dump(exclude_unset=True))
        if ignored:
            backend.info.notes.append(f"options ignored by the {cls.name} backend: {', '.join(ignored)}")
        return backend

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

    def engine_sampling(self, sampling: Sampling) -> dict:
        """The decoding parameters this engine actually uses for `sampling`, by the engine's own
        names (recorded in run.json per task)."""
        return {k: getattr(sampling, k) for k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                                                  "presence_penalty", "frequency_penalty")}

    def decode(self, ids: list[int]) -> str | None:
        """The text of generated ids, decoded as the engine decodes its output; None when unknown.
        Used to find where the thinking trace ends in `Completion.token_ids`."""
        return None

    def synchronize(self) -> None:
        """Wait for queued device work; called around every timed region."""

    def memory(self) -> dict:
        """Peak memory so far: {"device": {"allocated": b, "reserved": b} | None, ...}."""
        return {"device": None}

    def reset_peak_memory(self) -> None:
        """Start a fresh peak-memory window (after load, before warm-up)."""

    probes_batch_size = False  # True: `--batch-size auto` is measured (runtime/batch_size.py), not max_batch_size()

    def max_batch_size(self) -> int:
        """Starting point for `--batch-size auto` on engines that do not probe it."""
        return 8

    # ---- log-likelihood scoring (backends/logprobs.py); engines without prompt logits keep these ----
    logprobs_unsupported = "this engine does not expose token log-probabilities"

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of `text`; None: the tokenizer's own default, except no BOS when `text` already starts with it."""
        self._no_logprobs()

    @property
    def prefix_token_id(self) -> int:
        """The token an empty context is conditioned on: BOS, else EOS (as lm-eval's HF model)."""
        self._no_logprobs()

    @property
    def scoring_length(self) -> int:
        """The most tokens one scored window may hold (loglikelihood_rolling splits documents by it)."""
        self._no_logprobs()

    def score(self, requests: list, max_length: int | None = None) -> list:
        """One batch of `logprobs.ScoreRequest` -> one `logprobs.Score` each, in order; inputs cut from the
        left to `max_length` tokens (default `scoring_length`)."""
        self._no_logprobs()

    def _no_logprobs(self):
        raise LogprobsUnsupported(f"the {self.name} backend cannot score log-likelihoods: {self.logprobs_unsupported}",
                                  "run loglikelihood tasks (multiple_choice, perplexity) with backend=transformers or llamacpp on the model's weights")

    def close(self) -> None:
        """Free the model."""
