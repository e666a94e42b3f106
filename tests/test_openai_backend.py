"""The OpenAI-compatible backend: scripted servers (httpx MockTransport) for the protocol details,
and the real llama-cpp-python server on loopback, with and without a retrying proxy in front."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

httpx = pytest.importorskip("httpx")

from harness.backends.openai import OpenAIBackend, backoff_delay, parse_retry_after  # noqa: E402
from harness.core.types import Request, Sampling  # noqa: E402
from harness.errors import ModelLoadError  # noqa: E402

try:
    from engine_fixtures import tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401  (fixtures)
except ImportError:  # tests/ imported as a package
    from tests.engine_fixtures import tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401

PLANTED = "sk-PLANTED-openai-test-4f9a"
MSGS = ({"role": "user", "content": "What is 2 + 2?"},)


def _req(key="t/1/0", **sampling) -> Request:
    return Request(key, MSGS, Sampling(**{"max_new_tokens": 16, **sampling}), seed=11)


def _sse(*chunks) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def _delta(content=None, reasoning=None, finish=None) -> dict:
    delta = {k: v for k, v in (("content", content), ("reasoning_content", reasoning)) if v is not None}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _scripted(handler, **kw) -> OpenAIBackend:
    return OpenAIBackend("openai:test-model", transport=httpx.MockTransport(handler), backoff_base_s=0.001, **kw)


def _assert_no_secret(*things) -> None:
    for thing in things:
        assert PLANTED not in repr(thing) and PLANTED not in str(thing)


# ---- protocol details against scripted servers ------------------------------------------------
def test_openai_reasoning_usage_and_payload(monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", PLANTED)
    seen = []

    def handler(request):
        seen.append((request.headers.get("authorization"), json.loads(request.content)))
        body = _sse(_delta(reasoning="Two plus"), _delta(reasoning=" two."), _delta(content="4"),
                    _delta(finish="stop"),
                    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 7,
                                              "completion_tokens_details": {"reasoning_tokens": 5}}})
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    backend = _scripted(handler, base_url="https://api.deepseek.com")
    [c] = backend.generate([Request("t/1/0", MSGS, Sampling(max_new_tokens=32, top_k=20, min_new_tokens=2), seed=5,
                                    prefill="<think>\n")])
    assert (c.text, c.reasoning_text, c.finish_reason) == ("4", "Two plus two.", "eos")
    assert (c.input_tokens, c.output_tokens, c.reasoning_tokens) == (9, 7, 5)
    assert c.ttft_s is not None and 0 < c.ttft_s <= c.e2e_s and c.unmeasured == {}
    auth, body = seen[0]
    assert auth == f"Bearer {PLANTED}"  # sent to the server, and nowhere else
    assert body["stream"] and body["stream_options"] == {"include_usage": True} and body["seed"] == 5
    assert body["model"] == "test-model" and body["max_tokens"] == 32 and "stop" not in body
    assert "top_k" not in body and "min_tokens" not in body  # a hosted API rejects extensions
    assert any("prefill ignored" in n for n in backend.info.notes)
    _assert_no_secret(c, backend.info, backend)


def test_openai_local_stop_string_and_chunk_counting(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def handler(request):
        assert "authorization" not in request.headers  # a loopback server needs no key
        pieces = ["The answer", " is 4.", "\n\nQues", "tion: next", " one"]
        return httpx.Response(200, content=_sse(*[_delta(content=p) for p in pieces], _delta(finish="stop")))

    backend = _scripted(handler, base_url="http://127.0.0.1:9/v1", api_key_env=None)
    [stopped, greedy] = backend.generate([_req(stop=("\n\nQuestion",)), _req("t/2/0")])
    assert (stopped.text, stopped.finish_reason) == ("The answer is 4.", "stop")
    assert stopped.output_tokens == 4  # deltas streamed up to the one completing the stop string
    assert (greedy.text, greedy.finish_reason, greedy.output_tokens) == ("The answer is 4.\n\nQuestion: next one", "eos", 5)
    assert greedy.input_tokens is None and "tokenizer" in greedy.unmeasured["input_tokens"]
    assert any("streamed deltas" in n for n in backend.info.notes)
    assert greedy.batch_size == 2 and greedy.batch_wall_s >= greedy.e2e_s


def test_openai_retries_429_then_succeeds(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) <= 2:
            return httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "0"})
        return httpx.Response(200, content=_sse(_delta(content="ok"), _delta(finish="length")))

    [c] = _scripted(handler, base_url="https://api.openai.com/v1", max_retries=3).generate([_req()])
    assert len(calls) == 3 and (c.text, c.finish_reason) == ("ok", "length")


def test_openai_gives_up_with_error_completion_and_rejects_bad_requests_once():
    calls = {"5xx": 0, "400": 0}

    def handler(request):
        if json.loads(request.content)["seed"] == 1:
            calls["400"] += 1
            return httpx.Response(400, json={"error": {"message": "prompt too long"}})
        calls["5xx"] += 1
        return httpx.Response(502, text="bad gateway")

    backend = _scripted(handler, base_url="http://localhost:1/v1", max_retries=2)
    down, rejected = backend.generate([_req(), Request("t/2/0", MSGS, Sampling(), seed=1)])
    assert calls == {"5xx": 3, "400": 1}
    assert down.finish_reason == "error" and "3 attempt" in down.unmeasured["e2e_s"] and "HTTP 502" in down.unmeasured["e2e_s"]
    assert rejected.finish_reason == "error" and "prompt too long" in rejected.unmeasured["e2e_s"]


def test_openai_auth_failure_never_repeats_the_key(monkeypatch):
    monkeypatch.setenv("MY_KEY", PLANTED)

    def handler(request):  # some APIs quote the key back in the error text
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {PLANTED}"}})

    backend = _scripted(handler, base_url="https://api.example.com/v1", api_key_env="MY_KEY")
    with pytest.raises(ModelLoadError) as err:
        backend.generate([_req()])
    assert "401" in str(err.value)
    _assert_no_secret(err.value, err.value.problem, err.value.fix, backend, backend.info)


def test_openai_key_resolution(monkeypatch):
    for name in ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "MY_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ModelLoadError, match="DEEPSEEK_API_KEY"):
        OpenAIBackend("deepseek-reasoner", base_url="https://api.deepseek.com")
    with pytest.raises(ModelLoadError, match="OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o-mini")
    with pytest.raises(ModelLoadError, match="MY_KEY"):  # a named variable must be set, even for loopback
        OpenAIBackend("m", base_url="http://127.0.0.1:8000/v1", api_key_env="MY_KEY")
    local = OpenAIBackend.from_options("openai:m", base_url="http://user:pw@127.0.0.1:8000/v1", n_gpu_layers=99, dtype=None)
    assert "pw" not in " ".join(local.info.notes) and any("n_gpu_layers" in n for n in local.info.notes)


def test_openai_backoff_and_retry_after():
    rng = random.Random(0)
    waits = [backoff_delay(a, 0.5, 8.0, None, rng) for a in range(8)]
    assert all(0 <= w <= min(8.0, 0.5 * 2**a) for a, w in enumerate(waits))
    assert backoff_delay(0, 0.5, 8.0, 3.0, rng) == 3.0 and backoff_delay(0, 0.5, 8.0, 100.0, rng) == 8.0
    assert parse_retry_after("2") == 2.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


# ---- the real llama-cpp-python server on loopback ---------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tiny_gguf, tmp_path_factory):
    """The llama-cpp-python OpenAI server on a free loopback port, guarded by PLANTED as its key."""
    pytest.importorskip("llama_cpp.server")
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_gguf), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "1024", "--api_key", PLANTED,
           "--interrupt_requests", "False"]  # by default a new request cuts the stream in flight short
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {PLANTED}"}, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready in 90 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_openai_against_real_llama_cpp_server(llama_server, tiny_qwen_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_KEY", PLANTED)
    backend = OpenAIBackend.from_options("openai:tiny", base_url=llama_server, api_key_env="HARNESS_TEST_KEY",
                                         tokenizer=str(tiny_qwen_dir), max_concurrency=2, timeout_s=60)
    requests = [Request(f"t/{i}/0", ({"role": "user", "content": q},), Sampling(max_new_tokens=12), seed=i)
                for i, q in enumerate(["What is 2 + 2?", "Name a prime number.", "你好"])]
    completions = backend.generate(requests)
    for request, c in zip(requests, completions):
        # The same request without streaming: the server's own usage is the reference.
        plain = httpx.post(f"{llama_server}/chat/completions", timeout=60, headers={"Authorization": f"Bearer {PLANTED}"},
                           json={"model": "tiny", "messages": list(request.messages), "max_tokens": 12,
                                 "temperature": 0.0, "top_k": 1, "seed": request.seed}).json()
        assert c.finish_reason == {"stop": "eos", "length": "length"}[plain["choices"][0]["finish_reason"]]
        assert c.text == plain["choices"][0]["message"]["content"]  # greedy: stream and plain agree
        assert c.input_tokens == plain["usage"]["prompt_tokens"]  # local template + tokenizer = the server's count
        # The server streams one delta per token but merges pieces of one multi-byte character.
        assert 1 <= c.output_tokens <= plain["usage"]["completion_tokens"] <= 12
        assert c.ttft_s > 0 and c.e2e_s >= c.ttft_s
        assert c.batch_size == 3 and "input_tokens" not in c.unmeasured
    _assert_no_secret(completions, backend.info, backend)


class _FlakyProxy(http.server.ThreadingHTTPServer):
    """Answers 503 (Retry-After: 0) to the first `failures` POSTs, then forwards to `upstream`."""

    daemon_threads = True

    def __init__(self, upstream_port: int, failures: int):
        self.upstream_port, self.failures, self.seen = upstream_port, failures, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.lock:
            self.server.seen += 1
            fail = self.server.seen <= self.server.failures
        if fail:
            payload = b'{"error": {"message": "overloaded"}}'
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        upstream.request("POST", self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()  # buffered: this test is about retries, not timing
        self.send_response(response.status)
        self.send_header("Content-Type", response.getheader("content-type", "text/event-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()


@contextmanager
def _proxy(upstream_base: str, failures: int):
    server = _FlakyProxy(int(upstream_base.rsplit(":", 1)[1].split("/")[0]), failures)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_openai_retries_injected_503_from_proxy(llama_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    with _proxy(llama_server, failures=2) as (proxy, base):
        backend = OpenAIBackend("tiny", base_url=base, api_key_env="OPENAI_API_KEY", max_retries=3, backoff_base_s=0.01, timeout_s=60)
        [c] = backend.generate([_req(max_new_tokens=6)])
    assert proxy.seen == 3  # two refused, the third forwarded
    assert c.finish_reason in ("eos", "length") and c.output_tokens >= 1 and c.e2e_s >= c.ttft_s > 0
    _assert_no_secret(c, backend.info, backend)


def test_openai_wrong_key_against_real_server(llama_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0000")
    backend = OpenAIBackend("tiny", base_url=llama_server, api_key_env="OPENAI_API_KEY", max_retries=0, timeout_s=30)
    with pytest.raises(ModelLoadError) as err:
        backend.generate([_req()])
    assert "refused the API key" in str(err.value) and "sk-wrong" not in str(err.value)
    assert os.environ["OPENAI_API_KEY"] not in repr(backend) + repr(backend.info)


GREEDY_PROMPTS = ["What is 2 + 2?", "Name a prime number.", "你好", "Write a haiku about rain.",
                  "List three colours.", "用一句话介绍你自己。"]


def test_openai_greedy_matches_direct_llama_cpp_on_a_default_server(llama_server, tiny_gguf, monkeypatch):
    """The server runs with its own defaults (repeat_penalty 1.1, top_k 40, min_p 0.05): greedy is
    greedy only if every neutral value is sent. Same prompts, same text as the direct engine."""
    from harness.backends.llamacpp import LlamaCppBackend

    monkeypatch.setenv("HARNESS_TEST_KEY", PLANTED)
    api = OpenAIBackend.from_options("openai:tiny", base_url=llama_server, api_key_env="HARNESS_TEST_KEY",
                                     max_concurrency=1, timeout_s=60)
    direct = LlamaCppBackend.from_options(str(tiny_gguf), n_ctx=1024)
    try:
        requests = [Request(f"t/{i}/0", ({"role": "user", "content": q},), Sampling(max_new_tokens=32), seed=i)
                    for i, q in enumerate(GREEDY_PROMPTS)]
        served, local = api.generate(requests), direct.generate(requests)
        assert [c.text for c in served] == [c.text for c in local]
        assert any(len(c.text) > 20 for c in local)  # long enough for a repeat penalty to have shown
        body = api.payload(requests[0])
        assert body["repeat_penalty"] == body["repetition_penalty"] == 1.0 and body["top_k"] == 1 and body["min_p"] == 0.0
        # the same prompt without the neutral values, as the harness used to send it: the server's
        # defaults change at least one greedy output, so the comparison above can fail
        differ = 0
        for r, c in zip(requests, local):
            plain = httpx.post(f"{llama_server}/chat/completions", timeout=60, headers={"Authorization": f"Bearer {PLANTED}"},
                               json={"model": "tiny", "messages": list(r.messages), "max_tokens": 32, "temperature": 0.0,
                                     "top_k": 1, "seed": r.seed}).json()
            differ += plain["choices"][0]["message"]["content"] != c.text
        assert differ > 0
    finally:
        direct.close()
        api.close()


def test_openai_sends_every_sampling_field_and_hosted_apis_only_theirs():
    local = _scripted(lambda r: httpx.Response(200), base_url="http://127.0.0.1:1/v1")
    body = local.payload(_req())
    assert {"temperature": 0.0, "top_p": 1.0, "top_k": 1, "min_p": 0.0, "repeat_penalty": 1.0, "repetition_penalty": 1.0,
            "presence_penalty": 0.0, "frequency_penalty": 0.0, "typical_p": 1.0, "mirostat_mode": 0}.items() <= body.items()
    assert local.engine_sampling(_req().sampling) == {k: body[k] for k in local.engine_sampling(_req().sampling)}
    sampled = local.payload(_req(temperature=0.6, top_p=0.95))
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"]) == (0.6, 0.95, 0)


def test_openai_protocol_comes_from_flag_card_or_served_metadata_never_the_bare_name():
    from harness.backends.served import served_model
    from harness.config import RunConfig
    from harness.errors import ConfigError
    from harness.planning.plan import choose_protocol

    cfg = RunConfig(model="openai:qwen", base_url="http://127.0.0.1:1/v1")
    # the bare name "qwen" used to give the plain-text few-shot protocol, then sent as a chat message
    with pytest.raises(ConfigError, match="--protocol"):
        choose_protocol(cfg, None)
    assert choose_protocol(cfg, "r1")[1] == "card"
    flagged = RunConfig(model="openai:qwen", protocol="qwen", base_url="http://127.0.0.1:1/v1")
    assert choose_protocol(flagged, "r1")[0].name == "qwen" and choose_protocol(flagged, "r1")[1] == "--protocol"
    got, source = choose_protocol(cfg, None, served=lambda: "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    assert got.name == "r1" and source.startswith("served model metadata")
    with pytest.raises(ConfigError):  # a base model's few-shot protocol is never guessed for a chat endpoint
        choose_protocol(cfg, None, served=lambda: "Qwen/Qwen2.5-7B")
    # the metadata: vLLM lists the loaded model as `root`; a bare alias says nothing more
    models = {"data": [{"id": "qwen", "root": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"}, {"id": "other"}]}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=models))
    assert served_model("openai:qwen", "http://127.0.0.1:1/v1", None, transport=transport) == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert served_model("openai:other", "http://127.0.0.1:1/v1", None, transport=transport) is None
    assert served_model("openai:qwen", "http://127.0.0.1:1/v1", None,
                        transport=httpx.MockTransport(lambda r: httpx.Response(500))) is None


def test_openai_hosted_api_gets_its_own_neutral_fields_only(monkeypatch):
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
    hosted = _scripted(lambda r: httpx.Response(200), base_url="https://api.deepseek.com")
    body = hosted.payload(_req())
    assert (body["temperature"], body["top_p"], body["presence_penalty"], body["frequency_penalty"]) == (0.0, 1.0, 0.0, 0.0)
    assert not {"top_k", "min_p", "repeat_penalty", "repetition_penalty", "typical_p", "mirostat_mode"} & set(body)
