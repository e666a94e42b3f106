"""The one prompt renderer: a Request becomes the exact text a model sees, the same on every
engine that applies a chat template locally (transformers, vLLM, llama.cpp).

A chat request goes through the model's chat template with `add_generation_prompt=True` and the
protocol's template kwargs (e.g. Qwen3's `enable_thinking`); a plain request (`chat=False`, a
few-shot prompt for a base model) or a model without a template gets the message contents as
plain text; then the assistant prefill is joined on unless the template already ends with it.
Engines differ only in how they run a template (`Template`), never in what they do around it.
Imports nothing from prompt building (harness/protocols.py builds messages and uses this).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.core.types import Message, Request

# messages, template kwargs -> the rendered generation prompt
Template = Callable[[list[Message], Mapping[str, object]], str]


def plain_prompt(messages: Sequence[Message]) -> str:
    """The text of a chat=False prompt (a single user message); several messages are joined by
    blank lines, which is what a template-less model would see."""
    return "\n\n".join(str(m.get("content", "")) for m in messages)


def join_prefill(rendered: str, prefill: str) -> str:
    """Append the prefill unless the rendered generation prompt already ends with it (R1 distill
    templates newer than about 2025-02-09 end with "<think>\\n" themselves)."""
    if prefill and rendered.rstrip().endswith(prefill.strip()):
        return rendered
    return rendered + prefill


def render(request: Request, template: Template | None) -> str:
    """The prompt text for `request` through `template` (None: the model has no chat template)."""
    messages = [dict(m) for m in request.messages]
    if template is not None and request.chat:
        text = template(messages, dict(request.template_kwargs))
    else:
        text = plain_prompt(messages)
    return join_prefill(text, request.prefill)


def hf_template(tokenizer: Any) -> Template | None:
    """A Hugging Face tokenizer's chat template (transformers, vLLM, a `tokenizer` option)."""
    if not getattr(tokenizer, "chat_template", None):
        return None

    def apply(messages: list[Message], kwargs: Mapping[str, object]) -> str:
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs))

    return apply


def formatter_template(formatter: Any) -> Template:
    """llama-cpp-python's Jinja2ChatFormatter over a GGUF's embedded template (it renders with the
    same Jinja settings as transformers and passes extra kwargs to the template)."""

    def apply(messages: list[Message], kwargs: Mapping[str, object]) -> str:
        return str(formatter(messages=messages, **kwargs).prompt)

    return apply
