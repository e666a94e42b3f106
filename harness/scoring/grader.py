"""Scores one answer against its target: extraction (harness/scoring/answers.py), then equivalence.

Owns the verdict per sample, strict and lenient. Three answer types:
- "number" (GSM8K, CMATH): both sides read as exact fractions ("1,000" = "1000", "18.00" = "$18",
  "3/4" = "0.75", "5元" = "5").
- "math" (MATH-500, AIME): a cheap normalised string and number comparison first, then
  math-verify for symbolic equality (fractions, roots, intervals, tuples).
- "choice" (GPQA, ARC, C-Eval): the option letter.
A truncated trace is never correct. `score` never raises on any text: a scorer fault must not end
a run whose generations took hours; it is logged and the sample counts as wrong.

math-verify guards itself with `signal.alarm`, which only works in the main thread. Here its
timeouts are used in the main thread and switched off elsewhere (the harness scores in worker
threads too); either way, inputs that could make sympy run for minutes (long strings, deep
nesting, power towers, huge factorials, sums and integrals) are compared as strings only.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from harness.scoring import answers  # noqa: I001
from harness.scoring.answers import number_value, read_number

ANSWER_TYPES = ("number", "math", "choice")
MAX_SYMBOLIC_CHARS = 500  # final answers in MATH/AIME are far shorter; longer text is not an expression
MAX_NESTING = 20
ALARM_SECONDS = 3

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    extracted: str | None
    correct: bool
    extracted_lenient: str | None
    correct_lenient: bool


WRONG = Score(None, False, None, False)


def score(answer: str, target: str, answer_type: str, *, choices: Sequence[str] = (), truncated: bool = False) -> Score:
    """Strict and lenient verdicts for one answer (the text after the thinking trace)."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; expected one of {', '.join(ANSWER_TYPES)}")
    try:
        return _score(answer, target, answer_type, tuple(choices), truncated)
    except Exception:  # a scorer bug costs one sample, never the run
        log.warning("scoring failed; sample counted wrong", exc_info=True)
        return WRONG


def _score(answer: str, target: str, answer_type: str, choices: tuple[str, ...], truncated: bool) -> Score:
    text = answers.clean(answer)
    if not text.strip():
        return WRONG
    strict, lenient = extract(text, answer_type, choices)
    if truncated:
        return Score(strict, False, lenient, False)
    ok = strict is not None and equivalent(strict, target, answer_type, choices)
    if lenient == strict:
        return Score(strict, ok, lenient, ok)
    ok_lenient = lenient is not None and equivalent(lenient, target, answer_type, choices)
    return Score(strict, ok, lenient, ok_lenient)


def extract(text: str, answer_type: str, choices: Sequence[str] = ()) -> tuple[str | None, str | None]:
    """(strict, lenient) readings of an already `clean`ed answer."""
    if answer_type == "choice":
        strict = answers.strict_letter(text, choices)
    else:
        candidates = answers.strict_candidates(text)
        strict = next(candidates, None)
        if answer_type == "number" and strict is not None:
            # the first marked answer that states a number; else the first marked answer as written
            strict = next((n for n in map(read_number, itertools.chain([strict], candidates)) if n is not None), strict)
    if strict is not None:  # the fallbacks are for replies that marked nothing
        return strict, strict
    return None, answers.lenient_letter(text, choices) if answer_type == "choice" else answers.last_number(text)


# ---- equivalence ------------------------------------------------------------------------------
def equivalent(pred: str, target: str, answer_type: str, choices: Sequence[str] = ()) -> bool:
    if answer_type == "choice":
        gold = answers.read_letter(answers.clean(target), choices, lower_ok=True)
        return gold is not None and pred == gold
    if answer_type == "number":
        gold_num = read_number(answers.clean(target))
        mine = read_number(pred)
        if gold_num is not None and mine is not None:
            return number_value(mine) == number_value(gold_num)
    return math_equal(pred, target)  # an expression on either side ("10^3", "\\sqrt{2}")


_DOLLARS = re.compile(r"^\$+|\$+$")
_DROP = re.compile(r"\\left|\\right|\\displaystyle|\\[,!;: ]|\\q?quad|~|\s+|\\?%|°|\^\s*\{?\s*\\circ\s*\}?|\\mathrm\{\s*\}")
_TEXT = re.compile(r"\\(?:text|textrm|textbf|mbox|mathrm)\s*\{([^{}]*)\}")
_UNIT_TAIL = re.compile(r"(?<=\S)\s*\\(?:text|textrm|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z .^0-9]*\}\s*$")
_UNIT_WORDS = re.compile(r"^([-+]?[\d.,/]+)\s+[A-Za-z]{2,}(?:\s+[A-Za-z]+)*\.?$")  # "12 inches", "5 square units"
_SHORT_FRAC = re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])")
_SHORT_SQRT = re.compile(r"\\sqrt\s*([0-9A-Za-z])")
_VAR_PREFIX = re.compile(r"^[A-Za-z]=(?=.)")


def normalise_math(s: str) -> str:
    """A canonical string for cheap equality: no `$`, sizing, spacing, degrees, units or `\\dfrac`."""
    s = answers.clean(s).strip()
    for wrap in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(wrap[0]) and s.endswith(wrap[1]):
            s = s[2:-2]
    s = _DOLLARS.sub("", s.strip()).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _UNIT_TAIL.sub("", s)
    s = _UNIT_WORDS.sub(r"\1", s)
    s = _TEXT.sub(r"\1", s)
    s = _DROP.sub("", s)
    s = _SHORT_FRAC.sub(r"\\frac{\1}{\2}", s)
    s = _SHORT_SQRT.sub(r"\\sqrt{\1}", s)
    return _VAR_PREFIX.sub("", s.rstrip("."))


_EXACT = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:/\d+(?:\.\d+)?)?", re.ASCII)


def exact_number(normalised: str) -> Fraction | None:
    """The value when the whole normalised string is one number or numeric fraction."""
    s = answers.numeric_prep(normalised)
    if not s or not any(ch.isdigit() for ch in s) or not _EXACT.fullmatch(s):
        return None
    return number_value(s)


def math_equal(pred: str, gold: str) -> bool:
    a, b = normalise_math(pred), normalise_math(gold)
    if not a or not b:
        return False
    if a == b:
        return True
    na, nb = exact_number(a), exact_number(b)
    if na is not None and nb is not None:
        return na == nb
    if too_costly(a) or too_costly(b):
        return False
    return _symbolic_equal(_strip_math(pred), _strip_math(gold))


def _strip_math(s: str) -> str:
    s = answers.clean(s).strip()
    return _DOLLARS.sub("", s).strip()


_HEAVY = re.compile(r"\\(?:int|iint|iiint|oint|sum|prod|lim)(?![A-Za-z])|!\s*!|[)}]\s*!|\d{4,}\s*!|"
                    r"(?:\^|\*\*)\s*[{(]?\s*[-+]?\d{5,}|\\binom\s*\{?\s*\d{4,}", re.ASCII)


def too_costly(s: str) -> bool:
    """Inputs sympy could spend minutes on (or recurse too deep for): compare those as strings."""
    if len(s) > MAX_SYMBOLIC_CHARS or _HEAVY.search(s):
        return True
    depth = deepest = 0
    for ch in s:
        if ch in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")}]":
            depth -= 1
    return deepest > MAX_NESTING or _has_power_tower(s)


def _has_power_tower(s: str) -> bool:
    """`a^{b^c}` or `a^b^c`: exact evaluation of towers like 9^{9^9} never finishes."""
    for m in re.finditer(r"\^|\*\*", s):
        k = m.end()
        while k < len(s) and s[k] == " ":
            k += 1
        if k < len(s) and s[k] in "{(":
            depth, j = 0, k
            while j < len(s):
                if s[j] in "{(":
                    depth += 1
                elif s[j] in "})":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if "^" in s[k:j] or "**" in s[k:j]:
                return True
            k = j + 1
        else:
            t = re.match(r"\\?[A-Za-z0-9.]+", s[k:])
            k += t.end() if t else 0
        if re.match(r"\s*(?:\^|\*\*)", s[k:k + 8]):
            return True
    return False


def _symbolic_equal(pred: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - math-verify is a core dependency
        return False
    limit = ALARM_SECONDS if os.name == "posix" and threading.current_thread() is threading.main_thread() else None
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=limit)
        pred_parsed = parse(f"${pred}$", parsing_timeout=limit)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=limit))
    except Exception:  # math-verify and sympy raise many types on odd input
        return False


class _DropExpected(logging.Filter):
    """Alarms are off on purpose (or their timeouts handled here): no warning per call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropExpected())
