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
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from harness.scoring import notation

LETTERS = "ABCDEFGHIJ"

# Full-width ASCII (Chinese input methods type digits and colons this way), ideographic and
# no-break spaces, and the Unicode minus all read as their ASCII selves.
_TABLE = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_TABLE.update({0x3000: 0x20, 0x00A0: 0x20, 0x2009: 0x20, 0x202F: 0x20, 0x2212: 0x2D, 0xFE63: 0x2D})
_NEEDS_TABLE = re.compile("[" + "".join(map(chr, sorted(_TABLE))) + "]")



def last_match(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    """The last of an iterator of matches (the answer a reply ends on), or None."""
    last = None
    for last in matches:  # noqa: B007  (the loop only walks to the end)
        pass
    return last

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
    r"\banswer\b(?:\*\*|\s)*(?:(?:is|should\s+be|would\s+be|will\s+be)\b(?:\s*:)?|is(?=n't)|[:=])"
    r"|答案(?:应该|应)?\s*(?:是|为|為|:|=)|答案(?=并?不是)|(?:^|\n)[ \t*#]*答\s*:",
    re.IGNORECASE)
_CHOICE_MARK = re.compile(
    r"\b(?:option|choice)\s+(?:is|would\s+be)\b(?:\s*:)?"
    r"|(?:故|所以|因此|应|应该|则|即|综上|本题)\s*选(?:择)?\s*:?|正确(?:的)?(?:选项|答案)?\s*(?:是|为)"
    r"|(?<![不未没])选(?:择)?\s*:?\s*(?=[\(\[]?[A-Ja-j](?![A-Za-z0-9]))"  # 选B, 故答案选B, 综上所述，选B
    r"|\b(?:I|we)(?:'d|\s+would|\s+will)?\s+(?:choose|pick|select|go\s+with)\b(?:\s+option)?",
    re.IGNORECASE)
# A choice stated after its letter: "B项正确", "选项B正确", "option C is correct", "C is the correct answer".
_STATED = re.compile(
    r"(?<![A-Za-z0-9])((?:option|choice|选项)\s*)?[\(\[]?([A-Ja-j])[\)\]]?\s*(?:选项|项)?\s*"
    r"(?:是正确的|正确|is\s+(?:the\s+)?(?:correct|right)(?:\s+(?:answer|option|choice|one))?\b)",
    re.IGNORECASE)
_GSM = re.compile(r"####[ \t]*([^\n]+)")
# Inline math ends at an unescaped `$`: `$\\$18$` is the math "\\$18" (eighteen dollars).
_MATH_SPAN = re.compile(r"\$\$?((?:\\.|[^\\$])+)\$\$?|\\\((.+?)\\\)|\\\[(.+?)\\\]")
# Where a marked answer's sentence stops, and the clauses inside it.
_SENTENCE_END = re.compile(r"\.(?=\s|$)|[。;?!；？！]|\s+(?:because|since|which|so that)\b")
_CLAUSE = re.compile(r",\s*(?=[A-Za-z]{3,}|[\u4e00-\u9fff])")
# A marked text that opens with the answer itself ("18, because", "$\\frac{1}{2}$", "(B)").
_ANSWER_FIRST = re.compile(r"[-+$\\(\[{\d]|[A-J](?![A-Za-z])")
MAX_MARKERS = 16  # a marker further back than this is not the final answer (and loops repeat them)


def _marker_spans(text: str, *patterns: re.Pattern) -> list[tuple[int, int]]:
    """Where the last few answer markers start and end, last first."""
    return sorted(((m.start(), m.end()) for p in patterns for m in p.finditer(text)), reverse=True)[:MAX_MARKERS]


def _introduced(text: str, end: int) -> str:
    """The first line with content after a marker: "Answer:\n\n42" introduces "42"."""
    rest = text[end:end + 2000].lstrip(" \t\r\n*:_")
    return rest.split("\n", 1)[0]


def _trim(phrase: str) -> str:
    """The answer a marker introduces. Text that opens with the answer keeps its first clause
    ("18, because ..."); a restating sentence ("After selling the eggs, Janet makes $18 every
    day") keeps its last clause that holds a number, which is where such sentences state it."""
    s = phrase.strip().strip("*_").strip()
    if s.startswith(("$", "\\(", "\\[")) and (m := _MATH_SPAN.match(s)):
        return next(g for g in m.groups() if g is not None).replace("\\$", "").strip()
    clauses = _CLAUSE.split(_SENTENCE_END.split(s, 1)[0])
    s = clauses[0]
    if not _ANSWER_FIRST.match(s):
        s = next((c for c in reversed(clauses) if any(ch.isdigit() for ch in c)), s)
    return s.strip().strip("*_").strip().rstrip(".。,，").replace("\\$", "").replace("$", "").strip()


def _marked(text: str, end: int) -> str:
    """The answer a marker ending at `end` introduces; a negated one ("not 12, but 15") gives what it
    affirms instead, or nothing ("the answer is not 12." states no answer)."""
    introduced = _introduced(text, end)
    if notation.negated(introduced):
        instead = notation.after_negation(introduced)
        return _trim(instead) if instead else ""
    return _trim(introduced)


def strict_candidates(text: str) -> Iterator[str]:
    """Explicitly marked final answers, best first: the last boxed, the last `####`, then the
    answer markers from last to first (a reply may end "I hope the answer is right")."""
    boxed = last_boxed(text)
    if boxed is not None:
        yield _unwrap_math(boxed)
    gsm = last_match(_GSM.finditer(text))
    if gsm is not None and (c := _trim(gsm.group(1))):
        yield c
    for _, end in _marker_spans(text, _MARK):
        if c := _marked(text, end):
            yield c


def _unwrap_math(s: str) -> str:
    s = s.strip()
    if s.startswith("$") and s.endswith("$"):
        s = s.strip("$").strip()
    return s.rstrip(".").strip() or s


# ---- numbers ------------------------------------------------------------------------------------
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([-+]?[\d.,]+)\s*\}\s*\{\s*([-+]?[\d.,]+)\s*\}|\\[dt]?frac\s*(\d)\s*(\d)")
# ASCII classes: a number glued to a Chinese character ("共有12个") is still a number.
_NUM = re.compile(r"(?:(?<![\w)\]}.\-])-)?(?<![\w.])"
                  r"(?:\d+[ \t]+\d+[ \t]*/[ \t]*\d+(?![\d.])"  # a mixed number, "1 1/2" (made from 1\frac{1}{2}, 1又1/2)
                  r"|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[ \t]*/[ \t]*\d+(?:\.\d+)?)?)",
                  re.ASCII)
_MIXED = re.compile(r"([-+]?)(\d+)[ \t]+(\d+)[ \t]*/[ \t]*(\d+)", re.ASCII)
_EQUALS = re.compile(r"=|≈|\\approx")
_LATEX_SPACE = re.compile(r"\\[,!;: ]|\\q?quad|~")
# 带分数: 3又1/2, 3又2分之1; a plain 2分之1 is 1/2.
_ZH_MIXED = re.compile(r"(\d+)\s*又\s*(\d+)\s*/\s*(\d+)")
_ZH_MIXED_FEN = re.compile(r"(\d+)\s*又\s*(\d+)\s*分之\s*(\d+)")
_ZH_FEN = re.compile(r"(\d+)\s*分之\s*(\d+)")
_GLUED_FRAC = re.compile(r"(\d)[ \t]*\x00")


def numeric_prep(s: str) -> str:
    """Plain-text numbers from LaTeX and Chinese notation. A whole number written right before a
    fraction is a mixed number and becomes "N a/b" (never the glued "Na/b")."""
    s = s.replace("{,}", ",").replace("\\$", "").replace("$", "")
    s = _LATEX_SPACE.sub("", s)
    s = notation.repeating_decimals(s)
    if "又" in s or "分之" in s:
        s = _ZH_MIXED_FEN.sub(r"\1 \3/\2", _ZH_MIXED.sub(r"\1 \2/\3", s))
        s = _ZH_FEN.sub(r"\2/\1", s)
    if "frac" not in s:
        return s
    s = _FRAC.sub(lambda m: f"\x00{m.group(1) or m.group(3)}/{m.group(2) or m.group(4)}", s)
    return _GLUED_FRAC.sub(r"\1 ", s).replace("\x00", "")


def number_value(token: str) -> Fraction | None:
    """Exact value of a token like "-1,000.50", "3/4" or the mixed number "-1 1/2"; None when it is not one."""
    try:
        mixed = _MIXED.fullmatch(token.replace(",", "").strip())
        if mixed:
            sign, whole, num, den = mixed.groups()
            value = int(whole) + Fraction(int(num), int(den))
            return -value if sign == "-" else value
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
    part = _EQUALS.split(numeric_prep(notation.zh_numerals(candidate)))[-1]
    if _SYMBOLIC.search(_WRAPPERS.sub("", part)):
        return None
    m = _NUM.search(part)
    return _tidy(m.group()) if m and number_value(m.group()) is not None else None


TAIL = 4096  # fallbacks look at the end of a long reply first; the whole text only if need be


def last_number(text: str) -> str | None:
    if not any(ch.isdigit() for ch in text[-TAIL:]):  # an answer written only in Chinese numerals
        text = notation.zh_numerals(text)
    for window in ((text[-TAIL:], text) if len(text) > TAIL else (text,)):
        found = last_match(_NUM.finditer(numeric_prep(window)))
        # a match at the very start of the tail may be the end of a longer number
        if found and (window is text or found.start() > 64):
            return _tidy(found.group()) if number_value(found.group()) is not None else None
    return None


def _tidy(token: str) -> str:
    mixed = _MIXED.fullmatch(token.replace(",", "").strip())
    if mixed:
        return "{}{} {}/{}".format(*mixed.groups())
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
            others = _HEDGE_AFTER.match(t, m.end())
            return _hedge(letter, others.group(0)) if others else letter.upper()
    return option_by_text(s, choices)


# "(B) or (C)", "B、C", "A or C", "B/C": more than one option offered as the answer.
_SEP = r"\s*(?:,|、|/|&|\bor\b|\band\b|或者?|和|与|及|还是)\s*(?:option\s*|选项)?"
_HEDGE_AFTER = re.compile(r"(?:" + _SEP + r"[\(\[]?[A-Ja-j][\)\]]?(?![A-Za-z0-9]))+", re.IGNORECASE)
_HEDGE_BEFORE = re.compile(r"(?<![A-Za-z0-9])[\(\[]?([A-J])[\)\]]?" + _SEP + r"[\(\[]?$", re.IGNORECASE)
_HEDGE = re.compile(r"[A-J](?:,[A-J])+")


def _hedge(first: str, rest: str) -> str:
    """"B,C" for a hedged answer (never equal to one gold letter); the letter when all agree."""
    letters = sorted({first.upper(), *(ch.upper() for ch in re.findall(r"(?<![A-Za-z])([A-Ja-j])(?![A-Za-z])", rest))})
    return ",".join(letters)


def is_hedge(reading: str) -> bool:
    return _HEDGE.fullmatch(reading) is not None


def option_by_text(s: str, choices: Sequence[str]) -> str | None:
    """The option whose text the answer is ("Paris" for "B) Paris"), or whose value it states ("0.5" for
    "$\\frac{1}{2}$", "12" for "12 cm"); None unless exactly one option matches."""
    key = _norm_text(s)
    hits = [LETTERS[i] for i, c in enumerate(choices[:len(LETTERS)]) if key and _norm_text(c) == key]
    if hits:
        return hits[0] if len(hits) == 1 else None
    mine = read_number(s) if key and len(key) <= 200 and not re.search(r"[A-Za-z]{3,}", re.sub(r"\\[A-Za-z]+", "", key)) else None
    if mine is None:
        return None
    value = number_value(mine)
    values = [read_number(c) if len(c) <= 200 else None for c in choices[:len(LETTERS)]]
    hits = [LETTERS[i] for i, v in enumerate(values) if v is not None and number_value(v) == value]
    return hits[0] if len(hits) == 1 else None


def _norm_text(s: str) -> str:
    s = _WRAP.sub(r"\1", clean(s)).replace("$", "")
    return re.sub(r"\s+", " ", s).strip().rstrip(".。").strip().lower()


def strict_letter(text: str, choices: Sequence[str]) -> str | None:
    """The option a reply marks as its answer: the last box, else the latest of an answer marker
    ("Answer: b", "故答案选B") and a stated choice ("B项正确", "option C is correct"), else a lone
    letter on the last line. A hedge ("(B) or (C)") reads as "B,C", which matches no gold letter."""
    boxed = last_boxed(text)
    if boxed is not None:
        return read_letter(boxed, choices, lower_ok=True) or _unwrap_math(boxed)
    found: list[tuple[int, str]] = []
    for start, end in _marker_spans(text, _MARK, _CHOICE_MARK):
        letter = read_letter(_marked(text, end), choices, lower_ok=True)
        if letter:
            found.append((start, letter))
            break
    stated = last_match(_STATED.finditer(text, max(0, len(text) - TAIL)))
    if stated is not None:
        letter = stated.group(2)
        if (letter.isupper() or stated.group(1)) and letter.upper() in letter_range(choices):
            found.append((stated.start(), letter.upper()))
    if found:
        return max(found)[1]
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
                before = _HEDGE_BEFORE.search(text, max(0, m.start() - 40), m.start())
                return _hedge(letter, before.group(1)) if before else letter
    low = clean(text).lower()
    best: tuple[int, int, str] | None = None
    for i, choice in enumerate(choices[:len(LETTERS)]):
        key = _norm_text(choice)
        pos = low.rfind(key) if key else -1
        if pos >= 0 and (best is None or (pos + len(key), len(key)) > best[:2]):
            best = (pos + len(key), len(key), LETTERS[i])
    return best[2] if best else None
