"""The OpenAI-compatible HTTP backend: streamed chat completions from a hosted API or a local server.

Works against api.openai.com, api.deepseek.com, vLLM / SGLang / llama.cpp servers, anything that
speaks `POST {base_url}/chat/completions` with server-sent events. Requests run concurrently on
a thread pool of `max_concurrency` workers; each is streamed so the first token can be timed.

What is measured, and from where:
- ttft_s / e2e_s: from sending the request (the attempt that succeeded; backoff before it is not
  counted) to the first content or reasoning delta, and to the end of the stream.
- tokens: the server's `usage` (asked for with `stream_options.include_usage`). A server that
  sends none (llama.cpp's) leaves input_tokens to a local `tokenizer` when one is given, and
  output_tokens counted as non-empty streamed deltas (one token each on llama.cpp and vLLM
  servers, fewer when a server merges pieces); the run's model notes say so.
- reasoning: `reasoning_content` (DeepSeek) or `reasoning` (vLLM) deltas become
  `Completion.reasoning_text`; `completion_tokens_details.reasoning_tokens` their count.
- stop strings are matched here, on the streamed answer text, and not sent to the server: the API
  reports a stop string and a natural end alike as "stop", so only local matching can tell
  finish_reason "stop" from "eos". The stream is closed as soon as one matches.
- Request.prefill (a forced assistant prefix such as "<think>\\n") cannot be sent to a chat API
  and is ignored; the run's model notes record that it was.

Serving with llama-cpp-python: start it with `--interrupt_requests False` or use
max_concurrency 1; by default that server ends the stream in flight (as a normal "stop") when
the next request arrives. So the default concurrency is 1 for a local server (8 for a remote
API; --max-concurrency sets it), and a response with no tokens is retried and, if it stays
empty, recorded as an error (never scored as an answer).

Retries: 429, 5xx, idle timeouts (`idle_timeout_s` without a byte) and broken streams are retried up
to `max_retries` times (the only retry layer: generate_all adds none) with jittered backoff, honouring
Retry-After; `timeout_s` is a total deadline, off unless set. A refused connection triggers a health
probe: a server that is down fails every remaining request at once. 401/403/404 stop the run. A stop
signal ends backoff sleeps and cuts reads in flight. A failed request is an error completion.

The API key is read from the environment when the backend is built and kept only in the request
headers: it is never put in ModelInfo, a Completion, a log line, an exception or a repr.
The HTTP pieces (key lookup, backoff, reading the event stream) are harness/backends/openai_http.py.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from harness.backends._sampling import StopScanner
from harness.backends.base import Backend, BackendOptions
from harness.backends.openai_http import (
    Rejected,
    Retryable,
    Stopped,
    Stream,
    backoff_delay,
    count_field,
    cut_sockets,
    failed_completion,
    fix_surrogates,
    import_httpx,
    interruptible_sleep,
    is_local,
    parse_retry_after,
    public_url,
    raise_for_status,
    read_stream,
    resolve_api_key,
    sse_lines,
    usage_counts,
)
from harness.core.prompt import hf_template, render
from harness.core.spec import parse as parse_spec
from harness.core.types import Completion, ModelInfo, Request
from harness.errors import ConfigError, HarnessError
from harness.runtime.signals import STOP

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Hosted APIs reject fields they do not define (top_k, min_tokens), and want a key.
OFFICIAL_HOSTS = ("api.openai.com", "api.deepseek.com")


class OpenAIOptions(BackendOptions):
    base_url: str = Field(DEFAULT_BASE_URL, description="the server's OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the NAME of the environment variable holding the API key")
    max_concurrency: int | None = Field(None, ge=1, description="requests in flight at once (default: 1 for a local server, "
                                                                  "which may cut off a request when the next arrives; 8 for a remote API)")
    timeout_s: float | None = Field(None, gt=0, description="total seconds one request may take (off unless set: a live stream runs on)")
    idle_timeout_s: float = Field(120.0, gt=0, description="seconds without a byte from the server before an attempt is given up")
    max_retries: int = Field(5, ge=0, description="retries of a 429, 5xx, timeout or broken stream")
    tokenizer: str | None = Field(None, description="a local tokenizer folder, to count prompt tokens a server does not report")


class OpenAIBackend(Backend):
    """Chat completions over HTTP. Build it with `from_options(model, base_url=..., ...)`."""

    name = "openai"
    Options = OpenAIOptions
    install = "OpenAI-compatible HTTP: pip install 'cnllm-harness[openai]'"
    logprobs_unsupported = ("an OpenAI-compatible chat endpoint returns log-probabilities only for tokens it generates, "
                            "never for a given continuation (the prompt)")

    def __init__(
        self,
        model: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key_env: str | None = None,
        max_concurrency: int | None = None,  # None: 1 for a local server, 8 for a remote API
        timeout_s: float | None = None,  # total deadline per attempt: off unless set
        max_retries: int = 5,
        idle_timeout_s: float = 120.0,  # no byte for this long: the attempt failed
        tokenizer: str | None = None,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 60.0,
        transport=None,  # an httpx transport, for tests
    ):
        httpx = import_httpx()
        model = parse_spec(model).name if parse_spec(model).kind == "openai" else model
        if not model:
            raise ConfigError("no model name for the OpenAI-compatible backend", "pass --model openai:<model name>")
        local = is_local((urlsplit(base_url).hostname or "").lower())
        if max_concurrency is None:  # a local server may have one slot and cut off the request in flight
            max_concurrency = 1 if local else 8
        if max_concurrency < 1 or max_retries < 0 or (timeout_s is not None and timeout_s <= 0) or idle_timeout_s <= 0:
            raise ConfigError("max_concurrency must be >= 1, max_retries >= 0, timeout_s and idle_timeout_s > 0")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._host = (urlsplit(self.base_url).hostname or "").lower()
        self._official = self._host in OFFICIAL_HOSTS
        key, key_env = resolve_api_key(self.base_url, api_key_env)
        self._headers = {"Accept": "text/event-stream"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._secret = key  # only to scrub it from any server text we repeat
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        self.idle_timeout_s = float(idle_timeout_s)
        self.max_retries = int(max_retries)
        self._inflight: dict[int, Any] = {}  # thread id -> the socket it reads, to cut on a stop signal
        self._cancel = threading.Event()  # this backend's batch was abandoned (a second signal, an error)
        self._down: str | None = None  # set when a health probe found the server unreachable: fail fast
        self._backoff = (float(backoff_base_s), float(backoff_cap_s))
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.idle_timeout_s, connect=min(30.0, self.idle_timeout_s), pool=None),
            limits=httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency),
            transport=transport,
        )
        self._httpx = httpx
        self._tokenizer = self._template = None
        if tokenizer:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer)
            self._template = hf_template(self._tokenizer)
        self.info = ModelInfo(
            name_or_path=model,
            backend=self.name,
            notes=[
                f"served by {public_url(self.base_url)}; API key from ${key_env}" if key else f"served by {public_url(self.base_url)}; no API key",
                f"up to {self.max_concurrency} concurrent requests; timings are client-side and include the network",
            ],
        )

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={public_url(self.base_url)!r})"

    # ---- hooks ----------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        """With a local tokenizer, what the server's template should make of the request (the
        shared renderer, without the prefill a chat API cannot take); otherwise the messages as
        sent (JSON)."""
        if self._tokenizer is not None:
            return render(replace(request, prefill=""), self._template)
        return json.dumps(list(request.messages), ensure_ascii=False)

    def count_tokens(self, text: str) -> int | None:
        if self._tokenizer is None:
            return None
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def engine_sampling(self, sampling) -> dict:
        """Every sampling field sent, neutral values included: servers have their own defaults
        (llama-cpp-python's repeat_penalty 1.1, top_k 40, min_p 0.05) that would otherwise apply.
        Hosted APIs get only the OpenAI fields; local servers also top_k (0: off), min_p, the llama.cpp names
        (repeat_penalty, typical_p, mirostat_mode) and the vLLM/SGLang ones (repetition_penalty)."""
        greedy = sampling.greedy
        params = {"temperature": 0.0 if greedy else sampling.temperature, "top_p": 1.0 if greedy else sampling.top_p,
                  "presence_penalty": sampling.presence_penalty, "frequency_penalty": sampling.frequency_penalty}
        if not self._official:
            params.update({"top_k": 1 if greedy else max(0, sampling.top_k),
                           "min_p": 0.0 if greedy else sampling.min_p, "repeat_penalty": sampling.repetition_penalty,
                           "repetition_penalty": sampling.repetition_penalty, "typical_p": 1.0, "mirostat_mode": 0})
        return params

    def max_batch_size(self) -> int:
        return self.max_concurrency

    def close(self) -> None:
        self._client.close()

    def _note(self, text: str) -> None:
        with self._lock:
            if text not in self.info.notes:
                self.info.notes.append(text)

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    # ---- generation -----------------------------------------------------------------------
    def payload(self, request: Request) -> dict:
        """The JSON body for one request (stop strings are matched locally, see the module doc)."""
        s = request.sampling
        body = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": request.seed,
            # OpenAI's reasoning models accept only max_completion_tokens; other servers only max_tokens.
            ("max_completion_tokens" if self._host == "api.openai.com" else "max_tokens"): s.max_new_tokens,
            **self.engine_sampling(s),
        }
        if request.template_kwargs and not self._official:  # vLLM and SGLang pass these to the chat template
            body["chat_template_kwargs"] = dict(request.template_kwargs)
        if not self._official and s.min_new_tokens > 0:
            body["min_tokens"] = s.min_new_tokens
        elif self._official and (s.min_new_tokens > 0 or (s.top_k > 0 and not s.greedy) or s.min_p > 0):
            self._note("top_k / min_p / min_new_tokens not sent: this hosted API does not accept them")
        return body

    retries_inside = True  # generate_all adds no retry rounds of its own: attempts never multiply across layers

    def generate(self, requests: list[Request]) -> list[Completion]:
        """One completion per request, in order; a request's failure stays that request's. A stop signal
        cuts the requests in flight within a second, keeping finished answers; a second leaves at once."""
        if any(r.prefill for r in requests):
            self._note("prefill ignored: a chat API takes no forced assistant prefix")
        start = time.perf_counter()
        workers = max(1, min(self.max_concurrency, len(requests)))
        self._cancel.clear()
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai")
        futures = [pool.submit(self._with_retries, r) for r in requests]
        try:
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                if self._stopping():
                    self._cut_inflight()
            completions = [f.result() for f in futures]
        except BaseException:
            self._cancel.set()  # any worker still retrying gives up at once
            self._cut_inflight()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        wall = time.perf_counter() - start
        for c in completions:
            c.batch_size, c.batch_wall_s = len(requests), wall
        return completions

    def _stopping(self) -> bool:
        return STOP.is_set() or self._cancel.is_set()

    def _cut_inflight(self) -> None:
        with self._lock:
            cut_sockets(list(self._inflight.values()))

    def _with_retries(self, request: Request) -> Completion:
        last, attempt = "", 0
        for attempt in range(self.max_retries + 1):
            if self._down:
                return failed_completion(self._down)
            if self._stopping():
                return failed_completion("stopped by a signal before an answer came (retried on --resume)")
            try:
                return self._attempt(request)
            except Stopped:
                return failed_completion("stopped by a signal while the answer streamed (retried on --resume)")
            except Retryable as exc:
                last = str(exc)
                if self._stopping():
                    return failed_completion(f"stopped by a signal after: {last}")
                if getattr(exc, "connect", False) and not self._probe():
                    return failed_completion(self._down or last)
                if attempt == self.max_retries or isinstance(exc, Rejected):
                    break
                with self._lock:
                    delay = backoff_delay(attempt, *self._backoff, exc.retry_after, self._rng)
                if interruptible_sleep(delay, self._stopping):  # a signal ends the sleep
                    return failed_completion(f"stopped by a signal after: {last}")
            except HarnessError:
                raise  # a wrong key or model: the run stops
            except Exception as exc:  # a bug or a shape nobody expected: this request's failure only
                last = f"{type(exc).__name__}: {self._scrub(str(exc))[:200]}"
                break
        return failed_completion(f"failed after {attempt + 1} attempt(s): {last}")

    def _probe(self) -> bool:
        """After a refused connection: is the server there? If not, every remaining request fails at once
        (the run ends `partial`, naming --resume) instead of each being retried for half a minute."""
        try:
            self._client.get(f"{self.base_url}/models", headers=self._headers, timeout=5.0)
            return True
        except self._httpx.TransportError as exc:
            self._down = f"the server at {public_url(self.base_url)} is unreachable ({type(exc).__name__}); resume when it is back"
            return False

    def _attempt(self, request: Request) -> Completion:
        httpx = self._httpx
        url = f"{self.base_url}/chat/completions"
        body = self.payload(request)
        start = time.perf_counter()
        deadline = None if self.timeout_s is None else start + self.timeout_s
        me = threading.get_ident()
        try:
            with self._client.stream("POST", url, json=body, headers=self._headers) as response:
                stream = response.extensions.get("network_stream")  # absent with a test transport
                if (sock := stream.get_extra_info("socket") if stream is not None else None) is not None:
                    with self._lock:
                        self._inflight[me] = sock
                if response.status_code != 200:
                    self._raise_for_status(response)
                return self._consume(request, response, start, deadline)
        except httpx.TransportError as exc:  # connect/read errors, idle timeouts, broken streams
            if self._stopping():
                raise Stopped() from None
            err = Retryable(f"{type(exc).__name__}: {self._scrub(str(exc))}")
            err.connect = isinstance(exc, httpx.ConnectError)  # type: ignore[attr-defined]
            raise err from None
        finally:
            with self._lock:
                self._inflight.pop(me, None)

    def _raise_for_status(self, response) -> None:
        raise_for_status(response, public_url(self.base_url), self.model, self._scrub)

    def _consume(self, request: Request, response, start: float, deadline: float | None) -> Completion:
        lines = sse_lines(response.iter_bytes(), deadline, self.timeout_s, self._stopping)
        st = read_stream(lines, StopScanner(request.sampling.stop), request.sampling.min_new_tokens, self._scrub)
        if st.deltas == 0 and not (count_field(st.usage, "completion_tokens")[0] or 0) and st.finish != "length":
            # no token at all: a server that cut this request off for the next one (llama.cpp's default
            # with parallel requests) reports a normal stop; an answer of nothing is not an answer
            raise Retryable("empty response: the server returned no tokens")
        return self._completion(request, st, start)

    def _completion(self, request: Request, st: Stream, start: float) -> Completion:
        unmeasured: dict[str, str] = {}
        if st.model:  # the server's own word on what answered: a served name is only its assertion
            with self._lock:
                if st.model not in self.info.reported_models:
                    self.info.reported_models.append(self._scrub(st.model))
        reasoning_text = fix_surrogates("".join(st.reasoning)) or None
        reasoning_tokens = None
        if st.usage and not st.local_stop:  # every server number checked: a bad one is unmeasured, with the reason
            input_tokens, output_tokens, reasoning_tokens = usage_counts(st.usage, unmeasured)
        else:
            output_tokens = st.deltas
            self._note("output_tokens counted as streamed deltas where the server sent no usage (one token each on llama.cpp and vLLM servers)")
            input_tokens = None
            if self._tokenizer is not None:
                input_tokens = self.count_tokens(self.render(request))
                self._note("input_tokens counted with the local tokenizer's chat template where the server sent no usage")
            else:
                unmeasured["input_tokens"] = "the server sent no usage; pass a tokenizer to count prompts locally"
        for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
            if value is None and name not in unmeasured:
                unmeasured[name] = "the server's usage did not include it"
        if reasoning_text is not None and reasoning_tokens is None:
            unmeasured["reasoning_tokens"] = "the server did not report reasoning tokens"
        if st.first is None:
            unmeasured["ttft_s"] = "the server streamed no token"
        if st.local_stop:
            finish = "stop"
        else:  # a content filter's cut is not an answer the model finished
            finishes: dict[str | None, str] = {"length": "length", "content_filter": "error"}
            finish = finishes.get(st.finish, "eos")
        return Completion(
            text=fix_surrogates(st.scanner.text),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish,
            ttft_s=None if st.first is None else st.first - start,
            e2e_s=(st.last or time.perf_counter()) - start,
            reasoning_text=reasoning_text,
            reasoning_tokens=reasoning_tokens,
            unmeasured=unmeasured,
        )


__all__ = ["OpenAIBackend", "backoff_delay", "parse_retry_after", "resolve_api_key"]
