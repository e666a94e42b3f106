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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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


class TokenSplit(NamedTuple):
    """thinking + answer == output tokens, always. `how`: "ids" (where the trace's closing tag sits
    in the generated ids), "exact" (no trace at all, or one never closed: nothing to locate), "engine" (the engine split it itself),
    "server" (the API's reasoning-token usage), "estimated" (text re-tokenised or apportioned by
    characters: the engine returned no ids and the server no reasoning count)."""

    thinking: int | None
    answer: int | None
    how: str


def token_split(split: Split, text: str, output_tokens: int | None, *, ids: Sequence[int] | None = None,
                decode: Callable[[list[int]], str | None] | None = None, reasoning_tokens: int | None = None,
                engine_thinking: int | None = None, count: Callable[[str], int | None] | None = None) -> TokenSplit:
    """Thinking and answer token counts of one generation, from the ids wherever the engine has them."""
    if output_tokens is None:
        return TokenSplit(None, None, "unmeasured")
    for known, how in ((engine_thinking, "engine"), (reasoning_tokens, "server")):
        if known is not None:
            thinking = max(0, min(int(known), output_tokens))
            return TokenSplit(thinking, output_tokens - thinking, how)
    if split.close_at < 0 and not split.thinking and split.closed:
        return TokenSplit(0, output_tokens, "exact")  # no trace at all: nothing to locate
    if not split.closed:
        return TokenSplit(output_tokens, 0, "exact")  # never closed: every token was thinking
    if split.close_at >= 0 and ids is not None and decode is not None:
        n = _ids_through_close(list(ids), decode, text[:split.close_at].count(CLOSE))
        if n is not None:
            n = min(n, output_tokens)
            return TokenSplit(n, output_tokens - n, "ids")
    # text only: the trace as the engine's tokenizer counts it, else its share of the characters
    trace = text[:split.close_at + len(CLOSE)] if split.close_at >= 0 else split.thinking
    whole = text if split.close_at >= 0 else split.thinking + split.answer
    n = count(trace) if count is not None else None
    if n is None:
        n = round(output_tokens * len(trace) / max(1, len(whole)))
    n = max(0, min(int(n), output_tokens))
    return TokenSplit(n, output_tokens - n, "estimated")


def _ids_through_close(ids: list[int], decode: Callable[[list[int]], str | None], occurrence: int) -> int | None:
    """The fewest leading ids whose text holds the closing tag number `occurrence` (0-based): the
    tag's last token is then ids[n - 1]. Binary search over prefixes (a prefix's count of tags
    only grows), so a 32k-token trace costs about 15 decodes."""
    full = decode(ids)
    if full is None or full.count(CLOSE) <= occurrence:
        return None
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if (decode(ids[:mid]) or "").count(CLOSE) > occurrence:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _drop_open(text: str) -> str:
    """The trace after the model's own opening tag, if it wrote one (a template-opened trace has none)."""
    opened = text.find(OPEN)
    return text[opened + len(OPEN):] if opened >= 0 else text
