"""A verdict names the model and the data it measured: model identity (harness/cards/identity.py),
data identity (harness/tasks/official.py), --sample, and the one list of differences
(harness/claims/comparability.py) that claims, comparative claims and `harness compare` share."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.cards.identity import card_fingerprint, model_identity, names_card
from harness.cards.loader import find_card
from harness.claims.comparability import pair_differences, run_reasons
from harness.claims.verdicts import claims_for_run
from harness.config import make_config
from harness.core.fingerprint import from_gguf_metadata, from_hf_config
from harness.errors import ConfigError
from harness.planning.plan import make_plan
from harness.stats import cluster_wilson, finite_population_interval
from harness.tasks.official import data_identity, item_hash, official_set, set_hash

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "harness" / "data" / "configs"
SHARED = ROOT.parent / "shared" / "data"
MATH500 = SHARED / "math500" / "test.jsonl"
R1 = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
SIBLING = "Qwen/Qwen2.5-Math-1.5B-Instruct"


@pytest.fixture(scope="module")
def card():
    return find_card("r1-distill-qwen-1.5b")


def _config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


# ---- model identity ---------------------------------------------------------------------------

@pytest.mark.parametrize("served, reported, status", [
    (R1, [R1], "asserted"),                      # the card's model, as the server says
    ("DeepSeek-R1-Distill-Qwen-1.5B", [], "asserted"),  # the id's last part
    ("deepseek-r1-distill-qwen-1.5b-Q4_K_M", [], "asserted"),  # a quantisation suffix
    ("gpt-4o-mini", ["gpt-4o-mini"], "mismatch"),  # another model
    (SIBLING, [SIBLING], "mismatch"),            # a sibling checkpoint of the same base
    (R1, ["gpt-4o-mini"], "mismatch"),           # named like the card's model, the server says otherwise
    ("DeepSeek-R1-Distill-Qwen-7B", [], "mismatch"),  # the same family, another size
])
def test_a_served_model_is_judged_by_its_names(card, served, reported, status):
    ident = model_identity(card, {"name_or_path": served, "backend": "openai", "reported_models": reported})
    assert ident.status == status, ident
    if status == "asserted":
        assert any("asserted by the server, not verified" in c for c in ident.caveats)


def test_names_card_does_not_accept_a_longer_name(card):
    assert names_card(R1.lower(), card) and not names_card(R1 + "-Abliterated", card) and not names_card("Qwen2.5-Math-1.5B", card)


def test_hub_id_and_pinned_revision(card):
    assert model_identity(card, {"name_or_path": R1, "backend": "transformers", "revision": card.revision}).status == "verified"
    assert model_identity(card, {"name_or_path": R1, "backend": "transformers", "revision": card.revision[:7]}).status == "verified"
    moved = model_identity(card, {"name_or_path": R1, "backend": "transformers", "revision": "f" * 40})
    assert moved.status == "mismatch" and "pinned" in moved.problems[0]
    unknown = model_identity(card, {"name_or_path": R1, "backend": "transformers"})
    assert unknown.ok and "no revision" in unknown.caveats[0]
    snap = f"/cache/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-1.5B/snapshots/{card.revision}"
    assert model_identity(card, {"name_or_path": snap, "backend": "transformers"}).status == "verified"
    assert model_identity(card, {"name_or_path": SIBLING, "backend": "transformers"}).status == "mismatch"


def test_a_local_folder_is_identified_by_its_fingerprint(card):
    own = {"name_or_path": "/models/r1", "backend": "transformers", "num_parameters": card.parameters.exact,
           "fingerprint": from_hf_config(_config("r1-distill-qwen-1.5b"))}
    ident = model_identity(card, own)
    assert ident.status == "verified" and "another fine-tune" in ident.caveats[0]
    sibling = {"name_or_path": "/models/sib", "backend": "transformers", "num_parameters": 1_543_714_304,
               "fingerprint": from_hf_config(_config("qwen2.5-math-1.5b-instruct"))}
    bad = model_identity(card, sibling)
    assert bad.status == "mismatch" and "eos_token_id" in bad.problems[0] and "parameters" in bad.problems[1]
    blank = model_identity(card, {"name_or_path": "/models/x", "backend": "vllm"})
    assert blank.status == "mismatch" and "no fingerprint" in blank.problems[0]


def test_a_quantised_gguf_of_the_card_model_keeps_its_verdict_with_a_caveat(card):
    cfg = _config("r1-distill-qwen-1.5b")
    meta = {"general.architecture": "qwen2", "qwen2.block_count": "28", "qwen2.embedding_length": "1536",
            "qwen2.feed_forward_length": "8960", "qwen2.attention.head_count": "12", "qwen2.attention.head_count_kv": "2",
            "qwen2.context_length": "131072", "tokenizer.ggml.bos_token_id": str(cfg["bos_token_id"]),
            "tokenizer.ggml.eos_token_id": str(cfg["eos_token_id"])}
    model = {"name_or_path": "/m/r1-q4.gguf", "backend": "llamacpp", "quantization": "Q4_K_M", "num_parameters": 1_777_088_000,
             "fingerprint": from_gguf_metadata(meta, 151936)}
    assert card_fingerprint(card)["eos_token_id"] == cfg["eos_token_id"]
    reasons, caveats = run_reasons({"settings": {}}, model, want={}, card=card, name="math500")
    assert reasons == [] and any("quantised" in c for c in caveats) and any("fingerprint" in c for c in caveats)
    model["fingerprint"] = {**model["fingerprint"], "num_layers": 24}
    reasons, _ = run_reasons({"settings": {}}, model, want={}, card=card, name="math500")
    assert [r["code"] for r in reasons] == ["model"]


def _task(data: dict | None = None) -> dict:
    return {"n": 500, "k": 1, "truncation_rate": 0.0, "metrics": {"accuracy": {"value": 0.84, "ci95": [0.80, 0.87]}},
            "settings": {"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768, "num_samples": 64},
            **({"data": data} if data else {})}


def test_claims_for_run_refuses_another_model_and_keeps_the_served_caveat(card):
    official = {"selection": "official", "n": 500, "sha256": "x", "how": "all", "detail": "the official set"}
    other = claims_for_run(card, {"math500": _task(official)}, differences_by_task={},
                           model={"name_or_path": "gpt-4o-mini", "backend": "openai", "reported_models": ["gpt-4o-mini"]})
    (entry,) = [c for c in other if c["task"] == "math500"]
    assert entry["verdict"] == "not_comparable" and [r["code"] for r in entry["reasons"]] == ["model"]
    same = claims_for_run(card, {"math500": _task(official)}, differences_by_task={},
                          model={"name_or_path": R1, "backend": "openai", "reported_models": [R1]})
    (entry,) = [c for c in same if c["task"] == "math500"]
    assert entry["verdict"] in ("consistent", "above", "below", "inconclusive") and "not verified" in entry["note"]


# ---- data identity ----------------------------------------------------------------------------

def _pairs(path: Path) -> list[tuple[str, str]]:
    from harness.tasks.math500 import Math500

    return [(it.question, it.target) for it in Math500().load(path)]


def test_set_hash_is_order_independent_and_normalised():
    a = [item_hash("What is  1+1?", "2"), item_hash("x", "y")]
    assert set_hash(a) == set_hash(a[::-1])
    assert item_hash("What is 1+1? ", "2") == item_hash("What is\n1+1?", " 2")  # white space is not content
    assert item_hash("What is 1+1?", "2") != item_hash("What is 1+1?", "3")


@pytest.mark.skipif(not MATH500.is_file(), reason="../shared/data/math500 is not on this machine")
def test_official_set_in_another_order_is_still_official(tmp_path):
    rows = [json.loads(line) for line in MATH500.read_text(encoding="utf-8").splitlines()]
    random.Random(1).shuffle(rows)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rec = data_identity("math500", _pairs(shuffled))
    assert rec["selection"] == "official" and rec["sha256"] == official_set("math500").sha256
    picked = _pairs(MATH500)[100:175]  # a hand-picked 75
    rec = data_identity("math500", picked, how="data file picked.jsonl")
    assert rec["selection"] == "subset" and rec["detail"].startswith("75 of 500 problems")
    edited = [(q + " (edited)", t) if i == 3 else (q, t) for i, (q, t) in enumerate(_pairs(MATH500))]
    assert data_identity("math500", edited)["selection"] == "other"


def test_data_not_in_the_official_set_is_other_and_unknown_tasks_are_unknown():
    rec = data_identity("math500", [(f"Problem {i}", str(i)) for i in range(500)])
    assert rec["selection"] == "other" and "500 of the 500 problems are not in the official math500 set" in rec["detail"]
    assert data_identity("aime24", [("q", "1")])["selection"] == "unknown"
    assert data_identity("aime24", [("q", "1")], how="--limit 1: the first 1 rows")["selection"] == "subset"  # first rows, any task


def test_reasons_for_data_and_subsets():
    codes = lambda data: [r["code"] for r in run_reasons(_task(data), {}, want={}, card=find_card("r1-distill-qwen-1.5b"), name="math500")[0]]  # noqa: E731
    assert codes({"selection": "other", "n": 500, "sha256": "x", "how": "all", "detail": "not it"}) == ["data"]
    assert codes({"selection": "subset", "n": 40, "sha256": "x", "how": "--limit 40", "detail": "40 of 500 problems"}) == ["subset"]
    assert codes({"selection": "sample", "n": 100, "sha256": "x", "how": "--sample 100", "detail": "100 of 500"}) == []
    # a run.json from before task `data` existed: --limit below the benchmark's size is still a subset
    old = _task()
    old["settings"].update(limit=40, n=40, n_total=500)
    assert [r["code"] for r in run_reasons(old, {}, want={}, card=find_card("r1-distill-qwen-1.5b"), name="math500")[0]] == ["subset"]


@pytest.mark.skipif(not MATH500.is_file(), reason="../shared/data/math500 is not on this machine")
def test_plan_limit_sample_and_narrowing_options():
    base = {"model": "random:tiny", "tasks": ("math500",), "data_files": {"math500": str(MATH500)}}
    full = make_plan(make_config(**base)).tasks["math500"]
    assert full.data["selection"] == "official" and full.settings["n_total"] == 500
    first = make_plan(make_config(**base, limit=40)).tasks["math500"]
    assert first.data["selection"] == "subset" and "--limit 40" in first.data["how"] and len(first.items) == 40
    s1 = make_plan(make_config(**base, sample=100, seed=7)).tasks["math500"]
    s2 = make_plan(make_config(**base, sample=100, seed=7)).tasks["math500"]
    s3 = make_plan(make_config(**base, sample=100, seed=8)).tasks["math500"]
    assert s1.data["selection"] == "sample" and s1.data["seed"] == 7 and s1.settings["sample_seed"] == 7
    assert [i.id for i in s1.items] == [i.id for i in s2.items] != [i.id for i in s3.items]
    assert [i.id for i in s1.items][:5] != [i.id for i in full.items][:5]  # not the first rows
    with pytest.raises(ConfigError, match="--limit and --sample"):
        make_config(**base, limit=40, sample=100)


def test_a_narrowing_task_option_is_a_subset(tmp_path):
    rows = [{"question": f"{i}+{i}=?", "answer": str(2 * i)} for i in range(6)]
    f = tmp_path / "c.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = make_plan(make_config(model="random:tiny", tasks=("cmath",), data_files={"cmath": str(f)}, task_options={"cmath": {"file": "test"}}))
    assert plan.tasks["cmath"].data["selection"] == "subset" and "file=test" in plan.tasks["cmath"].data["detail"]


# ---- a seeded sample's interval -----------------------------------------------------------------

def test_a_seeded_sample_interval_widens_like_one_over_root_n_and_its_full_set_part_vanishes():
    big_n, p = 500, 0.8
    full = cluster_wilson([1.0] * int(p * big_n) + [0.0] * int((1 - p) * big_n))["ci95"]
    widths = []
    for n in (50, 100, 250, 500):
        ci = cluster_wilson([1.0] * int(p * n) + [0.0] * (n - int(p * n)))["ci95"]
        widths.append(ci[1] - ci[0])
        fpc = finite_population_interval(p, ci, n=n, population=big_n)
        assert fpc[0] >= ci[0] - 1e-12 and fpc[1] <= ci[1] + 1e-12  # never wider than the plain interval
        if n == big_n:
            assert fpc == (p, p)  # the whole set measured: nothing left to sample
    # the verdict's interval on n problems is about sqrt(N/n) times the full run's (it also carries the full set's own error)
    assert widths[0] / (full[1] - full[0]) == pytest.approx((500 / 50) ** 0.5, rel=0.15)
    assert widths == sorted(widths, reverse=True)


# ---- one list of differences between two runs ---------------------------------------------------

def _run(settings: dict, rate: float = 0.0, data: dict | None = None) -> dict:
    return {"model": {"name_or_path": "m", "backend": "transformers", "dtype": "bfloat16"},
            "tasks": {"math500": {"n": 10, "k": 1, "truncation_rate": rate, "settings": settings, **({"data": data} if data else {})}}}


def test_pair_differences_cover_every_decoding_setting_and_the_budget():
    a = _run({"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "top_k": 0, "max_new_tokens": 32768})
    b = _run({"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "top_k": 1, "max_new_tokens": 100}, rate=0.3)
    diffs = pair_differences(a, b, "math500")
    material = {d.code for d in diffs if d.material}
    assert {"sampling", "budget"} <= material and any("top_k" in d.detail for d in diffs)
    same_budget_uncut = pair_differences(_run({"max_new_tokens": 512}), _run({"max_new_tokens": 1024}), "math500")
    assert [(d.code, d.material) for d in same_budget_uncut] == [("budget", False)]
    other = {"selection": "other", "n": 10, "sha256": "a", "how": "all", "detail": "not it"}
    official = {"selection": "official", "n": 10, "sha256": "b", "how": "all", "detail": "it"}
    assert [d.code for d in pair_differences(_run({}, data=other), _run({}, data=official), "math500") if d.material] == ["data"]


# ---- a card's note that matters is protocol ----------------------------------------------------

def test_gpqa_scored_with_another_prompt_refuses_a_boxed_answer_run(card):
    task = {"n": 198, "k": 64, "truncation_rate": 0.0, "metrics": {"accuracy": {"value": 0.34, "ci95": [0.30, 0.38]}},
            "settings": {"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 32768, "num_samples": 64}}
    model = {"name_or_path": R1, "backend": "openai", "reported_models": [R1]}
    (entry,) = [c for c in claims_for_run(card, {"gpqa_diamond": task}, differences_by_task={}, model=model) if c["task"] == "gpqa_diamond"]
    assert entry["verdict"] == "not_comparable" and [r["code"] for r in entry["reasons"]] == ["protocol"]
    assert "simple-evals" in entry["reasons"][0]["detail"]
    # the same run on MATH-500, where the card's protocol is r1, keeps its verdict
    (m,) = [c for c in claims_for_run(card, {"math500": {**task, "n": 500}}, differences_by_task={}, model=model) if c["task"] == "math500"]
    assert m["verdict"] != "not_comparable"


# ---- dated prices and aliases -----------------------------------------------------------------

def test_every_api_price_is_dated_and_an_alias_that_moved_warns():
    from harness.cards.loader import list_cards

    for c in list_cards():
        if c.api is not None:
            assert c.api.prices.as_of and c.api.prices.source, c.name
    r1 = find_card("deepseek-r1")
    ident = model_identity(r1, {"name_or_path": "deepseek-reasoner", "backend": "openai", "reported_models": ["deepseek-reasoner"]})
    assert ident.status == "asserted" and any("is an alias" in c and "DeepSeek-R1-0528" in c for c in ident.caveats)
    pinned = model_identity(find_card("o1-1217"), {"name_or_path": "o1-2024-12-17", "backend": "openai"})
    assert pinned.status == "asserted" and not any("alias" in c for c in pinned.caveats)


def test_a_price_without_a_date_is_refused(tmp_path):
    from harness.cards.loader import load_card

    text = (ROOT / "model_cards" / "o1-mini.yaml").read_text()
    bad = tmp_path / "o1-mini.yaml"
    bad.write_text(text.replace("as_of: 'undated: stored copy", "as_of: 'sometime, stored copy", 1))
    with pytest.raises(ConfigError, match="as_of"):
        load_card(bad)


# ---- comparative claims --------------------------------------------------------------------------

def test_a_run_of_another_model_tagged_with_a_card_gets_no_comparative_verdict(tmp_path):
    from test_claims import BAD, GOOD, MATH, make_run, only

    from harness.claims.comparative import check

    good = make_run(tmp_path, "a", GOOD, model="gpt-4o-mini", backend="openai", card="r1-distill-qwen-32b")
    doc = check([good, make_run(tmp_path, "b", BAD, model="o1-mini-2024-09-12", backend="openai")])
    row = only(doc, MATH)
    assert row["verdict"] == "not_comparable" and "model" in {r["code"] for r in row["reasons"]}
    assert any("gpt-4o-mini" in r["detail"] for r in row["reasons"])


def test_poisson_lower_matches_scipy_and_edges_are_covered():
    stats = pytest.importorskip("scipy.stats")
    from harness.core.poisson import poisson_lower
    from harness.stats import mean_ci

    for x in (0.4, 1, 2, 3, 3.7, 10):
        assert poisson_lower(x) == pytest.approx(stats.gamma.ppf(0.025, x), rel=1e-6)
    # the cell: n = 10, p = 0.0144 covered only 0.865 before the edge bound
    n, p = 10, 0.0144
    cov = sum(stats.binom.pmf(x, n, p) for x in range(n + 1) if mean_ci([[1]] * x + [[0]] * (n - x))[1][0] <= p)
    assert cov >= 0.93
