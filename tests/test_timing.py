"""TPOT and the perf summary."""

from __future__ import annotations

import pytest

from harness.measure.timing import perf_summary, tpot


def test_tpot_definition():
    assert tpot(2.0, 0.5, 4) == pytest.approx(0.5)  # (2.0 - 0.5) / 3
    assert tpot(1.0, 0.2, 2) == pytest.approx(0.8)
    assert tpot(1.0, 0.2, 1) is None
    assert tpot(1.0, 0.2, 0) is None
    assert tpot(None, 0.2, 5) is None and tpot(1.0, None, 5) is None and tpot(1.0, 0.2, None) is None


def _row(ttft, e2e, inp, out, tpot_s="compute"):
    row = {"ttft_s": ttft, "e2e_s": e2e, "input_tokens": inp, "output_tokens": out}
    if tpot_s != "compute":
        row["tpot_s"] = tpot_s
    return row


def test_perf_summary_known_values():
    # Two static batches. Batch 1: 2 rows, prefill 0.5 s, wall 2.5 s. Batch 2: 1 row, prefill
    # 0.25 s, wall 1.25 s.
    rows = [
        _row(0.5, 2.5, 100, 21),  # tpot = 2.0 / 20 = 0.1
        _row(0.5, 1.5, 60, 11),  # tpot = 1.0 / 10 = 0.1
        _row(0.25, 1.25, 40, 1, tpot_s=None),  # one token: no tpot
    ]
    batches = [
        {"rows": 2, "input_tokens": 160, "output_tokens": 32, "prefill_s": 0.5, "wall_s": 2.5},
        {"rows": 1, "input_tokens": 40, "output_tokens": 1, "prefill_s": 0.25, "wall_s": 1.25},
    ]
    p = perf_summary(rows, wall_s=10.0, load_s=3.0, warmup={"s": 0.7, "requests": 1}, batches=batches)
    assert p["wall_s"] == 10.0 and p["load_s"] == 3.0 and p["warmup"] == {"s": 0.7, "requests": 1}
    assert p["input_tokens"] == 200 and p["output_tokens"] == 33
    assert p["output_tokens_per_s"] == pytest.approx(33 / 3.75)
    assert p["prefill_tokens_per_s"] == pytest.approx(200 / 0.75)
    # decode tokens: (32 - 2) + max(0, 1 - 1) = 30 over (2.0 + 1.0) s
    assert p["decode_tokens_per_s"] == pytest.approx(10.0)
    assert p["tpot_s"]["mean"] == pytest.approx(0.1) and p["tpot_s"]["p99"] == pytest.approx(0.1)
    assert p["ttft_s"]["p50"] == 0.5 and p["e2e_s"]["mean"] == pytest.approx(5.25 / 3)


def test_perf_summary_unmeasured_fields_are_none_not_zero():
    rows = [{"ttft_s": None, "e2e_s": 1.0, "input_tokens": None, "output_tokens": 5}]
    batches = [{"rows": 1, "input_tokens": None, "output_tokens": 5, "prefill_s": None, "wall_s": 1.0}]
    p = perf_summary(rows, wall_s=1.0, load_s=None, warmup={"s": 0.0, "requests": 0}, batches=batches)
    assert p["prefill_tokens_per_s"] is None and p["decode_tokens_per_s"] is None
    assert p["output_tokens_per_s"] == 5.0
    assert p["ttft_s"]["mean"] is None and p["tpot_s"]["mean"] is None
    assert p["input_tokens"] is None and p["output_tokens"] == 5
    empty = perf_summary([], wall_s=0.0, load_s=None, warmup={}, batches=[])
    assert empty["output_tokens_per_s"] is None and empty["e2e_s"]["p50"] is None
