"""The backend interface: one required method, `generate`, and optional hooks with defaults.

Every backend returns the same `Completion` record per request, so runs on different engines
compare fairly. What a backend cannot measure it leaves as None and explains in `unmeasured`.
This module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harness.core.types import Completion, LogprobsUnsupported, ModelInfo, Request, Sampling
from harness.errors import ConfigError, validation_message

__all__ = ["Backend", "BackendOptions", "Completion", "LogprobsUnsupported", "ModelInfo", "Request", "Sampling"]


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
        backend = cls(model, **cls.check_options(taken).model_dump(exclude_unset=True))  # type: ignore[call-arg]  # engines take (model, **options)
        if ignored:
            backend.info.notes.append(f"options ignored by the {cls.name} backend: {', '.join(ignored)}")
        return backend

    # ---- declared capabilities (what the orchestration may ask of this engine) ----------------------
    supports_continuous: ClassVar[bool] = False  # generate_continuous: finished rows leave, waiting ones take their slot

    def continuous_unsupported(self) -> str | None:
        """Why continuous batching cannot serve this loaded model (None: it can); asked only when supports_continuous."""
        return None

    def generate_continuous(self, requests: list[Request], slots: int, on_done=None, should_stop=lambda: None) -> list[Completion]:
        """Generate with `slots` sequences in flight, calling `on_done(indices, completions, segment)` as rows finish."""
        raise NotImplementedError(f"the {self.name} engine declares no continuous batching")

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

    probes_batch_size: ClassVar[bool] = False  # True: `--batch-size auto` is measured (planning/batch_size.py), not max_batch_size()

    def max_batch_size(self) -> int:
        """Starting point for `--batch-size auto` on engines that do not probe it."""
        return 8

    # ---- log-likelihood scoring (backends/logprobs.py); engines without prompt logits keep these ----
    logprobs_unsupported = "this engine does not expose token log-probabilities"

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of `text`; None: the tokenizer's own default, except no BOS when `text` already starts with it."""
        raise self._no_logprobs()

    @property
    def prefix_token_id(self) -> int:
        """The token an empty context is conditioned on: BOS, else EOS (as lm-eval's HF model)."""
        raise self._no_logprobs()

    @property
    def scoring_length(self) -> int:
        """The most tokens one scored window may hold (loglikelihood_rolling splits documents by it)."""
        raise self._no_logprobs()

    def score(self, requests: list, max_length: int | None = None) -> list:
        """One batch of `logprobs.ScoreRequest` -> one `logprobs.Score` each, in order; inputs cut from the
        left to `max_length` tokens (default `scoring_length`)."""
        raise self._no_logprobs()

    def _no_logprobs(self) -> LogprobsUnsupported:
        """The error every scoring hook raises on an engine without prompt log-probabilities."""
        return LogprobsUnsupported(f"the {self.name} backend cannot score log-likelihoods: {self.logprobs_unsupported}",
                                  "run loglikelihood tasks (multiple_choice, perplexity) with backend=transformers or llamacpp on the model's weights")

    def close(self) -> None:
        """Free the model."""
