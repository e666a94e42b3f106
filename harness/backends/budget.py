"""`BudgetedBackend`: thinking capped at a budget, then the answer.

It wraps any backend that accepts an assistant prefill. Phase 1 generates at most `budget` tokens
and stops at `</think>`. Phase 2 closes the trace (with the sentence Qwen3's documentation suggests
when the cap was hit) and generates the answer within `answer_tokens`. Timings add up (TTFT from
phase 1, e2e over both phases); token counts are the sum of both.
"""

from __future__ import annotations

from dataclasses import replace

from harness.backends.base import Backend
from harness.core.types import Completion, Request
from harness.errors import ConfigError

CLOSE = "</think>"
CUT_OFF = "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking directly now.\n</think>\n\n"


class BudgetedBackend(Backend):
    def __init__(self, inner: Backend, budget: int, answer_tokens: int):
        if inner.name in ("openai",):
            raise ConfigError("thinking budgets need an assistant prefill, which chat APIs do not accept",
                              "use a local backend (transformers, vllm, llamacpp) for --think-budgets")
        self.inner, self.budget, self.answer_tokens = inner, budget, answer_tokens
        self.name, self.info = inner.name, inner.info

    def generate(self, requests: list[Request]) -> list[Completion]:
        first = [replace(r, sampling=replace(r.sampling, max_new_tokens=self.budget, min_new_tokens=0,
                                             stop=tuple(r.sampling.stop) + (CLOSE,))) for r in requests]
        thought = self.inner.generate(first)
        second = []
        for r, t in zip(requests, thought):
            closer = CLOSE + "\n\n" if t.finish_reason == "stop" and not any(s in t.text for s in r.sampling.stop) else CUT_OFF
            second.append(replace(r, prefill=r.prefill + t.text + closer,
                                  sampling=replace(r.sampling, max_new_tokens=self.answer_tokens, min_new_tokens=0)))
        answered = self.inner.generate(second)
        out = []
        for r, t, a, s in zip(requests, thought, answered, second):
            closer = s.prefill[len(r.prefill) + len(t.text):]
            out.append(Completion(
                text=t.text + closer + a.text, input_tokens=t.input_tokens,
                output_tokens=None if t.output_tokens is None or a.output_tokens is None else t.output_tokens + a.output_tokens,
                finish_reason=a.finish_reason, ttft_s=t.ttft_s,
                e2e_s=None if t.e2e_s is None or a.e2e_s is None else t.e2e_s + a.e2e_s,
                reasoning_text=t.reasoning_text, batch_size=len(requests), thinking_tokens=t.output_tokens,
                batch_wall_s=(t.batch_wall_s or 0) + (a.batch_wall_s or 0),
                unmeasured={**t.unmeasured, **a.unmeasured, "note": "two phases: thinking capped, then answer; closing text counted in neither"}))
        return out

    # hooks delegate to the wrapped backend
    def render(self, request):
        return self.inner.render(request)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def decode(self, ids):
        return self.inner.decode(ids)

    def engine_sampling(self, sampling):
        return self.inner.engine_sampling(sampling)

    def synchronize(self):
        self.inner.synchronize()

    def memory(self):
        return self.inner.memory()

    def reset_peak_memory(self):
        self.inner.reset_peak_memory()

    def max_batch_size(self):
        return self.inner.max_batch_size()

    def close(self):
        pass  # the wrapped backend is shared across budgets; run_budgets closes it
