"""Comparability is decided before any verdict (harness/claims/comparability.py): each material
condition alone makes a claim not_comparable with its reason; all conditions met give a real
verdict; a different dtype or quantisation is a caveat, not a reason; --verdicts indicative keeps
the statistical verdict beside not_comparable and never in its place."""

from __future__ import annotations

import json

import pytest

from harness.cards.loader import find_card
from harness.claims.comparability import MAX_TRUNCATION, pair_reasons, run_reasons, samples_needed
from harness.claims.verdicts import claims_for_run, verdict_label

CARD = "r1-distill-qwen-1.5b"  # protocol r1, temperature 0.6, top-p 0.95, 32,768 tokens, bfloat16
GOOD_SETTINGS = {"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768, "num_samples": 4}
MODEL = {"name_or_path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "backend": "transformers", "dtype": "bfloat16",
         "random_weights": False, "quantization": None}


def _tasks(k: int = 4, truncation: float = 0.0, value: float = 0.30, **settings) -> dict:
    # 500 problems measured far below the claimed 83.9%: the statistical verdict is "below"
    metrics = {"accuracy": {"value": value, "ci95": [value - 0.04, value + 0.04], "method": "cluster_wilson", "n": 500}}
    if k > 1:
        metrics[f"maj@{k}"] = {"value": value, "ci95": [value - 0.04, value + 0.04], "method": "cluster_wilson", "n": 500}
    return {"math500": {"n": 500, "k": k, "truncation_rate": truncation, "metrics": metrics,
                        "settings": {**GOOD_SETTINGS, "num_samples": k, **settings}}}


def _claim(tasks: dict, model: dict | None = None, mode: str = "strict", card=None) -> dict:
    entries = claims_for_run(card or find_card(CARD), tasks, differences_by_task={}, model=model or MODEL, mode=mode)
    (entry,) = [e for e in entries if e["published_metric"] == "pass@1"]
    return entry


def test_all_conditions_met_gives_a_real_verdict():
    entry = _claim(_tasks())
    assert entry["verdict"] == "below" and entry["comparable"] and entry["reasons"] == [] and not entry["indicative"]


@pytest.mark.parametrize("tasks, model, code", [
    (_tasks(), {**MODEL, "random_weights": True, "name_or_path": "random:r1-distill-qwen-1.5b"}, "random_weights"),
    (_tasks(), {**MODEL, "backend": "fake"}, "scripted"),
    (_tasks(truncation=MAX_TRUNCATION + 0.01), MODEL, "truncation"),
    (_tasks(truncation=0.01, max_new_tokens=4096), MODEL, "truncation"),  # smaller budget and some traces cut
    (_tasks(protocol="qwen"), MODEL, "protocol"),
    (_tasks(temperature=0.0), MODEL, "sampling"),  # greedy vs the claim's 0.6
    (_tasks(top_p=1.0), MODEL, "sampling"),
])
def test_each_condition_alone_makes_the_claim_not_comparable(tasks, model, code):
    entry = _claim(tasks, model)
    assert entry["verdict"] == "not_comparable" and not entry["comparable"]
    assert [r["code"] for r in entry["reasons"]] == [code]
    assert entry["reasons"][0]["detail"] and entry["note"].startswith("not comparable:")
    assert entry["measured"] == 0.30 and entry["ci95"] == pytest.approx([0.26, 0.34]) and entry["indicative"]  # kept, labelled
    assert entry["indicative_verdict"] is None


def test_a_smaller_budget_with_nothing_cut_is_comparable():
    assert _claim(_tasks(truncation=0.0, max_new_tokens=4096))["verdict"] == "below"


def test_truncation_threshold_is_inclusive():
    assert _claim(_tasks(truncation=MAX_TRUNCATION))["verdict"] == "below"


def test_too_few_samples_for_the_metric():
    card = find_card(CARD)
    cons = [e for e in claims_for_run(card, {"aime24": _tasks(k=4)["math500"]}, differences_by_task={}, model=MODEL)
            if e["published_metric"] == "cons@64"]
    assert cons == []  # maj@64 is not even computed from 4 samples
    tasks = {"aime24": _tasks(k=4)["math500"]}
    tasks["aime24"]["metrics"]["maj@64"] = tasks["aime24"]["metrics"]["maj@4"]  # a mislabelled metric still cannot pass
    (entry,) = [e for e in claims_for_run(card, tasks, differences_by_task={}, model=MODEL) if e["published_metric"] == "cons@64"]
    assert entry["verdict"] == "not_comparable" and [r["code"] for r in entry["reasons"]] == ["samples"]
    # pass@1 averaged over 4 samples where the card used 64 is fine
    (pass1,) = [e for e in claims_for_run(card, tasks, differences_by_task={}, model=MODEL) if e["published_metric"] == "pass@1"]
    assert pass1["verdict"] == "consistent" and pass1["comparable"]  # 30% measured, 28.9% claimed
    assert (samples_needed("maj@64"), samples_needed("accuracy"), samples_needed("pass@1")) == (64, 1, 1)


@pytest.mark.parametrize("model, words", [({**MODEL, "dtype": "float16"}, "dtype float16"),
                                          ({**MODEL, "quantization": "Q4_K_M"}, "quantised")])
def test_dtype_and_quantisation_are_caveats_not_reasons(model, words):
    entry = _claim(_tasks(), model)
    assert entry["verdict"] == "below" and entry["comparable"]
    assert any(words in c for c in entry["caveats"]) and "caveat" in entry["note"]


def test_a_card_may_mark_protocol_and_sampling_immaterial():
    card = find_card(CARD)
    relaxed = card.model_copy(update={"protocol": card.protocol.model_copy(update={"immaterial": ["protocol", "sampling"]})})
    assert _claim(_tasks(protocol="qwen", temperature=0.0), card=relaxed)["verdict"] == "below"
    assert _claim(_tasks(protocol="qwen", temperature=0.0), card=card)["verdict"] == "not_comparable"


def test_several_failed_conditions_are_all_listed():
    model = {**MODEL, "random_weights": True}
    entry = _claim(_tasks(truncation=1.0, max_new_tokens=16, temperature=0.0), model)
    assert [r["code"] for r in entry["reasons"]] == ["random_weights", "truncation", "sampling"]


def test_indicative_mode_keeps_the_statistical_verdict_beside_not_comparable():
    entry = _claim(_tasks(temperature=0.0), mode="indicative")
    assert entry["verdict"] == "not_comparable" and entry["indicative_verdict"] == "below"
    assert verdict_label(entry) == "not_comparable (indicative: below)" and "indicative only" in entry["note"]
    assert _claim(_tasks(), mode="indicative")["indicative_verdict"] is None  # comparable: the verdict itself


def test_unpublished_claim_stays_inconclusive_but_lists_reasons():
    card = find_card(CARD)
    tasks = {"gsm8k": _tasks()["math500"]}
    (entry,) = claims_for_run(card, tasks, differences_by_task={}, model={**MODEL, "random_weights": True})
    assert entry["verdict"] == "inconclusive" and entry["claimed"] is None and entry["reasons"]


def test_pair_reasons_for_harness_compare():
    run = {"model": MODEL, "tasks": _tasks()}
    assert pair_reasons(run, run, "math500")[0] == []
    other = {"model": MODEL, "tasks": _tasks(temperature=0.0)}
    assert [r["code"] for r in pair_reasons(run, other, "math500")[0]] == ["sampling"]
    cut = {"model": MODEL, "tasks": _tasks(truncation=0.5)}
    reasons = pair_reasons(run, cut, "math500")[0]
    assert [r["code"] for r in reasons] == ["truncation"] and reasons[0]["detail"].startswith("B:")


def test_run_reasons_without_a_claim_checks_only_the_run():
    reasons, caveats = run_reasons(_tasks(temperature=0.0)["math500"], MODEL)
    assert reasons == [] and caveats == []


def test_the_card_run_from_the_issue_is_not_comparable_everywhere(tmp_path, capsys, shared):
    """random:tiny, 4 problems, 16 tokens: not_comparable with reasons in run.json, the console,
    report.md, report.html and `harness claims`; --verdicts indicative marks the verdict everywhere."""
    from harness.cli import main

    data = tmp_path / "m.jsonl"
    data.write_text("".join(line + "\n" for line in (shared / "data" / "math500" / "test.jsonl").read_text().splitlines()[:4]))
    for mode in ("strict", "indicative"):
        out = tmp_path / mode
        assert main(["run", "--card", CARD, "--model", "random:tiny", "--tasks", "math500", "--data-file", f"math500={data}",
                     "--limit", "4", "--num-samples", "2", "--max-new-tokens", "16", "--output-dir", str(out),
                     "--verdicts", mode]) == 0
        console = capsys.readouterr().out
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
        claims = json.loads((run_dir / "run.json").read_text())["claims"]
        assert claims and all(c["verdict"] == "not_comparable" and c["reasons"] for c in claims)
        codes = {r["code"] for c in claims for r in c["reasons"]}
        assert {"random_weights", "truncation"} <= codes
        assert "not_comparable" in console and "not comparable:" in console
        md, html = (run_dir / "report.md").read_text(), None
        assert "not_comparable" in md and "Not comparable" in md
        assert main(["report", str(run_dir)]) == 0
        html = (run_dir / "report.html").read_text()
        assert "not_comparable" in html and "Not comparable" in html
        if mode == "indicative":
            assert "(indicative: " in console and "(indicative: " in md and "Indicative verdicts" in md
            assert "(indicative: " in html and "Indicative verdicts" in html
        else:
            assert "(indicative: " not in console + md + html
    capsys.readouterr()


@pytest.mark.parametrize("key, run_value, card_value", [("top_k", 0, 20), ("min_p", 0.0, 0.05), ("presence_penalty", 0.0, 1.5),
                                                        ("repetition_penalty", 1.0, 1.05)])
def test_every_stated_decoding_number_decides_comparability(key, run_value, card_value):
    """Only temperature and top_p were compared: a run without the card's top-k, min-p or penalty
    got a verdict as if it had decoded the claim's way."""
    task = {"truncation_rate": 0.0, "k": 1, "settings": {"temperature": 0.6, "top_p": 0.95, key: run_value}}
    want = {"temperature": 0.6, "top_p": 0.95, key: card_value}
    reasons, _ = run_reasons(task, {"backend": "transformers"}, want=want, metric="accuracy")
    assert [r["code"] for r in reasons] == ["sampling"] and key in reasons[0]["detail"]
    same, _ = run_reasons(task, {"backend": "transformers"}, want={**want, key: run_value}, metric="accuracy")
    assert same == []
