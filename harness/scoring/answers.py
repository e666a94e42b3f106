"""Reading the final answer out of a model's reply, and the text normalisation that needs.

Owns extraction: the strict reading (an answer the model marked as final: `\\boxed{}`, `#### N`,
"the answer is", "答案是", a lone option letter at the end) and the lenient one (strict first, then
the last number, the last option letter, or an option's text). harness/scoring/grader.py owns deciding
whether what was read equals the target.

Every function here is linear in the length of the text (no recursion, no nested quantifiers),
because replies can be megabytes of degenerate repetition or thousands of unclosed braces.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Iterator, Sequence

LETTERS = "ABCDEFGHIJ"

# Full-width ASCII (Chinese input methods type digits and colons this way), ideographic and
# no-break spaces, and the Unicode minus all read as their ASCII selves.
_TABLE = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_TABLE.update({0x3000: 0x20, 0x00A0: 0x20, 0x2009: 0x20, 0x202F: 0x20, 0x2212: 0x2D, 0xFE63: 0x2D})
_NEEDS_TABLE = re.compile("[" + "".join(map(chr, sorted(_TABLE))) + "]")


def clean(text: str) -> str:
    # translate() with a dict costs ~0.1 s per MB of CJK text; most replies need nothing
    return text.translate(_TABLE) if _NEEDS_TABLE.search(text) else text


# ---- boxed answers ----------------------------------------------------------------------------
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BRACE = re.compile(r"(?<!\\)[{}]")
_BARE = re.compile(r"[^\s$]+")


def last_boxed(text: str) -> str | None:
    """Content of the last balanced `\\boxed{...}` / `\\fbox{...}` (or `\\boxed 5`); None if none."""
    starts = [m.end() for m in _BOX.finditer(text)]
    if not starts:
        return None
    closing = _match_braces(text, starts[0])
    for pos in reversed(starts):
        k = pos
        while k < len(text) and text[k] in " \t":
            k += 1
        if k < len(text) and text[k] == "{":
            end = closing.get(k)
            content = text[k + 1:end].strip() if end is not None else ""
        elif k > pos and (m := _BARE.match(text, k)):
            content = m.group().rstrip(".,;")
        else:
            content = ""
        if content:
            return content
    return None


def _match_braces(text: str, start: int) -> dict[int, int]:
    """Opening-brace index -> closing-brace index, in one pass with an explicit stack."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for m in _BRACE.finditer(text, start):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.start()
    return pairs


# ---- "the answer is ..." markers ----------------------------------------------------------------
_MARK = re.compile(
    r"\banswer\b(?:\*\*|\s)*(?:(?:is|should\s+be|would\s+be|will\s+be)\b(?:\s*:)?|[:=])"
    r"|答案(?:应该|应)?\s*(?:是|为|為|:|=)|(?:^|\n)[ \t*#]*答\s*:",
    re.IGNORECASE)
_CHOICE_MARK = re.compile(
    r"\b(?:option|choice)\s+(?:is|would\s+be)\b(?:\s*:)?"
    r"|(?:故|所以|因此|应|应该|则|即|综上|本题)\s*选(?:择)?\s*:?|正确(?:的)?(?:选项|答案)?\s*(?:是|为)",
    re.IGNORECASE)
_GSM = re.compile(r"####[ \t]*([^\n]+)")
_MATH_SPAN = re.compile(r"\$\$?(.+?)\$\$?|\\\((.+?)\\\)|\\\[(.+?)\\\]")
# Where a marked answer stops: a full stop, Chinese sentence punctuation, a clause after a comma.
_STOP = re.compile(r"\.(?=\s|$)|[。;?；？]|,\s*(?=[A-Za-z]{3,}|[\u4e00-\u9fff])|\s+(?:because|since|which|so that)\b")
MAX_MARKERS = 16  # a marker further back than this is not the final answer (and loops repeat them)


def _marker_ends(text: str, *patterns: re.Pattern) -> list[int]:
    """Where the last few answer markers end, last first."""
    ends = sorted(((m.start(), m.end()) for p in patterns for m in p.finditer(text)), reverse=True)
    return [end for _, end in ends[:MAX_MARKERS]]


def _introduced(text: str, end: int) -> str:
    """The first line with content after a marker: "Answer:\n\n42" introduces "42"."""
    rest = text[end:end + 2000].lstrip(" \t\r\n*:_")
    return rest.split("\n", 1)[0]


def _trim(phrase: str) -> str:
    s = phrase.strip().strip("*_").strip()
    if s.startswith(("$", "\\(", "\\[")) and (m := _MATH_SPAN.match(s)):
        return next(g for g in m.groups() if g is not None).strip()
    s = _STOP.split(s, 1)[0]
    return s.strip().strip("*_").strip().rstrip(".。").replace("$", "").strip()


def strict_candidates(text: str) -> Iterator[str]:
    """Explicitly marked final answers, best first: the last boxed, the last `####`, then the
    answer markers from last to first (a reply may end "I hope the answer is right")."""
    boxed = last_boxed(text)
    if boxed is not None:
        yield _unwrap_math(boxed)
    gsm = None
    for gsm in _GSM.finditer(text):
        pass
    if gsm is not None and (c := _trim(gsm.group(1))):
        yield c
    for end in _marker_ends(text, _MARK):
        if c := _trim(_introduced(text, end)):
            yield c


def _unwrap_math(s: str) -> str:
    s = s.strip()
    if s.startswith("$") and s.endswith("$"):
        s = s.strip("$").strip()
    return s.rstrip(".").strip() or s


# ---- numbers ------------------------------------------------------------------------------------
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([-+]?[\d.,]+)\s*\}\s*\{\s*([-+]?[\d.,]+)\s*\}|\\[dt]?frac\s*(\d)\s*(\d)")
# ASCII classes: a number glued to a Chinese character ("共有12个") is still a number.
_NUM = re.compile(r"(?:(?<![\w)\]}.\-])-)?(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[ \t]*/[ \t]*\d+(?:\.\d+)?)?",
                  re.ASCII)
_EQUALS = re.compile(r"=|≈|\\approx")
_LATEX_SPACE = re.compile(r"\\[,!;: ]|\\q?quad|~")


def numeric_prep(s: str) -> str:
    s = s.replace("{,}", ",").replace("\\$", "").replace("$", "")
    s = _LATEX_SPACE.sub("", s)
    return _FRAC.sub(lambda m: f"{m.group(1) or m.group(3)}/{m.group(2) or m.group(4)}", s)


def number_value(token: str) -> Fraction | None:
    """Exact value of a token like "-1,000.50" or "3/4"; None when it is not one."""
    try:
        num, _, den = token.replace(",", "").replace(" ", "").replace("\t", "").lstrip("+").partition("/")
        if len(num) > 400 or len(den) > 400:  # beyond any real answer; keeps Decimal cheap
            return None
        value = Fraction(Decimal(num))
        return value / Fraction(Decimal(den)) if den else value
    except (InvalidOperation, ValueError, ZeroDivisionError, OverflowError):
        return None


_WRAPPERS = re.compile(r"\\(?:text|textrm|textbf|mathrm|mathbf|mbox|rm)\b")
_SYMBOLIC = re.compile(r"\\[A-Za-z]|\^")


def read_number(candidate: str) -> str | None:
    """The number a marked answer states: after the last "=", the first number token ("18 eggs",
    "x = 18"). None when that part is an expression (`\\sqrt{2}`, `10^3`), not a number."""
    part = _EQUALS.split(numeric_prep(candidate))[-1]
    if _SYMBOLIC.search(_WRAPPERS.sub("", part)):
        return None
    m = _NUM.search(part)
    return _tidy(m.group()) if m and number_value(m.group()) is not None else None


TAIL = 4096  # fallbacks look at the end of a long reply first; the whole text only if need be


def last_number(text: str) -> str | None:
    for window in ((text[-TAIL:], text) if len(text) > TAIL else (text,)):
        found = None
        for found in _NUM.finditer(numeric_prep(window)):
            pass
        # a match at the very start of the tail may be the end of a longer number
        if found and (window is text or found.start() > 64):
            return _tidy(found.group()) if number_value(found.group()) is not None else None
    return None


def _tidy(token: str) -> str:
    return re.sub(r"[,\s]", "", token)


# ---- option letters -----------------------------------------------------------------------------
_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
_PREFIX = re.compile(r"(?:option|choice|选项)\s*", re.IGNORECASE)
_LETTER = re.compile(r"([\(\[]?)([A-Za-z])([\)\]]?)(?![A-Za-z0-9])")
_LAST_LINE_BOLD = re.compile(r"\*\*\s*\(?([A-J])\)?[.:)]?\s*\*\*[.。]?\s*$")
_LONE = re.compile(r"[\(\[]?([A-J])(?:[\)\]]|[.:)]\s*(.*))?")
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'’\\])([A-J])(?![A-Za-z0-9'’])")


def letter_range(choices: Sequence[str]) -> str:
    return LETTERS[:len(choices)] if 0 < len(choices) <= len(LETTERS) else LETTERS


def read_letter(s: str, choices: Sequence[str] = (), *, lower_ok: bool = False) -> str | None:
    """An option letter at the start of `s` ("C", "(b)", "\\text{A}", "Option d: ..."), or an
    option's exact text; None otherwise. A lowercase letter is read only when wrapped, after
    "option", or alone where `lower_ok` (inside a box): elsewhere "a" is a word."""
    valid = letter_range(choices)
    t = _WRAP.sub(r"\1", _WRAP.sub(r"\1", s)).strip().lstrip("*_`'\" ")
    prefixed = _PREFIX.match(t)
    if prefixed:
        t = t[prefixed.end():]
    m = _LETTER.match(t)
    if m:
        letter = m.group(2)
        alone = not t[m.end():].strip(" .:)*_`'\"")
        if (letter.isupper() or prefixed or m.group(1) or m.group(3) or (lower_ok and alone)) and letter.upper() in valid:
            return letter.upper()
    return option_by_text(s, choices)


def option_by_text(s: str, choices: Sequence[str]) -> str | None:
    key = _norm_text(s)
    hits = [LETTERS[i] for i, c in enumerate(choices[:len(LETTERS)]) if key and _norm_text(c) == key]
    return hits[0] if len(hits) == 1 else None


def _norm_text(s: str) -> str:
    s = _WRAP.sub(r"\1", clean(s)).replace("$", "")
    return re.sub(r"\s+", " ", s).strip().rstrip(".。").strip().lower()


def strict_letter(text: str, choices: Sequence[str]) -> str | None:
    boxed = last_boxed(text)
    if boxed is not None:
        return read_letter(boxed, choices, lower_ok=True) or _unwrap_math(boxed)
    for end in _marker_ends(text, _MARK, _CHOICE_MARK):
        letter = read_letter(_trim(_introduced(text, end)), choices)
        if letter:
            return letter
    lines = [ln.strip() for ln in text[-2000:].splitlines() if ln.strip()]
    if lines:
        last = lines[-1]
        m = _LAST_LINE_BOLD.search(last)
        if m and m.group(1) in letter_range(choices):
            return m.group(1)
        m = _LONE.fullmatch(last.strip("*_# ").rstrip("。"))
        if m and m.group(1) in letter_range(choices):
            rest = m.group(2)
            if not rest or (choices and _norm_text(rest) == _norm_text(choices[LETTERS.index(m.group(1))])):
                return m.group(1)
    return None


def lenient_letter(text: str, choices: Sequence[str]) -> str | None:
    """The last standalone capital in range (not "A"/"I" used as a word), else the option whose
    text appears last."""
    valid = letter_range(choices)
    for start in (len(text) - TAIL, 0) if len(text) > TAIL else (0,):
        for m in reversed(list(_STANDALONE.finditer(text, start))):  # lookbehind still sees text[:start]
            letter = m.group(1)
            if letter in valid and not (letter in "AI" and re.match(r" [a-z]", text[m.end():m.end() + 2])):
                return letter
    low = clean(text).lower()
    best: tuple[int, int, str] | None = None
    for i, choice in enumerate(choices[:len(LETTERS)]):
        key = _norm_text(choice)
        pos = low.rfind(key) if key else -1
        if pos >= 0 and (best is None or (pos + len(key), len(key)) > best[:2]):
            best = (pos + len(key), len(key), LETTERS[i])
    return best[2] if best else None
