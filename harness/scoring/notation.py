"""Ways of writing an answer that mean one exact value, turned into the form the scorer compares:

- Chinese numerals (二十五, 一百零三, 两千零五十, 三点五, 负七, 一万二千) -> Arabic digits;
- repeating decimals (0.\\overline{3}, 0.(3), 0.\\dot{3}, 0.1\\dot{2}\\dot{3}) -> the exact fraction; an
  approximation (0.333, 0.333...) stays a different, inexact number in strict scoring;
- an interval written as inequalities in one variable (2 \\le x < 5, x > 3, x \\le -1 or x \\ge 2)
  -> interval notation ([2,5), (3,\\infty), (-\\infty,-1]\\cup[2,\\infty));
- a negated candidate ("the answer is not 12, it is 15", "答案不是12，而是15") -> what follows the negation.

Pure string functions; harness/scoring/answers.py and grader.py call them.
"""

from __future__ import annotations

import re
from fractions import Fraction

# ---- Chinese numerals ----------------------------------------------------------------------------
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10_000, "萬": 10_000, "亿": 100_000_000, "億": 100_000_000}
_ZH_CHARS = "".join(_DIGITS) + "".join(_UNITS) + "".join(_BIG)
_ZH_RUN = re.compile(f"(负|負)?([{_ZH_CHARS}]+)(?:(点|點)([{''.join(_DIGITS)}]+))?")
# After a single numeral character, these make it a number ("五个", "三元"); anything else ("一共",
# "一样", "十分") leaves the character alone: single numerals are common inside ordinary words.
_MEASURE = set("个只人元本件条张次天岁米克页辆棵朵块支头匹位名道题分角斤吨套双台瓶杯盒箱袋层排行组架间座所部份")


def zh_integer(run: str) -> int | None:
    """The value of a run of Chinese numeral characters (一百零三 -> 103), None when it is malformed."""
    total, section, digit = 0, 0, None
    for ch in run:
        if ch in _DIGITS:
            if digit is not None and digit != 0 and _DIGITS[ch] != 0:
                return None if not all(c in _DIGITS for c in run) else int("".join(str(_DIGITS[c]) for c in run))
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            section += (1 if digit is None else digit) * _UNITS[ch]
            digit = None
        elif ch in _BIG:
            total = (total + section + (digit or 0)) * _BIG[ch]
            section, digit = 0, None
        else:
            return None
    return total + section + (digit or 0)


def zh_numerals(text: str) -> str:
    """Chinese numerals in `text` written as Arabic numbers; ordinals (第一) and single characters
    inside ordinary words (一共, 十分) are left as they are."""
    if not any(ch in _ZH_CHARS for ch in text):
        return text

    def repl(m: re.Match[str]) -> str:
        sign, run, point, decimals = m.group(1), m.group(2), m.group(3), m.group(4)
        before = text[m.start() - 1] if m.start() > 0 else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if before == "第" or before.isdigit() or before == ".":  # an ordinal, or "3千" read with its digits
            return m.group(0)
        if all(ch in _UNITS or ch in _BIG for ch in run) and not (run == "十" and (after == "" or not after.isalnum()
                                                                                  or (after in _MEASURE and after not in "克米分"))):
            return m.group(0)  # 千克, 千米, 百分, 万一: words, not numbers
        if len(run) == 1 and not point and run not in _BIG and not (after == "" or after in _MEASURE or not after.isalnum()):
            return m.group(0)
        if run[0] in _BIG or run[0] in "百千":  # 万一, 千万: words; a number never opens with these
            return m.group(0)
        unit = ""
        if run.endswith("千") and after != "" and after in "克米瓦" and not point:  # 一千克 is 1 kg (千克), not 1000 克
            run, unit = run[:-1], "千"
        value = zh_integer(run)
        if value is None:
            return m.group(0)
        out = str(value) + ("." + "".join(str(_DIGITS[c]) for c in decimals) if point else "")
        return ("-" if sign else "") + out + unit

    return _ZH_RUN.sub(repl, text)


# ---- repeating decimals ------------------------------------------------------------------------
_OVERLINE = re.compile(r"(-?)(\d*)\.(\d*)\\(?:overline|bar)\s*\{(\d+)\}")
_PARENS = re.compile(r"(?<![\w)])(-?)(\d+)\.(\d*)\((\d+)\)")
_DOTS = re.compile(r"(-?)(\d*)\.(\d*?)\\dot\s*\{?(\d)\}?(?:(\d*)\\dot\s*\{?(\d)\}?)?")


def repeating_value(sign: str, whole: str, fixed: str, repetend: str) -> Fraction:
    """whole.fixed(repetend repeated) as an exact fraction."""
    value = Fraction(int(whole or "0")) + (Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0)
    value += Fraction(int(repetend), (10 ** len(repetend) - 1) * 10 ** len(fixed))
    return -value if sign else value


def _frac(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def repeating_decimals(text: str) -> str:
    """Repeating-decimal notation in `text` written as exact fractions p/q."""
    if "." not in text:
        return text
    text = _OVERLINE.sub(lambda m: _frac(repeating_value(*m.groups())), text)
    text = _DOTS.sub(lambda m: _frac(repeating_value(m.group(1), m.group(2), m.group(3),
                                                     m.group(4) + (m.group(5) or "") + (m.group(6) or ""))), text)
    return _PARENS.sub(lambda m: _frac(repeating_value(*m.groups())), text)


# ---- inequalities as intervals -------------------------------------------------------------------
_LE = r"(?:\\le(?:q|qslant)?(?![a-z])|<=|≤)"
_GE = r"(?:\\ge(?:q|qslant)?(?![a-z])|>=|≥)"
_LT = r"(?:\\lt(?![a-z])|<)"
_GT = r"(?:\\gt(?![a-z])|>)"
_OP = f"({_LE}|{_GE}|{_LT}|{_GT})"
_VAR = r"([a-zA-Z])"
_BOUND = r"(-?\s*(?:\\infty|∞|\\frac\{[^{}]+\}\{[^{}]+\}|\\sqrt\{[^{}]+\}|\\pi|[\d.]+(?:/[\d.]+)?)(?:\s*\\pi)?)"
_DOUBLE = re.compile(rf"^{_BOUND}\s*{_OP}\s*{_VAR}\s*{_OP}\s*{_BOUND}$")
_SINGLE = re.compile(rf"^{_VAR}\s*{_OP}\s*{_BOUND}$")
_SINGLE_REV = re.compile(rf"^{_BOUND}\s*{_OP}\s*{_VAR}$")
_OR = re.compile(r"\s*(?:\\text\{\s*or\s*\}|\\lor|\\vee|\bor\b|或|,|;)\s*")


def _kind(op: str) -> str:
    if re.fullmatch(_LE, op):
        return "le"
    if re.fullmatch(_GE, op):
        return "ge"
    return "lt" if re.fullmatch(_LT, op) else "gt"


def _one(part: str) -> tuple[str, str, str, str, str] | None:
    """(variable, lower, lower bracket, upper, upper bracket) of one inequality, or None."""
    p = part.strip().strip("$").strip()
    m = _DOUBLE.match(p)
    if m:
        lo, op1, var, op2, hi = m.groups()
        k1, k2 = _kind(op1), _kind(op2)
        if k1 in ("le", "lt") and k2 in ("le", "lt"):
            return var, lo, "[" if k1 == "le" else "(", hi, "]" if k2 == "le" else ")"
        if k1 in ("ge", "gt") and k2 in ("ge", "gt"):
            return var, hi, "[" if k2 == "ge" else "(", lo, "]" if k1 == "ge" else ")"
        return None
    m = _SINGLE.match(p)
    if m:
        var, op, bound = m.groups()
    else:
        m = _SINGLE_REV.match(p)
        if not m:
            return None
        bound, op, var = m.groups()
        op = {"le": "≥", "ge": "≤", "lt": ">", "gt": "<"}[_kind(op)]
    k = _kind(op)
    if k in ("ge", "gt"):
        return var, bound, "[" if k == "ge" else "(", "\\infty", ")"
    return var, "-\\infty", "(", bound, "]" if k == "le" else ")"


def inequality_interval(text: str) -> str | None:
    """Interval notation for inequalities in one variable ("2 \\le x < 5" -> "[2,5)"), a union for an
    "or" of them; None when `text` is not such an inequality."""
    s = text.strip().strip("$").strip()
    if not re.search(r"[<>≤≥]|\\[lg]e|\\[lg]t", s):
        return None
    parts = [x for x in _OR.split(s) if x.strip()]
    pieces = [_one(x) for x in parts]
    if not pieces or any(p is None for p in pieces) or len({p[0] for p in pieces if p}) != 1:
        return None
    return "\\cup".join(f"{p[2]}{p[1].replace(' ', '')},{p[3].replace(' ', '')}{p[4]}" for p in pieces if p)


# ---- negated candidates --------------------------------------------------------------------------
_NEGATED = re.compile(r"^(?:not|n't|isn't|is\s+not|不是|并不是|不)\s*", re.IGNORECASE)
_AFFIRM = re.compile(r"(?:\bbut(?:\s+(?:rather|it\s+is|it's))?|\brather\b|\binstead\b|\bit\s+is\b|\bit's\b|而是|应该是|应是|是)\s*:?\s*",
                     re.IGNORECASE)


def negated(candidate: str) -> bool:
    """Whether a marked answer opens with a negation ("not 12, ...")."""
    return _NEGATED.match(candidate.strip()) is not None


def after_negation(text: str) -> str | None:
    """What a negated answer affirms instead ("not 12, but 15" -> "15"), or None when it affirms nothing."""
    m = _NEGATED.match(text.strip())
    if m is None:
        return None
    rest = text.strip()[m.end():]
    affirm = _AFFIRM.search(rest)
    return rest[affirm.end():].strip() or None if affirm else None
