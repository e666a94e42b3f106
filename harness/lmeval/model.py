"""Our backends as an lm-evaluation-harness model: `lm_eval --model harness` (through the launcher
`python -m harness.lmeval`) or `simple_evaluate(model=HarnessLM(...))`.

Owns the mapping between lm-eval's request objects and ours: an lm-eval `generate_until`
request (context, gen_kwargs) becomes a `Request` with `Sampling` (until -> stop,
max_gen_toks -> max_new_tokens, do_sample/temperature/top_p/top_k); requests are batched
through `harness.orchestration.generate.generate_all`, the same timed path `harness run` uses, and every
request's `Completion` timings are kept (`HarnessLM.timings`, and appended to a JSONL file when
HARNESS_LMEVAL_TIMINGS or the `timings` model argument names one). `loglikelihood` and
`loglikelihood_rolling` requests are tokenised with lm-eval's rules and scored by the backend
(harness/backends/logprobs.py: transformers and llama.cpp; other engines refuse with the reason),
in timed length-sorted batches with one timing row per request.

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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import postprocess_generated_text

from harness.core.types import Completion, Request, Sampling
from harness.errors import ConfigError
from harness.lmeval.args import CONFIG_KEYS, DEFAULT_MAX_GEN_TOKS, GEN_KEYS, OWN_KEYS, TEXT_KEYS, TIMINGS_ENV, parse_batch_size, parse_flag, positive_int, resolve_device, sampling_from_gen_kwargs

log = logging.getLogger(__name__)


PROMPT_ALLOWANCE = 2048  # prompt tokens assumed beside the generation budget for the memory check


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
                 enable_thinking: bool | None = None, timings: str | None = None, max_length: int | None = None, **options: Any):
        super().__init__()
        from harness.backends import load_backend
        from harness.config import make_config

        unknown = sorted(set(options) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"unknown model_args for --model harness: {', '.join(unknown)}",
                              f"accepted: {', '.join(sorted(CONFIG_KEYS + OWN_KEYS))}")
        if model is not None and pretrained is not None and str(model) != str(pretrained):
            raise ConfigError(f"model={model} and pretrained={pretrained} name different models", "pass one of them")
        name = model if model is not None else pretrained
        if not name:
            raise ConfigError("--model harness needs a model",
                              "pass --model_args model=random:tiny (or a Hub id, a folder, a .gguf, openai:<name>)")
        # lm-eval's "k=v" parser turns digits into numbers: a revision sha or a folder name can arrive as an int
        values = {k: str(v) if k in TEXT_KEYS and not isinstance(v, str) else v for k, v in options.items() if v is not None}
        if batch_size is not None:
            values["batch_size"] = parse_batch_size(batch_size)
        budget = positive_int("max_new_tokens", max_new_tokens) or positive_int("max_gen_toks", max_gen_toks) or DEFAULT_MAX_GEN_TOKS
        self.config = make_config(model=str(name), max_new_tokens=budget, **values)
        self.max_batch_size = positive_int("max_batch_size", max_batch_size)  # accepted for lm-eval's CLI; "auto" adapts on its own
        self._max_length = positive_int("max_length", max_length)
        self.think_end_token = str(think_end_token) if think_end_token not in (None, "") else None
        # passed to the chat template, as lm-eval's HF model does (Qwen3's thinking switch)
        self.template_kwargs = (("enable_thinking", parse_flag("enable_thinking", enable_thinking)),) if enable_thinking is not None else ()
        from harness.planning.prepare import prepare_model

        # the dtype `harness run` would choose and its memory refusal, at lm-eval's batch and this budget
        batch_size = values.get("batch_size")
        batch = batch_size if isinstance(batch_size, int) else 1
        self.dev = prepare_model(self.config, resolve_device(self.config.device, self.config.dtype), batch=batch,
                                 context=budget + PROMPT_ALLOWANCE, what="lm-eval model").device
        self._device = self.dev.torch_device
        t0 = time.perf_counter()
        self.backend = load_backend(self.config, self.dev)
        self.load_s = time.perf_counter() - t0
        self.timings: list[dict] = []  # one row per generated request, warm-up excluded
        self.batches: list[dict] = []
        self.score_batches: list[dict] = []  # loglikelihood batches: rows, input_tokens, wall_s
        self.warmup: dict = {"s": 0.0, "requests": 0}
        self.wall_s = 0.0
        self._chats: dict[str, tuple[tuple[dict, ...], str]] = {}
        self._ignored: set[str] = set()
        path = timings or os.environ.get(TIMINGS_ENV)
        self.timings_path = Path(path) if path else None

    # ---- lm-eval's model interface ---------------------------------------------------------
    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> HarnessLM:
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> HarnessLM:
        """model_args win over lm-eval's own flags (--device, --batch_size, --max_batch_size): the CLI sends
        its defaults (device cuda:0, batch_size 1) even when the user typed nothing, while model_args are explicit."""
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None and k not in arg_dict}
        return cls(**arg_dict, **extra)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        from harness.backends.logprobs import ScoreRequest, encode_pair

        if self.template_kwargs and dict(self.template_kwargs).get("enable_thinking"):
            raise ConfigError("enable_thinking=True does not apply to loglikelihood (multiple_choice) tasks", "drop enable_thinking for them")
        if not requests:
            return []
        prefix = self.backend.prefix_token_id
        ours = []
        for i, inst in enumerate(requests):
            ctx, cont = encode_pair(self.backend.encode, prefix, *inst.args)
            ours.append(ScoreRequest(key=str(i), context=tuple(ctx), continuation=tuple(cont)))
        scores = self._score(ours, list(requests), "loglikelihood", disable_tqdm)
        out = [(s.logprob, s.greedy) for s in scores]
        for inst, answer in zip(requests, out):
            self.cache_hook.add_partial("loglikelihood", inst.args, answer)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        from harness.backends.logprobs import ScoreRequest, rolling_windows

        if not requests:
            return []
        prefix, length = self.backend.prefix_token_id, self.scoring_length
        ours: list[ScoreRequest] = []
        owner: list[int] = []
        for i, inst in enumerate(requests):
            for ctx, cont in rolling_windows(self.backend.encode(inst.args[0]), prefix, length):
                ours.append(ScoreRequest(key=f"{i}/{len(ours)}", context=tuple(ctx), continuation=tuple(cont)))
                owner.append(i)
        per: list[list] = [[] for _ in requests]
        for i, s in zip(owner, self._score(ours, [requests[i] for i in owner], "loglikelihood_rolling", disable_tqdm, rows=False)):
            per[i].append(s)
        totals = [sum(s.logprob for s in scores) for scores in per]
        self._record([self._score_row(inst, "loglikelihood_rolling", per[i]) for i, inst in enumerate(requests)])
        for inst, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", inst.args, total)
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        if not requests:
            return []
        from harness.planning.plan import sample_seed

        ours: list[Request] = []
        stops: list[list[str]] = []
        seen: Counter = Counter()
        for i, inst in enumerate(requests):
            context, gen_kwargs = inst.args[0], inst.args[1]
            sampling, until, ignored = sampling_from_gen_kwargs(gen_kwargs, self.config.max_new_tokens or DEFAULT_MAX_GEN_TOKS)
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
        for inst, _req, until, completion in zip(requests, ours, stops, done):
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
        return self._max_length or self.backend.info.context_length

    @property
    def scoring_length(self) -> int:
        """Tokens per scored window: the max_length model argument, else the backend's own (lm-eval HFLM's rule)."""
        return self._max_length or self.backend.scoring_length

    def get_model_info(self) -> dict:
        """Merged by simple_evaluate into results["config"] after the run, so it carries our timings."""
        info = self.backend.info
        return {"model_num_parameters": info.num_parameters, "model_dtype": info.dtype, "model_revision": info.revision,
                "harness": {"backend": info.backend, "device": self.dev.asdict(), "random_weights": info.random_weights,
                            "notes": list(info.notes), "perf": self.perf()}}

    # ---- ours -------------------------------------------------------------------------------
    def perf(self) -> dict:
        """run.json's perf timing block over every request generated so far; scoring requests apart, under "loglikelihood"."""
        from harness.measure.timing import percentiles, perf_summary

        generated = [r for r in self.timings if r["request_type"] == "generate_until"]
        out = perf_summary(generated, wall_s=self.wall_s, load_s=self.load_s, warmup=self.warmup, batches=self.batches)
        scored = [r for r in self.timings if r["request_type"] != "generate_until"]
        if scored:
            wall = sum(b["wall_s"] for b in self.score_batches)
            tokens = sum(b["input_tokens"] for b in self.score_batches)
            out["loglikelihood"] = {"requests": len(scored), "batches": len(self.score_batches), "e2e_s": percentiles([r["e2e_s"] for r in scored]),
                                    "input_tokens": tokens, "input_tokens_per_s": tokens / wall if wall > 0 else None}
        return out

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
                        ", ".join(new), ", ".join(sorted(GEN_KEYS)))

    def _generate(self, ours: list[Request], requests, disable_tqdm: bool) -> list[Completion]:
        """Batches of requests that share decoding settings (a backend batch must), through the timed path."""
        from tqdm import tqdm

        from harness.orchestration.generate import first_batch, generate_all, warm_up

        if not self.warmup["requests"]:  # the run's first batch shape, cut short, as `harness run` does
            lengths = [len(self.backend.render(r)) for r in ours]
            self.warmup = warm_up(self.backend, first_batch(ours, lengths, self.config.batch_size, self.backend), 1)
        groups: dict[tuple, list[Request]] = {}
        for req in ours:
            groups.setdefault((req.sampling, req.chat), []).append(req)
        done: dict[str, Completion] = {}
        bar = tqdm(total=len(ours), disable=disable_tqdm or self.rank != 0, desc="harness generate_until")

        def on_batch(reqs, completions, batch):
            for req, c in zip(reqs, completions):
                done[req.key] = c
            self._record([self._timing_row(requests[int(req.key)], req, c) for req, c in zip(reqs, completions)])
            self.batches.append(batch.asdict())

        t0 = time.perf_counter()
        try:
            for group in groups.values():
                lengths = [self.backend.count_tokens(p) or len(p) for p in (self.backend.render(r) for r in group)]
                generate_all(self.backend, group, lengths, batch_size=self.config.batch_size, on_batch=on_batch, progress=bar.update)
        finally:
            self.wall_s += time.perf_counter() - t0
            bar.close()
        return [done[r.key] for r in ours]

    def _score(self, ours: list, owners: list, kind: str, disable_tqdm: bool, rows: bool = True) -> list:
        """Scoring requests through the backend in length-sorted, timed batches; a timing row per request when `rows`."""
        from tqdm import tqdm

        from harness.backends.logprobs import score_all

        bar = tqdm(total=len(ours), disable=disable_tqdm or self.rank != 0, desc=f"harness {kind}")

        def on_batch(idx, scores, wall):
            self.score_batches.append({"rows": len(idx), "input_tokens": sum(s.input_tokens for s in scores), "wall_s": wall})
            if rows:
                self._record([self._score_row(owners[j], kind, [s]) for j, s in zip(idx, scores)])

        t0 = time.perf_counter()
        try:
            return score_all(self.backend, ours, batch_size=self.config.batch_size, max_length=self.scoring_length, on_batch=on_batch,
                             progress=bar.update)
        finally:
            self.wall_s += time.perf_counter() - t0
            bar.close()

    def _record(self, rows: list[dict]) -> None:
        """Keep timing rows, and append them durably to the timings file when one is named."""
        self.timings.extend(rows)
        if self.timings_path is not None:
            from harness.results.store import SampleWriter

            self.timings_path.parent.mkdir(parents=True, exist_ok=True)
            writer = SampleWriter(self.timings_path)
            try:
                writer.append(rows)
            finally:
                writer.close()

    @staticmethod
    def _timing_row(inst, req: Request, c: Completion) -> dict:
        from harness.measure.timing import tpot

        unmeasured = dict(c.unmeasured)
        t = tpot(c.e2e_s, c.ttft_s, c.output_tokens)
        if t is None and "tpot_s" not in unmeasured:
            unmeasured["tpot_s"] = "needs ttft, e2e and at least 2 output tokens"
        return {"task": inst.task_name, "doc_id": inst.doc_id, "idx": inst.idx, "request_type": "generate_until", "seed": req.seed,
                "input_tokens": c.input_tokens, "output_tokens": c.output_tokens, "finish_reason": c.finish_reason,
                "ttft_s": c.ttft_s, "tpot_s": t, "e2e_s": c.e2e_s, "batch_size": c.batch_size,
                "batch_wall_s": c.batch_wall_s, "sampling": asdict(req.sampling), "unmeasured": unmeasured}

    @staticmethod
    def _score_row(inst, kind: str, scores: list) -> dict:
        """One scoring request's timing row: its windows' tokens and batch times (nothing is generated, so no TTFT)."""
        why = "scoring request: nothing is generated"
        return {"task": inst.task_name, "doc_id": inst.doc_id, "idx": inst.idx, "request_type": kind, "windows": len(scores),
                "input_tokens": sum(s.input_tokens for s in scores), "continuation_tokens": sum(s.continuation_tokens for s in scores),
                "truncated_tokens": sum(s.truncated for s in scores), "output_tokens": 0, "logprob": sum(s.logprob for s in scores),
                "ttft_s": None, "tpot_s": None, "e2e_s": sum(s.e2e_s or 0.0 for s in scores), "batch_size": max((s.batch_size for s in scores), default=0),
                "batch_wall_s": sum(s.batch_wall_s or 0.0 for s in scores), "unmeasured": {"ttft_s": why, "tpot_s": why}}
