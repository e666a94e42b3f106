"""Splits a reasoning model's output into its thinking trace and its final answer.

Owns one question: which part of the generated text is the answer that gets scored. R1-style
models write `<think> ... </think>` and then the answer; distill chat templates often open the
`<think>` themselves at the end of the prompt, so the output carries only the closing tag; API
servers may return the trace separately (`reasoning_content`). A trace that never closed has no
answer at all: whatever it boxed while thinking was a candidate, not a reply.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Split:
    """`closed` is False only when a trace was opened and never closed (then `answer` is "")."""

    thinking: str
    answer: str
    closed: bool


def prompt_opens_think(prompt: str) -> bool:
    """True when the prompt ends inside an opened `<think>` (the template or a prefill opened it)."""
    return prompt.rstrip().endswith(OPEN)


def split_thinking(output: str, *, prompt_opened: bool = False, reasoning_text: str | None = None) -> Split:
    """Split at the LAST `</think>`: models sometimes quote the tag inside their own trace."""
    if reasoning_text and reasoning_text.strip():
        answer = output.strip()
        # The server split the trace off for us; an empty reply after it is the only sign that
        # generation stopped while still thinking. (An empty trace means no split was made:
        # the tags, if any, are still in `output`.)
        return Split(reasoning_text.strip(), answer, closed=bool(answer))
    cut = output.rfind(CLOSE)
    if cut >= 0:
        return Split(_drop_open(output[:cut]).strip(), output[cut + len(CLOSE):].strip(), closed=True)
    if prompt_opened:
        return Split(_drop_open(output).strip(), "", closed=False)
    if OPEN in output:
        return Split(_drop_open(output).strip(), "", closed=False)
    return Split("", output.strip(), closed=True)


def _drop_open(text: str) -> str:
    """The trace after the model's own opening tag, if it wrote one (a template-opened trace has none)."""
    opened = text.find(OPEN)
    return text[opened + len(OPEN):] if opened >= 0 else text
