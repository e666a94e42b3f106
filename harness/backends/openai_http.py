"""HTTP pieces of the OpenAI-compatible backend (harness/backends/openai.py): the API key from
the environment, Retry-After and backoff, and reading one streamed chat completion (server-sent
events) into what it delivered. No model logic here: the backend builds requests and completions.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import math
import os
import random
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from harness.backends._sampling import StopScanner
from harness.core.types import Completion
from harness.errors import ModelLoadError
from harness.runtime import tokens as tokens_meter
from harness.secrets import add_secret

RETRY_STATUS = {408, 409, 425, 429}


class Retryable(Exception):
    """A failure worth another attempt; `retry_after` is the server's requested wait, if any."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Rejected(Retryable):
    """A 4xx the server will give again (bad request, prompt too long): one attempt is enough."""


def import_httpx():
    try:
        import httpx
    except ImportError as exc:
        raise ModelLoadError("the OpenAI-compatible backend needs httpx", "pip install 'cnllm-harness[openai]'") from exc
    return httpx


def is_local(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.endswith((".local", ".internal", ".lan"))
    return address.is_loopback or address.is_private or address.is_link_local


def public_url(url: str) -> str:
    """The base URL without any user:password@ part, fit for notes and messages."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# A key variable by default goes to its provider's exact host only (never `endswith`: evil-deepseek.com).
KEY_HOSTS = {"api.openai.com": "OPENAI_API_KEY", "api.deepseek.com": "DEEPSEEK_API_KEY"}


def resolve_api_key(base_url: str, api_key_env: str | None) -> tuple[str | None, str]:
    """(key or None, the variable it came from). A variable named with --api-key-env is sent to
    the URL given; otherwise a provider's variable goes only to that provider's exact host, a
    local server gets no key, and another remote host needs --api-key-env. The key is registered
    as a secret (harness/secrets.py) whatever its variable is called."""
    host = (urlsplit(base_url).hostname or "").lower()
    if api_key_env:
        name = api_key_env
    elif host in KEY_HOSTS:
        name = KEY_HOSTS[host]
    elif is_local(host):
        return None, ""
    else:
        raise ModelLoadError(
            f"no API key variable for {public_url(base_url)}: OPENAI_API_KEY and DEEPSEEK_API_KEY go only to "
            "api.openai.com and api.deepseek.com",
            "name the variable holding this server's key with --api-key-env NAME",
        )
    key = os.environ.get(name) or None
    if key is None:
        raise ModelLoadError(
            f"no API key for {public_url(base_url)}: environment variable {name} is empty",
            f"export {name}=... (or name another variable with --api-key-env)",
        )
    add_secret(key)
    return key, name


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base_s: float, cap_s: float, retry_after: float | None, rng: random.Random) -> float:
    """Wait before retry `attempt` (0-based): the server's Retry-After when given (capped),
    else full jitter over an exponentially growing window."""
    if retry_after is not None:
        return min(retry_after, cap_s)
    return rng.uniform(0.0, min(cap_s, base_s * 2**attempt))


@dataclass
class Stream:
    """What one streamed answer has delivered so far."""

    scanner: StopScanner
    reasoning: list[str] = field(default_factory=list)
    first: float | None = None  # perf_counter of the first content or reasoning delta
    last: float | None = None
    deltas: int = 0  # non-empty deltas: the token count when the server sends no usage
    usage: dict | None = None
    finish: str | None = None  # the server's finish_reason
    local_stop: bool = False  # a stop string matched here
    done: bool = False  # [DONE] arrived
    model: str | None = None  # the model the server said answered (the chunks' `model`)



class Stopped(Exception):
    """A stop signal arrived while this request was waiting or streaming: it ends as an error row
    (retried on --resume), and no further attempt is made."""


MAX_LINE_BYTES = 8 << 20  # one server-sent event line; a longer one is a broken or hostile server


def sse_lines(chunks, deadline: float | None, timeout_s: float | None, stop=None):
    """Lines of a server-sent event stream from raw byte chunks, split at b"\n" only (U+2028,
    U+2029 and U+0085 are text inside an answer, never line ends), each decoded as UTF-8. The
    total deadline and the stop event are checked on every chunk, so a server dripping a byte a
    second cannot outlive either; silence is the transport's idle (read) timeout."""
    buf = bytearray()
    for chunk in chunks:
        if stop is not None and stop():
            raise Stopped("stopped by a signal")
        if deadline is not None and time.perf_counter() > deadline:
            raise Retryable(f"no complete answer within {timeout_s:g} s (the total deadline, --backend-option timeout_s)")
        start = len(buf)
        buf += chunk
        while (i := buf.find(b"\n", start)) >= 0:
            yield _decode(bytes(buf[:i]).removesuffix(b"\r"))
            del buf[: i + 1]
            start = 0
        if len(buf) > MAX_LINE_BYTES:
            raise Retryable(f"a stream line over {MAX_LINE_BYTES >> 20} MiB")
    if buf:
        yield _decode(bytes(buf))


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Retryable(f"the stream is not UTF-8 (byte {e.start} of a line)") from None


def fix_surrogates(text: str) -> str:
    """Text whose UTF-16 surrogate halves (JSON "\\ud83d" and "\\ude00", possibly from two chunks)
    are joined into the character they encode; a lone half becomes U+FFFD. The result always
    encodes as UTF-8."""
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def count_field(usage: object, *path: str) -> tuple[int | None, str | None]:
    """A token count from a server's usage object: (value, None) when it is a finite non-negative
    integer (12.0 counts as 12), (None, reason) for anything else (NaN, a string, a boolean, -957),
    (None, None) when absent. A bad value is reported "unmeasured", never written or trusted."""
    value: object = usage
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None, None
        value = value[key]
    if value is None:
        return None, None
    name = ".".join(path)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"the server sent {name}={str(value)[:40]!r}, not a number"
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None, f"the server sent {name}={value!r}, not a non-negative whole number"
    return int(value), None


def usage_counts(usage: dict, unmeasured: dict[str, str]) -> tuple[int | None, int | None, int | None]:
    """(input, output, reasoning) tokens from a usage object, each checked; reasons into `unmeasured`."""
    out = []
    for name, path in (("input_tokens", ("prompt_tokens",)), ("output_tokens", ("completion_tokens",)),
                       ("reasoning_tokens", ("completion_tokens_details", "reasoning_tokens"))):
        value, bad = count_field(usage, *path)
        if bad:
            unmeasured[name] = bad
        out.append(value)
    return out[0], out[1], out[2]


def raise_for_status(response, where: str, model: str, scrub) -> None:
    """The exception for a non-200 answer: 401/403/404 stop the run, 408/409/425/429/5xx are retried."""
    status = response.status_code
    response.read()
    try:
        detail = response.json().get("error", {})
        detail = detail.get("message", detail) if isinstance(detail, dict) else detail
    except (ValueError, AttributeError):
        detail = response.text
    detail = scrub(str(detail))[:300]
    if status in (401, 403):
        # The body may quote the key (OpenAI echoes part of it): say nothing from it.
        raise ModelLoadError(f"{where} refused the API key (HTTP {status})", "check the key in the environment variable named in the model notes")
    if status == 404:
        raise ModelLoadError(f"{where} has no chat model {model!r} (HTTP 404): {detail}", "check --model and --base-url")
    if status in RETRY_STATUS or status >= 500:
        raise Retryable(f"HTTP {status}: {detail}", parse_retry_after(response.headers.get("retry-after")))
    raise Rejected(f"HTTP {status}: {detail}")


def interruptible_sleep(seconds: float, stopping) -> bool:
    """Sleep, waking early (True) once `stopping()` says so (a stop signal, an abandoned batch)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stopping():
            return True
        time.sleep(min(0.1, left))
    return bool(stopping())


def failed_completion(why: str) -> Completion:
    """A request that got no answer: an error row, never scored, retried on --resume."""
    return Completion("", None, None, "error", None, None, error=why,
                      unmeasured={f: why for f in ("input_tokens", "output_tokens", "ttft_s", "e2e_s")})


def cut_sockets(socks: list[socket.socket]) -> None:
    """Shut sockets down: a thread blocked reading one wakes at once (closing it alone would not)."""
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def read_stream(lines, scanner: StopScanner, min_new_tokens: int, scrub) -> Stream:
    """Read server-sent events of one chat completion into a Stream; raises Retryable on a broken
    or malformed stream (wrong-shaped chunks included). Stops early when a stop string matches."""
    st = Stream(scanner)
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            st.done = True
            break
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise Retryable(f"malformed stream chunk: {scrub(data)[:100]!r}") from None
        if not isinstance(chunk, dict):
            raise Retryable(f"malformed stream chunk (a JSON {type(chunk).__name__}): {scrub(data)[:100]!r}")
        if chunk.get("error"):
            raise Retryable(f"server error in stream: {scrub(json.dumps(chunk['error']))[:300]}")
        usage = chunk.get("usage")
        st.usage = usage if isinstance(usage, dict) else st.usage
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            st.model = chunk["model"][:200]
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise Retryable(f"malformed stream chunk (choices is a {type(choices).__name__})")
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            delta = delta if isinstance(delta, dict) else {}
            thought = delta.get("reasoning_content") or delta.get("reasoning") or ""
            content = delta.get("content") or ""
            if not isinstance(thought, str) or not isinstance(content, str):
                raise Retryable("malformed stream chunk (content that is not text)")
            if thought or content:
                st.last = time.perf_counter()
                st.first = st.first or st.last
                st.deltas += 1
                tokens_meter.tick(1)
            if thought:
                st.reasoning.append(thought)
            if content and st.scanner.feed(content, check=st.deltas >= min_new_tokens):
                st.local_stop = True
            finish = choice.get("finish_reason") if isinstance(choice, dict) else None
            st.finish = finish if isinstance(finish, str) else st.finish
        if st.local_stop:
            break  # the caller then leaves its `with`, which closes the stream: the server stops generating
    if not (st.done or st.local_stop or st.finish):
        raise Retryable("stream ended before the answer was complete")
    return st
