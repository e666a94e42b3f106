"""HTTP pieces of the OpenAI-compatible backend (harness/backends/openai.py): the API key from
the environment, Retry-After and backoff, and reading one streamed chat completion (server-sent
events) into what it delivered. No model logic here: the backend builds requests and completions.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import os
import random
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from harness.backends._sampling import StopScanner
from harness.errors import ModelLoadError
from harness.runtime import tokens as tokens_meter

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


def resolve_api_key(base_url: str, api_key_env: str | None) -> tuple[str | None, str]:
    """(key or None, the variable it came from). Raises when a remote API has no key."""
    host = (urlsplit(base_url).hostname or "").lower()
    if api_key_env:
        name = api_key_env
    elif host.endswith("deepseek.com"):
        name = "DEEPSEEK_API_KEY"
    else:
        name = "OPENAI_API_KEY"
    key = os.environ.get(name) or None
    if key is None and (api_key_env or not is_local(host)):
        raise ModelLoadError(
            f"no API key for {public_url(base_url)}: environment variable {name} is empty",
            f"export {name}=... (or name another variable with --api-key-env)",
        )
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



def read_stream(lines, scanner: StopScanner, min_new_tokens: int, deadline: float, timeout_s: float, scrub) -> Stream:
    """Read server-sent events of one chat completion into a Stream; raises Retryable on a broken,
    malformed or overdue stream. Stops early when a stop string matches (`scanner`)."""
    st = Stream(scanner)
    for line in lines:
        if time.perf_counter() > deadline:
            raise Retryable(f"no complete answer within {timeout_s:g} s")
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            st.done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise Retryable(f"malformed stream chunk: {scrub(data)[:100]!r}") from None
        if chunk.get("error"):
            raise Retryable(f"server error in stream: {scrub(json.dumps(chunk['error']))[:300]}")
        st.usage = chunk.get("usage") or st.usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning") or ""
            content = delta.get("content") or ""
            if thought or content:
                st.last = time.perf_counter()
                st.first = st.first or st.last
                st.deltas += 1
                tokens_meter.tick(1)
            if thought:
                st.reasoning.append(thought)
            if content and st.scanner.feed(content, check=st.deltas >= min_new_tokens):
                st.local_stop = True
            st.finish = choice.get("finish_reason") or st.finish
        if st.local_stop:
            break  # the caller then leaves its `with`, which closes the stream: the server stops generating
    if not (st.done or st.local_stop or st.finish):
        raise Retryable("stream ended before the answer was complete")
    return st
