"""`harness compare`: pairing samples across runs, paired tests, the table and the Pareto plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_report import make_run, make_samples

from harness.reports import plots
from harness.reports.compare import compare, holm, time_share
from harness.results.runs import paired_test


def _rows(task, verdicts, k=1, **kw):
    return make_samples(task, verdicts, k=k, **{"truncate": False, **kw})


# ---- pairing and tests, on known cases ------------------------------------------------------

def test_identical_runs_give_p_one():
    v = [True, False, True, True, False, True, False, False, True, True]
    res = paired_test(_rows("gsm8k", v), _rows("gsm8k", v), "gsm8k")
    assert res["test"] == "mcnemar" and res["p_value"] == 1.0 and res["diff"] == 0.0
    assert res["b01"] == res["b10"] == 0 and res["n"] == 10


def test_dominating_run_gives_small_p():
    a = _rows("gsm8k", [True] * 30)
    b = _rows("gsm8k", [i % 5 == 0 for i in range(30)])  # 6 of 30
    res = paired_test(a, b, "gsm8k")
    assert res["b10"] == 24 and res["b01"] == 0
    assert res["p_value"] < 1e-5 and res["diff"] == pytest.approx(0.8)
    assert paired_test(b, a, "gsm8k")["diff"] == pytest.approx(-0.8)  # sign follows the order


def test_k_above_one_uses_paired_bootstrap_on_problem_means():
    # 20 problems x 4 samples; a is right on every sample, b on one of four
    a = _rows("math500", [True] * 80, k=4)
    b = _rows("math500", [j % 4 == 0 for j in range(80)], k=4)
    res = paired_test(a, b, "math500")
    assert res["test"] == "paired_bootstrap" and res["n"] == 20
    assert res["acc_b"] == pytest.approx(0.25) and res["diff"] == pytest.approx(0.75)
    assert res["p_value"] < 0.01 and res["ci95"][0] > 0.5
    same = paired_test(a, a, "math500")
    assert same["p_value"] == 1.0 and same["diff"] == 0.0


def test_pairing_matches_by_id_not_by_position():
    a = _rows("gsm8k", [True, False, True, False])
    b = list(reversed(_rows("gsm8k", [True, False, True, False])))
    assert paired_test(a, b, "gsm8k")["b01"] == 0  # same verdicts per id, whatever the file order


def test_pairing_uses_only_shared_problems_with_equal_targets():
    a = _rows("gsm8k", [True] * 6)
    b = _rows("gsm8k", [True] * 4)  # q0..q3 only
    b[1]["target"] = "something else"  # q1: a different problem under the same id
    res = paired_test(a, b, "gsm8k")
    assert res["n"] == 3 and res["target_mismatch"] == 1
    assert paired_test(a, _rows("other", [True]), "gsm8k") is None


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5] and holm([]) == []
    assert holm([0.9, 0.9, 0.9]) == [1.0, 1.0, 1.0]


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (0.5, 0.2), (2.0, 0.7)]
    assert plots.pareto_front(pts) == [3, 0, 1, 4]  # (3.0, 0.6) is dominated by (2.0, 0.7)
    assert plots.pareto_front([]) == []


def test_time_share():
    rows = _rows("a", [True] * 3) + _rows("b", [True])
    for r in rows:
        r["batch_wall_s"], r["batch_size"] = 1.0, 1
    assert time_share(rows, "a") == pytest.approx(0.75)
    for r in rows:
        r["batch_wall_s"] = None
        r["output_tokens"] = 10
    assert time_share(rows, "b") == pytest.approx(0.25)  # falls back to output tokens


# ---- the whole command ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    n = 40
    good = make_run(root, "good", {"gsm8k": _rows("gsm8k", [i % 10 != 0 for i in range(n)]),
                                   "math500": _rows("math500", [i % 2 == 0 for i in range(10)])},
                    model="org/Big-7B", device="cuda", dtype="bfloat16", backend="vllm", price=4.0, run_id="g1")
    bad = make_run(root, "bad", {"gsm8k": _rows("gsm8k", [i % 10 == 0 for i in range(n)], model_seed=3)},
                   model="org/Small-1.5B", price=1.0, run_id="b1")
    # Same model and device as `bad`, no price: its $/correct is missing.
    again = make_run(root, "again", {"gsm8k": _rows("gsm8k", [i % 10 == 0 for i in range(n)], model_seed=3)},
                     model="org/Small-1.5B", price=None, run_id="b2")
    out = root / "cmp"
    return compare([good, bad, again], out), out


def test_compare_writes_every_file(compared):
    doc, out = compared
    for name in ("comparison.md", "comparison.csv", "comparison.json", "pareto_cost.png", "pareto_latency.png", "pareto_tokens.png"):
        assert (out / name).exists(), name
    for name in ("pareto_cost.png", "pareto_latency.png", "pareto_tokens.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    assert json.loads((out / "comparison.json").read_text())["pairs"] == doc["pairs"]


def test_compare_table(compared):
    doc, out = compared
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert [(r["run_id"], r["task"]) for r in rows] == [("g1", "gsm8k"), ("g1", "math500"), ("b1", "gsm8k"), ("b2", "gsm8k")]
    good = rows[0]
    assert good["model"] == "org/Big-7B" and good["device"] == "NVIDIA H100" and good["dtype"] == "bfloat16" and good["backend"] == "vllm"
    assert float(good["accuracy"]) == pytest.approx(0.9)
    assert float(good["usd_per_correct"]) > 0 and float(good["p50_e2e_s"]) > 0 and float(good["output_tokens_per_s"]) > 0
    assert rows[3]["usd_per_correct"] == ""  # no price: empty, not zero
    # the two same-config runs are told apart by run id
    labels = [r["label"] for r in rows]
    assert labels[2] != labels[3] and labels[2].endswith("b1") and labels[3].endswith("b2")


def test_multi_task_cost_is_split_by_time(compared):
    doc, _ = compared
    g, m = doc["runs"][0], doc["runs"][1]
    # shares sum to the run's total: $/correct x correct summed over tasks == usd_total
    run = json.loads((Path(g["run_dir"]) / "run.json").read_text())
    total = g["usd_per_correct"] * 36 + m["usd_per_correct"] * 5
    assert total == pytest.approx(run["cost"]["usd_total"])


def test_compare_pairs_and_notes(compared):
    doc, out = compared
    assert len(doc["pairs"]) == 3  # gsm8k in all three runs; math500 in only one
    big_vs_small = next(p for p in doc["pairs"] if p["a"].startswith("Big") and p["b"].endswith("b1"))
    assert big_vs_small["p_value"] < 1e-6 and big_vs_small["verdict"].startswith("Big-7B")
    same = next(p for p in doc["pairs"] if p["a"].endswith("b1") and p["b"].endswith("b2"))
    assert same["p_value"] == 1.0 and same["verdict"] == "noise"
    md = (out / "comparison.md").read_text()
    assert "on gsm8k: +80.0 pts, McNemar p<0.001" in md and ": noise" in md
    assert any("pareto_cost.png" in n and "b2 on gsm8k (no price given)" in n for n in doc["notes"])
    assert "frontier on gsm8k" in md


@pytest.mark.parametrize("change, code", [
    ({"random_weights": True}, "random_weights"), ({"truncate": True}, "truncation"),
    ({"protocol": "qwen"}, "protocol"), ({"temperature": 0.0}, "sampling")])
def test_a_pair_the_runs_cannot_support_is_not_comparable(tmp_path, change, code):
    n = 30
    a_rows = _rows("gsm8k", [True] * n)
    b_rows = _rows("gsm8k", [i % 5 == 0 for i in range(n)], truncate=change.get("truncate", False))
    a = make_run(tmp_path, "a", {"gsm8k": a_rows}, model="org/Big-7B", run_id="a1")
    b = make_run(tmp_path, "b", {"gsm8k": b_rows}, model="org/Small-1.5B", run_id="b1")
    settings = {"protocol": "r1", "temperature": 0.6, "top_p": 0.95}
    for d, extra in ((a, {}), (b, change)):
        data = json.loads((d / "run.json").read_text())
        data["tasks"]["gsm8k"]["settings"] = {**settings, **{k: v for k, v in extra.items() if k in settings}}
        data["model"]["random_weights"] = bool(extra.get("random_weights"))
        (d / "run.json").write_text(json.dumps(data))
    (pair,) = compare([a, b], tmp_path / "strict")["pairs"]
    assert pair["verdict"] == "not_comparable" and [r["code"] for r in pair["reasons"]] == [code]
    assert pair["indicative_verdict"] is None and pair["ci95"][1] > pair["ci95"][0]
    md = (tmp_path / "strict" / "comparison.md").read_text()
    assert "not_comparable" in md and "(indicative:" not in md and pair["reasons"][0]["detail"] in pair["summary"]
    (pair,) = compare([a, b], tmp_path / "ind", verdicts="indicative")["pairs"]
    assert pair["verdict"] == "not_comparable" and pair["indicative_verdict"].startswith("Big-7B")
    assert "(indicative: Big-7B" in (tmp_path / "ind" / "comparison.md").read_text()


def test_compare_without_any_price_still_plots_the_rest(tmp_path):
    a = make_run(tmp_path, "a", {"gsm8k": _rows("gsm8k", [True, False, True])}, price=None, run_id="a1")
    b = make_run(tmp_path, "b", {"gsm8k": _rows("gsm8k", [True, True, True])}, price=None, run_id="a2", dtype="float16")
    doc = compare([a, b], tmp_path / "out")
    assert doc["figures"]["pareto_cost"]["path"] is None
    assert not (tmp_path / "out" / "pareto_cost.png").exists()
    assert (tmp_path / "out" / "pareto_latency.png").exists() and (tmp_path / "out" / "pareto_tokens.png").exists()
    assert any("not written: no run has a value" in n for n in doc["notes"])


def test_compare_needs_a_run(tmp_path):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError):
        compare([], tmp_path)
    with pytest.raises(ConfigError):
        compare([tmp_path / "missing"], tmp_path / "out")
