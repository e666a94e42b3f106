"""The transformers backend: static batches with left padding, true per-row counts and timings.

Timing: a stopping criterion runs after every decoding step; it synchronises the device and reads
the clock, so step s has a timestamp. A row's TTFT is the first step's time (in a static batch all
rows share the prefill), its e2e is the time of the step that produced its own last token.
Sampling: each row draws from its own torch.Generator seeded by the request, so a sample does not
depend on which batch it lands in; greedy decoding is argmax, over float32 logits when the head is
bfloat16/float16 (head.py).
Rows of one batch may have their own min/max new tokens: the batch runs to the longest target and
each row is cut at its own. Continuous batching lives in continuous.py, compiled decoding (CUDA)
in compiled.py, prepacked CPU weights in cpu_linear.py; each is recorded in `info.engine`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
from pydantic import Field
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from harness.backends.base import Backend, BackendOptions
from harness.backends.compiled import BUCKET, generation_kwargs
from harness.backends.compiled import decide as decide_compile
from harness.backends.head import NOTE as HEAD_NOTE
from harness.backends.head import applies as head_applies
from harness.backends.head import decides as head_decides
from harness.backends.head import float32_greedy
from harness.backends.models import load as load_model
from harness.backends.rows import cut_at_stop, draw, new_generator, row_end
from harness.core.architecture import kv_bytes_or_none
from harness.core.fingerprint import from_hf_config
from harness.core.prompt import hf_template, render
from harness.core.types import Completion, ModelInfo, Request
from harness.runtime import tokens as token_meter

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from harness.runtime.device import DeviceChoice


class RowSampler(LogitsProcessor):
    """Per-row temperature/top-k/top-p sampling with per-row generators.

    Returns scores where only the drawn token is finite, so the (greedy) generate loop picks it.
    Also masks token ids beyond the tokenizer (random models have larger embedding tables)."""

    def __init__(self, requests: list[Request], vocab_limit: int | None, device, eos_ids=(), prompt_width: int = 0, refiner=None):
        self.requests, self.vocab_limit, self.refiner = requests, vocab_limit, refiner
        self.refined = [i for i, r in enumerate(requests) if head_decides(r.sampling)]
        self.sample = not all(r.sampling.greedy for r in requests)
        self.generators = []
        if self.sample:
            self.generators = [new_generator(r.seed, device) for r in requests]
        self.eos, self.width = sorted(eos_ids), prompt_width
        self.mins = [r.sampling.min_new_tokens for r in requests]

    def __call__(self, input_ids, scores):
        if self.vocab_limit is not None and scores.shape[-1] > self.vocab_limit:
            scores[:, self.vocab_limit:] = -float("inf")
        made = input_ids.shape[1] - self.width
        if self.eos and made < max(self.mins):
            for i, m in enumerate(self.mins):
                if made < m:
                    scores[i, self.eos] = -float("inf")
        if self.refiner is not None:  # greedy rows decide on float32 logits (head.py)
            self.refiner.refine(scores, self.refiner.take(), self.refined)
        if not self.sample:
            return scores
        out = torch.full_like(scores, -float("inf"))
        for i, (r, g) in enumerate(zip(self.requests, self.generators)):
            out[i, draw(scores[i], r.sampling, g)] = 0.0
        return out


class StepClock(StoppingCriteria):
    """Timestamps every decoding step without stalling the device: on CUDA an event per step, read
    after generation; elsewhere the host clock after a synchronise. Rows that end on EOS are found
    afterwards in the output ids; only a stop string needs the text, so only then is each step
    checked on the host."""

    def __init__(self, device: str, sync, stop_criteria=None):
        self.cuda = torch.device(device).type == "cuda"
        self.sync, self.stop_criteria = sync, stop_criteria
        self.marks: list = []
        self.stopped_at: dict[int, int] = {}  # row -> step of its stop string

    def start(self):
        self.sync()
        self.t0 = time.perf_counter()
        if self.cuda:
            self.e0 = torch.cuda.Event(enable_timing=True)
            self.e0.record()
        return self.t0

    def __call__(self, input_ids, scores, **kwargs):
        if self.cuda:
            mark = torch.cuda.Event(enable_timing=True)
            mark.record()
        else:
            self.sync()
            mark = time.perf_counter()
        self.marks.append(mark)
        token_meter.tick(int(input_ids.shape[0]))  # a token per row this step (rows already done still count: the batch pays for them)
        if self.stop_criteria is None:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        stop = self.stop_criteria(input_ids, scores)
        for row, hit in enumerate(stop.tolist()):
            if hit and row not in self.stopped_at:
                self.stopped_at[row] = len(self.marks) - 1
        return stop

    def seconds(self) -> list[float]:
        """Each step's time since `start`, once generation has finished (and been synchronised)."""
        if self.cuda:
            return [self.e0.elapsed_time(m) / 1000.0 for m in self.marks]
        return [m - self.t0 for m in self.marks]


# Set on every generate call, so the model's generation_config.json fills none of them in
# (transformers takes the model's value for any field left unset). Temperature, top-p, top-k and
# min-p are applied by RowSampler, per row; the rest are neutral unless a request asks.
NEUTRAL = {"do_sample": False, "num_beams": 1, "temperature": 1.0, "top_p": 1.0, "typical_p": 1.0, "repetition_penalty": 1.0,
           "no_repeat_ngram_size": 0, "encoder_repetition_penalty": 1.0, "length_penalty": 1.0, "epsilon_cutoff": 0.0,
           "eta_cutoff": 0.0}
_MODEL_SAMPLING_KEYS = (*NEUTRAL, "top_k", "min_p", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "sequence_bias",
                        "exponential_decay_length_penalty")


def overridden_defaults(generation_config) -> dict:
    """The decoding defaults a model's generation_config.json sets that a run overrides."""
    if generation_config is None:
        return {}
    out = {}
    for key in _MODEL_SAMPLING_KEYS:
        value = getattr(generation_config, key, None)
        if value is not None and value != NEUTRAL.get(key, None) and value not in ([], {}, 0):
            out[key] = value
    return out


class TransformersOptions(BackendOptions):
    revision: str | None = Field(None, description="the Hub revision (branch, tag or commit) to load")
    tokenizer: str | None = Field(None, description="a tokenizer folder other than the model's")
    device_map: str | None = Field(None, description="accelerate placement, e.g. auto, to shard a model too large for one device")
    max_memory: dict[str, str] | None = Field(None, description="per-device memory caps for device_map, e.g. {0: 20GiB, cpu: 60GiB}")
    trust_remote_code: bool = Field(False, description="run the model repository's own code")
    allow_pickle: bool = Field(False, description="load pickled (.bin) weights; safetensors only otherwise")
    compile: Literal["auto", "on", "off"] = Field("auto", description="static KV cache + torch.compile for decoding (CUDA; auto: on where it works)")
    cpu_prepack: bool = Field(True, description="CPU: reorder bfloat16 linear weights once into oneDNN's layout (faster decoding; backends/cpu_linear.py)")


class TransformersBackend(Backend):
    name = "transformers"
    Options = TransformersOptions
    probes_batch_size = True  # --batch-size auto is measured on the loaded model (planning/batch_size.py)
    supports_continuous = True

    def __init__(self, model, tokenizer, info: ModelInfo, device: str):
        self.model, self.tokenizer, self.info, self.device = model, tokenizer, info, device
        self.template = hf_template(tokenizer)
        self.has_template = self.template is not None
        self.vocab_limit = len(tokenizer) if model.config.get_text_config().vocab_size > len(tokenizer) else None
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        self.compiled = False  # see harness/backends/compiled.py
        self._compiled_shapes: set[tuple[int, int, int]] = set()
        info.overridden_defaults = overridden_defaults(model.generation_config)

    @classmethod
    def from_options(cls, model: str, **options: Any) -> TransformersBackend:
        """Load `model`; `device` (the pipeline's DeviceChoice) is required, options of other engines are ignored."""
        return cls._load(model, **options)

    @classmethod
    def _load(cls, model: str, *, device: DeviceChoice, revision: str | None = None, trust_remote_code: bool = False,
              allow_pickle: bool = False, tokenizer: str | None = None, device_map: str | None = None,
              max_memory: dict[str, str] | None = None, compile: str = "auto", cpu_prepack: bool = True,
              **_ignored: Any) -> TransformersBackend:
        dtype = getattr(torch, device.dtype)
        placement = device_map or device.torch_device
        loaded = load_model(model, torch_dtype=dtype, device_map=placement, revision=revision, trust_remote_code=trust_remote_code,
                            allow_pickle=allow_pickle, tokenizer=tokenizer, max_memory=max_memory)
        m = cast("PreTrainedModel", loaded.model)  # models.load always returns a transformers model here (Loaded keeps it as object)
        cfg = m.config.get_text_config()
        n_params = sum(p.numel() for p in m.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in m.parameters())
        info = ModelInfo(
            name_or_path=loaded.path, backend=cls.name, revision=loaded.revision, dtype=str(next(m.parameters()).dtype).replace("torch.", ""),
            num_parameters=n_params, random_weights=loaded.source == "random", architecture=(m.config.architectures or [type(m).__name__])[0],
            context_length=getattr(cfg, "max_position_embeddings", None), weight_bytes=weight_bytes,
            weight_layout=_layout(m),
            kv_bytes_per_token=kv_bytes_or_none(cfg, next(m.parameters()).element_size()),  # transformers caches full K/V, MLA too
            quantization="gguf (dequantized)" if loaded.source == "gguf" else None)
        info.fingerprint = from_hf_config({**m.config.to_dict(), **cfg.to_dict()})
        if loaded.source == "random":
            info.notes.append("random weights: accuracy is meaningless; speed and memory are those of the architecture")
        first_device = str(next(m.parameters()).device)
        backend = cls(m, loaded.tokenizer, info, first_device)
        backend.compiled, why = decide_compile(compile, torch.device(first_device).type, m)
        info.engine.update(compiled=backend.compiled, compile_reason=why)
        if torch.device(first_device).type == "cpu" and not backend.compiled:
            from harness.backends.cpu_linear import prepack

            info.engine.update(prepack(m) if cpu_prepack else {"cpu_prepack": False, "cpu_prepack_reason": "requested off: plain matmul"})
        return backend

    # ---- hooks ---------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        return render(request, self.template)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def engine_sampling(self, sampling) -> dict:
        greedy = sampling.greedy
        argmax = HEAD_NOTE if head_decides(sampling) and not self.compiled and head_applies(self.model) else "argmax"
        return {**NEUTRAL, "repetition_penalty": sampling.repetition_penalty, "decoding": argmax if greedy else "per-row sampler",
                "temperature": 0.0 if greedy else sampling.temperature, "top_p": 1.0 if greedy else sampling.top_p,
                "top_k": 0 if greedy else sampling.top_k, "min_p": 0.0 if greedy else sampling.min_p}

    # ---- log-likelihood scoring (backends/logprobs.py mirrors lm-eval's HFLM) ----------------
    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        kwargs = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and text.startswith(self.tokenizer.decode(self.prefix_token_id)):
            kwargs["add_special_tokens"] = False  # the text already carries its BOS
        return self.tokenizer.encode(text, **kwargs)

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    def score(self, requests: list, max_length: int | None = None) -> list:
        from harness.backends.logprobs import score_causal_lm

        return score_causal_lm(self.model, self.device, requests, max_length or self.scoring_length)

    @property
    def scoring_length(self) -> int:
        """The longest window scored at once: the model's context, else the tokenizer's, else 2048 (lm-eval's rule)."""
        cfg = self.model.config.get_text_config()
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            if getattr(cfg, attr, None) is not None:
                return int(getattr(cfg, attr))
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if limit is not None and limit < int(1e30) else 2048

    def synchronize(self) -> None:
        kind = torch.device(self.device).type
        mod = getattr(torch, kind, None)
        if kind != "cpu" and mod is not None and hasattr(mod, "synchronize"):
            mod.synchronize()

    def _devices(self) -> tuple[str, list[int] | None]:
        d = torch.device(self.device)
        sharded = getattr(self.model, "hf_device_map", None) and len(set(self.model.hf_device_map.values())) > 1
        return d.type, None if sharded or d.index is None else [d.index]  # a device_map spans every device

    def memory(self) -> dict:
        from harness.measure.memory import device_peak

        return {"device": device_peak(*self._devices())}

    def reset_peak_memory(self) -> None:
        from harness.measure.memory import reset_device_peak

        reset_device_peak(*self._devices())

    def max_batch_size(self) -> int:
        return 8 if torch.device(self.device).type == "cpu" else 64

    def close(self) -> None:
        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- generation ------------------------------------------------------------------------
    def continuous_unsupported(self) -> str | None:
        """Why this model cannot use continuous batching, or None when it can."""
        from harness.backends.continuous import Unsupported, check_supported

        if getattr(self.model, "hf_device_map", None) and len(set(self.model.hf_device_map.values())) > 1:
            return "a model split over devices (--device-map)"
        try:
            check_supported(self.model)
        except Unsupported as e:
            return str(e)
        return None

    def generate_continuous(self, requests, slots: int, on_done=None, should_stop=lambda: None) -> list[Completion]:
        """Every request with at most `slots` in flight; a finished row's slot goes to the next request."""
        from harness.backends.continuous import run

        return run(self, requests, slots, on_done, should_stop)

    def generate(self, requests: list[Request]) -> list[Completion]:
        if not self.compiled:
            return self._generate(requests, False)
        try:
            return self._generate(requests, True)
        except Exception as e:
            from harness.backends.chunks import is_oom

            if is_oom(e):
                raise
            self.compiled = False  # eager from here on, and run.json says why
            first = (str(e).strip().splitlines() or [""])[0][:200]
            self.info.engine.update(compiled=False, compile_reason=f"fell back to eager: a compiled generation failed ({type(e).__name__}: {first})")
            return self._generate(requests, False)

    def _generate(self, requests: list[Request], compiled: bool) -> list[Completion]:
        prompts = [self.render(r) for r in requests]
        templated = self.has_template and requests[0].chat
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated,
                             pad_to_multiple_of=BUCKET if compiled else None)
        input_lens = enc.attention_mask.sum(dim=1).tolist()
        enc = enc.to(self.device)
        s0 = requests[0].sampling
        if any(r.sampling.stop != s0.stop or r.sampling.repetition_penalty != s0.repetition_penalty for r in requests):
            raise ValueError("a static batch must share its stop strings and repetition_penalty")
        if s0.presence_penalty or s0.frequency_penalty:
            raise ValueError("the transformers engine has no presence or frequency penalty")
        stop_criteria = None
        if s0.stop:
            from transformers.generation.stopping_criteria import StopStringCriteria

            stop_criteria = StopStringCriteria(self.tokenizer, list(s0.stop))
        clock = StepClock(self.device, self.synchronize, stop_criteria)
        # Rows may differ in length targets: the batch runs to the longest, each row is cut at its own
        # max and EOS is held back per row until its own min (see RowSampler).
        max_new = max(r.sampling.max_new_tokens for r in requests)
        static = generation_kwargs(enc.input_ids.shape[1], max_new) if compiled else {}
        gen_cfg = GenerationConfig(max_new_tokens=max_new, eos_token_id=sorted(self.eos_ids) or None,
                                   pad_token_id=self.tokenizer.pad_token_id,
                                   **{**NEUTRAL, "repetition_penalty": s0.repetition_penalty}, **static)
        if compiled:
            self._compile_shape(enc, gen_cfg)
        start = clock.start()
        with torch.inference_mode(), float32_greedy(self.model, off=compiled) as refiner:
            sampler = RowSampler(requests, self.vocab_limit, self.device, eos_ids=self.eos_ids, prompt_width=enc.input_ids.shape[1],
                                 refiner=refiner)
            out = self.model.generate(**enc, generation_config=gen_cfg, logits_processor=LogitsProcessorList([sampler]),
                                      stopping_criteria=StoppingCriteriaList([clock]))
        self.synchronize()
        end = time.perf_counter()
        steps = clock.seconds()
        new = out[:, enc.input_ids.shape[1]:].tolist()
        results = []
        for row, req in enumerate(requests):
            cap = req.sampling.max_new_tokens
            stop_step = clock.stopped_at.get(row)
            step, reason = row_end(new[row][:cap], self.eos_ids, stop_step if stop_step is not None and stop_step < cap else None)
            generated = new[row][:step + 1]
            ids = generated[:-1] if reason == "eos" else generated  # the EOS token counts as output but is not text
            text = self.decode(ids)
            if reason == "stop":
                text = cut_at_stop(text, req.sampling.stop)
            results.append(Completion(text=text, input_tokens=int(input_lens[row]), output_tokens=step + 1, finish_reason=reason,
                                      token_ids=generated,
                                      ttft_s=steps[0] if steps else None, e2e_s=steps[step] if step < len(steps) else end - start,
                                      batch_size=len(requests), batch_wall_s=end - start))
        return results

    def _compile_shape(self, enc, gen_cfg) -> None:
        """Compile a new (batch, prompt bucket, cache bucket) shape with a short untimed generation,
        so compilation stays out of the rows' TTFT and e2e; its seconds are recorded."""
        shape = (enc.input_ids.shape[0], enc.input_ids.shape[1], gen_cfg.max_cache_len)
        if shape in self._compiled_shapes:
            return
        t0 = time.perf_counter()
        with torch.inference_mode():
            self.model.generate(**enc, generation_config=GenerationConfig(**{**gen_cfg.to_diff_dict(), "max_new_tokens": 4}))
        self.synchronize()
        self._compiled_shapes.add(shape)
        engine = self.info.engine
        engine["compile_warmup_s"] = engine.get("compile_warmup_s", 0.0) + time.perf_counter() - t0
        engine["compiled_shapes"] = sorted(self._compiled_shapes)


def _layout(model):
    """Weight bytes by how a decoding step reads them (roofline); None when the model hides its embeddings."""
    from harness.measure.roofline import weight_layout_from_model

    try:
        return weight_layout_from_model(model)
    except (AttributeError, TypeError, ValueError, KeyError):
        return None
