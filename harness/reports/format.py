"""How every report writes a number: percent, points, dollars, bytes, seconds, counts, p-values.

One module, so report.md, report.html, the console summary, compare and claims show the same
value the same way (a peak of 440,844,288 bytes is "420.42 MiB" everywhere). A missing value
(None) is an em dash, never 0. Plain text: escaping is the renderer's job.
"""

from __future__ import annotations

import math

NONE = "—"


def pct(x, digits: int = 1) -> str:
    """0.6667 -> "66.7%"."""
    return NONE if x is None else f"{100 * x:.{digits}f}%"


def pct_sig(x) -> str:
    """A percentage that keeps two significant digits when it is tiny (0.04%, not 0.0%)."""
    if x is None or x == 0 or abs(x) >= 0.01:
        return pct(x)
    return f"{100 * x:.2g}%"


def interval(ci) -> str:
    """[lo, hi] fractions -> "[55.1, 78.2]" (percent, one decimal)."""
    return NONE if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def pct_interval(ci) -> str:
    """[lo, hi] fractions -> "[55.1%, 78.2%]"."""
    return NONE if not ci else f"[{pct(ci[0])}, {pct(ci[1])}]"


def pts(x, sign: bool = True) -> str:
    """A difference of fractions in percentage points: -0.339 -> "-33.9"."""
    return NONE if x is None else (f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}")


def num(x, fmt: str = "{:.3g}", suffix: str = "") -> str:
    return NONE if x is None else fmt.format(x) + suffix


def count(x) -> str:
    """1.5 B, 122 M, 12.3 K."""
    if x is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return str(x)


def nbytes(x) -> str:
    """Binary units with two decimals: 440844288 -> "420.42 MiB"."""
    if x is None:
        return NONE
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= size:
            return f"{x / size:.2f} {unit}"
    return f"{x} B"


def usd(x) -> str:
    """Dollars with three significant digits and no exponent: $0.0000613, $0.726, $1,234.50."""
    if x is None:
        return NONE
    if x >= 1 or x == 0:
        return f"${x:,.2f}"
    return f"${x:.{2 - math.floor(math.log10(x))}f}"


def seconds(x) -> str:
    """Sub-second times in milliseconds: 0.0123 -> "12.3 ms", 4.5 -> "4.5 s"."""
    if x is None:
        return NONE
    return f"{1000 * x:.3g} ms" if x < 1 else f"{x:.3g} s"


def p_value(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def price(x) -> str:
    """A quoted price, as a price list writes it: $0.55, $2.19, $60 (no trailing zeros)."""
    if x is None:
        return NONE
    return f"${x:.3g}" if x < 1 else f"${x:,.2f}".rstrip("0").rstrip(".")
