"""Property tests: scoring never raises, never hangs, and keeps its invariants on any text.

Arbitrary Unicode, text assembled from the tokens the extractors look for (so the parsers and
math-verify really run), megabyte strings and thousands of unclosed braces, for every answer type.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.scoring.grader import ANSWER_TYPES, Score, score
from harness.scoring.thinking import split_thinking

TOKENS = [
    "\\boxed{", "\\boxed ", "\\fbox{", "{", "}", "\\{", "\\}", "\\frac", "\\dfrac", "\\sqrt", "^", "_", "(", ")", "[", "]",
    "$", "$$", "\\(", "\\)", "\\text{", "\\left", "\\right", "\\circ", "\\%", "%", "\\pi", "\\infty", "\\cup", "!",
    "The answer is ", "answer: ", "Final Answer: ", "**", "####", "答案是", "答案：", "答：", "故选", "正确选项是",
    "option ", "<think>", "</think>", "\n", " ", ",", ".", "/", "=", "-", "−", "+", "*", "１", "５", "，", "。", "元",
    "0", "1", "2", "3", "9", "42", "1,000", "0.75", "x", "y", "A", "B", "C", "J", "a", "b", "(B)", "I ",
]
structured = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=300), structured)
choices = st.lists(st.text(max_size=12), max_size=12)
answer_types = st.sampled_from(ANSWER_TYPES)


class _Faults(logging.Handler):
    """`score` turns its own exceptions into a logged warning; here any such warning is a failure,
    so the properties test the code and not its safety net."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


FAULTS = _Faults()
logging.getLogger("harness.scoring.grader").addHandler(FAULTS)


def _score(*args, **kwargs) -> Score:
    FAULTS.records.clear()
    s = score(*args, **kwargs)
    assert not FAULTS.records, FAULTS.records[0].exc_text or FAULTS.records[0].getMessage()
    return s


def _check(s: Score, truncated: bool) -> None:
    assert isinstance(s, Score)
    assert isinstance(s.correct, bool) and isinstance(s.correct_lenient, bool)
    assert s.extracted is None or isinstance(s.extracted, str)
    assert s.extracted_lenient is None or isinstance(s.extracted_lenient, str)
    if s.correct:
        assert s.extracted is not None and s.correct_lenient  # strict-correct implies lenient-correct
    if s.correct_lenient:
        assert s.extracted_lenient is not None
    if truncated:
        assert not s.correct and not s.correct_lenient


@settings(deadline=None, max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(answer=any_text, target=any_text, answer_type=answer_types, opts=choices, truncated=st.booleans())
def test_score_never_raises(answer, target, answer_type, opts, truncated):
    _check(_score(answer, target, answer_type, choices=opts, truncated=truncated), truncated)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(output=any_text, opened=st.booleans(), answer_type=answer_types, length=st.booleans())
def test_split_then_score_like_the_pipeline(output, opened, answer_type, length):
    split = split_thinking(output, prompt_opened=opened)
    assert len(split.answer) <= len(output) and len(split.thinking) <= len(output)
    if not split.closed:
        assert split.answer == ""
    truncated = (length and not split.closed) or not split.answer.strip()
    target = {"number": "42", "math": "\\frac{3}{4}", "choice": "B"}[answer_type]
    _check(_score(split.answer, target, answer_type, choices=("x", "y", "z"), truncated=truncated), truncated)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(answer=structured, target=structured, answer_type=answer_types)
def test_score_in_worker_threads(answer, target, answer_type):
    # math-verify's signal.alarm timeouts cannot run here: the input guards must be enough
    with ThreadPoolExecutor(max_workers=1) as pool:
        s = pool.submit(_score, answer, target, answer_type, choices=("1", "2")).result(timeout=60)
    _check(s, False)


HUGE = [
    "1" * 1_000_000,
    "\\boxed{" * 10_000,
    "\\boxed{" * 10_000 + "7" + "}" * 10_000,
    "{" * 500_000 + "}" * 500_000,
    "The answer is " * 70_000 + "42",
    "答案是５元，" * 150_000,
    "$" * 1_000_000,
    "wait, " * 170_000 + "\\boxed{" + "(" * 5_000 + "1" + ")" * 5_000 + "}",
    "\\boxed{" + "x^" * 400 + "2}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{" + "1+" * 20_000 + "1}",
    "A " * 500_000,
    "".join(chr(c) for c in range(0x20, 0x3000)) * 80,
    "\\frac{" * 50_000,
    "1,000" * 200_000,
]


@pytest.mark.parametrize("text", HUGE, ids=[f"huge{i}" for i in range(len(HUGE))])
@pytest.mark.parametrize("answer_type", ANSWER_TYPES)
def test_huge_and_pathological_inputs_finish_quickly(text, answer_type):
    start = time.perf_counter()
    s = _score(text, "42", answer_type, choices=("42", "7", "x"))
    assert time.perf_counter() - start < 10
    _check(s, False)
    assert split_thinking(text, prompt_opened=True) is not None
