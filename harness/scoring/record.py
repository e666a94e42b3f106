"""Turns one finished generation into one samples.jsonl row: thinking split, answer scored,
true counts and timings kept as measured. A truncated trace is never scored correct; a failed
request (finish_reason "error") keeps its error and is left out of every metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from harness.backends.base import Backend
from harness.core.types import Completion, Request, Score
from harness.measure.timing import tpot
from harness.scoring.grader import WRONG, score
from harness.scoring.symbolic import ScoringUnavailable
from harness.scoring.thinking import prompt_opens_think, split_thinking, token_split
from harness.tasks.base import Item

Scorer = Callable[..., Score | None]  # (answer, item, *, truncated) -> Score, or None for the answer type's scorer


def sample_row(request: Request, done: Completion, *, task: str, answer_type: str, item: Item, sample: int, prompt: str,
               backend: Backend, rank: int = 0, scorer: Scorer | None = None) -> dict:
    """One samples.jsonl row; `scorer` is the task's own (Task.score), the answer type's scorer where it returns None."""
    split = split_thinking(done.text, prompt_opened=prompt_opens_think(prompt), reasoning_text=done.reasoning_text)
    truncated = (done.finish_reason == "length" and not split.closed) or not split.answer.strip()
    try:
        s = (scorer(split.answer, item, truncated=truncated) if scorer is not None else None) or \
            score(split.answer, item.target, answer_type, choices=item.choices, truncated=truncated)
    except ScoringUnavailable as e:  # the grader's infrastructure failed, not the answer: an error row, retried on --resume
        s = WRONG
        done = replace(done, finish_reason="error", error=f"scoring failed: {e}")
    tokens = token_split(split, done.text, done.output_tokens, ids=done.token_ids, decode=backend.decode,
                         reasoning_tokens=done.reasoning_tokens, engine_thinking=done.thinking_tokens, count=backend.count_tokens)
    unmeasured = dict(done.unmeasured)
    t = tpot(done.e2e_s, done.ttft_s, done.output_tokens)
    if t is None and "tpot_s" not in unmeasured:
        unmeasured["tpot_s"] = "needs ttft, e2e and at least 2 output tokens"
    return {
        "task": task, "id": item.id, "sample": sample, "prompt": prompt, "output": done.text,
        "thinking": split.thinking, "answer": split.answer, "closed": split.closed,
        "extracted": s.extracted, "extracted_lenient": s.extracted_lenient, "target": item.target,
        "correct": bool(s.correct), "correct_lenient": bool(s.correct_lenient),
        "input_tokens": done.input_tokens, "output_tokens": done.output_tokens,
        "thinking_tokens": tokens.thinking, "answer_tokens": tokens.answer, "token_split": tokens.how,
        "finish_reason": done.finish_reason, "ttft_s": done.ttft_s, "tpot_s": t, "e2e_s": done.e2e_s,
        "batch_size": done.batch_size, "batch_wall_s": done.batch_wall_s, "seed": request.seed,
        "meta": dict(item.meta), "rank": rank, "unmeasured": unmeasured,
        "error": done.error if done.finish_reason == "error" else None,
        **({"scoring_limit_hit": list(s.limit_hit)} if s.limit_hit else {}),
    }
