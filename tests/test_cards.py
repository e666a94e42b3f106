"""Model cards: every card validates, malformed cards fail with file, field and reason, and a card
yields the right generation defaults and protocol differences."""

from __future__ import annotations

import json
import os
import re
import shutil
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from harness.cards import settings as differences
from harness.cards.loader import cards_dir, find_card, list_cards, load_card, validate_all
from harness.cards.schema import Card
from harness.cards.settings import card_generation_defaults, protocol_differences
from harness.errors import ConfigError

CARDS = cards_dir()
CARD_FILES = sorted(CARDS.glob("*.yaml"))
REQUIRED = [
    "r1-distill-qwen-1.5b", "r1-distill-qwen-7b", "r1-distill-qwen-14b", "r1-distill-qwen-32b", "r1-distill-llama-8b",
    "r1-distill-llama-70b", "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-3b-instruct", "qwen2.5-7b-instruct",
    "qwen2.5-math-1.5b-instruct", "qwen2.5-math-7b-instruct", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b",
    "deepseek-v2-lite-chat", "deepseek-r1", "o1-1217", "o1-mini",
]
SHARED = Path(os.environ.get("HARNESS_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


# ---- the cards in the repository --------------------------------------------------------------

@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.name)
def test_every_card_validates(path):
    card = load_card(path)
    assert isinstance(card, Card)
    if not path.stem.startswith("_"):
        assert card.name == path.stem
        assert card.claims, "a card without claims checks nothing"


def test_all_required_cards_exist():
    stems = {p.stem for p in CARD_FILES if not p.stem.startswith("_")}
    assert len(stems) >= 20
    assert not set(REQUIRED) - stems


def test_list_and_validate_all():
    listed = list_cards()
    assert [c.name for c in listed] == sorted(c.name for c in listed)
    assert "_template" not in {c.name for c in listed}
    results = validate_all()
    assert {p.name for p, _ in results} == {p.name for p in CARD_FILES}
    assert all(err is None for _, err in results), [str(e) for _, e in results if e]


def test_hub_ids_unique_and_api_cards_priced():
    cards_ = list_cards()
    hub = [c.hub_id for c in cards_ if c.hub_id]
    assert len(hub) == len(set(hub))
    api = {c.name: c for c in cards_ if c.kind == "api"}
    assert set(api) >= {"deepseek-r1", "o1-1217", "o1-mini"}
    for card in api.values():
        assert card.api.prices.output_per_1m > 0 and card.api.prices.source


def _fields(model: type[BaseModel], seen: set) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for t in [field.annotation, *typing.get_args(field.annotation)] + [a for arg in typing.get_args(field.annotation) for a in typing.get_args(arg)]:
            if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
                seen.add(t)
                names |= _fields(t, seen)
    return names


def test_template_documents_every_field():
    text = (CARDS / "_template.yaml").read_text()
    missing = [f for f in _fields(Card, set()) if f"{f}:" not in text]
    assert not missing, f"_template.yaml lacks: {missing}"
    # every key line is preceded by a comment line (a field without its explanation is a bug)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*(- )?[A-Za-z_0-9]+:", line):
            assert lines[i - 1].strip().startswith("#"), f"line {i + 1} ({line.strip()}) has no comment above it"


# ---- malformed cards --------------------------------------------------------------------------

@pytest.fixture
def good_text():
    return (CARDS / "r1-distill-qwen-1.5b.yaml").read_text()


def _write(tmp_path, text, name="r1-distill-qwen-1.5b"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _error(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_card(path)
    return str(info.value)


def test_unknown_top_level_key(tmp_path, good_text):
    path = _write(tmp_path, good_text + "\nfavourite_colour: blue\n")
    msg = _error(path)
    assert str(path) in msg and "favourite_colour" in msg and "unknown key" in msg


def test_unknown_nested_key_suggests_the_right_one(tmp_path, good_text):
    path = _write(tmp_path, good_text.replace("    temperature: 0.6", "    temprature: 0.6"))
    msg = _error(path)
    assert f"{path}: protocol.defaults.temprature: unknown key; did you mean 'temperature'?" in msg


def test_wrong_type_names_file_field_and_reason(tmp_path, good_text):
    path = _write(tmp_path, good_text.replace("context_length: 131072", "context_length: lots"))
    msg = _error(path)
    assert msg.startswith(f"{path}: context_length: ") and "integer" in msg


def test_wrong_type_inside_a_list(tmp_path, good_text):
    path = _write(tmp_path, good_text.replace("  value: 28.9", "  value: high", 1))
    assert "claims[0].value" in _error(path)


def test_bad_yaml_names_line(tmp_path, good_text):
    path = _write(tmp_path, good_text.replace("kind: open-weights", "kind: [open-weights"))
    msg = _error(path)
    assert str(path) in msg and "line" in msg and "invalid YAML" in msg


def test_duplicate_key_is_an_error(tmp_path, good_text):
    path = _write(tmp_path, good_text + "\nlicense: Apache-2.0\n")
    assert "duplicate key 'license'" in _error(path)


def test_python_tags_are_refused_not_executed(tmp_path, good_text):
    marker = tmp_path / "executed"
    evil = good_text.replace("license: MIT", f"license: !!python/object/apply:os.system ['touch {marker}']")
    path = _write(tmp_path, evil)
    msg = _error(path)
    assert str(path) in msg and "python/object/apply" in msg
    assert not marker.exists()


def test_non_mapping_card(tmp_path):
    assert "must be a YAML mapping" in _error(_write(tmp_path, "- just\n- a list\n"))


def test_name_must_match_file(tmp_path, good_text):
    path = _write(tmp_path, good_text, name="other-name")
    assert "must equal the file name" in _error(path)


@pytest.mark.parametrize("old,new,needle", [
    ("revision: 0092dee1c3071f735313cbdbc000b73da19b78fc", "revision: 0092dee", "revision"),  # not a full sha
    ("  name: r1\n", "  name: r2\n", "unknown protocol 'r2'"),
    ("  value: 28.9\n  status: verified", "  value: null\n  status: verified", "value may be null only with status UNVERIFIED"),
    ("  value: 28.9", "  value: 289", "over 100"),
    ("  metric: pass@1\n  value: 28.9", "  metric: pass@one\n  value: 28.9", "claims[0].metric"),
    ("system_prompt_policy: none", "system_prompt_policy: fixed", "needs the system_prompt text"),
])
def test_schema_rules(tmp_path, good_text, old, new, needle):
    assert old in good_text
    assert needle in _error(_write(tmp_path, good_text.replace(old, new, 1)))


def test_unpinned_revision_needs_a_note(tmp_path, good_text):
    text = good_text.replace("revision: 0092dee1c3071f735313cbdbc000b73da19b78fc", "revision: null")
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("revision_note:", "  where config.json")))
    assert "revision_note" in _error(_write(tmp_path, text))


# ---- lookup ----------------------------------------------------------------------------------

def test_find_card_by_stem_hub_id_and_api_model():
    assert find_card("r1-distill-qwen-1.5b").hub_id == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert find_card("deepseek-ai/deepseek-r1-distill-qwen-1.5b").name == "r1-distill-qwen-1.5b"
    assert find_card("Qwen/Qwen3-8B").name == "qwen3-8b"
    assert find_card("deepseek-reasoner").name == "deepseek-r1"


def test_find_card_suggests_close_names():
    with pytest.raises(ConfigError) as info:
        find_card("r1-distil-qwen-1.5")
    assert "r1-distill-qwen-1.5b" in str(info.value) and "did you mean" in str(info.value)


def test_cards_dir_override(tmp_path, monkeypatch, capsys):
    shutil.copy(CARDS / "qwen3-8b.yaml", tmp_path / "qwen3-8b.yaml")
    (tmp_path / "broken.yaml").write_text("name: broken\n")
    monkeypatch.setenv("HARNESS_CARDS_DIR", str(tmp_path))
    assert cards_dir() == tmp_path
    results = dict(validate_all())
    assert results[tmp_path / "qwen3-8b.yaml"] is None
    assert "broken.yaml" in str(results[tmp_path / "broken.yaml"])
    # one bad card is one warning, not a failure of every command that lists cards (issue 24);
    # `harness cards validate` (validate_all) still reports it in full
    assert [c.name for c in list_cards()] == ["qwen3-8b"]
    assert "skipping model card" in capsys.readouterr().err
    monkeypatch.setenv("HARNESS_CARDS_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="HARNESS_CARDS_DIR"):
        list_cards()


# ---- what a card implies for a run ------------------------------------------------------------

def test_generation_defaults_r1():
    d = card_generation_defaults(find_card("r1-distill-qwen-1.5b"), "math500")
    assert d == {"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "top_k": 0, "max_new_tokens": 32768, "num_samples": 64}


def test_generation_defaults_per_task_override():
    card = find_card("qwen3-8b")
    assert card_generation_defaults(card, "aime24") == {"protocol": "qwen3-think", "temperature": 0.6, "top_p": 0.95,
                                                        "top_k": 20, "max_new_tokens": 38912, "num_samples": 64}
    assert card_generation_defaults(card, "gpqa_diamond")["num_samples"] == 10
    assert card_generation_defaults(card, "math500")["num_samples"] == 1  # unstated -> fallback


def test_generation_defaults_fall_back_within_context():
    d = card_generation_defaults(find_card("qwen2.5-1.5b-instruct"), "gsm8k")
    assert d == {"protocol": "qwen", **differences.FALLBACK_SETTINGS}
    m = card_generation_defaults(find_card("qwen2.5-math-7b-instruct"), "gsm8k")
    assert m["temperature"] == 0.0 and m["max_new_tokens"] == 2048 <= find_card("qwen2.5-math-7b-instruct").context_length


def test_differences_for_a_random_model_with_a_small_budget():
    card = find_card("r1-distill-qwen-1.5b")
    used = {"protocol": "r1", "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 8, "num_samples": 1,
            "dtype": "float32", "limit": 4, "n": 4, "n_total": 500}
    diffs = protocol_differences(card, "math500", used, random_weights=True, model_source="random:r1-distill-qwen-1.5b")
    text = "\n".join(diffs)
    assert "random weights: the model's parameters are random, not the published checkpoint" in diffs
    assert "max_new_tokens 8 instead of the card's 32768" in text and "smaller token budget" in text
    assert "1 sample per problem instead of the card's 64" in text
    assert "dtype float32 instead of the card's bfloat16" in text
    assert "--limit 4: 4 of 500 problems" in diffs
    assert "temperature" not in text and "protocol" not in text  # same as the card: not listed


def test_no_differences_when_run_the_cards_way():
    card = find_card("r1-distill-qwen-1.5b")
    used = {**card_generation_defaults(card, "aime24"), "dtype": "torch.bfloat16", "force_think": True,
            "revision": card.revision, "n": 30, "n_total": 30}
    assert protocol_differences(card, "aime24", used, random_weights=False, model_source=card.hub_id) == []
    snapshot = "/cache/hub/models--deepseek-ai--DeepSeek-R1-Distill-Qwen-1.5B/snapshots/0092dee"
    short = {**used, "dtype": "bf16", "revision": card.revision[:7]}
    assert protocol_differences(card, "aime24", short, random_weights=False, model_source=snapshot) == []
    other = protocol_differences(card, "aime24", {**used, "revision": "abcdef1"}, random_weights=False, model_source=card.hub_id)
    assert other == [f"revision abcdef1 instead of the card's pinned {card.revision}"]


def test_differences_other_model_quantised_greedy_and_system_prompt():
    card = find_card("r1-distill-qwen-7b")
    used = {"temperature": 0.0, "top_p": 1.0, "quantization": "Q4_K_M", "system_prompt": "You are helpful.",
            "force_think": False, "protocol": "plain", "max_new_tokens": 40000, "limit": 10}
    text = "\n".join(protocol_differences(card, "gsm8k", used, random_weights=False, model_source="someone/r1-7b-gguf"))
    for needle in ("model: someone/r1-7b-gguf is not the card's deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                   "temperature 0 (greedy) instead of the card's 0.6", "top_p 1 instead of the card's 0.95",
                   "quantised weights (Q4_K_M)", "a system prompt was used", "not forced to start with <think>",
                   "prompt protocol 'plain' instead of the card's 'r1'", "larger token budget",
                   "--limit 10: 10 problems, not the full benchmark"):
        assert needle in text


def test_unstated_settings_are_not_differences():
    card = find_card("qwen2.5-7b-instruct")  # the blog states no decoding settings
    used = {"temperature": 0.9, "top_p": 0.5, "max_new_tokens": 64, "num_samples": 1}
    assert protocol_differences(card, "gsm8k", used, random_weights=False, model_source="Qwen/Qwen2.5-7B-Instruct") == []


# ---- cards agree with the shared facts (skipped when ../shared is absent) ------------------------

needs_shared = pytest.mark.skipif(not (SHARED / "configs").is_dir(), reason="shared facts folder not present")


@needs_shared
@pytest.mark.parametrize("card", [c for c in list_cards() if c.architecture.config_file], ids=lambda c: c.name)
def test_architecture_matches_shared_config(card):
    cfg = json.loads((SHARED / "configs" / card.architecture.config_file).read_text())
    assert cfg["_hf_id"] == card.hub_id
    a = card.architecture
    assert (a.model_type, a.num_layers, a.hidden_size, a.vocab_size, a.max_position_embeddings) == (
        cfg["model_type"], cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"], cfg["max_position_embeddings"])
    assert (a.num_attention_heads, a.num_key_value_heads, a.intermediate_size) == (
        cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["intermediate_size"])
    assert a.config_status == cfg["_status"]


@needs_shared
def test_r1_distill_claims_match_published_table():
    pub = yaml.safe_load((SHARED / "claims" / "published.yaml").read_text())["r1_distill_table"]["rows"]
    columns = [("aime24", "pass@1"), ("aime24", "cons@64"), ("math500", "pass@1"), ("gpqa_diamond", "pass@1"),
               ("livecodebench", "pass@1"), ("codeforces", "rating")]
    for card in list_cards():
        if not card.name.startswith("r1-distill-"):
            continue
        row = pub[card.display_name]
        got = {(c.task, c.metric): c.value for c in card.claims if c.source.startswith("R1_README")}
        assert [got[col] for col in columns] == row, card.name


def test_every_stated_decoding_setting_is_compared_with_what_the_run_used():
    """A card may state any EvalSettings field; one the run neither applied nor compared (presence
    and repetition penalty, min_p and num_fewshot were dropped silently) would let a run that
    ignored the publisher's setting pass as the card's protocol."""
    from harness.cards.schema import EvalSettings

    base = find_card("r1-distill-qwen-1.5b")
    used = {**card_generation_defaults(base, "math500"), "dtype": "bfloat16", "force_think": True, "revision": base.revision,
            "min_p": 0.0, "presence_penalty": 0.0, "repetition_penalty": 1.0, "num_fewshot": 0}
    assert protocol_differences(base, "math500", used, random_weights=False, model_source=base.hub_id) == []
    stated = {"temperature": 0.9, "top_p": 0.5, "top_k": 7, "min_p": 0.05, "presence_penalty": 1.5, "repetition_penalty": 1.05,
              "max_new_tokens": 123, "num_samples": 99, "num_fewshot": 5}
    assert set(stated) == set(EvalSettings.model_fields), "a new card setting needs a comparison here and in protocol_differences"
    for key, value in stated.items():
        card = _stating(base, **{key: value})
        diffs = protocol_differences(card, "math500", used, random_weights=False, model_source=base.hub_id)
        assert any(key in d or ("shot" in d and key == "num_fewshot") or ("sample" in d and key == "num_samples") for d in diffs), (key, diffs)


def _stating(card, **settings):
    """`card` with its protocol defaults stating `settings` and no per-task overrides (cards are frozen)."""
    protocol = card.protocol.model_copy(update={"defaults": card.protocol.defaults.model_copy(update=settings), "per_task": {}})
    return card.model_copy(update={"protocol": protocol})


def test_a_run_lists_a_stated_penalty_it_did_not_apply(tmp_path, capsys, monkeypatch):
    from helpers import gsm8k_rows, run_cli, write_jsonl

    from harness.cards import loader as cards

    card = _stating(find_card("r1-distill-qwen-1.5b"), presence_penalty=1.5)
    monkeypatch.setattr(cards, "find_card", lambda name: card)
    data = write_jsonl(tmp_path / "g.jsonl", gsm8k_rows(1))
    code, out, err = run_cli(["run", "--model", "random:tiny", "--card", "r1-distill-qwen-1.5b", "--tasks", "gsm8k", "--data-file",
                              f"gsm8k={data}", "--max-new-tokens", "2", "--output-dir", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 0, err
    run = json.loads(next((tmp_path / "out").rglob("run.json")).read_text())
    assert "presence_penalty 0 instead of the card's 1.5" in run["protocol_differences"]["gsm8k"]
    assert not any("shot" in d or "min_p" in d for d in run["protocol_differences"]["gsm8k"])
