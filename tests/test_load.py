"""`harness load`: metric math against independent computations, arrivals, goodput, and the whole
command against real servers on loopback (llama-cpp-python's server with the SmolLM2 GGUF from
../shared/models/get.sh, skipped cleanly where either is absent; and a tiny HTTP server of the test's
own that answers 429 and 500)."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.load import arrivals as arr
from harness.load import metrics as me
from harness.load.schema import RequestRecord, Slo

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GSM8K = ROOT / "tests" / "fixtures" / "tasks" / "gsm8k.jsonl"


def rec(ok=True, ttft=0.1, e2el=1.0, out=10, itl=None, status=None, error=None, inp=5) -> RequestRecord:
    return RequestRecord(level=0, load=1.0, repeat=0, index=0, prompt_id="p", sent_s=0.0, ok=ok, ttft_s=ttft if ok else None,
                         e2el_s=e2el, output_tokens=out, itl_s=itl or [], status=status, error=error, input_tokens=inp)


# ---- pure math ------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7, 50, 101])
def test_percentiles_and_dist_match_numpy(n):
    rng = random.Random(n)
    xs = [rng.lognormvariate(0, 1) for _ in range(n)]
    for q in (0, 1, 50, 90, 99, 100):
        assert me.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), rel=1e-12)
    d = me.dist(xs)
    assert d.mean == pytest.approx(float(np.mean(xs)))
    assert d.median == pytest.approx(float(np.median(xs)))
    assert d.std == pytest.approx(float(np.std(xs)))  # population std, as vLLM reports
    assert d.p99 == pytest.approx(float(np.percentile(xs, 99)))
    assert me.dist([]).mean is None


def test_level_metrics_follow_vllm_definitions():
    rng = random.Random(3)
    recs = []
    for i in range(20):
        ttft = rng.uniform(0.05, 0.5)
        gaps = [rng.uniform(0.01, 0.05) for _ in range(rng.randint(0, 12))]
        recs.append(rec(ttft=ttft, e2el=ttft + sum(gaps), out=len(gaps) + 1, itl=gaps, inp=10 + i))
    recs += [rec(ok=False, status=500, error="HTTP 500: boom", out=0), rec(ok=False, error="connect: refused", out=0)]
    m = me.level_metrics(recs, duration_s=4.0)
    ok = [r for r in recs if r.ok]
    assert (m.completed, m.failed) == (20, 2)
    assert m.errors == {"HTTP 500": 1, "connect": 1}
    # TPOT excludes the first token, and one-token answers have none
    tpots = [(r.e2el_s - r.ttft_s) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    assert m.tpot_s.n == len(tpots)
    assert m.tpot_s.mean == pytest.approx(float(np.mean(tpots)))
    assert m.tpot_s.p90 == pytest.approx(float(np.percentile(tpots, 90)))
    # ITL pools every gap of every completed request
    pooled = [g for r in ok for g in r.itl_s]
    assert m.itl_s.n == len(pooled) and m.itl_s.p99 == pytest.approx(float(np.percentile(pooled, 99)))
    assert m.output_throughput == pytest.approx(sum(r.output_tokens for r in ok) / 4.0)
    assert m.request_throughput == pytest.approx(20 / 4.0)
    assert m.total_token_throughput == pytest.approx(sum(r.output_tokens + r.input_tokens for r in ok) / 4.0)
    assert m.ttft_s.median == pytest.approx(float(np.median([r.ttft_s for r in ok])))


def test_unmeasured_input_tokens_give_none_not_zero():
    m = me.level_metrics([rec(inp=None), rec()], 1.0)
    assert m.total_input_tokens is None and m.total_token_throughput is None


def test_goodput_counts_failures_as_non_conforming():
    slo = me.parse_slo("ttft=0.2,tpot=0.05", attainment=0.5)
    recs = [rec(ttft=0.1, e2el=0.1 + 9 * 0.04, out=10),   # conforms
            rec(ttft=0.3, e2el=0.5, out=10),              # TTFT too slow
            rec(ttft=0.1, e2el=0.1 + 9 * 0.06, out=10),   # TPOT too slow
            rec(ttft=0.1, e2el=0.1, out=1),               # one token: no TPOT, TTFT fine
            rec(ok=False, status=429, error="HTTP 429", out=0)]
    g = me.goodput(recs, slo, duration_s=2.0)
    assert g.conforming == 2 and g.attainment == pytest.approx(2 / 5)
    assert g.request_goodput == pytest.approx(1.0) and g.output_goodput == pytest.approx(11 / 2.0)
    assert not g.meets_slo
    assert me.goodput(recs[:1], slo, 1.0).meets_slo


def test_slo_parsing_errors_name_the_fix():
    assert me.parse_slo("ttft=2,tpot=0.1,e2el=60") == Slo(ttft_s=2, tpot_s=0.1, e2el_s=60)
    for bad in ("ttft", "latency=3", "ttft=-1", "ttft=abc", "ttft=inf"):
        with pytest.raises(ConfigError):
            me.parse_slo(bad)


def test_saturation_is_the_highest_load_meeting_the_slo():
    slo = Slo(ttft_s=1.0)
    pts = [(1.0, 10.0, 1.0, True), (4.0, 30.0, 3.0, True), (8.0, 35.0, 3.5, False)]
    s = me.saturation(pts, "concurrency", slo)
    assert s.load == 4.0 and s.output_throughput == 30.0
    assert me.saturation(pts, "concurrency", None).load == 8.0  # no SLO: the highest throughput
    none = me.saturation([(1.0, 5.0, 1.0, False)], "rate", slo)
    assert none.load is None and "no load level met" in (none.reason or "")


def test_spread_uses_sample_std():
    s = me.spread([1.0, 2.0, None, 4.0])
    assert s.mean == pytest.approx(7 / 3) and s.std == pytest.approx(float(np.std([1, 2, 4], ddof=1)))
    assert s.min == 1.0 and s.max == 4.0 and s.values[2] is None


# ---- arrivals --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,kind", [("poisson", "poisson"), ("gamma:0.5", "gamma"), ("constant", "constant")])
def test_arrivals_keep_the_mean_rate(text, kind):
    a = arr.parse_arrivals(text)
    assert a.kind == kind
    g = arr.gaps(a, 4.0, 20001, seed=1)[1:]
    assert np.mean(g) == pytest.approx(0.25, rel=0.03)
    if kind == "poisson":  # exponential gaps: coefficient of variation 1
        assert np.std(g) / np.mean(g) == pytest.approx(1.0, rel=0.05)
    if kind == "gamma":  # shape k: CV = 1/sqrt(k)
        assert np.std(g) / np.mean(g) == pytest.approx(1 / math.sqrt(0.5), rel=0.06)
    if kind == "constant":
        assert np.std(g) == pytest.approx(0.0, abs=1e-12)


def test_arrivals_are_seeded_and_reject_nonsense():
    a = arr.parse_arrivals("poisson")
    assert arr.schedule(a, 2.0, 10, 7) == arr.schedule(a, 2.0, 10, 7) != arr.schedule(a, 2.0, 10, 8)
    assert arr.schedule(a, 2.0, 3, 0)[0] == 0.0
    for bad in ("gamma", "gamma:0", "gamma:-1", "uniform", "poisson:2"):
        with pytest.raises(ConfigError):
            arr.parse_arrivals(bad)
    with pytest.raises(ConfigError):
        arr.gaps(a, 0.0, 3, 0)


# ---- the command, against real servers on loopback ---------------------------------------------
def harness_load(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", "load", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def load_json(folder: Path) -> dict:
    found = list(folder.glob("*/load.json"))
    assert len(found) == 1, f"expected one load.json under {folder}: {found}"
    return json.loads(found[0].read_text())


def records(folder: Path) -> list[dict]:
    path = next(folder.glob("*/requests.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_user_errors_are_one_line_and_leave_nothing(tmp_path):
    cases = [("--model", "x", "--concurrency", "1"),                                 # neither --base-url nor --serve
             ("--model", "x", "--base-url", "http://127.0.0.1:9/v1", "--rate", "0"),
             ("--model", "x", "--base-url", "http://127.0.0.1:9/v1", "--concurrency", "1", "--rate", "1"),
             ("--model", "x", "--base-url", "http://127.0.0.1:9/v1", "--slo", "speed=3"),
             ("--model", "x", "--base-url", "http://127.0.0.1:9/v1", "--instance", "no-such-box"),
             ("--model", str(tmp_path / "missing.gguf"), "--serve", "llamacpp"),
             ("--model", "x", "--base-url", "http://127.0.0.1:9/v1"),                       # nothing listens there
             ("--model", "x", "--base-url", "https://api.example.invalid/v1")]              # remote without a key
    for args in cases:
        p = harness_load(*args, "--output-dir", str(tmp_path / "out"), timeout=60, env={"OPENAI_API_KEY": ""})
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stderr.strip().startswith("error:") and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


class _Flaky(BaseHTTPRequestHandler):
    """Answers 429 to every other request and 500 to the rest: a real HTTP server, nothing mocked."""

    count = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Flaky.lock:
            _Flaky.count += 1
            n = _Flaky.count
        code = 429 if n % 2 else 500
        body = json.dumps({"error": {"message": "slow down" if code == 429 else "internal"}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if code == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_a_server_answering_429_and_500_gives_failed_records_and_a_failed_status(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    port = server.server_address[1]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        p = harness_load("--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "--concurrency", "2", "--requests", "6",
                         "--warmup", "0", "--prompts", "2", "--input-tokens", "8", "--output-tokens", "4", "--slo", "ttft=1",
                         "--output-dir", str(tmp_path), timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == 4, p.stdout + p.stderr
    d = load_json(tmp_path)
    assert d["status"] == "failed" and "no request succeeded" in d["status_reason"]
    lv = d["levels"][0]["metrics"]
    assert lv["completed"] == 0 and lv["failed"] == 6
    assert set(lv["errors"]) == {"HTTP 429", "HTTP 500"}
    assert d["levels"][0]["goodput"]["conforming"] == 0 and d["levels"][0]["goodput"]["attainment"] == 0.0
    rows = records(tmp_path)
    assert len(rows) == 6 and {r["status"] for r in rows} == {429, 500} and not any(r["ok"] for r in rows)
    assert d["workload"]["mean_input_tokens"] is None  # the probes failed too: unmeasured, not 0


# ---- real llama.cpp server -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    cache = Path(os.environ.get("HARNESS_TEST_MODELS", Path.home() / ".cache" / "cnllm-test-models"))
    path = cache / "smollm2-135m-instruct-q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"SmolLM2 GGUF not at {path}: run ../shared/models/get.sh smollm2")
    return path


@pytest.fixture()
def llama_server(smollm2, tmp_path):
    """A real llama-cpp-python server on loopback (started the way `--serve llamacpp` starts it, so
    with the AMX workaround where this CPU needs it); yields (ManagedServer, port)."""
    from harness.load.server import ManagedServer

    srv = ManagedServer("llamacpp", str(smollm2), tmp_path / "server.log", n_ctx=1024, ready_timeout_s=120)
    with srv:
        yield srv, srv.port
    assert not listening(srv.port)


def kill(srv) -> None:
    if srv.proc is not None and srv.proc.poll() is None:
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=10)


@pytest.mark.slow
def test_serve_llamacpp_sweep_with_every_metric_and_nothing_left(smollm2, tmp_path):
    p = harness_load("--serve", "llamacpp", "--model", str(smollm2), "--concurrency", "1,2", "--requests", "4", "--warmup", "1",
                     "--input-tokens", "32", "--output-tokens", "12", "--slo", "ttft=10,tpot=1", "--price-per-hour", "1.0",
                     "--api", "deepseek-reasoner", "--n-ctx", "1024", "--output-dir", str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    d = load_json(tmp_path)
    assert d["status"] == "complete" and d["served"]["exit"] == "stopped by harness"
    assert not listening(d["served"]["port"])
    assert [lv["load"] for lv in d["levels"]] == [1.0, 2.0]
    rows = records(tmp_path)
    warm = [r for r in rows if r["warmup"]]
    assert len(warm) == 1 and d["warmup"]["requests"] == 1
    for lv in d["levels"]:
        m = lv["metrics"]
        assert m["completed"] == 4 and m["failed"] == 0
        for k in ("ttft_s", "tpot_s", "itl_s", "e2el_s"):
            assert m[k]["p99"] is not None and m[k]["p90"] is not None and m[k]["mean"] > 0
        assert m["total_output_tokens"] == 4 * 12  # fixed output length held (EOS suppressed)
        assert m["total_input_tokens"] == 4 * 32  # prompts calibrated to the server's own count
        assert lv["achieved"]["max_in_flight"] == int(lv["load"])
        # recompute TPOT and throughput from the raw records, independently of harness.load.metrics
        mine = [r for r in rows if r["level"] == lv["index"] and not r["warmup"]]
        tp = [(r["e2el_s"] - r["ttft_s"]) / (r["output_tokens"] - 1) for r in mine]
        assert m["tpot_s"]["median"] == pytest.approx(float(np.median(tp)))
        assert all(len(r["itl_s"]) == r["output_tokens"] - 1 for r in mine)  # one token per streamed chunk
        assert lv["goodput"]["attainment"] == 1.0
    assert d["saturation"]["load"] == 2.0
    c = d["cost"]
    sat = next(s for s in d["summary"] if s["load"] == 2.0)
    assert c["usd_per_1m_output_tokens"] == pytest.approx(1.0 / 3600 / sat["output_throughput"]["mean"] * 1e6)
    assert c["apis"][0]["api"] == "deepseek-reasoner" and "deepseek-reasoner" in c["verdict"] and c["caveats"]
    html = next(tmp_path.glob("*/report.html")).read_text()
    assert html.count("data:image/png;base64,") == 2
    # two load folders compare
    p2 = harness_load("--serve", "llamacpp", "--model", str(smollm2), "--concurrency", "1", "--requests", "2", "--warmup", "0",
                      "--input-tokens", "16", "--output-tokens", "8", "--output-dir", str(tmp_path / "b"))
    assert p2.returncode == 0, p2.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    folders = [str(next(tmp_path.glob("*/load.json")).parent), str(next((tmp_path / "b").glob("*/load.json")).parent)]
    cmp = subprocess.run([sys.executable, "-m", "harness", "compare", *folders, "--output-dir", str(tmp_path / "cmp")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert cmp.returncode == 0, cmp.stderr
    assert "output tok/s" in cmp.stdout and (tmp_path / "cmp" / "load_comparison.json").is_file()


@pytest.mark.slow
def test_task_prompts_open_loop_against_a_running_server(smollm2, llama_server, tmp_path):
    _, port = llama_server
    p = harness_load("--base-url", f"http://127.0.0.1:{port}/v1", "--model", str(smollm2), "--rate", "2", "--arrivals", "gamma:2",
                     "--requests", "4", "--warmup", "1", "--tasks", "gsm8k", "--data-file", f"gsm8k={GSM8K}", "--prompts", "2",
                     "--max-tokens", "16", "--output-dir", str(tmp_path / "out"))
    tmp_path = tmp_path / "out"
    assert p.returncode == 0, p.stdout + p.stderr
    d = load_json(tmp_path)
    assert d["workload"]["source"] == "gsm8k" and d["workload"]["endpoint"] == "chat"
    assert d["workload"]["mean_input_tokens"] > 20  # a real GSM8K question in the chat template
    a = d["levels"][0]["achieved"]
    assert a["mode"] == "rate" and a["requested"] == 2.0 and a["send_rate"] is not None and a["scheduled_rate"] is not None
    assert d["plan"]["arrivals"] == "gamma:2"
    assert d["served"] is None and d["saturation"]["criterion"].startswith("highest output throughput")


@pytest.mark.slow
def test_a_server_that_dies_mid_test_ends_partial_with_what_was_measured(smollm2, llama_server, tmp_path):
    srv, port = llama_server
    load = subprocess.Popen([sys.executable, "-m", "harness", "load", "--base-url", f"http://127.0.0.1:{port}/v1", "--model",
                             str(smollm2), "--concurrency", "1", "--requests", "40", "--warmup", "0", "--prompts", "2",
                             "--input-tokens", "16", "--output-tokens", "24", "--output-dir", str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    # kill the server once a few requests are on disk
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list((tmp_path / "out").glob("*/requests.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    kill(srv)
    out, _ = load.communicate(timeout=120)
    assert load.returncode == 4, out
    d = load_json(tmp_path / "out")
    assert d["status"] == "partial" and "stopped answering" in d["status_reason"], d["status_reason"]
    m = d["levels"][0]["metrics"]
    assert m["completed"] >= 3 and m["failed"] >= 1 and m["completed"] + m["failed"] < 40
    rows = records(tmp_path / "out")
    assert sum(r["ok"] for r in rows) == m["completed"]
    assert "stopped early" in out


@pytest.mark.slow
def test_sigterm_stops_the_test_and_its_server_keeping_every_record(smollm2, tmp_path):
    load = subprocess.Popen([sys.executable, "-m", "harness", "load", "--serve", "llamacpp", "--model", str(smollm2), "--concurrency", "1",
                             "--requests", "40", "--warmup", "0", "--prompts", "2", "--input-tokens", "16", "--output-tokens", "24",
                             "--n-ctx", "1024", "--output-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    deadline = time.time() + 180
    while time.time() < deadline:
        found = list(tmp_path.glob("*/requests.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    load.send_signal(signal.SIGTERM)
    out, _ = load.communicate(timeout=120)
    assert load.returncode == 128 + signal.SIGTERM, out
    d = load_json(tmp_path)
    assert d["status"] == "interrupted" and d["served"]["exit"] == "stopped by harness", d
    assert not listening(d["served"]["port"])
    rows = records(tmp_path)
    assert len(rows) >= 2 and all(r["ok"] for r in rows[:2])


# ---- levels, repeats and cost, from records (pure) -------------------------------------------------
def _run(recs, max_in_flight, lags=()):
    from harness.load.client import LevelRun

    end = max(r.sent_s + r.e2el_s for r in recs)
    return LevelRun(records=recs, start=0.0, end=end, max_in_flight=max_in_flight, lags=list(lags), stopped=None)


def _recs(n, e2el, out=11, spacing=None):
    return [RequestRecord(level=0, load=1.0, repeat=0, index=i, prompt_id="p", sent_s=(spacing or e2el) * i, ok=True,
                          ttft_s=0.1 * e2el, e2el_s=e2el, output_tokens=out, itl_s=[0.09 * e2el / 10] * 10, input_tokens=20)
            for i in range(n)]


def test_repeats_give_spread_saturation_and_cost_by_load():
    from harness.load import levels
    from harness.load.economics import Prices
    from harness.load.schema import LoadPlan, LoadResult, Workload

    slo = Slo(e2el_s=1.5)
    lvls = []
    for i, (load, rep, e2el) in enumerate([(1.0, 0, 1.0), (2.0, 0, 1.2), (1.0, 1, 1.1), (2.0, 1, 2.0)]):
        recs = _recs(8, e2el, spacing=e2el / load)
        lvls.append(levels.finish_level({"index": i, "mode": "concurrency", "load": load, "repeat": rep}, _run(recs, int(load)), 0.01, slo, None))
    result = LoadResult(run_id="x", created="now", status="complete", harness_version="0", base_url="", model="m",
                        workload=Workload(source="synthetic", endpoint="completions", prompts=1, input_tokens=20, output_tokens=11,
                                          max_tokens=11, fixed_output_by=None, sampling={}, mean_input_tokens=20),
                        plan=LoadPlan(mode="concurrency", loads=[1, 2], arrivals=None, requests=8, duration_s=60, deadline_s=600,
                                  request_timeout_s=60, repeats=2, warmup=0, seed=0, max_concurrency=None), slo=slo, levels=lvls)
    levels.summarise(result, "concurrency", slo, Prices(per_hour=3.6, source="test"))
    one, two = result.summary
    thr = [lv.metrics.output_throughput for lv in lvls if lv.load == 2.0]
    assert two.repeats == 2 and two.output_throughput.mean == pytest.approx(np.mean(thr))
    assert two.output_throughput.std == pytest.approx(float(np.std(thr, ddof=1)))
    assert one.meets_slo is True and two.meets_slo is False  # repeat 2 at load 2 has E2EL 2.0 > 1.5
    assert result.saturation.load == 1.0
    cost = result.cost
    assert cost.usd_per_1m_output_tokens == pytest.approx(3.6 / 3600 / one.output_throughput.mean * 1e6)
    assert [p.load for p in cost.by_load] == [1.0, 2.0] and cost.by_load[1].meets_slo is False


def test_client_limits_are_flagged():
    from harness.load import levels

    recs = _recs(8, 1.0, spacing=0.25)
    starved = levels.finish_level({"index": 0, "mode": "concurrency", "load": 4.0, "repeat": 0}, _run(recs, 2), 0.01, None, None)
    assert starved.achieved.client_limited and "never had 4" in starved.achieved.warnings[0]
    busy = levels.finish_level({"index": 0, "mode": "concurrency", "load": 4.0, "repeat": 0}, _run(recs, 4), 0.97, None, None)
    assert busy.achieved.client_limited and any("CPU core" in w for w in busy.achieved.warnings)
    fine = levels.finish_level({"index": 0, "mode": "concurrency", "load": 4.0, "repeat": 0}, _run(recs, 4), 0.05, None, None)
    assert not fine.achieved.client_limited
    assert fine.achieved.mean_concurrency == pytest.approx(8 * 1.0 / (0.25 * 7 + 1.0))  # Little's law: sum of E2EL / duration
    late = [r.model_copy(update={"scheduled_s": 0.5 * r.index}) for r in _recs(8, 0.2, spacing=0.5)]
    lagged = levels.finish_level({"index": 0, "mode": "rate", "load": 2.0, "repeat": 0}, _run(late, 1, lags=[0.3] * 8), 0.01, None,
                                 arr.parse_arrivals("constant"))
    assert lagged.achieved.client_limited and lagged.achieved.scheduled_rate == pytest.approx(2.0)
    assert lagged.achieved.send_rate == pytest.approx(2.0)
