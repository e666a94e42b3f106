"""A scripted backend for offline pipeline tests: no model, no torch.

`--model fake:<script>` where the script is a JSON file mapping a substring of the prompt to the
text to answer (first match wins; "*" matches anything), or `fake:echo`, which answers the last
number in the prompt inside \\boxed{}. Token counts are whitespace words; timings are measured.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from harness.backends.base import Backend, Completion, ModelInfo, Request
from harness.errors import ModelLoadError


class FakeBackend(Backend):
    name = "fake"
    install = "scripted, for tests (fake:echo or fake:SCRIPT.json)"

    def __init__(self, script: dict[str, str] | None, name: str):
        self.script = script
        self.info = ModelInfo(name_or_path=name, backend=self.name, dtype=None, num_parameters=0, context_length=None)
        self.calls: list[list[str]] = []

    @classmethod
    def from_options(cls, model: str, **_options) -> "FakeBackend":
        spec = model.split(":", 1)[1] if ":" in model else "echo"
        if spec == "echo":
            return cls(None, model)
        try:
            script = json.loads(Path(spec).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"fake backend script {spec} could not be read ({e})", "pass fake:echo or a JSON file") from None
        return cls(script, model)

    def render(self, request: Request) -> str:
        return "\n".join(m["content"] for m in request.messages) + request.prefill

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _answer(self, prompt: str) -> str:
        if self.script is None:
            nums = re.findall(r"-?\d+(?:\.\d+)?", prompt)
            return f"The answer is \\boxed{{{nums[-1] if nums else 0}}}."
        for needle, text in self.script.items():
            if needle == "*" or needle in prompt:
                return text
        return ""

    def generate(self, requests: list[Request]) -> list[Completion]:
        start = time.perf_counter()
        prompts = [self.render(r) for r in requests]
        self.calls.append([r.key for r in requests])
        out = []
        for r, p in zip(requests, prompts):
            text = self._answer(p)
            words = text.split()
            n = len(words)
            reason = "eos"
            if n > r.sampling.max_new_tokens:
                text, n, reason = " ".join(words[: r.sampling.max_new_tokens]), r.sampling.max_new_tokens, "length"
            now = time.perf_counter() - start
            out.append(Completion(text=text, input_tokens=self.count_tokens(p), output_tokens=n, finish_reason=reason,
                                  ttft_s=now, e2e_s=now, batch_size=len(requests)))
        wall = time.perf_counter() - start
        for c in out:
            c.batch_wall_s = wall
        return out
