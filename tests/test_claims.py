"""`harness claims`: comparative claims checked with paired tests across runs, and the cost table.

Most runs here are written as run.json + samples.jsonl fixtures so each verdict rule is hit with
known verdicts; one pair goes through the real pipeline with the scripted fake backend.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from helpers import run_result, write_jsonl

from harness.cards.comparisons import load_comparisons
from harness.cards.loader import find_card
from harness.cards.settings import stated_settings
from harness.claims.comparative import check, identify, newcombe_paired_ci
from harness.cli import main
from harness.errors import ConfigError
from harness.reports.claims import check_claims

R1, O1 = "deepseek-reasoner", "o1-2024-12-17"  # API model names: identified through the cards' api.model
DISTILL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"


def make_run(root: Path, name: str, verdicts: list[bool], *, model: str, task: str = "math500", k: int = 1, ids=None,
             card: str | None = None, random: bool = False, backend: str = "transformers", usd_per_1m: float | None = None,
             settings: dict | None = None) -> Path:
    """A finished run folder: `verdicts` holds one strict verdict per sample, problem-major."""
    n = len(verdicts) // k
    ids = list(ids if ids is not None else range(n))
    rows = [{"task": task, "id": f"p{ids[j // k]}", "sample": j % k, "target": str(ids[j // k]), "correct": ok,
             "output_tokens": 100} for j, ok in enumerate(verdicts)]
    d = root / name
    d.mkdir(parents=True)
    write_jsonl(d / "samples.jsonl", rows)
    acc = sum(verdicts) / len(verdicts)
    # By default the run follows its card's protocol and decoding, so only what a test sets differs.
    ident = identify(run_result(card=card, model={"name_or_path": model, "backend": backend}))
    base = {"protocol": "r1", "temperature": 0.6}
    if ident.card:
        stated = stated_settings(find_card(ident.card), task)
        base = {key: stated[key] for key in ("protocol", "temperature", "top_p") if stated.get(key) is not None}
    data = {
        "schema_version": "1.0", "run_id": name, "status": "complete", "config": {"model": model},
        "model": {"name_or_path": model, "backend": backend, "dtype": "bfloat16", "random_weights": random, "quantization": None},
        "device": {"type": "cuda", "name": "NVIDIA H100"}, "protocol": {"name": "r1"},
        "tasks": {task: {"n": n, "k": k, "metrics": {"accuracy": {"value": acc, "ci95": [0, 1]}}, "source": f"/data/{task}.jsonl",
                         "settings": {**base, "num_samples": k, **(settings or {})}}},
        "cost": {"basis": "time", "price_source": "user: --price-per-hour 3.99", "usd_per_1m_output_tokens": usd_per_1m},
        "protocol_differences": {task: []},
    }
    if card:
        data["card"] = card
    (d / "run.json").write_text(json.dumps(data))
    return d


def only(doc: dict, claim_id: str) -> dict:
    (row,) = [c for c in doc["comparisons"] if c["id"] == claim_id]
    return row


MATH = "r1-distill-qwen-32b-beats-o1-mini-math500"
COMPARABLE = "r1-comparable-to-o1-1217-math500"
GOOD, BAD = [i < 18 for i in range(20)], [i < 5 for i in range(20)]  # 90% vs 25% on the same 20 problems


# ---- the comparisons file ---------------------------------------------------------------------

def test_comparisons_file_names_real_cards_and_matches_their_numbers():
    cf = load_comparisons()
    assert {c.relation for c in cf.comparisons} == {"a > b", "a ≈ b"}
    for c in cf.comparisons:
        a, b = find_card(c.a), find_card(c.b)  # raises for a misspelt card
        published = {(cl.task, cl.metric): cl.value for cl in a.claims}, {(cl.task, cl.metric): cl.value for cl in b.claims}
        assert published[0][(c.task, c.metric)] == c.published.a and published[1][(c.task, c.metric)] == c.published.b, c.id
    for p in cf.prices:
        a, b = find_card(p.a).api.prices, find_card(p.b).api.prices
        got = (a.output_per_1m, b.output_per_1m) if p.per == "output" else (a.input_per_1m, b.input_per_1m)
        assert got == (p.published.a, p.published.b), p.id
        assert p.ratio == pytest.approx(got[1] / got[0], abs=0.05)


def test_bad_comparisons_file_is_one_config_error(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("sources: {R1_README: {note: x}}\ncomparisons:\n- {id: x, text: t, a: deepseek-r1, b: o1-1217, task: math500,"
                   " metric: pass@1, relation: a ≈ b, published: {a: 97.3, b: 96.4}, source: R1_README, status: verified}\n")
    with pytest.raises(ConfigError, match="margin_pts"):
        load_comparisons(bad)
    bad.write_text(bad.read_text().replace("relation: a ≈ b", "relation: a > b").replace("a: 97.3", "a: 90.0"))
    with pytest.raises(ConfigError, match="do not show a > b"):
        load_comparisons(bad)


# ---- which card a run is ----------------------------------------------------------------------

@pytest.mark.parametrize("model, card", [
    (DISTILL, "r1-distill-qwen-32b"), (R1, "deepseek-r1"), (O1, "o1-1217"),
    (f"/hf/hub/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-32B/snapshots/{'a' * 40}", "r1-distill-qwen-32b"),
    ("random:qwen2.5-0.5b", "qwen2.5-0.5b-instruct"), ("someone/unknown-model", None)])
def test_identify_by_model_name(model, card):
    ident = identify(run_result(model={"name_or_path": model, "backend": "transformers", "random_weights": model.startswith("random:")}))
    assert ident.card == card
    assert ident.meaningless == model.startswith("random:")


def test_card_field_wins_and_fake_backend_is_flagged():
    ident = identify(run_result(card="o1-mini", model={"name_or_path": DISTILL, "backend": "fake"}))
    assert ident.card == "o1-mini" and ident.how == "run.json card"
    assert ident.meaningless and "fake backend" in ident.flags[0]


# ---- "a > b" ----------------------------------------------------------------------------------

def test_better_run_supports_a_greater_claim(tmp_path):
    doc = check([make_run(tmp_path, "a", GOOD, model=DISTILL), make_run(tmp_path, "b", BAD, model="o1-mini-2024-09-12")])
    row = only(doc, MATH)
    assert row["verdict"] == "supported" and row["test"] == "mcnemar" and row["n"] == 20
    assert row["diff"] == pytest.approx(0.65) and row["p_value"] < 0.001 and row["ci95"][0] > 0.2
    assert "R1_README" in row["source"] and "0cf7856" in row["source"] and not row["meaningless"]
    assert any(u["id"] == "r1-distill-qwen-32b-beats-o1-mini-aime24" and "no run of" in u["why"] for u in doc["unchecked"])


def test_reversed_runs_contradict_it(tmp_path):
    doc = check([make_run(tmp_path, "a", BAD, model=DISTILL), make_run(tmp_path, "b", GOOD, model="o1-mini-2024-09-12")])
    row = only(doc, MATH)
    assert row["verdict"] == "contradicted" and row["diff"] == pytest.approx(-0.65)


def test_tiny_overlap_is_inconclusive_and_says_how_many(tmp_path):
    a = make_run(tmp_path, "a", GOOD, model=DISTILL)
    b = make_run(tmp_path, "b", [False] * 3 + [True] * 17, model="o1-mini-2024-09-12", ids=[0, 1, 2, *range(100, 117)])
    row = only(check([a, b]), MATH)
    assert row["n"] == 3 and row["verdict"] == "inconclusive"
    assert "3 shared problems" in row["reason"] and "would detect the published gap" in row["reason"]
    assert "only 3 shared problems (A ran 20, B ran 20)" in row["caveats"]


def test_many_samples_per_problem_use_the_paired_bootstrap(tmp_path):
    a = make_run(tmp_path, "a", [j % 4 != 0 for j in range(80)], model=DISTILL, k=4)  # 75% on every problem
    b = make_run(tmp_path, "b", [j % 4 == 0 for j in range(80)], model="o1-mini-2024-09-12", k=4)  # 25%
    row = only(check([a, b]), MATH)
    assert row["test"] == "paired_bootstrap" and row["verdict"] == "supported" and row["diff"] == pytest.approx(0.5)


# ---- "a ≈ b" ----------------------------------------------------------------------------------

def comparable(tmp_path, a_verdicts, b_verdicts, **kw) -> dict:
    a = make_run(tmp_path, "r1", a_verdicts, model=R1, **kw)
    b = make_run(tmp_path, "o1", b_verdicts, model=O1, **kw)
    return only(check([a, b]), COMPARABLE)


def test_same_answers_on_many_problems_support_comparable(tmp_path):
    v = [i % 10 != 0 for i in range(400)]
    row = comparable(tmp_path, v, v)
    assert row["verdict"] == "supported" and row["margin_pts"] == 2.0
    assert -0.02 <= row["ci95"][0] < 0 < row["ci95"][1] <= 0.02


def test_same_answers_on_few_problems_are_inconclusive(tmp_path):
    v = [i % 10 != 0 for i in range(20)]
    row = comparable(tmp_path, v, v)
    assert row["verdict"] == "inconclusive" and row["ci95"][1] > 0.02 and "20 shared problems" in row["reason"]


def test_a_clear_gap_contradicts_comparable(tmp_path):
    row = comparable(tmp_path, GOOD, BAD)
    assert row["verdict"] == "contradicted" and row["ci95"][0] > 0.02


def test_margin_decides(tmp_path):
    # 100 problems, a 3-point gap from 3 discordant pairs: inside a 15-point band, outside a 2-point one's reach
    a = [i < 80 for i in range(100)]
    b = [i < 77 for i in range(100)]
    text = (Path(__file__).resolve().parents[1] / "harness" / "data" / "comparisons.yaml").read_text(encoding="utf-8")
    wide = tmp_path / "wide.yaml"
    wide.write_text(text.replace("margin_pts: 2.0", "margin_pts: 15.0"))
    runs = [make_run(tmp_path, "r1", a, model=R1), make_run(tmp_path, "o1", b, model=O1)]
    assert only(check(runs), COMPARABLE)["verdict"] == "inconclusive"
    assert only(check(runs, wide), COMPARABLE)["verdict"] == "supported"


def test_identical_multi_sample_runs_fall_back_to_newcombe(tmp_path):
    v = [i // 4 % 10 != 0 for i in range(4 * 400)]  # 4 agreeing samples per problem
    row = comparable(tmp_path, v, v, k=4)
    assert row["test"] == "paired_bootstrap" and "Newcombe" in row["ci_method"] and row["verdict"] == "supported"


# ---- caveats ----------------------------------------------------------------------------------

def test_random_model_is_not_comparable_and_indicative_on_request(tmp_path):
    a = make_run(tmp_path, "a", GOOD, model="random:r1-distill-qwen-32b", random=True)
    b = make_run(tmp_path, "b", BAD, model="o1-mini-2024-09-12")
    doc = check([a, b])
    row = only(doc, MATH)
    assert row["verdict"] == "not_comparable" and row["meaningless"] and row["indicative_verdict"] is None
    assert [r["code"] for r in row["reasons"]] == ["random_weights"] and row["reason"].startswith("not comparable")
    row = only(check([a, b], verdicts="indicative"), MATH)
    assert row["verdict"] == "not_comparable" and row["indicative_verdict"] == "supported"
    assert any(c.startswith("A: random weights: meaningless") for c in row["caveats"])
    assert doc["runs"][0]["card"] == "r1-distill-qwen-32b" and doc["runs"][0]["matched_by"] == "random model r1-distill-qwen-32b"


def test_protocol_differences_are_caveats_and_material_ones_reasons(tmp_path):
    a = make_run(tmp_path, "a", GOOD, model=DISTILL, settings={"max_new_tokens": 2048})
    b = make_run(tmp_path, "b", BAD, model="o1-mini-2024-09-12", settings={"max_new_tokens": 32768})
    row = only(check([a, b]), MATH)
    assert row["verdict"] == "supported"  # a smaller budget with nothing cut is not material
    assert "runs differ in max_new_tokens: A 2048, B 32768" in row["caveats"]
    greedy = make_run(tmp_path, "g", GOOD, model=DISTILL, settings={"temperature": 0.0})
    row = only(check([greedy, b]), MATH)
    assert row["verdict"] == "not_comparable" and [r["code"] for r in row["reasons"]] == ["sampling"]
    assert "greedy" in row["reasons"][0]["detail"]


# ---- cost -------------------------------------------------------------------------------------

def test_cost_puts_measured_price_beside_api_prices_with_sources(tmp_path):
    a = make_run(tmp_path, "a", GOOD, model=DISTILL, usd_per_1m=0.41)
    doc = check([a])  # one run: no comparison, but the cost table still has something to say
    assert doc["comparisons"] == []
    (row,) = doc["cost"]["runs"]
    vs = {v["card"]: v for v in row["vs"]}
    assert vs["deepseek-r1"]["api_usd_per_1m_output"] == 2.19 and vs["o1-1217"]["api_usd_per_1m_output"] == 60.0
    assert vs["o1-1217"]["api_over_measured"] == pytest.approx(60 / 0.41)
    out_price = next(p for p in doc["cost"]["prices"] if p["per"] == "output")
    assert out_price["ratio"] == pytest.approx(27.4, abs=0.05) and out_price["published_ratio"] == 27.4
    assert "https://api-docs.deepseek.com/quick_start/pricing-details-usd" in out_price["a"]["source"]
    assert "platform.openai.com/docs/models/o1" in out_price["b"]["source"]


def test_command_writes_files_and_prints_the_table(tmp_path, capsys):
    runs = [make_run(tmp_path, "a", GOOD, model=DISTILL, usd_per_1m=0.41), make_run(tmp_path, "b", BAD, model="o1-mini-2024-09-12")]
    assert check_claims(runs, output_dir=tmp_path / "out") == 0
    text = capsys.readouterr().out
    assert "SUPPORTED: DeepSeek-R1-Distill-Qwen-32B outperforms o1-mini on MATH-500" in text
    assert "measured $0.41/1M output tokens" in text and "DeepSeek-R1 API $2.19" in text and "API $60" in text
    doc = json.loads((tmp_path / "out" / "claims.json").read_text())
    assert only(doc, MATH)["verdict"] == "supported"
    md = (tmp_path / "out" / "claims.md").read_text()
    assert "**supported**" in md and "DS_PRICING" in md and "## Not checked" in md


def test_nothing_checkable_is_one_error_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = make_run(tmp_path, "a", GOOD, model="someone/unknown-model")
    assert main(["claims", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no claim could be checked") and "\n" not in err and "no card" in err
    assert not (tmp_path / "claims").exists()


# ---- end to end through the pipeline ----------------------------------------------------------

def test_pipeline_runs_named_by_card(tmp_path):
    data = write_jsonl(tmp_path / "math.jsonl", [{"problem": f"Problem p{i:02d}: what is {i} + {i}?", "answer": str(2 * i),
                                                   "unique_id": f"test/p{i:02d}.json"} for i in range(20)])
    dirs = []
    for card, right in (("r1-distill-qwen-32b", 18), ("o1-mini", 5)):
        script = tmp_path / f"{card}.json"
        script.write_text(json.dumps({f"Problem p{i:02d}:": f"done</think> \\boxed{{{2 * i if i < right else -1}}}" for i in range(20)}))
        out = tmp_path / card
        assert main(["run", "--model", f"fake:{script}", "--card", card, "--tasks", "math500", "--data-file", f"math500={data}",
                     "--num-samples", "1", "--max-new-tokens", "64", "--output-dir", str(out), "--quiet"]) == 0
        dirs += [p for p in out.iterdir() if p.is_dir()]
    row = only(check(dirs), MATH)
    assert row["verdict"] == "not_comparable" and row["n"] == 20 and row["diff"] == pytest.approx(0.65)
    # 20 made-up problems named math500 are not MATH-500: a data reason beside the scripted engine's
    assert {r["code"] for r in row["reasons"]} == {"scripted", "data"}
    assert row["meaningless"] and any("fake backend" in c for c in row["caveats"])
    assert only(check(dirs, verdicts="indicative"), MATH)["indicative_verdict"] == "supported"


# ---- the paired interval ----------------------------------------------------------------------

@pytest.mark.parametrize("cells, expected", [((36, 12, 2, 0), (0.0569, 0.3404)), ((18, 12, 2, 18), (0.0562, 0.3290)),
                                              ((53, 0, 0, 1), (-0.0729, 0.0729))])
def test_newcombe_interval_matches_the_paper(cells, expected):
    # Newcombe 1998 (Stat Med 17:2635) worked examples, method 10, as reproduced in propint's tests.
    assert newcombe_paired_ci(*cells) == pytest.approx(expected, abs=1e-4)


def test_newcombe_interval_properties():
    lo, hi = newcombe_paired_ci(40, 10, 5, 45)
    assert lo < 0.05 < hi
    assert newcombe_paired_ci(40, 5, 10, 45) == pytest.approx((-hi, -lo))  # swapping a and b negates it
    lo, hi = newcombe_paired_ci(20, 0, 0, 0)  # all concordant: still an interval, not a point
    assert lo < -0.05 and hi > 0.05
    assert newcombe_paired_ci(0, 0, 0, 0) == (-1.0, 1.0)


def test_newcombe_interval_covers_about_95_percent():
    # Exact coverage: every 2x2 table of n = 30 pairs, weighted by its multinomial probability.
    n, probs = 30, (0.5, 0.15, 0.1, 0.25)
    true = probs[1] - probs[2]
    cover = 0.0
    for n11, n10, n01 in itertools.product(range(n + 1), repeat=3):
        n00 = n - n11 - n10 - n01
        if n00 < 0:
            continue
        lo, hi = newcombe_paired_ci(n11, n10, n01, n00)
        if lo <= true <= hi:
            coef = math.factorial(n) // (math.factorial(n11) * math.factorial(n10) * math.factorial(n01) * math.factorial(n00))
            cover += coef * probs[0] ** n11 * probs[1] ** n10 * probs[2] ** n01 * probs[3] ** n00
    assert 0.93 < cover < 0.985
