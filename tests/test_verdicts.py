"""Verdicts on claims: interval edges, precedence when the interval is wide, the problems-needed
note, and the run.json claims entries built from a card."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.cards.loader import find_card
from harness.cards.settings import protocol_differences
from harness.claims.verdicts import claims_for_run, our_metric, verdict
from harness.stats import problems_needed

# ---- verdict ----------------------------------------------------------------------------------

def test_claim_on_the_low_edge_is_consistent():
    v = verdict(0.80, 0.83, (0.80, 0.86), n=500, k=1)
    assert v["verdict"] == "consistent" and v["gap"] == pytest.approx(0.03)


def test_claim_on_the_high_edge_is_consistent():
    assert verdict(0.86, 0.83, [0.80, 0.86], n=500, k=1)["verdict"] == "consistent"


def test_claim_printed_on_the_edge_survives_float_noise():
    # 83.9 / 100 is 0.8390000000000001 in binary floating point
    assert verdict(83.9 / 100, 0.80, (0.76, 0.839), n=500, k=1)["verdict"] == "consistent"


def test_below_and_above_with_a_narrow_interval():
    below = verdict(0.839, 0.60, (0.557, 0.642), n=500, k=1)
    above = verdict(0.30, 0.60, (0.557, 0.642), n=500, k=1)
    assert below["verdict"] == "below" and below["gap"] == pytest.approx(-0.239)
    assert above["verdict"] == "above" and above["gap"] == pytest.approx(0.30)
    assert "83.9%" in below["note"] and "[55.7%, 64.2%]" in below["note"]


def test_tiny_n_with_claim_inside_is_inconclusive_and_says_how_many_problems():
    # n=2, one right: Wilson 95% interval is about [0.095, 0.905]
    v = verdict(0.839, 0.5, (0.0945, 0.9055), n=2, k=1)
    assert v["verdict"] == "inconclusive"
    need = math.ceil((2 * 1.96) ** 2 * 0.839 * 0.161 / 0.10**2)
    assert need == problems_needed(width=0.10, p=0.839) == 208
    assert f"about {need} problems" in v["note"] and "n=2 problems x 1 sample" in v["note"]


def test_wide_interval_still_says_below_when_the_claim_is_outside():
    # precedence: a claim outside even a wide interval is contradicted by the data
    v = verdict(0.839, 0.0, (0.0, 0.658), n=2, k=1)
    assert v["verdict"] == "below" and "wide" in v["note"]
    assert verdict(0.05, 0.9, (0.34, 1.0), n=2, k=1)["verdict"] == "above"


def test_k_greater_than_one_scales_the_observed_width():
    # 30 problems x 8 samples, bootstrap interval 0.30 wide
    v = verdict(0.55, 0.50, (0.35, 0.65), n=30, k=8)
    assert v["verdict"] == "inconclusive"
    assert f"about {math.ceil(30 * (0.30 / 0.10) ** 2)} problems" in v["note"]  # 270
    assert "within-problem" in v["note"] and "8 samples" in v["note"]


def test_max_width_is_a_parameter():
    assert verdict(0.5, 0.5, (0.42, 0.58), n=150, k=1)["verdict"] == "inconclusive"
    assert verdict(0.5, 0.5, (0.42, 0.58), n=150, k=1, max_width=0.2)["verdict"] == "consistent"


@pytest.mark.parametrize("args", [
    (83.9, 0.8, (0.7, 0.9)),   # a percent instead of a fraction
    (0.8, 0.8, (0.9, 0.7)),    # interval reversed
    (0.8, 1.2, (0.7, 0.9)),
])
def test_bad_inputs_raise(args):
    with pytest.raises(ValueError):
        verdict(*args, n=10, k=1)


@given(lo=st.floats(0, 1), hi=st.floats(0, 1), claimed=st.floats(0, 1), width=st.floats(0.01, 1))
def test_verdict_is_below_or_above_exactly_when_the_claim_is_outside(lo, hi, claimed, width):
    lo, hi = min(lo, hi), max(lo, hi)
    v = verdict(claimed, (lo + hi) / 2, (lo, hi), n=100, k=1, max_width=width)["verdict"]
    inside = lo - 1e-9 <= claimed <= hi + 1e-9
    assert (v in ("consistent", "inconclusive")) == inside
    if inside:
        assert (v == "inconclusive") == (hi - lo > width)
    else:
        assert v == ("below" if claimed > hi else "above")


def test_metric_mapping():
    assert our_metric("pass@1") == "accuracy"
    assert our_metric("accuracy") == our_metric("exact_match") == "accuracy"
    assert our_metric("cons@64") == our_metric("maj@64") == "maj@64"
    assert our_metric("pass@8") == "pass@8"
    assert our_metric("rating") is None and our_metric("f1") is None


# ---- claims_for_run ---------------------------------------------------------------------------

def _m(value, lo, hi, n):
    return {"value": value, "ci95": [lo, hi], "method": "wilson", "n": n}


def test_claims_for_run_maps_metrics_and_skips_what_was_not_measured():
    card = find_card("r1-distill-qwen-1.5b")
    tasks = {
        "math500": {"n": 500, "k": 1, "metrics": {"accuracy": _m(0.82, 0.784, 0.852, 500)}},
        "aime24": {"n": 30, "k": 64, "metrics": {"accuracy": _m(0.30, 0.20, 0.41, 30), "maj@64": _m(0.50, 0.33, 0.67, 30)}},
        "cmath": {"n": 600, "k": 1, "metrics": {"accuracy": _m(0.7, 0.66, 0.74, 600)}},  # no claim for cmath
    }
    diffs = {"math500": ["dtype float32 instead of the card's bfloat16"]}
    entries = claims_for_run(card, tasks, differences_by_task=diffs)
    got = {(e["task"], e["metric"]): e for e in entries}
    assert set(got) == {("math500", "accuracy"), ("aime24", "accuracy"), ("aime24", "maj@64")}
    m = got[("math500", "accuracy")]
    assert m["claimed"] == 0.839 and m["measured"] == 0.82 and m["verdict"] == "consistent"
    assert m["gap"] == pytest.approx(-0.019) and m["published_metric"] == "pass@1"
    assert m["protocol_differences"] == ["dtype float32 instead of the card's bfloat16"]
    assert "R1_README" in m["source"] and m["status"] == "verified"
    assert got[("aime24", "maj@64")]["claimed"] == 0.527 and got[("aime24", "maj@64")]["verdict"] == "inconclusive"
    for e in entries:
        assert set(e) >= {"task", "metric", "claimed", "measured", "ci95", "verdict", "gap", "source", "protocol_differences", "note"}


def test_claims_without_maj_metric_are_skipped_when_k_is_1():
    card = find_card("r1-distill-qwen-1.5b")
    tasks = {"aime24": {"n": 30, "k": 1, "metrics": {"accuracy": _m(0.3, 0.17, 0.48, 30)}}}
    assert [e["metric"] for e in claims_for_run(card, tasks, differences_by_task={})] == ["accuracy"]


def test_random_model_gsm8k_run_reports_the_unpublished_claim_with_its_differences():
    # the acceptance scenario: --card r1-distill-qwen-1.5b --model random:... --tasks gsm8k --limit 2 --max-new-tokens 8
    card = find_card("r1-distill-qwen-1.5b")
    used = {"max_new_tokens": 8, "num_samples": 1, "limit": 2, "n": 2, "n_total": 1000}
    diffs = protocol_differences(card, "gsm8k", used, random_weights=True, model_source="random:r1-distill-qwen-1.5b")
    tasks = {"gsm8k": {"n": 2, "k": 1, "metrics": {"accuracy": _m(0.0, 0.0, 0.658, 2)}}}
    [entry] = claims_for_run(card, tasks, differences_by_task={"gsm8k": diffs})
    assert entry["claimed"] is None and entry["gap"] is None and entry["verdict"] == "inconclusive"
    assert "no published value" in entry["note"] and entry["status"] == "UNVERIFIED"
    assert any("random" in d for d in entry["protocol_differences"])
    assert any("max_new_tokens 8 instead of the card's 32768" in d for d in entry["protocol_differences"])


def test_claim_under_another_protocol_says_so():
    card = find_card("qwen3-8b")  # thinking-mode card with non-thinking claims too
    tasks = {"math500": {"n": 500, "k": 1, "metrics": {"accuracy": _m(0.95, 0.93, 0.965, 500)}}}
    entries = claims_for_run(card, tasks, differences_by_task={}, run_protocol="qwen3-think")
    by_claim = {e["claimed"]: e for e in entries}
    assert set(by_claim) == {0.974, 0.874}
    assert by_claim[0.974]["protocol_differences"] == [] and by_claim[0.974]["verdict"] == "below"
    assert "non-thinking" in by_claim[0.874]["protocol_differences"][0]


def test_claim_sample_count_differing_from_the_card_is_listed():
    card = find_card("qwen2.5-7b-instruct")  # card states no samples; Qwen3-report claims state none either
    tasks = {"gsm8k": {"n": 100, "k": 1, "metrics": {"accuracy": _m(0.9, 0.83, 0.94, 100)}}}
    [entry] = claims_for_run(card, tasks, differences_by_task={})
    assert entry["protocol_differences"] == [] and entry["verdict"] == "inconclusive"
    r1 = find_card("deepseek-r1")  # api card whose claims average 64 samples; the card states 64 too
    tasks = {"math500": {"n": 500, "k": 1, "metrics": {"accuracy": _m(0.97, 0.95, 0.98, 500)}}}
    [entry] = claims_for_run(r1, tasks, differences_by_task={})
    assert entry["protocol_differences"] == []  # the card-level difference comes from protocol_differences
