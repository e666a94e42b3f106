"""Known secrets and their redaction from everything the harness writes or prints.

A secret is a VALUE the harness knows it holds, never a variable's name:

- the API key it sends (registered by the backend, whatever variable it came from: `--api-key-env`
  may name any variable), a password (or token-like user name) found in a URL;
- the value of every variable the user names in HARNESS_SECRET_VARS (comma-separated names);
- the value of a variable whose name says it holds one (…KEY, …TOKEN, …SECRET, …PASSWORD,
  …CREDENTIAL) *and* whose value looks like a credential, and any environment value with a
  well-known credential prefix (sk-, ghp_, hf_, xox…, AKIA…). A path
  (GOOGLE_APPLICATION_CREDENTIALS=<a path to a .json file>), a URL, a number or a short common word is
  never a secret: masking runs of it would corrupt every path and JSON key that shares them.

Redaction is not of the exact value only: a server may echo a key partly (all but its last
characters) or base64-encoded (HTTP basic auth), so any run of 8 or more characters of a secret,
or of one of its base64 forms, is replaced. Files are redacted value by value before they are
serialised (`redact_value`), so a mask can never cut a JSON key or escape and a digest taken of
the stored values still matches the file; free text (console, reports) goes through `redact`.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MIN_RUN = 8  # shorter runs of a secret are too likely to be ordinary text
MIN_SECRET = 12  # a value under this length is not treated as a credential unless registered
MASK = "***"
USER_VARS = "HARNESS_SECRET_VARS"  # names of variables whose values are secrets whatever they look like
_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE)
_PREFIXES = re.compile(r"^(sk-|sk_|ghp_|gho_|ghs_|ghu_|github_pat_|hf_|xox[abprs]-|AKIA|ASIA|glpat-|AIza)[A-Za-z0-9_\-]{8,}")
_extra: set[str] = set()
_cache: dict[tuple[str, ...], frozenset[str]] = {}


def add_secret(value: str | None) -> None:
    """Register a value the harness holds as a secret (the API key it sends, a URL password)."""
    if value and len(value) >= MIN_RUN:
        _extra.add(value)


def looks_like_credential(value: str) -> bool:
    """True for a value shaped like a key or token: long, no spaces, not a path or URL or number,
    and mixing letters with digits or symbols (a random string, not a word)."""
    v = value.strip()
    if _PREFIXES.match(v):
        return True
    if len(v) < MIN_SECRET or any(c.isspace() for c in v):
        return False
    if v.startswith(("/", "~", ".", "\\")) or re.match(r"^[A-Za-z]:[\\/]", v) or "://" in v:
        return False  # a path or a URL
    if v.count("/") >= 2 and not re.fullmatch(r"[A-Za-z0-9+/=_-]+", v):
        return False
    if re.fullmatch(r"[0-9.,:_-]+", v) or v.lower() in ("true", "false", "none", "null"):
        return False
    classes = sum(bool(re.search(p, v)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return classes >= 2 and len(set(v)) >= 8


_env_cache: dict[tuple[tuple[str, str], ...], frozenset[str]] = {}


def _env_secrets() -> frozenset[str]:
    """Secrets from the environment, recomputed only when the environment changed (redact runs per value)."""
    key = tuple(os.environ.items())
    if key not in _env_cache:
        _env_cache.clear()
        _env_cache[key] = frozenset(_scan_env())
    return _env_cache[key]


def _scan_env() -> set[str]:
    env = os.environ
    named = {n.strip() for n in env.get(USER_VARS, "").split(",") if n.strip()}
    out = {env[n] for n in named if len(env.get(n, "")) >= MIN_RUN}
    for k, v in env.items():
        if (_NAME.search(k) and looks_like_credential(v)) or _PREFIXES.match(v):
            out.add(v)
    return out


def known_secrets() -> tuple[str, ...]:
    """Every value currently treated as a secret (registered, user-named, or credential-shaped)."""
    return tuple(sorted(_env_secrets() | _extra))


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


def redact_value(obj: Any) -> Any:
    """`obj` (JSON-like data) with `redact` applied to every string value, before serialisation:
    keys are the harness's own names and stay as they are, so the structure and schema hold."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_value(v) for v in obj]
    return obj


def strip_userinfo(url: str) -> str:
    """The URL without a user:password@ part (the password becomes a known secret). Raises
    ValueError for a URL that cannot be parsed (a bad port, an unclosed IPv6 literal)."""
    parts = urlsplit(url)
    parts.port  # noqa: B018 - raises ValueError on a bad port
    if parts.username is None and parts.password is None:
        return url
    add_secret(parts.password)
    if parts.username and looks_like_credential(parts.username):  # https://TOKEN@host: a token as user name
        add_secret(parts.username)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedactingStream:
    """A text stream (stdout/stderr) whose writes pass through `redact`."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
