"""`--batch-size auto` by measurement (harness/planning/batch_size.py): the batch with the best rate at
the run's output length wins; doubling stops at no gain, the ceiling, the memory estimate, an
out-of-memory error or a stop signal; the decision is cached and recorded in run.json, and the run
really starts at the chosen size."""

from __future__ import annotations

import json

import pytest

from harness.core.types import Completion, ModelInfo, Request, Sampling
from harness.planning import batch_size


class Costed:
    """A backend whose timings follow a cost model: prefill and decode step as functions of the batch."""

    probes_batch_size = True

    def __init__(self, prefill, step, oom_at=None, default=8):
        self.prefill, self.step, self.oom_at, self.default = prefill, step, oom_at, default
        self.info = ModelInfo(name_or_path="costed", backend="costed", dtype="float32")
        self.calls: list[int] = []

    def max_batch_size(self):
        return self.default

    def render(self, r):
        return r.messages[0]["content"]

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, reqs):
        b = len(reqs)
        self.calls.append(b)
        if self.oom_at and b >= self.oom_at:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        n = reqs[0].sampling.max_new_tokens
        assert all(r.sampling.min_new_tokens == n for r in reqs)  # probes force their length
        p = self.prefill(b)
        return [Completion("x", 5, n, "length", p, p + (n - 1) * self.step(b)) for _ in reqs]


def _queue(n):
    return [Request(key=f"t/{i}/0", messages=({"role": "user", "content": f"question {i}"},), sampling=Sampling(max_new_tokens=512), seed=i)
            for i in range(n)]


def _rate(backend, b, e):
    return b * e / (backend.prefill(b) + (e - 1) * backend.step(b))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))


def test_the_batch_with_the_best_rate_wins_and_doubling_stops_without_gain():
    # memory-bound decoding: a step costs about the same up to 8 rows, then grows with the rows
    be = Costed(prefill=lambda b: 0.02 * b, step=lambda b: 0.05 if b <= 8 else 0.05 * b / 8)
    size, why, measured = batch_size.choose(be, _queue(64), expected_tokens=512, device_type="cpu", device_name="test cpu")
    assert size == 8
    assert [r["batch"] for r in measured["rates"]] == [1, 2, 4, 8, 16]
    assert measured["stopped"] == "batch 16 gained less than 5%"
    assert measured["rates"][3]["tokens_per_s"] == pytest.approx(_rate(be, 8, 512))
    assert "8 is fastest" in why and "512 output tokens" in why


def test_the_output_length_decides_when_prefill_dominates():
    """Short answers: prefill (which grows with the rows) is most of the time, so a big batch buys little."""
    be = Costed(prefill=lambda b: 1.0 * b, step=lambda b: 0.05)
    short, _, _ = batch_size.choose(be, _queue(64), expected_tokens=4, device_type="cpu", device_name="c", cache=False)
    long, _, _ = batch_size.choose(be, _queue(64), expected_tokens=4096, device_type="cpu", device_name="c", cache=False)
    assert short < long


@pytest.mark.parametrize("n, device, ceiling", [(3, "cpu", 3), (200, "cpu", 64), (2000, "cuda", 512)])
def test_never_above_the_requests_or_the_ceiling(n, device, ceiling):
    be = Costed(prefill=lambda b: 0.0, step=lambda b: 0.01)  # free rows: always worth doubling
    size, _, measured = batch_size.choose(be, _queue(n), expected_tokens=64, device_type=device, device_name="d", cache=False)
    assert size == ceiling and max(be.calls) == ceiling
    assert measured["stopped"] == f"reached the ceiling {ceiling}"


def test_memory_estimate_and_out_of_memory_stop_the_doubling():
    free = lambda b: 0.01  # noqa: E731
    be = Costed(prefill=lambda b: 0.0, step=free)
    size, _, m = batch_size.choose(be, _queue(64), expected_tokens=64, device_type="cpu", device_name="d", fits=lambda b: b <= 4, cache=False)
    assert size == 4 and max(be.calls) == 4 and "batch 8 would not fit memory" in m["stopped"]
    be = Costed(prefill=lambda b: 0.0, step=free, oom_at=16)
    size, _, m = batch_size.choose(be, _queue(64), expected_tokens=64, device_type="cpu", device_name="d", cache=False)
    assert size == 8 and m["stopped"] == "out of memory at batch 16"


def test_a_short_run_is_not_worth_a_long_probe(monkeypatch):
    """Probing a size costs its prefills and steps; the next size is skipped when its predicted cost
    (twice this size's) is over 10% of the run's predicted time, so a short run stops early and a
    long one probes on."""
    clock = [0.0]
    monkeypatch.setattr(batch_size.time, "perf_counter", lambda: clock[0])

    class Clocked(Costed):
        def generate(self, reqs):
            done = super().generate(reqs)
            clock[0] += done[0].e2e_s  # the probe takes the time its cost model says
            return done

    be = Clocked(prefill=lambda b: 0.05 * b, step=lambda b: 0.1)  # decode gains from every row: only cost stops it
    short, _, m = batch_size.choose(be, _queue(64), expected_tokens=64, total_tokens=4 * 64, device_type="cpu", device_name="d",
                                    cache=False)
    assert "over 10% of the run's" in m["stopped"] and short < 64
    be = Clocked(prefill=lambda b: 0.05 * b, step=lambda b: 0.1)
    long, _, m = batch_size.choose(be, _queue(64), expected_tokens=64, total_tokens=10**7, device_type="cpu", device_name="d",
                                   cache=False)
    assert long == 64 and m["stopped"] == "reached the ceiling 64"
    be = Clocked(prefill=lambda b: 2.0 * b, step=lambda b: 0.1)  # an expensive prefill: the absolute budget binds
    _, _, m = batch_size.choose(be, _queue(64), expected_tokens=64, total_tokens=10**7, device_type="cpu", device_name="d", cache=False)
    assert "past 120 s" in m["stopped"] and m["probe_s"] <= batch_size.BUDGET_S


def test_a_stop_signal_ends_the_probe_and_nothing_is_cached(tmp_path):
    be = Costed(prefill=lambda b: 0.0, step=lambda b: 0.01)
    size, _, m = batch_size.choose(be, _queue(64), expected_tokens=64, device_type="cpu", device_name="d", should_stop=lambda: 2)
    assert size == 1 and m["interrupted"] and not (tmp_path / "batch_size.json").exists()


def test_the_decision_is_cached_per_shape_and_lengths(tmp_path):
    be = Costed(prefill=lambda b: 0.0, step=lambda b: 0.01 if b <= 4 else 1.0)
    first = batch_size.choose(be, _queue(64), expected_tokens=256, device_type="cpu", device_name="d")
    calls = len(be.calls)
    again = batch_size.choose(be, _queue(64), expected_tokens=256, device_type="cpu", device_name="d")
    assert again[0] == first[0] == 4 and "cached in" in again[1] and len(be.calls) == calls
    assert batch_size.choose(be, _queue(64), expected_tokens=256, device_type="cpu", device_name="d", fits=lambda b: b < 4)[0] == 2  # less memory: its own entry
    batch_size.choose(be, _queue(64), expected_tokens=4096, device_type="cpu", device_name="d")  # another length: measured anew
    assert len(json.loads((tmp_path / "batch_size.json").read_text())) == 3


def test_engines_that_batch_elsewhere_keep_their_start():
    class Served(Costed):
        probes_batch_size = False

    be = Served(prefill=lambda b: 0.0, step=lambda b: 0.01, default=16)
    size, why, measured = batch_size.choose(be, _queue(64), expected_tokens=64, device_type="cpu", device_name="d")
    assert size == 16 and measured is None and "own starting point" in why and be.calls == []


def test_a_run_with_auto_starts_at_the_measured_size_and_records_it(tmp_path, monkeypatch):
    from harness.cli import main

    seen = {}

    def fake_choose(backend, queue, **kw):
        seen.update(kw, n=len(queue))
        return 3, "auto: test", {"rates": [], "stopped": "test"}

    monkeypatch.setattr(batch_size, "choose", fake_choose)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "question": f"{i}+1?", "answer": f"#### {i + 1}"}) + "\n" for i in range(7)))
    assert main(["run", "--model", "random:tiny", "--tasks", "gsm8k", "--data-file", f"gsm8k={data}", "--device", "cpu",
                 "--dtype", "float32", "--max-new-tokens", "4", "--batch-size", "auto", "--batching", "static",
                 "--output-dir", str(tmp_path / "out")]) == 0
    run_dir = next((tmp_path / "out").iterdir())
    engine = json.loads((run_dir / "run.json").read_text())["model"]["engine"]
    assert engine["batch_size"] == 3 and engine["batch_size_reason"] == "auto: test"
    rows = [json.loads(line)["rows"] for line in (run_dir / "batches.jsonl").read_text().splitlines()]
    assert rows == [3, 3, 1]
    assert seen["n"] == 7 and seen["expected_tokens"] == 4 and seen["device_type"] == "cpu"
    assert seen["fits"](1) and not seen["fits"](10**9)  # the preflight's memory estimate at the run's context


def test_a_cpu_probe_on_a_busy_machine_is_redone_when_quieter(monkeypatch):
    from harness.measure import bandwidth

    load = [10.0]
    monkeypatch.setattr(bandwidth.os, "getloadavg", lambda: (load[0] * (bandwidth.os.cpu_count() or 1), 0.0, 0.0))
    be = Costed(prefill=lambda b: 0.0, step=lambda b: 0.01 if b <= 4 else 1.0)
    batch_size.choose(be, _queue(64), expected_tokens=256, device_type="cpu", device_name="d")
    calls = len(be.calls)
    assert "cached" in batch_size.choose(be, _queue(64), expected_tokens=256, device_type="cpu", device_name="d")[1]
    load[0] = 0.5
    assert "cached" not in batch_size.choose(be, _queue(64), expected_tokens=256, device_type="cpu", device_name="d")[1]
    assert len(be.calls) > calls
