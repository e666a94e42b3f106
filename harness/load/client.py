"""The load generator: streamed requests over httpx's async client, closed-loop or open-loop.

`send` times one streamed completion (TTFT at the first content chunk, a gap per later chunk,
E2EL at the end of the stream) and never raises for a server's failure: a 429, a 500, a refused
connection, a stream cut off mid-answer or a timeout all become a failed record with the reason.
No retries: a load test that retried would hide the failures it exists to count.

Output tokens are counted here, not taken on trust: the server's `usage` when it sends one
(vLLM with `stream_options.include_usage`), else `max_tokens` when the server stopped for length
(it then generated exactly that many), else the number of content chunks (llama.cpp's server
streams one token per chunk; ignoring `include_usage`, it sends no usage).

Every loop is bounded by a request count, the level's duration and a hard deadline; a request
still in flight at the deadline is cancelled and recorded as failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.load.schema import RequestRecord

MAX_ERROR_BODY = 300


@dataclass(frozen=True)
class Prompt:
    """One distinct prompt: chat messages or a raw text, and its measured input length."""

    id: str
    messages: tuple[dict[str, str], ...] = ()
    text: str = ""
    input_tokens: int | None = None
    input_tokens_source: str = "not measured"


@dataclass
class Outcome:
    """What one request delivered, before it becomes a record."""

    ok: bool = False
    status: int | None = None
    error: str | None = None
    ttft_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    e2el_s: float | None = None
    chunks: int = 0
    usage_tokens: int | None = None
    finish_reason: str | None = None


def chunk_text(data: dict[str, Any]) -> tuple[str, str | None]:
    """(content of this streamed chunk, finish_reason) for chat or text completions."""
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return "", None
    c = choices[0]
    delta = c.get("delta")
    if isinstance(delta, dict):
        text = (delta.get("content") or "") + (delta.get("reasoning_content") or delta.get("reasoning") or "")
    else:
        text = c.get("text") or ""
    return text, c.get("finish_reason")


async def send(client: Any, url: str, payload: dict[str, Any], timeout_s: float) -> Outcome:
    """POST one streaming request and time it; failures come back as an Outcome, never raised."""
    import httpx

    out = Outcome()
    t0 = time.perf_counter()
    state = {"done": False}

    async def read() -> None:
        last: float | None = None
        async with client.stream("POST", url, json=payload) as resp:
            out.status = resp.status_code
            if resp.status_code >= 400:
                body = (await resp.aread())[:MAX_ERROR_BODY].decode("utf-8", "replace")
                out.error = f"HTTP {resp.status_code}: {' '.join(body.split())}"
                return
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    state["done"] = True
                    return
                try:
                    obj = json.loads(data)
                except ValueError:
                    continue
                if not isinstance(obj, dict):
                    continue
                if isinstance(obj.get("usage"), dict) and isinstance(obj["usage"].get("completion_tokens"), int):
                    out.usage_tokens = obj["usage"]["completion_tokens"]
                if "error" in obj:
                    out.error = f"stream error: {str(obj['error'])[:MAX_ERROR_BODY]}"
                    return
                text, finish = chunk_text(obj)
                out.finish_reason = finish or out.finish_reason
                if not text:
                    continue
                now = time.perf_counter()
                if out.ttft_s is None:
                    out.ttft_s = now - t0
                else:
                    out.itl_s.append(now - (last or now))
                last = now
                out.chunks += 1

    try:
        await asyncio.wait_for(read(), timeout_s)
    except asyncio.TimeoutError:
        out.error = f"timeout: no complete answer in {timeout_s:g} s"
    except asyncio.CancelledError:  # the level's deadline: the record says so, and the task ends here
        out.error = "cancelled: the load test's deadline passed with the request in flight"
    except httpx.ConnectError as e:
        out.error = f"connect: {e or 'connection refused'}"
    except (httpx.RemoteProtocolError, httpx.ReadError) as e:
        out.error = f"stream cut: the server closed the connection mid-answer ({e or type(e).__name__})"
    except httpx.HTTPError as e:
        out.error = f"{type(e).__name__}: {e}"
    done = state["done"]
    out.e2el_s = time.perf_counter() - t0
    if out.error is None and not done:
        out.error = "stream cut: the stream ended without [DONE]"
    if out.error is None and out.chunks == 0:
        out.error = "empty: the server streamed no content"
    out.ok = out.error is None
    return out


def output_tokens(out: Outcome, max_tokens: int) -> tuple[int, str]:
    """(count, how it was counted): usage, else max_tokens on a length stop, else the chunks."""
    if out.usage_tokens is not None:
        return out.usage_tokens, "server usage"
    if out.finish_reason == "length":
        return max_tokens, "max_tokens (finish_reason=length)"
    return out.chunks, "streamed chunks"


@dataclass
class LevelRun:
    """What a level's loop produced, beside its records."""

    records: list[RequestRecord]
    start: float  # perf_counter of the level's first send
    end: float  # perf_counter of its last completion
    max_in_flight: int
    lags: list[float]
    stopped: str | None


Send = Callable[[int, float | None], Awaitable[RequestRecord]]
StopCheck = Callable[[], str | None]


class _Flight:
    """Requests in flight, and the most ever at once."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0

    def __enter__(self) -> None:
        self.now += 1
        self.max = max(self.max, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


async def closed_loop(send_one: Send, start: float, concurrency: int, n: int, duration_s: float, deadline: float,
                      should_stop: StopCheck) -> LevelRun:
    """`concurrency` workers each send the next request when their last one ends, until n requests
    were sent, the level's duration passed, `should_stop` says why to stop, or the deadline."""
    records: list[RequestRecord] = []
    flight = _Flight()
    next_index = 0
    stopped: list[str] = []
    level_end = min(start + duration_s, deadline)

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            why = should_stop()
            if why:
                stopped.append(why)
                return
            if time.perf_counter() >= level_end:
                stopped.append(f"duration: {duration_s:g} s passed" if level_end < deadline else "deadline passed")
                return
            i = next_index
            next_index += 1
            with flight:
                records.append(await send_one(i, None))

    await _bounded([asyncio.create_task(worker()) for _ in range(concurrency)], deadline)
    end = max([start] + [start + r.sent_s + (r.e2el_s or 0.0) for r in records])
    return LevelRun(records, start, end, flight.max, [], stopped[0] if stopped and len(records) < n else None)


async def open_loop(send_one: Send, start: float, send_times: Sequence[float], duration_s: float, deadline: float,
                    should_stop: StopCheck, max_concurrency: int | None) -> LevelRun:
    """Send request i at send_times[i] (seconds from the start) whatever is in flight (at most
    `max_concurrency` at once, when given), until the schedule, the duration or the deadline ends."""
    records: list[RequestRecord] = []
    flight = _Flight()
    lags: list[float] = []
    stopped: str | None = None
    gate = asyncio.Semaphore(max_concurrency) if max_concurrency else None
    level_end = min(start + duration_s, deadline)
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, at: float) -> None:
        if gate is not None:
            async with gate:
                await go(i, at)
        else:
            await go(i, at)

    async def go(i: int, at: float) -> None:
        lags.append(max(0.0, time.perf_counter() - (start + at)))
        with flight:
            records.append(await send_one(i, at))

    for i, at in enumerate(send_times):
        wait = start + at - time.perf_counter()
        if start + at >= level_end:
            stopped = f"duration: {duration_s:g} s passed" if level_end < deadline else "deadline passed"
            break
        if wait > 0:
            await asyncio.sleep(wait)
        why = should_stop()
        if why:
            stopped = why
            break
        tasks.append(asyncio.create_task(one(i, at)))
    await _bounded(tasks, deadline)
    end = max([start] + [start + r.sent_s + (r.e2el_s or 0.0) for r in records])
    return LevelRun(records, start, end, flight.max, lags, stopped)


async def _bounded(tasks: list[asyncio.Task[None]], deadline: float) -> None:
    """Wait for the tasks until the deadline; cancel what is left (their records say so)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.perf_counter()))
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5.0)
