"""Fault injection for issue 24: results stay intact and private under hostile environments,
folders, servers, cards and signals. One section per class of defect; the API cases run against a
real HTTP server on loopback (a small threaded http.server), not a mocked transport."""

from __future__ import annotations

import base64
import errno
import http.server
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import run_cli

from harness.errors import ConfigError, DataError, HarnessError, ModelLoadError
from harness.results import store
from harness.results.rundir import RunLock
from harness.sanitize import clean, csv_cell
from harness.secrets import _extra, known_secrets, looks_like_credential, redact, redact_value

httpx = pytest.importorskip("httpx")
from harness.backends.openai import OpenAIBackend  # noqa: E402
from harness.backends.openai_http import fix_surrogates, resolve_api_key, sse_lines  # noqa: E402
from harness.core.types import Request, Sampling  # noqa: E402
from harness.runtime.signals import STOP  # noqa: E402

MSGS = ({"role": "user", "content": "What is 2 + 2?"},)


def _req(key: str = "t/1/0") -> Request:
    return Request(key, MSGS, Sampling(max_new_tokens=16), seed=1)


@pytest.fixture(autouse=True)
def _clean_state():
    before = set(_extra)
    STOP.clear()
    yield
    STOP.clear()
    _extra.intersection_update(before)


# ---- a real server on loopback --------------------------------------------------------------------
def _event(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


def _delta(text: str | None = None, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}]}


@contextmanager
def serve(script):
    """A threaded HTTP server on 127.0.0.1; `script(handler, n)` writes the response to the n-th POST."""
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            count[0] += 1
            try:
                script(self, count[0])
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", count
    finally:
        server.shutdown()
        server.server_close()


def _stream(handler, *chunks: bytes, gap: float = 0.0) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    for c in chunks:
        handler.wfile.write(c)
        handler.wfile.flush()
        if gap:
            time.sleep(gap)


def _answer(text: str, usage: dict | None = None) -> list[bytes]:
    out = [_event(_delta(text)), _event(_delta(finish="stop"))]
    if usage is not None:
        out.append(_event({"choices": [], "usage": usage}))
    return [*out, b"data: [DONE]\n\n"]


def _backend(base: str, **kw) -> OpenAIBackend:
    return OpenAIBackend("openai:m", base_url=base, backoff_base_s=0.01, **kw)


# ---- 1. secrets by value, redaction before structure ---------------------------------------------
def test_a_path_in_a_credentials_variable_is_not_a_secret_but_a_key_is(monkeypatch):
    home = os.path.join(os.sep, "home", "alice")  # built, not written: the repository holds no machine's paths
    path = os.path.join(home, ".config", "gcloud", "application_default_credentials.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", path)
    monkeypatch.setenv("SOME_TOKEN", "on")  # a short common word is not a secret either
    assert path not in known_secrets() and "on" not in known_secrets()
    text = json.dumps({"overridden_defaults": os.path.join(home, "runs")})
    assert redact(text) == text
    monkeypatch.setenv("ANY_NAME", "ghp_abcdefghijklmnop123456")  # a credential-shaped value, whatever its name
    monkeypatch.setenv("HARNESS_SECRET_VARS", "MY_PLAIN")  # a variable the user names
    monkeypatch.setenv("MY_PLAIN", "correct horse battery")
    assert "ghp_abcdefghijklmnop123456" in known_secrets() and "correct horse battery" in known_secrets()
    assert not looks_like_credential("12345678901234") and looks_like_credential("sk-0123456789abcdef")


def test_redaction_is_of_values_so_keys_and_digests_hold(tmp_path, monkeypatch):
    secret = "Zq8vK2mN7xP4wR9t"
    monkeypatch.setenv("X_API_KEY", secret)
    data = {"Zq8vK2mN": "a key-named key stays", "note": f"echoed {secret}", "nested": [f"x{secret}y", 3]}
    assert redact_value(data) == {"Zq8vK2mN": "a key-named key stays", "note": "echoed ***", "nested": ["x***y", 3]}
    store.write_config(tmp_path, {"base_url": f"http://h/{secret}", "n": 1}, run_id="r", created="c")
    assert store.read_config(tmp_path)["base_url"] == "http://h/***"  # the digest is of what was written
    assert secret not in (tmp_path / "config.json").read_text()


def test_the_key_sent_is_a_secret_whatever_its_variable_and_goes_only_to_its_host(monkeypatch):
    monkeypatch.setenv("LLMAUTH", "sk-LLMAUTHplanted7Qw9Zx3Vb5Nm1Kp0")
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-deepseekplanted0123456")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openaiplanted0123456789")
    assert resolve_api_key("http://127.0.0.1:9/v1", "LLMAUTH")[0] == "sk-LLMAUTHplanted7Qw9Zx3Vb5Nm1Kp0"
    assert "planted7Qw9" not in redact("auth Bearer sk-LLMAUTHplanted7Qw9Zx3Vb5Nm1Kp0")
    assert resolve_api_key("http://127.0.0.1:9/v1", None) == (None, "")  # a local server gets no key unless asked
    assert resolve_api_key("https://api.deepseek.com/v1", None)[1] == "DEEPSEEK_API_KEY"
    for host in ("https://evil-deepseek.com/v1", "https://api.openai.com.evil.io/v1", "https://api.together.xyz/v1"):
        with pytest.raises(ModelLoadError, match="--api-key-env"):
            resolve_api_key(host, None)


def test_url_credentials_are_stripped_on_every_entry_point(monkeypatch):
    from harness.config import make_config

    for cfg in (make_config(base_url="http://bob:PLANTEDpw2secret@127.0.0.1:9/v1"),
                make_config(backend_options={"base_url": "http://bob:PLANTEDpw2secret@127.0.0.1:9/v1"})):
        assert "PLANTEDpw2secret" not in json.dumps(cfg.stored())
    assert "PLANTEDpw2secret" in known_secrets()


def test_a_card_cannot_choose_which_secret_goes_where():
    from harness.planning.card_run import check_card_endpoint as _check_card_endpoint

    with pytest.raises(ConfigError, match="GITHUB_TOKEN"):
        _check_card_endpoint("evil", "https://collector.example/v1", "GITHUB_TOKEN", {})
    with pytest.raises(ConfigError, match="plain http"):
        _check_card_endpoint("evil", "http://collector.example/v1", "EVIL_API_KEY", {})
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        _check_card_endpoint("evil", "https://collector.example/v1", "OPENAI_API_KEY", {})
    _check_card_endpoint("ok", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", {})
    _check_card_endpoint("confirmed", "https://collector.example/v1", "GITHUB_TOKEN", {"api_key_env": "GITHUB_TOKEN"})


# ---- 2. files opened safely ------------------------------------------------------------------------
def test_symlinks_inside_a_run_folder_are_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT victim data\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        RunLock(run)
    (run / "samples.jsonl").symlink_to(victim)
    with pytest.raises(ConfigError, match="symbolic link"):
        store.SampleWriter(run / "samples.jsonl")
    with pytest.raises(ConfigError, match="symbolic link"):
        store.repair_torn_tail(run / "samples.jsonl")
    with pytest.raises(ConfigError, match="symbolic link"):
        store.read_samples(run / "samples.jsonl")
    assert victim.read_text() == "IMPORTANT victim data\n"


def test_special_files_are_refused_wherever_a_path_is_read(tmp_path, capsys, monkeypatch):
    fifo = tmp_path / "cfg.yaml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    code, _, err = run_cli(["run", "--config", str(fifo), "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and "pipe (FIFO)" in err and time.monotonic() - t0 < 20
    cards = tmp_path / "cards"
    cards.mkdir()
    os.mkfifo(cards / "broken.yaml")
    (cards / "latin1.yaml").write_bytes(b"name: latin1\ndisplay_name: caf\xe9\n")
    monkeypatch.setenv("HARNESS_CARDS_DIR", str(cards))
    from harness.cards.loader import list_cards

    assert list_cards() == []  # unrelated commands go on; each broken card is one warning
    err = capsys.readouterr().err
    assert "pipe (FIFO)" in err and "not UTF-8" in err


def test_a_huge_single_line_is_refused_after_a_bounded_read(tmp_path, monkeypatch):
    from harness.tasks import base

    monkeypatch.setattr(base, "MAX_LINE_CHARS", 1000)
    f = tmp_path / "d.jsonl"
    f.write_bytes(b'{"question": "' + b"x" * 5_000_000 + b'"}\n')
    reads = []
    from harness import safeio

    real = safeio.read_line_bounded

    def spy(fh, limit):
        line = real(fh, limit)
        reads.append(len(line or b"") if line is not None else limit)
        return line

    monkeypatch.setattr(safeio, "read_line_bounded", spy)
    with pytest.raises(DataError, match="over 1,000 characters"):
        list(base.read_jsonl(f))
    assert max(reads) <= 4002  # never the whole 5 MB


def test_torn_utf8_last_line_is_dropped_and_os_errors_are_one_line(tmp_path, capsys):
    f = tmp_path / "samples.jsonl"
    good = json.dumps({"task": "t", "id": 1, "output": "é"}, ensure_ascii=False).encode() + b"\n"
    f.write_bytes(good + '{"task": "t", "id": 2, "output": "中'.encode()[:-1])  # cut inside a character
    assert [r["id"] for r in store.read_samples(f)] == [1]
    code, _, err = run_cli(["run", "--model", "random:tiny", "--limit", "1", "--output-dir", str(tmp_path / ("x" * 5000))], capsys)
    assert code != 0 and err.strip().count("\n") == 0 and err.startswith("error:")


def test_enospc_on_append_is_one_error_and_leaves_whole_rows(tmp_path, monkeypatch):
    w = store.SampleWriter(tmp_path / "samples.jsonl")
    w.append([{"task": "t", "id": 1}])
    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(HarnessError, match="No space left on device: the disk is full"):
        w.append([{"task": "t", "id": 2}])
    monkeypatch.setattr(os, "fsync", real)
    w.close()
    assert [r["id"] for r in store.read_samples(tmp_path / "samples.jsonl")] == [1]


# ---- 3. server values validated before they are written --------------------------------------------
@pytest.mark.parametrize("value,reason", [(float("nan"), "=nan"), ("12", "not a number"), (True, "not a number"),
                                          (-957, "non-negative"), (3.5, "whole number")])
def test_bad_usage_numbers_become_unmeasured_with_a_reason(value, reason):
    def script(h, n):
        usage = {"prompt_tokens": 5, "completion_tokens": value}
        chunks = _answer("4", None) + []
        _stream(h, chunks[0], chunks[1], b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n", chunks[2])

    with serve(script) as (base, _):
        [c] = _backend(base).generate([_req()])
    assert c.finish_reason == "eos" and c.text == "4" and c.output_tokens is None and c.input_tokens == 5
    assert reason in c.unmeasured["output_tokens"]
    row = {"task": "t", "id": 1, "output_tokens": c.output_tokens, "unmeasured": c.unmeasured}
    assert store.sample_problem(json.loads(store._line(row))) is None  # the reader accepts what was written


def test_line_separators_and_split_surrogates_are_kept_intact():
    text = "a\u2028b\u2029c\u0085d"

    def script(h, n):
        half1 = b'data: {"choices": [{"index": 0, "delta": {"content": "\\ud83d"}, "finish_reason": null}]}\n\n'
        half2 = b'data: {"choices": [{"index": 0, "delta": {"content": "\\ude00"}, "finish_reason": null}]}\n\n'
        _stream(h, _event(_delta(text)), half1, half2, _event(_delta(finish="stop")), b"data: [DONE]\n\n")

    with serve(script) as (base, _):
        [c] = _backend(base).generate([_req()])
    assert c.text == text + "\U0001F600" and c.finish_reason == "eos"
    c.text.encode("utf-8")
    assert fix_surrogates("x\ud83d") == "x\ufffd"
    assert list(sse_lines([b"data: a\xe2\x80", b"\xa8b\r\n", b"x"], None, None)) == ["data: a\u2028b", "x"]


def test_one_wrong_shaped_request_fails_alone():
    def script(h, n):
        if n == 1:
            _stream(h, b'data: {"choices": "oops"}\n\n', b"data: [DONE]\n\n")
        else:
            _stream(h, *_answer("fine", {"prompt_tokens": 3, "completion_tokens": 1}))

    with serve(script) as (base, count):
        out = _backend(base, max_retries=0, max_concurrency=1).generate([_req(f"t/{i}/0") for i in range(4)])
    assert [c.finish_reason for c in out] == ["error", "eos", "eos", "eos"] and count[0] == 4
    assert "malformed" in out[0].error and all(c.text == "fine" for c in out[1:])


# ---- 4. timeouts, retries, fail fast, stop signals ------------------------------------------------
def test_a_dripping_server_cannot_outlive_the_total_deadline_but_a_live_stream_outlives_the_idle_one():
    def drip(h, n):
        _stream(h, *[b":" for _ in range(40)], gap=0.2)  # a comment byte every 0.2 s, never an answer

    with serve(drip) as (base, _):
        t0 = time.monotonic()
        [c] = _backend(base, timeout_s=1.0, max_retries=0).generate([_req()])
        assert c.finish_reason == "error" and "total deadline" in c.error and time.monotonic() - t0 < 3

    def slow(h, n):  # 3 s in all, a piece every 0.3 s: slower than the idle limit in total, never idle that long
        _stream(h, *[_event(_delta("x")) for _ in range(10)], _event(_delta(finish="stop")), b"data: [DONE]\n\n", gap=0.3)

    with serve(slow) as (base, count):
        [c] = _backend(base, idle_timeout_s=1.0, max_retries=0).generate([_req()])
    assert c.finish_reason == "eos" and c.text == "x" * 10 and count[0] == 1


def test_retries_do_not_multiply_across_layers():
    from harness.orchestration.generate import generate_all

    def script(h, n):
        h.send_response(503)
        h.send_header("Content-Length", "0")
        h.end_headers()

    with serve(script) as (base, count):
        rows = []
        generate_all(_backend(base, max_retries=2), [_req()], [1], batch_size=1, backoff_s=0.0,
                     on_batch=lambda r, c, b: rows.extend(c))
    assert count[0] == 3 and rows[0].finish_reason == "error"  # the backend's 3 attempts, no outer rounds


def test_a_dead_server_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    backend = _backend(f"http://127.0.0.1:{port}/v1", max_retries=5)
    t0 = time.monotonic()
    out = backend.generate([_req(f"t/{i}/0") for i in range(20)])
    assert all(c.finish_reason == "error" for c in out) and "unreachable" in out[-1].error
    assert time.monotonic() - t0 < 5


def test_a_stop_signal_cuts_backoff_and_in_flight_reads_keeping_finished_answers():
    def script(h, n):
        if n == 1:
            _stream(h, *_answer("done", {"prompt_tokens": 1, "completion_tokens": 1}))
        else:  # holds the connection open, as a server busy elsewhere would
            _stream(h, _event(_delta("part")), *[b":" for _ in range(60)], gap=0.5)

    with serve(script) as (base, _):
        backend = _backend(base, max_concurrency=2, max_retries=5)
        threading.Timer(1.0, STOP.set).start()
        t0 = time.monotonic()
        first, held = backend.generate([_req("t/1/0"), _req("t/2/0")])
        assert time.monotonic() - t0 < 4
    assert first.text == "done" and first.finish_reason == "eos"
    assert held.finish_reason == "error" and "signal" in held.error

    def limited(h, n):
        h.send_response(429)
        h.send_header("Retry-After", "300")
        h.send_header("Content-Length", "0")
        h.end_headers()

    STOP.clear()
    with serve(limited) as (base, _):
        threading.Timer(0.5, STOP.set).start()
        t0 = time.monotonic()
        [c] = _backend(base, max_retries=5, backoff_cap_s=300).generate([_req()])
    assert c.finish_reason == "error" and time.monotonic() - t0 < 3


# ---- 5. resume pins what ran ------------------------------------------------------------------------
def test_a_resume_refuses_changed_effective_settings(tmp_path):
    from types import SimpleNamespace

    from harness.results import rundir

    def plan(temp):
        return SimpleNamespace(protocol=SimpleNamespace(name="plain"),
                               tasks={"gsm8k": SimpleNamespace(k=1, sampling=Sampling(temperature=temp))})

    store.write_json_atomic(tmp_path / rundir.SETTINGS, rundir.effective_settings(plan(0.6)))
    rundir._check_settings(tmp_path, plan(0.6))
    with pytest.raises(ConfigError, match="temperature 0.6 -> 0.9"):
        rundir._check_settings(tmp_path, plan(0.9))


def test_a_killed_grader_is_replaced_and_a_dead_one_is_an_error_row(monkeypatch):
    from harness.scoring import record, symbolic

    pytest.importorskip("math_verify")
    symbolic.compare("1/2", "0.5")
    symbolic._worker.kill()  # as Ctrl-C or a forwarded signal would
    symbolic._worker.wait()
    assert symbolic.compare("\\frac{1}{2}", "0.5").equal  # a new worker, the right verdict

    def dead(worker, limit):
        raise OSError("the comparison worker exited")

    monkeypatch.setattr(symbolic, "_read_line", dead)
    with pytest.raises(symbolic.ScoringUnavailable):
        symbolic.compare("\\frac{1}{2}", "0.5")
    monkeypatch.setattr(record, "score", lambda *a, **k: (_ for _ in ()).throw(symbolic.ScoringUnavailable("worker died")))
    from harness.backends.fake import FakeBackend
    from harness.core.types import Completion
    from harness.tasks.base import Item

    done = Completion("The answer is $\\frac{1}{2}$", 3, 5, "eos", 0.1, 0.2)
    row = record.sample_row(_req(), done, task="math500", answer_type="math", item=Item("1", "q", "0.5"), sample=0,
                            prompt="p", backend=FakeBackend(None, "fake:echo"))
    assert store.is_error_row(row) and "scoring failed" in row["error"] and row["correct"] is False


def test_a_shard_merge_killed_before_deleting_loses_and_doubles_nothing(tmp_path, monkeypatch):
    for rank in (0, 1):
        store.SampleWriter(tmp_path / f"samples.rank{rank}.jsonl").append([{"task": "t", "id": rank}])
        store.SampleWriter(tmp_path / f"batches.rank{rank}.jsonl").append([{"rows": 1, "wall_s": 0.5, "rank": rank}])
    (tmp_path / "samples.jsonl").touch()

    def killed(self, missing_ok=False):
        raise KeyboardInterrupt  # the kill lands after the merged files are written, before any shard is gone

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        store.merge_shards(tmp_path, ["t/0/0", "t/1/0"])
    monkeypatch.undo()
    assert len(store.read_samples(tmp_path / "samples.jsonl")) == 2  # written before the deletes
    assert len(store.all_samples(tmp_path)) == 2 and len(store.all_batches(tmp_path)) == 2
    store.merge_shards(tmp_path, ["t/0/0", "t/1/0"])
    assert not store.shard_files(tmp_path) and len(store.all_batches(tmp_path)) == 2


def test_a_think_budget_sweep_resumes_as_a_whole(tmp_path, capsys):
    import shutil

    args = ["run", "--model", "random:tiny", "--think-budgets", "4,8", "--answer-tokens", "4", "--limit", "2", "--device", "cpu",
            "--output-dir", str(tmp_path), "--quiet"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    subs = {store.read_config(p)["think_budget"]: p for p in folder.iterdir() if p.is_dir()}
    kept = (subs[4] / "run.json").read_bytes()
    shutil.rmtree(subs[8])  # the sweep was killed before its second budget started
    code, _, err = run_cli(["run", "--resume", str(folder), "--quiet"], capsys)
    assert code == 0, err
    again = {store.read_config(p)["think_budget"]: p for p in folder.iterdir() if p.is_dir()}
    assert sorted(again) == [4, 8] and (again[4] / "run.json").read_bytes() == kept
    assert sorted(p["budget"] for p in json.loads((folder / "budgets.json").read_text())["points"]) == [4, 8]


# ---- 6. one sanitising function for every output channel -------------------------------------------
def test_sanitising_console_reports_and_csv():
    hostile = "boom\x1b[2J\x1b[31mred\x1b]8;;http://evil/\x07click\x1b]8;;\x07\x07\r\u202eend"
    assert clean(hostile) == "boomredclickend"
    assert csv_cell("=HYPERLINK(\"http://evil\")") == "'=HYPERLINK(\"http://evil\")" and csv_cell("-0.5") == "-0.5"
    assert csv_cell(3) == 3 and csv_cell("@SUM(A1)").startswith("'")
    from harness.reports.compare import CSV_FIELDS, render_csv

    row = {k: None for k in CSV_FIELDS}
    row[CSV_FIELDS[0]] = "=cmd|' /C calc'!A0"
    assert "\n'=cmd" in render_csv([row])


def test_server_error_text_is_sanitised_on_the_console_and_in_reports(tmp_path, capsys, monkeypatch):
    from harness.results.store import write_text_atomic

    write_text_atomic(tmp_path / "report.md", "| a | \x1b[2Jb\x1b]8;;http://e\x07c |\n")
    assert (tmp_path / "report.md").read_text() == "| a | bc |\n"

    def script(h, n):
        body = json.dumps({"error": {"message": "bad\x1b[2J\x1b]8;;http://evil\x07link"}}).encode()
        h.send_response(404)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    data = tmp_path / "g.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "answer": "1+1\n#### 2"}) + "\n")
    with serve(script) as (base, _):
        code, out, err = run_cli(["run", "--model", "openai:m", "--base-url", base, "--protocol", "plain", "--tasks", "gsm8k",
                                  "--data-file", f"gsm8k={data}", "--output-dir", str(tmp_path / "o")], capsys)
    assert code != 0 and "\x1b" not in out + err and "HTTP 404" in err


def test_basic_auth_echo_of_a_key_named_by_api_key_env_is_redacted_in_rows(tmp_path, monkeypatch):
    key = "sk-LLMAUTHplanted7Qw9Zx3Vb5Nm1Kp0"
    monkeypatch.setenv("LLMAUTH", key)
    echo = base64.b64encode(("u:" + key).encode()).decode()

    def script(h, n):
        _stream(h, *_answer(f"{h.headers.get('Authorization')} {echo}", {"prompt_tokens": 1, "completion_tokens": 2}))

    with serve(script) as (base, _):
        [c] = _backend(base, api_key_env="LLMAUTH").generate([_req()])
    assert "planted7Qw9" in c.text  # the server did echo it
    w = store.SampleWriter(tmp_path / "samples.jsonl")
    w.append([{"task": "t", "id": 1, "output": c.text}])
    w.close()
    written = (tmp_path / "samples.jsonl").read_text()
    assert "planted7Qw9" not in written and echo[4:-4] not in written


# ---- 4b. failed rows: bounds beside the metric, no verdict they could flip --------------------------
def test_failed_rows_give_bounds_and_refuse_a_verdict_they_could_change():
    from harness.claims.verdicts import failed_rows_swing, failure_bounds

    task = {"errors": 4, "n": 8, "k": 1}
    assert failure_bounds(0.5, task) == pytest.approx((1 / 3, 2 / 3))
    assert failure_bounds(0.5, {"errors": 0, "n": 8, "k": 1}) is None
    assert "could change the verdict" in failed_rows_swing(0.6, 0.5, (0.45, 0.55), task, 0.9)
    assert failed_rows_swing(0.9, 0.5, (0.45, 0.55), task, 0.9) is None  # below either way: the verdict stands


def test_a_closed_pipe_and_os_errors_end_in_one_line_or_silence(tmp_path, monkeypatch):
    import subprocess
    import sys

    from harness.cli import main

    r, w = os.pipe()
    os.close(r)  # `| head` that has already exited
    closed = os.fdopen(w, "w", buffering=1)
    monkeypatch.setattr(sys, "stdout", closed)
    assert main(["cards"]) == 141
    monkeypatch.undo()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions
        pytest.skip("running as root: a read-only folder is writable")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--model", "random:tiny", "--limit", "1", "--output-dir", str(ro / "x")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error:")
