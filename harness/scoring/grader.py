"""Scores one answer against its target: extraction (harness/scoring/answers.py), then equivalence.

Owns the verdict per sample, strict and lenient. Three answer types:
- "number" (GSM8K, CMATH): both sides read as exact fractions ("1,000" = "1000", "18.00" = "$18",
  "3/4" = "0.75", "5元" = "5").
- "math" (MATH-500, AIME): a cheap normalised string and number comparison first, then
  math-verify for symbolic equality (fractions, roots, intervals, tuples).
- "choice" (GPQA, ARC, C-Eval): the option letter.
A truncated trace is never correct. `score` never raises on any text: a scorer fault must not end
a run whose generations took hours; it is logged and the sample counts as wrong.

Hand-written numeric shortcuts may only say "equal": when they find two numbers different,
math-verify still decides (it knows 0.3333333 = 1/3 to its precision), so a shortcut never
overrules it. math-verify runs in a worker process with a generous limit and no alarms
(harness/scoring/symbolic.py), so a verdict does not depend on the machine's load; a comparison
that hit the limit is recorded in the Score. Inputs that could make sympy run for minutes (long
strings, deep nesting, power towers, huge factorials, sums and integrals) are compared as
strings only.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from fractions import Fraction

from harness.core.types import Score
from harness.scoring import answers, notation, symbolic  # noqa: I001
from harness.scoring.answers import number_value, read_number

ANSWER_TYPES = ("number", "math", "choice")
MAX_SYMBOLIC_CHARS = 500  # final answers in MATH/AIME are far shorter; longer text is not an expression
MAX_NESTING = 20

log = logging.getLogger(__name__)


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
    hits: list[str] = []
    ok = strict is not None and _equivalent(strict, target, answer_type, choices, hits)
    if lenient == strict or ok:  # a right strict answer is the lenient reading too
        return Score(strict, ok, strict if ok else lenient, ok, tuple(hits))
    ok_lenient = lenient is not None and _equivalent(lenient, target, answer_type, choices, hits)
    return Score(strict, ok, lenient, ok_lenient, tuple(hits))


def extract(text: str, answer_type: str, choices: Sequence[str] = ()) -> tuple[str | None, str | None]:
    """(strict, lenient) readings of an already `clean`ed answer. Lenient tries again with the
    fallbacks (last number, last letter) whenever the strict reading is not an answer of the
    type at all; a readable strict answer (right, wrong or hedged) is the lenient one too."""
    if answer_type == "choice":
        strict = answers.strict_letter(text, choices)
        if strict is not None and (strict in answers.letter_range(choices) or answers.is_hedge(strict)):
            return strict, strict
        return strict, answers.lenient_letter(text, choices)
    candidates = answers.strict_candidates(text)
    strict = next(candidates, None)
    if answer_type == "number" and strict is not None:
        # the first marked answer that states a number; else the first marked answer as written
        strict = next((n for n in map(read_number, itertools.chain([strict], candidates)) if n is not None), strict)
        if read_number(strict) is not None or answers.last_boxed(text) is not None:  # a boxed word is an answer
            return strict, strict
    elif strict is not None and any(ch.isalnum() for ch in strict):
        return strict, strict
    return strict, answers.last_number(text)


# ---- equivalence ------------------------------------------------------------------------------
def equivalent(pred: str, target: str, answer_type: str, choices: Sequence[str] = ()) -> bool:
    return _equivalent(pred, target, answer_type, choices, [])


def _equivalent(pred: str, target: str, answer_type: str, choices: Sequence[str], hits: list[str]) -> bool:
    if answer_type == "choice":
        gold = answers.read_letter(answers.clean(target), choices, lower_ok=True)
        return gold is not None and pred == gold
    if answer_type == "number":
        gold_num = read_number(answers.clean(target))
        mine = read_number(pred)
        if gold_num is not None and mine is not None:
            if number_value(mine) == number_value(gold_num):
                return True
            pred, target = mine, gold_num  # math-verify decides what exact equality did not
    return _math_equal(pred, target, hits)  # an expression on either side ("10^3", "\\sqrt{2}")


_DOLLARS = re.compile(r"^\$+|\$+$")
_DROP = re.compile(r"\\left|\\right|\\displaystyle|\\[,!;: ]|\\q?quad|~|\s+|\\?%|°|\^\s*\{?\s*\\circ\s*\}?|\\mathrm\{\s*\}")
_TEXT = re.compile(r"\\(?:text|textrm|textbf|mbox|mathrm)\s*\{([^{}]*)\}")
_UNIT_TAIL = re.compile(r"(?<=\S)\s*\\(?:text|textrm|mbox|mathrm)\s*\{\s*[A-Za-z][A-Za-z .^0-9]*\}\s*$")
_UNIT_WORDS = re.compile(r"^([-+]?[\d.,/]+)\s+[A-Za-z]{2,}(?:\s+[A-Za-z]+)*\.?$")  # "12 inches", "5 square units"
_SHORT_FRAC = re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])")
_SHORT_SQRT = re.compile(r"\\sqrt\s*([0-9A-Za-z])")
_VAR_PREFIX = re.compile(r"^[A-Za-z]=(?=.)")
_MIXED_TEXT = re.compile(r"(?<![\d.])(\d+)[ \t]+(\d+)[ \t]*/[ \t]*(\d+)(?![\d.])")  # "1 1/2" before spaces go


def normalise_math(s: str) -> str:
    """A canonical string for cheap equality: no `$`, sizing, spacing, degrees, units or `\\dfrac`."""
    s = answers.clean(s).strip()
    for wrap in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(wrap[0]) and s.endswith(wrap[1]):
            s = s[2:-2]
    s = _DOLLARS.sub("", s.strip().replace("\\$", "")).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _UNIT_TAIL.sub("", s)
    s = _UNIT_WORDS.sub(r"\1", s)
    s = _TEXT.sub(r"\1", s)
    s = _MIXED_TEXT.sub(r"\1\\frac{\2}{\3}", s)
    s = _DROP.sub("", s)
    s = _SHORT_FRAC.sub(r"\\frac{\1}{\2}", s)
    s = _SHORT_SQRT.sub(r"\\sqrt{\1}", s)
    return _VAR_PREFIX.sub("", s.rstrip("."))


_EXACT = re.compile(r"[-+]?\d+ \d+/\d+|[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:/\d+(?:\.\d+)?)?", re.ASCII)


def exact_number(normalised: str) -> Fraction | None:
    """The value when the whole normalised string is one number or numeric fraction."""
    s = answers.numeric_prep(normalised)
    if not s or not any(ch.isdigit() for ch in s) or not _EXACT.fullmatch(s):
        return None
    return number_value(s)


def math_equal(pred: str, gold: str) -> bool:
    return _math_equal(pred, gold, [])


def _math_equal(pred: str, gold: str, hits: list[str]) -> bool:
    a, b = normalise_math(pred), normalise_math(gold)
    if not a or not b:
        return False
    if a == b:
        return True
    na, nb = exact_number(a), exact_number(b)
    if na is not None and nb is not None and na == nb:
        return True
    ia, ib = notation.inequality_interval(_strip_math(pred)), notation.inequality_interval(_strip_math(gold))
    if ia is not None or ib is not None:  # an interval written as inequalities ("2 \le x < 5" for "[2,5)")
        pred, gold = ia or pred, ib or gold
        a, b = normalise_math(pred), normalise_math(gold)
        if a == b:
            return True
    if too_costly(a) or too_costly(b):
        return False
    verdict = symbolic.compare(_strip_math(pred), _strip_math(gold))
    if verdict.limit_hit:
        hits.append(f"{pred[:80]} vs {gold[:80]}")
    return verdict.equal


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


