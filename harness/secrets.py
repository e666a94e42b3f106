"""Known secrets and their redaction from everything the harness writes or prints.

A secret is the value of an environment variable whose name says it holds one (…KEY, …TOKEN,
…SECRET, …PASSWORD) or a password found in a URL. Redaction is not of the exact value only: a
server may echo a key partly (all but its last characters) or base64-encoded (HTTP basic auth),
so any run of 8 or more characters of a secret, or of one of its base64 forms, is replaced.
"""

from __future__ import annotations

import base64
import os
import re
from urllib.parse import urlsplit, urlunsplit

MIN_RUN = 8  # shorter runs of a secret are too likely to be ordinary text
MASK = "***"
_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_extra: set[str] = set()
_cache: dict = {}


def add_secret(value: str | None) -> None:
    if value and len(value) >= MIN_RUN:
        _extra.add(value)


def known_secrets() -> tuple[str, ...]:
    env = (v for k, v in os.environ.items() if _NAME.search(k) and len(v) >= MIN_RUN)
    return tuple(sorted(set(env) | _extra))


def _forms(secret: str) -> list[str]:
    """The secret and the parts of its base64 encodings that do not depend on what surrounds it."""
    raw = secret.encode("utf-8")
    out = [secret]
    for shift in range(3):  # the three byte alignments a secret can have inside encoded text
        enc = base64.b64encode(b"\0" * shift + raw + b"\0\0").decode()
        out.append(enc[4 if shift else 0:-4])
    return [f for f in out if len(f) >= MIN_RUN]


def _grams() -> frozenset[str]:
    secrets = known_secrets()
    if secrets not in _cache:
        _cache.clear()
        _cache[secrets] = frozenset(f[i:i + MIN_RUN] for s in secrets for f in _forms(s) for i in range(len(f) - MIN_RUN + 1))
    return _cache[secrets]


def redact(text: str) -> str:
    """`text` with every run of MIN_RUN+ characters of a known secret replaced by ***."""
    grams = _grams()
    if not grams or len(text) < MIN_RUN:
        return text
    hit = [False] * len(text)
    found = False
    for i in range(len(text) - MIN_RUN + 1):
        if text[i:i + MIN_RUN] in grams:
            found = True
            for j in range(i, i + MIN_RUN):
                hit[j] = True
    if not found:
        return text
    out, i = [], 0
    while i < len(text):
        if hit[i]:
            while i < len(text) and hit[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def strip_userinfo(url: str) -> str:
    """The URL without a user:password@ part (the password becomes a known secret). Raises
    ValueError for a URL that cannot be parsed (a bad port, an unclosed IPv6 literal)."""
    parts = urlsplit(url)
    parts.port  # noqa: B018 - raises ValueError on a bad port
    if parts.username is None and parts.password is None:
        return url
    add_secret(parts.password)
    add_secret(parts.username)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedactingStream:
    """A text stream (stdout/stderr) whose writes pass through `redact`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)
