"""A scripted backend for offline pipeline tests: no model, no torch.

`--model fake:<script>` where the script is a JSON file mapping a substring of the prompt to the
text to answer (first match wins; "*" matches anything), or `fake:echo`, which answers the last
number in the prompt inside \\boxed{}. A token is a word with the whitespace before it, and the
think tags are tokens of their own, so a reply's tokens join back into its text exactly and the
ids locate `</think>` as a real tokenizer's would. Timings are measured.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from harness.backends.base import Backend
from harness.core.types import Completion, ModelInfo, Request
from harness.errors import ModelLoadError

_TOKEN = re.compile(r"\s*(?:</?think>|(?:(?!</?think>)\S)+)|\s+$")


def pieces(text: str) -> list[str]:
    """The fake tokenizer: "".join(pieces(t)) == t."""
    return _TOKEN.findall(text)


class FakeBackend(Backend):
    name = "fake"
    install = "scripted, for tests (fake:echo or fake:SCRIPT.json)"
    logprobs_unsupported = "scripted answers carry no probabilities"

    def __init__(self, script: dict[str, str] | None, name: str):
        self.script = script
        self.info = ModelInfo(name_or_path=name, backend=self.name, dtype=None, num_parameters=0, context_length=None)
        self.calls: list[list[str]] = []
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []

    @classmethod
    def from_options(cls, model: str, **_options) -> FakeBackend:
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
        return len(pieces(text))

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        ids = []
        for piece in pieces(text):
            if piece not in self.vocab:
                self.vocab[piece] = len(self.words)
                self.words.append(piece)
            ids.append(self.vocab[piece])
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self.words[i] for i in ids)

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
            ids = self.encode(self._answer(p))
            reason = "eos"
            if len(ids) > r.sampling.max_new_tokens:
                ids, reason = ids[: r.sampling.max_new_tokens], "length"
            now = time.perf_counter() - start
            out.append(Completion(text=self.decode(ids), input_tokens=self.count_tokens(p), output_tokens=len(ids), finish_reason=reason,
                                  token_ids=ids, ttft_s=now, e2e_s=now, batch_size=len(requests)))
        wall = time.perf_counter() - start
        for c in out:
            c.batch_wall_s = wall
        return out
