"""Splits a reasoning model's output into its thinking trace and its final answer.

Owns one question: which part of the generated text is the answer that gets scored. R1-style
models write `<think> ... </think>` and then the answer; distill chat templates often open the
`<think>` themselves at the end of the prompt, so the output carries only the closing tag; API
servers may return the trace separately (`reasoning_content`). A trace that never closed has no
answer at all: whatever it boxed while thinking was a candidate, not a reply.

Which `</think>` ends the trace: the first one standing at a line's start or end (R1 writes
"...\n</think>\n\n", Qwen3 "<think>\n\n</think>\n\n"); failing that, the first one that is not
quoted inside a sentence ("I should write </think> then ..." or "`</think>`"). Neither the first
nor the last tag is right on its own: a trace may quote the tag and then be cut off (the quote
must not end it), and a reply may repeat the tag after its answer (the repeat is dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OPEN, CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Split:
    """`closed` is False only when a trace was opened and never closed (then `answer` is "")."""

    thinking: str
    answer: str
    closed: bool
    close_at: int = field(default=-1, compare=False)  # index in the output of the tag that ended the trace


def prompt_opens_think(prompt: str) -> bool:
    """True when the prompt ends inside an opened `<think>` (the template or a prefill opened it)."""
    return prompt.rstrip().endswith(OPEN)


def split_thinking(output: str, *, prompt_opened: bool = False, reasoning_text: str | None = None) -> Split:
    if reasoning_text and reasoning_text.strip():
        answer = output.strip()
        # The server split the trace off for us; an empty reply after it is the only sign that
        # generation stopped while still thinking. (An empty trace means no split was made:
        # the tags, if any, are still in `output`.)
        return Split(reasoning_text.strip(), answer, closed=bool(answer))
    cut = closing_tag(output)
    if cut >= 0:
        answer = output[cut + len(CLOSE):].replace(CLOSE, "")  # a stray repeat after the answer is not text
        return Split(_drop_open(output[:cut]).strip(), answer.strip(), closed=True, close_at=cut)
    if prompt_opened:
        return Split(_drop_open(output).strip(), "", closed=False)
    if OPEN in output:
        return Split(_drop_open(output).strip(), "", closed=False)
    return Split("", output.strip(), closed=True)


_QUOTES = "`'\"“”‘’「」『』"


def closing_tag(output: str) -> int:
    """Index of the `</think>` that ends the trace, or -1 (see the module docstring)."""
    inline = -1
    for m in re.finditer(re.escape(CLOSE), output):
        before, after = output[:m.start()].rstrip(" \t"), output[m.end():].lstrip(" \t")
        if not before or before.endswith("\n") or not after or after.startswith(("\n", "\r")):
            return m.start()
        prev, nxt = output[m.start() - 1], output[m.end()] if m.end() < len(output) else ""
        quoted = prev in _QUOTES or nxt in _QUOTES or (prev.isspace() and nxt.isspace())
        if inline < 0 and not quoted:
            inline = m.start()
    return inline


def _drop_open(text: str) -> str:
    """The trace after the model's own opening tag, if it wrote one (a template-opened trace has none)."""
    opened = text.find(OPEN)
    return text[opened + len(OPEN):] if opened >= 0 else text
