"""Lose nothing, leak nothing, hang never (issue 13): failed requests, changed data, kills during
writes, two owners of one folder, signals, secrets a server echoes, out-of-memory on any device.

Each test drives the real CLI (in-process) with the scripted fake backend, and fails on the code
before the fix: the run said "complete" over errors, mixed changed rows in, lost its time, and so on.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import gsm8k_rows, run_cli, write_jsonl

from harness.backends.fake import FakeBackend
from harness.core.types import Completion
from harness.orchestration import generate as gen
from harness.results import rundir, store

BASE = ["--model", "fake:echo", "--tasks", "gsm8k", "--max-new-tokens", "8", "--warmup", "0"]


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(gen, "BACKOFF_S", 0.0)


def _run(tmp_path, capsys, *extra, rows=4, data=None):
    data = data or write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(rows))
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(["run", *BASE, "--data-file", f"gsm8k={data}", "--output-dir", str(out), *extra], capsys)
    dirs = list(out.iterdir()) if out.exists() else []
    return code, stdout, stderr, (dirs[0] if dirs else None)


def _doc(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _failing(monkeypatch, bad_ids: set[str], how: str = "raise"):
    """The fake backend, but requests for items in `bad_ids` fail (an engine exception or an error completion)."""
    real = FakeBackend.generate
    calls = []

    def generate(self, requests):
        calls.append([r.key for r in requests])
        bad = [r for r in requests if r.key.split("/")[1] in bad_ids]
        if bad and how == "raise":
            raise RuntimeError("engine fell over")
        out = real(self, requests)
        return [Completion("", None, None, "error", None, None, error="server said no") if r in bad else c
                for r, c in zip(requests, out)]

    monkeypatch.setattr(FakeBackend, "generate", generate)
    return calls


# ---- 1. failed requests: partial / failed, metrics over answered, retried on resume ----------------
@pytest.mark.parametrize("how", ["raise", "error"])
def test_failed_requests_end_partial_and_resume_retries_them(tmp_path, capsys, monkeypatch, how):
    calls = _failing(monkeypatch, {"1"}, how)
    code, out, err, run_dir = _run(tmp_path, capsys, "--batch-size", "1")
    assert code == 4, err
    assert err.strip().splitlines()[-1].startswith("error: run partial: 1 of 4 samples failed")
    assert "1 failed" in out  # the console shows the count beside the metrics
    doc = _doc(run_dir)
    assert doc["status"] == "partial"
    assert doc["samples"] == {"done": 3, "errors": 1, "planned": 4}
    assert doc["tasks"]["gsm8k"]["n"] == 3 and doc["tasks"]["gsm8k"]["errors"] == 1  # metrics over answered only
    assert "1 failed" in (run_dir / "report.md").read_text()
    assert sum(k == ["gsm8k/1/0"] for k in calls) == 1 + gen.RETRIES  # retried in the run, bounded
    monkeypatch.undo()
    monkeypatch.setattr(gen, "BACKOFF_S", 0.0)
    code, out, err = run_cli(["run", "--resume", str(run_dir)], capsys)
    assert code == 0, err
    doc = _doc(run_dir)
    assert doc["status"] == "complete" and doc["samples"]["errors"] == 0 and doc["tasks"]["gsm8k"]["n"] == 4
    keys = [store.key_of(r) for r in store.read_samples(run_dir / "samples.jsonl")]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 4  # the error row was replaced, not duplicated


def test_every_request_failed_is_a_failed_run(tmp_path, capsys, monkeypatch):
    _failing(monkeypatch, {"0", "1", "2", "3"}, "error")
    code, out, err, run_dir = _run(tmp_path, capsys)
    assert code == 4 and "run failed: 4 of 4" in err
    doc = _doc(run_dir)
    assert doc["status"] == "failed" and doc["tasks"] == {} and doc["errors"]["first"] == "server said no"
    code, out, err = run_cli(["report", str(run_dir)], capsys)  # a run with no answered sample still renders
    assert code == 0, err
    assert "4 failed" in (run_dir / "report.md").read_text() and "4 failed" in (run_dir / "report.html").read_text()


def test_a_user_error_from_the_engine_still_stops_the_run(tmp_path, capsys, monkeypatch):
    from harness.errors import ModelLoadError

    def generate(self, requests):
        raise ModelLoadError("the server refused the API key (HTTP 401)", "check the key")

    monkeypatch.setattr(FakeBackend, "generate", generate)
    code, _, err, _ = _run(tmp_path, capsys)
    assert code == 2 and "refused the API key" in err


# ---- 2. JSON Lines split at "\n" only ------------------------------------------------------------
@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_line_separators_inside_outputs_and_data(tmp_path, capsys, sep):
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"*": f"a{sep}b \\boxed{{7}}"}))
    data = write_jsonl(tmp_path / "d.jsonl", [{"question": f"What is 3{sep}+ 4?", "answer": "#### 7"}, *gsm8k_rows(2)])
    out = tmp_path / "out"
    code, _, err = run_cli(["run", "--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                            "--output-dir", str(out), "--warmup", "0"], capsys)
    assert code == 0, err
    (run_dir,) = out.iterdir()
    rows = store.read_samples(run_dir / "samples.jsonl")
    assert len(rows) == 3 and all(sep in r["output"] for r in rows) and any(sep in r["prompt"] for r in rows)
    assert run_cli(["report", str(run_dir)], capsys)[0] == 0
    assert run_cli(["run", "--resume", str(run_dir)], capsys)[0] == 0
    assert run_cli(["export", str(run_dir), "--output", str(tmp_path / "x.json")], capsys)[0] == 0


# ---- 3. changed data or settings under a run -------------------------------------------------------
def _digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("change", ["insert", "edit", "config"])
def test_resume_refuses_changed_data_or_settings(tmp_path, capsys, change):
    data = write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(6))
    code, _, err, run_dir = _run(tmp_path, capsys, "--limit", "4", data=data)
    assert code == 0, err
    (run_dir / "run.json").unlink()  # as after a kill: the resume has work to do
    rows = gsm8k_rows(6)
    if change == "insert":
        write_jsonl(data, [{"question": "What is 50 + 50?", "answer": "#### 100"}, *rows])
    elif change == "edit":
        rows[2]["question"] = "What is 1 + 1?"
        write_jsonl(data, rows)
    else:
        cfg = json.loads((run_dir / "config.json").read_text())
        cfg["max_new_tokens"] = 99
        (run_dir / "config.json").write_text(json.dumps(cfg))
    before = _digest(run_dir)
    code, _, err = run_cli(["run", "--resume", str(run_dir)], capsys)
    line = err.strip().splitlines()[-1]
    assert code == 2 and line.startswith("error: "), err
    assert ("edited after the run started" in line) if change == "config" else ("item '0' changed" in line or "item '2' changed" in line), line
    assert _digest(run_dir) == before, "a refused resume changed the folder"


# ---- 4. a kill while run.json is written: time from the batch log, temp files cleaned --------------
def test_time_is_rebuilt_from_the_batch_log_after_run_json_is_lost(tmp_path, capsys, monkeypatch):
    real = FakeBackend.generate

    def slow(self, requests):
        time.sleep(0.05)
        return real(self, requests)

    monkeypatch.setattr(FakeBackend, "generate", slow)
    code, _, err, run_dir = _run(tmp_path, capsys, "--batch-size", "1", rows=6)
    assert code == 0, err
    wall = _doc(run_dir)["perf"]["wall_s"]
    assert wall >= 0.3
    (run_dir / "run.json").unlink()
    (run_dir / "report.md").unlink()
    (run_dir / ".run.json.abc123.tmp").write_text('{"half": ')  # the kill came mid-write
    code, _, err = run_cli(["run", "--resume", str(run_dir)], capsys)
    assert code == 0, err
    doc = _doc(run_dir)
    assert doc["perf"]["wall_s"] >= 0.9 * wall, (doc["perf"]["wall_s"], wall)
    assert doc["cost"]["billed_s"] >= 0.9 * wall
    assert not list(run_dir.glob(".*.tmp")) and (run_dir / "report.md").exists()


def test_a_batch_record_without_its_rows_is_left_out(tmp_path, capsys):
    code, _, err, run_dir = _run(tmp_path, capsys, "--batch-size", "2")
    assert code == 0, err
    with open(run_dir / "batches.jsonl", "a") as f:  # a kill after the batch record, before its rows
        f.write(json.dumps({"rows": 2, "input_tokens": 10, "output_tokens": 99999, "prefill_s": None, "wall_s": 0.001,
                            "elapsed_s": 0.5, "session": "old", "keys": ["gsm8k/9/0", "gsm8k/8/0"]}) + "\n")
    assert run_cli(["run", "--resume", str(run_dir)], capsys)[0] == 0
    perf = _doc(run_dir)["perf"]
    assert perf["output_tokens_per_s"] < 99999 / 0.01  # the orphan record joined no rate


# ---- 5. one owner per run folder ----------------------------------------------------------------
def test_a_second_resume_of_a_locked_folder_is_refused(tmp_path, capsys):
    code, _, _, run_dir = _run(tmp_path, capsys)
    (run_dir / "run.json").unlink()
    holder = rundir.RunLock(run_dir)
    try:
        code, _, err = run_cli(["run", "--resume", str(run_dir)], capsys)
    finally:
        holder.release()
    assert code == 2 and f"in use by pid {os.getpid()}" in err and "wait for that run" in err
    assert not (run_dir / "run.json").exists()


def test_a_stale_lock_is_taken_over(tmp_path, capsys):
    code, _, _, run_dir = _run(tmp_path, capsys)
    (run_dir / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone"}))  # its process died: no flock held
    code, _, err = run_cli(["run", "--resume", str(run_dir)], capsys)
    assert code == 0, err
    assert "taking over the lock" in err and "pid 999999" in err
    assert not (run_dir / ".lock").exists()  # released, and removed: the run finished


# ---- 7. an unreadable run.json is rebuilt ---------------------------------------------------------
@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]"])
def test_an_invalid_run_json_is_rebuilt_on_resume(tmp_path, capsys, content):
    code, _, _, run_dir = _run(tmp_path, capsys)
    run_id = _doc(run_dir)["run_id"]
    (run_dir / "run.json").write_text(content)
    code, _, err = run_cli(["report", str(run_dir)], capsys)
    assert code == 2 and f"harness run --resume {run_dir}" in err
    code, _, err = run_cli(["run", "--resume", str(run_dir)], capsys)
    assert code == 0, err
    doc = _doc(run_dir)
    assert doc["status"] == "complete" and doc["run_id"] == run_id and doc["samples"]["done"] == 4
    assert any("rebuilt from samples.jsonl" in w for w in doc["warnings"])


# ---- 8, 9. secrets -------------------------------------------------------------------------------
def _everything(tmp_path: Path, *texts: str) -> str:
    files = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".py")
    return files + "".join(texts)


def test_url_credentials_and_echoed_keys_are_never_written_or_printed(tmp_path, capsys, monkeypatch):
    key = "sk-PLANTEDkey-0123456789"
    monkeypatch.setenv("MY_SERVICE_API_KEY", key)
    echo = {"*": f"your key is {key[:-2]} and {base64.b64encode(('bob:' + key).encode()).decode()} "
                 f"and {base64.b64encode(b'bob:PLANTEDpassword').decode()} \\boxed{{7}}"}
    script = tmp_path / "s.json"
    script.write_text(json.dumps(echo))
    data = write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(2))
    code, out, err = run_cli(["run", "--model", f"fake:{script}", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}",
                              "--output-dir", str(tmp_path / "out"), "--base-url", "http://bob:PLANTEDpassword@10.0.0.1:8000/v1"], capsys)
    assert code == 0, err
    (run_dir,) = (tmp_path / "out").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["base_url"] == "http://10.0.0.1:8000/v1"
    code2, out2, err2 = run_cli(["report", str(run_dir)], capsys)
    everything = _everything(tmp_path, out, err, out2, err2).replace(script.read_text(), "")
    assert "PLANTED" not in everything
    for form in (base64.b64encode(b"bob:PLANTEDpassword").decode(), key[:8], key[3:12]):
        assert form not in everything


def test_redaction_covers_partial_and_base64_forms(monkeypatch):
    from harness.secrets import redact

    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-0123456789abcdef")
    assert redact("sk-0123456789abcd") == "***"
    assert "0123456789" not in redact("x 456789abcdef y")
    for prefix in ("", "a", "ab"):
        enc = base64.b64encode((prefix + "sk-0123456789abcdef").encode()).decode()
        assert enc[4:-4] not in redact(f"Basic {enc}")
    assert redact("sk-0123") == "sk-0123"  # under 8 characters: ordinary text


# ---- 15. out of memory on every device -----------------------------------------------------------
@pytest.mark.parametrize("message", [
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 85899345920 bytes.",
    "CUDA out of memory. Tried to allocate 2.00 GiB",
    "MPS backend out of memory (MPS allocated: 17.00 GB)",
    "XPU out of memory. Tried to allocate 1024.00 MiB",
    "NPU out of memory. Tried to allocate 2.00 GiB",
    "HIP out of memory. Tried to allocate 20.00 MiB",
])
def test_out_of_memory_is_recognised_and_auto_batch_halves(message):
    assert gen.is_oom(RuntimeError(message))
    from harness.core.types import Request, Sampling

    class Tight(FakeBackend):
        def generate(self, requests):
            if len(requests) > 2:
                raise RuntimeError(message)
            return super().generate(requests)

    backend = Tight(None, "fake:echo")
    reqs = [Request(f"t/{i}/0", ({"role": "user", "content": f"{i}"},), Sampling(max_new_tokens=4), seed=i) for i in range(5)]
    sizes = []
    gen.generate_all(backend, reqs, [1] * 5, batch_size="auto", on_batch=lambda r, c, b: sizes.append(b.rows))
    assert sum(sizes) == 5 and max(sizes) <= 2
    assert not gen.is_oom(RuntimeError("shape mismatch"))


# ---- 16. signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGTERM, signal.SIGTERM], [signal.SIGINT, signal.SIGINT],
                                     [signal.SIGTERM, signal.SIGINT]])
def test_signals_during_generation_end_interrupted_and_exit_by_the_first(tmp_path, capsys, monkeypatch, signals):
    real = FakeBackend.generate
    sent = []

    def generate(self, requests):
        if len(calls := getattr(self, "_n", [])) == 1 and not sent:  # the second batch: one row is measured
            for s in signals:
                sent.append(s)
                os.kill(os.getpid(), s)
        self._n = [*calls, 1]
        return real(self, requests)

    monkeypatch.setattr(FakeBackend, "generate", generate)
    code, _, err, run_dir = _run(tmp_path, capsys, "--batch-size", "1")
    assert code == 128 + signals[0], err
    assert _doc(run_dir)["status"] == "interrupted"
    assert run_cli(["run", "--resume", str(run_dir)], capsys)[0] == 0
    assert _doc(run_dir)["status"] == "complete"


def test_sigterm_while_loading_ends_interrupted(tmp_path, capsys, monkeypatch):
    from harness.orchestration import pipeline

    real = pipeline.load_backend

    def load(cfg, dev):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(cfg, dev)

    monkeypatch.setattr(pipeline, "load_backend", load)
    code, _, err, run_dir = _run(tmp_path, capsys)
    assert code == 143, err
    assert _doc(run_dir)["status"] == "interrupted"


# ---- 6. --num-processes: signals reach the ranks --------------------------------------------------
def test_the_launcher_forwards_signals_to_the_ranks_and_waits(tmp_path):
    from harness.runtime.launch import wait_forwarding

    got = tmp_path / "got"
    rank = (f"import signal,sys,time,pathlib\n"
            f"signal.signal(signal.SIGTERM, lambda s, f: (time.sleep(0.3), pathlib.Path({str(got)!r}).write_text(str(s)), sys.exit(143)))\n"
            f"time.sleep(30)\n")
    launcher = f"import subprocess,sys\nsys.exit(subprocess.call([sys.executable, '-c', {rank!r}, 'harness-rank']))\n"
    proc = subprocess.Popen([sys.executable, "-c", launcher], start_new_session=True)
    time.sleep(1.0)  # both processes up
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    rc = wait_forwarding(proc)
    assert rc == 143
    assert got.read_text() == str(int(signal.SIGTERM))  # the rank got it, and was waited for
    assert time.monotonic() - started < 20


# ---- 17. empty answers and local servers -----------------------------------------------------------
def test_an_empty_response_is_an_error_and_local_servers_default_to_one_request():
    httpx = pytest.importorskip("httpx")
    from harness.backends.openai import OpenAIBackend
    from harness.core.types import Request, Sampling

    def handler(request):
        body = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    b = OpenAIBackend("openai:m", base_url="http://127.0.0.1:8080/v1", transport=httpx.MockTransport(handler),
                      backoff_base_s=0.001, max_retries=1)
    assert b.max_concurrency == 1
    (c,) = b.generate([Request("t/1/0", ({"role": "user", "content": "hi"},), Sampling(max_new_tokens=4), seed=1)])
    assert c.finish_reason == "error" and "no tokens" in c.error


# ---- 12. --limit stops reading ------------------------------------------------------------------
def test_limit_stops_reading_the_data_file(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    write_jsonl(data, gsm8k_rows(5))
    with open(data, "a") as f:
        f.write("{broken\n")  # never reached with --limit 5
    code, _, err, run_dir = _run(tmp_path, capsys, "--limit", "5", data=data)
    assert code == 0, err
    assert any("not checked" in w for w in _doc(run_dir)["warnings"])


# ---- 14. samples.jsonl rows of the wrong shape ------------------------------------------------------
@pytest.mark.parametrize("line", ["[1, 2]", "{}", "null", '"text"', "3", '{"task": "gsm8k", "id": "9", "sample": "x"}',
                                  '{"task": "gsm8k", "id": "9", "meta": [1]}', '{"task": "gsm8k", "id": "9", "output_tokens": "many"}'])
@pytest.mark.parametrize("command", ["report", "resume", "compare"])
def test_a_malformed_sample_row_is_one_error_naming_the_line(tmp_path, capsys, line, command):
    code, _, _, run_dir = _run(tmp_path, capsys)
    text = (run_dir / "samples.jsonl").read_text()
    (run_dir / "samples.jsonl").write_text(line + "\n" + text)
    argv = {"report": ["report", str(run_dir)], "resume": ["run", "--resume", str(run_dir)],
            "compare": ["compare", str(run_dir), str(run_dir), "--output-dir", str(tmp_path / "cmp")]}[command]
    code, out, err = run_cli(argv, capsys)
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: {run_dir / 'samples.jsonl'}:1 ") and "unexpected" not in last, last
