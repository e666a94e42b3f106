"""The one function that makes untrusted text safe for every output channel.

Server error text, model names and answers end up in console warnings, report.md, report.html
and CSV files. `clean` strips terminal escape sequences (CSI colours, clear-screen, OSC titles
and OSC-8 hyperlinks), other C0/C1 control characters and bidirectional overrides, keeping tabs
and (optionally) newlines; `csv_cell` also neutralises a leading = + - @ (a spreadsheet formula).
"""

from __future__ import annotations

import re

# ESC [ ... final byte (CSI), ESC ] ... BEL or ESC \ (OSC, e.g. OSC-8 links), other 2-byte ESC sequences,
# and the single-byte C1 CSI/OSC introducers.
_ESCAPES = re.compile(r"(\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(\x1b\]|\x9d)[^\x07\x1b\x9c]*(\x07|\x1b\\|\x9c)?|\x1b[@-Z\\-_]|\x1b")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_NO_NL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def clean(text: object, *, newlines: bool = False) -> str:
    """`text` without escape sequences or control characters (newlines kept only when asked)."""
    s = _ESCAPES.sub("", str(text))
    if not newlines:
        s = s.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    return (_CONTROLS if newlines else _CONTROLS_NO_NL).sub("", s)


def csv_cell(value: object) -> object:
    """A CSV cell: numbers as they are; text cleaned, and a leading formula character neutralised
    with a quote (a model named "=HYPERLINK(...)" must not run in a spreadsheet)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    s = clean(value)
    if s.startswith(_FORMULA):
        try:
            float(s)
            return s  # a negative number written as text
        except ValueError:
            return "'" + s
    return s
