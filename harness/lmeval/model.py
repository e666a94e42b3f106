"""Our backends as an lm-evaluation-harness model: `lm_eval --model harness` (through the launcher
`python -m harness.lmeval`) or `simple_evaluate(model=HarnessLM(...))`.

Owns the mapping between lm-eval's request objects and ours: an lm-eval `generate_until`
request (context, gen_kwargs) becomes a `Request` with `Sampling` (until -> stop,
max_gen_toks -> max_new_tokens, do_sample/temperature/top_p/top_k); requests are batched
through `harness.generate.generate_all`, the same timed path `harness run` uses, and every
request's `Completion` timings are kept (`HarnessLM.timings`, and appended to a JSONL file when
HARNESS_LMEVAL_TIMINGS or the `timings` model argument names one). We are a generation harness:
the log-likelihood request types raise NotImplementedError.

Chat templates: lm-eval calls `apply_chat_template(messages)` and later passes the rendered
string back as a context. We remember which messages produced each rendered string, so the
request goes to the backend as chat messages (rendered by the backend itself, exactly as in
`harness run`) and not as pre-rendered text that a backend would template or tokenise again.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import postprocess_generated_text

from harness.backends.base import Completion, Request, Sampling
from harness.errors import ConfigError

log = logging.getLogger(__name__)

TIMINGS_ENV = "HARNESS_LMEVAL_TIMINGS"
LM_EVAL_CLI_DEVICE = "cuda:0"  # what lm-eval's CLI passes when no --device is given
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's own default for generate_until (HFLM, vLLM)

# model_args keys passed straight to RunConfig (same names as `harness run` flags).
_CONFIG_KEYS = ("model", "backend", "revision", "tokenizer", "device", "dtype", "seed", "trust_remote_code", "allow_pickle",
                "device_map", "base_url", "api_key_env", "max_concurrency", "tensor_parallel_size")
_OWN_KEYS = ("pretrained", "batch_size", "max_batch_size", "max_new_tokens", "max_gen_toks", "think_end_token", "enable_thinking",
             "timings")
_GEN_KEYS = {"until", "max_gen_toks", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k"}
LOGLIKELIHOOD_HELP = ("the harness model only generates text (generate_until); {kind} requests need token log-probabilities: "
                      "run this task with lm-eval's own `--model hf`, or pick a generate_until task")


def sampling_from_gen_kwargs(gen_kwargs: dict, default_max: int) -> tuple[Sampling, list[str], list[str]]:
    """(Sampling, stop strings, ignored keys) for one lm-eval request's generation kwargs.

    do_sample False means greedy whatever the temperature; do_sample True with no positive
    temperature samples at 1.0 (as transformers does); do_sample absent samples when the
    temperature is positive (as vLLM does)."""
    kw = dict(gen_kwargs or {})
    until = kw.pop("until", None)
    stops = [until] if isinstance(until, str) else [s for s in (until or []) if s]
    try:
        max_gen, alias = kw.pop("max_gen_toks", None), kw.pop("max_new_tokens", None)
        max_new = int(max_gen if max_gen is not None else alias if alias is not None else default_max)
        do_sample = kw.pop("do_sample", None)
        temperature = _number(kw.pop("temperature", None), 0.0, float)
        top_p = _number(kw.pop("top_p", None), 1.0, float)
        top_k = _number(kw.pop("top_k", None), 0, int)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid generation kwargs {gen_kwargs!r}", "numbers for max_gen_toks, temperature, top_p, top_k") from None
    if do_sample is False:
        temperature = 0.0
    elif do_sample is True and temperature <= 0:
        temperature = 1.0
    if max_new <= 0 or temperature < 0 or not 0 < top_p <= 1 or top_k < 0:
        raise ConfigError(f"invalid generation kwargs {gen_kwargs!r}",
                          "max_gen_toks > 0, temperature >= 0, 0 < top_p <= 1 and top_k >= 0")
    sampling = Sampling(max_new_tokens=max_new, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                        top_k=top_k if temperature > 0 else 0, stop=tuple(stops))
    return sampling, stops, sorted(kw)


def _number(value, default, kind):
    return default if value is None else kind(value)


def _batch_size(value) -> int | str:
    """lm-eval gives 1, "8", "auto" or "auto:4"; we take an int or "auto" (which halves on out-of-memory)."""
    text = str(value).strip().lower()
    if text.startswith("auto"):
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"batch_size={value!r} is not a number or auto", "e.g. batch_size=8") from None


def _resolve_device(device: str, dtype: str):
    """harness.runtime.device.resolve, except that lm-eval's CLI default ("cuda:0", sent even when the user
    named no device) falls back to auto where CUDA is absent, as lm-eval's own HF model does."""
    from harness.runtime.device import resolve
    from harness.errors import DeviceError

    try:
        return resolve(device, dtype)
    except DeviceError:
        if device != LM_EVAL_CLI_DEVICE:
            raise
        log.warning("harness model: lm-eval's default device cuda:0 is not available; choosing automatically")
        return resolve("auto", dtype)


@register_model("harness")
class HarnessLM(LM):
    """An lm-eval LM backed by any cnllm-harness backend (transformers, llama.cpp, vLLM, OpenAI-compatible, fake).

    model_args (lm-eval's "k=v,..." string or keywords): model (or pretrained), backend, device, dtype,
    batch_size, max_new_tokens (or max_gen_toks: the default when a task sets no max_gen_toks), seed,
    revision, tokenizer, trust_remote_code, allow_pickle, device_map, base_url, api_key_env,
    max_concurrency, tensor_parallel_size, think_end_token (answer = text after it), enable_thinking (chat
    template switch), timings (JSONL path)."""

    def __init__(self, model: str | None = None, *, pretrained: str | None = None, batch_size=None, max_batch_size=None,
                 max_new_tokens: int | None = None, max_gen_toks: int | None = None, think_end_token: str | None = None,
                 enable_thinking: bool | None = None, timings: str | None = None, **options: Any):
        super().__init__()
        from harness.backends import load_backend
        from harness.config import make_config

        unknown = sorted(set(options) - set(_CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"unknown model_args for --model harness: {', '.join(unknown)}",
                              f"accepted: {', '.join(sorted(_CONFIG_KEYS + _OWN_KEYS))}")
        name = model or pretrained
        if not name:
            raise ConfigError("--model harness needs a model",
                              "pass --model_args model=random:tiny (or a Hub id, a folder, a .gguf, openai:<name>)")
        values = {k: v for k, v in options.items() if v is not None}
        if batch_size is not None:
            values["batch_size"] = _batch_size(batch_size)
        self.config = make_config(model=str(name), max_new_tokens=max_new_tokens or max_gen_toks or DEFAULT_MAX_GEN_TOKS, **values)
        self.max_batch_size = max_batch_size  # accepted for lm-eval's CLI; "auto" adapts on its own
        self.think_end_token = think_end_token or None
        # passed to the chat template, as lm-eval's HF model does (Qwen3's thinking switch)
        self.template_kwargs = (("enable_thinking", bool(enable_thinking)),) if enable_thinking is not None else ()
        self.dev = _resolve_device(self.config.device, self.config.dtype)
        self._device = self.dev.torch_device
        t0 = time.perf_counter()
        self.backend = load_backend(self.config, self.dev)
        self.load_s = time.perf_counter() - t0
        self.timings: list[dict] = []  # one row per generated request, warm-up excluded
        self.batches: list[dict] = []
        self.warmup: dict = {"s": 0.0, "requests": 0}
        self.wall_s = 0.0
        self._chats: dict[str, tuple[tuple[dict, ...], str]] = {}
        self._ignored: set[str] = set()
        path = timings or os.environ.get(TIMINGS_ENV)
        self.timings_path = Path(path) if path else None

    # ---- lm-eval's model interface ---------------------------------------------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(LOGLIKELIHOOD_HELP.format(kind="loglikelihood (multiple_choice)"))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(LOGLIKELIHOOD_HELP.format(kind="loglikelihood_rolling (perplexity)"))

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        if not requests:
            return []
        from harness.plan import sample_seed

        ours: list[Request] = []
        stops: list[list[str]] = []
        seen: Counter = Counter()
        for i, inst in enumerate(requests):
            context, gen_kwargs = inst.args[0], inst.args[1]
            sampling, until, ignored = sampling_from_gen_kwargs(gen_kwargs, self.config.max_new_tokens)
            self._warn_ignored(ignored)
            where = f"{inst.doc_id}/{inst.idx}"
            repeat = seen[(inst.task_name, where)]  # lm-eval repeats a request by cloning it
            seen[(inst.task_name, where)] += 1
            messages, prefill, chat = self._messages(context)
            seed = sample_seed(self.config.seed, str(inst.task_name), where, repeat)
            ours.append(Request(key=str(i), messages=messages, sampling=sampling, seed=seed, prefill=prefill, chat=chat,
                                template_kwargs=self.template_kwargs if chat else ()))
            stops.append(until)
        done = self._generate(ours, requests, disable_tqdm)
        out = []
        for inst, req, until, completion in zip(requests, ours, stops, done):
            text = postprocess_generated_text(completion.text, until, self.think_end_token)
            self.cache_hook.add_partial("generate_until", inst.args, text)
            out.append(text)
        return out

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        messages = tuple({"role": m["role"], "content": m["content"]} for m in chat_history)
        prefill = ""
        if not add_generation_prompt and messages and messages[-1]["role"] == "assistant":
            messages, prefill = messages[:-1], messages[-1]["content"]  # lm-eval's gen_prefix: the answer's start
        text = self.backend.render(Request(key="template", messages=messages, sampling=Sampling(), seed=0, prefill=prefill,
                                           template_kwargs=self.template_kwargs))
        self._chats[text] = (messages, prefill)
        return text

    @property
    def tokenizer_name(self) -> str:
        return (self.config.tokenizer or self.backend.info.name_or_path).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        tok = getattr(self.backend, "tokenizer", None) or getattr(self.backend, "_tokenizer", None)
        template = getattr(tok, "chat_template", None)
        return template if isinstance(template, str) else None

    @property
    def max_length(self) -> int | None:
        return self.backend.info.context_length

    def get_model_info(self) -> dict:
        """Merged by simple_evaluate into results["config"] after the run, so it carries our timings."""
        info = self.backend.info
        return {"model_num_parameters": info.num_parameters, "model_dtype": info.dtype, "model_revision": info.revision,
                "harness": {"backend": info.backend, "device": self.dev.asdict(), "random_weights": info.random_weights,
                            "notes": list(info.notes), "perf": self.perf()}}

    # ---- ours -------------------------------------------------------------------------------
    def perf(self) -> dict:
        """run.json's perf timing block over every request generated so far."""
        from harness.measure.timing import perf_summary

        return perf_summary(self.timings, wall_s=self.wall_s, load_s=self.load_s, warmup=self.warmup, batches=self.batches)

    def close(self) -> None:
        self.backend.close()

    def _messages(self, context: str) -> tuple[tuple[dict, ...], str, bool]:
        if context in self._chats:
            messages, prefill = self._chats[context]
            return messages, prefill, True
        return ({"role": "user", "content": context},), "", False

    def _warn_ignored(self, keys: list[str]) -> None:
        new = [k for k in keys if k not in self._ignored]
        if new:
            self._ignored.update(new)
            log.warning("harness model: generation kwargs %s are not supported and were ignored (supported: %s)",
                        ", ".join(new), ", ".join(sorted(_GEN_KEYS)))

    def _generate(self, ours: list[Request], requests, disable_tqdm: bool) -> list[Completion]:
        """Batches of requests that share decoding settings (a backend batch must), through the timed path."""
        from tqdm import tqdm

        from harness.generate import generate_all

        if not self.warmup["requests"]:
            self._warm_up(ours[0])
        groups: dict[tuple, list[Request]] = {}
        for req in ours:
            groups.setdefault((req.sampling, req.chat), []).append(req)
        done: dict[str, Completion] = {}
        bar = tqdm(total=len(ours), disable=disable_tqdm or self.rank != 0, desc="harness generate_until")
        writer = None
        if self.timings_path is not None:
            from harness.results.store import SampleWriter

            self.timings_path.parent.mkdir(parents=True, exist_ok=True)
            writer = SampleWriter(self.timings_path)

        def on_batch(reqs, completions, batch):
            rows = []
            for req, c in zip(reqs, completions):
                done[req.key] = c
                rows.append(self._timing_row(requests[int(req.key)], req, c))
            self.timings.extend(rows)
            self.batches.append(batch.asdict())
            if writer is not None:
                writer.append(rows)

        t0 = time.perf_counter()
        try:
            for group in groups.values():
                lengths = [self.backend.count_tokens(p) or len(p) for p in (self.backend.render(r) for r in group)]
                generate_all(self.backend, group, lengths, batch_size=self.config.batch_size, on_batch=on_batch, progress=bar.update)
        finally:
            self.wall_s += time.perf_counter() - t0
            bar.close()
            if writer is not None:
                writer.close()
        return [done[r.key] for r in ours]

    def _warm_up(self, req: Request) -> None:
        """One short generation before the first timed batch, as `harness run` does (kernels, caches)."""
        short = replace(req, sampling=replace(req.sampling, max_new_tokens=min(8, req.sampling.max_new_tokens)))
        t0 = time.perf_counter()
        self.backend.generate([short])
        self.backend.synchronize()
        self.backend.reset_peak_memory()
        self.warmup = {"s": time.perf_counter() - t0, "requests": 1, "max_new_tokens": short.sampling.max_new_tokens}

    @staticmethod
    def _timing_row(inst, req: Request, c: Completion) -> dict:
        from harness.measure.timing import tpot

        unmeasured = dict(c.unmeasured)
        t = tpot(c.e2e_s, c.ttft_s, c.output_tokens)
        if t is None and "tpot_s" not in unmeasured:
            unmeasured["tpot_s"] = "needs ttft, e2e and at least 2 output tokens"
        return {"task": inst.task_name, "doc_id": inst.doc_id, "idx": inst.idx, "seed": req.seed,
                "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "finish_reason": c.finish_reason,
                "ttft_s": c.ttft_s, "tpot_s": t, "e2e_s": c.e2e_s, "batch_size": c.batch_size,
                "batch_wall_s": c.batch_wall_s, "sampling": asdict(req.sampling), "unmeasured": unmeasured}
