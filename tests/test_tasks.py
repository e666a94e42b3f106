"""Every built-in task parses its upstream row format; targets, ids, shuffles and generated problems
are checked against values worked out by hand or recomputed independently."""

from __future__ import annotations

import json
import os
import random
import re
from fractions import Fraction
from pathlib import Path

import pytest

from harness import registry
from harness.errors import ConfigError, DataError
from harness.tasks.base import Item, Task

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
SHARED = Path(os.environ.get("HARNESS_SHARED") or Path(__file__).parents[1] / ".." / "shared")
TASKS = sorted(registry.builtin_tasks())


def make(name: str, **options) -> Task:
    return registry.get("tasks", name).load()(**options)


def load_fixture(name: str, **options) -> list[Item]:
    return make(name, **options).load(FIXTURES / f"{name}.jsonl")


def shared_file(name: str) -> Path:
    path = SHARED / "data" / name / "test.jsonl"
    if not path.exists():
        pytest.skip(f"shared data {path} is absent")
    return path


# ---- every task -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", TASKS)
def test_metadata_and_fixture(name):
    task = make(name)
    assert task.name == name
    assert task.answer_type in ("number", "math", "choice")
    assert task.title and task.license
    assert (FIXTURES / f"{name}.jsonl").exists()
    items = load_fixture(name)
    assert 2 <= len(items) <= 5
    for item in items:
        assert item.id and item.question and item.target
        shown = task.format_question(item)
        assert item.question in shown
        if task.answer_type == "choice":
            assert re.fullmatch(r"[A-J]", item.target)
            assert len(item.choices) >= 3
            assert f"\n\n{item.target}) " in shown or f"\n{item.target}) " in shown
        else:
            assert shown == item.question
    source = task.describe()
    assert (task.dataset or "generated locally") in source
    if task.dataset:
        assert (task.split in source) or (task.data_files and task.data_files in source)


@pytest.mark.parametrize("name", TASKS)
def test_limit_and_unknown_option(name):
    assert len(make(name).load(FIXTURES / f"{name}.jsonl", limit=1)) == 1
    with pytest.raises(ConfigError, match="unknown option"):
        make(name, no_such_option=1)


@pytest.mark.parametrize("name", [n for n in TASKS if n != "synthetic"])
def test_hub_rows_and_data_file_give_the_same_items(name, monkeypatch):
    """--data-file reads the upstream field names, so the Hub's rows (faked here) parse identically."""
    rows = [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    calls = []

    def fake_hub(dataset, config, split, data_files=None, *, gated=False, task=""):
        calls.append((dataset, config, split, data_files))
        if name == "ceval":  # one config per subject; Hub rows carry no subject field
            return [{k: v for k, v in r.items() if k != "subject"} for r in rows if r["subject"] == config]
        return rows

    import harness.tasks.base
    import harness.tasks.ceval

    monkeypatch.setattr(harness.tasks.base, "load_hub_dataset", fake_hub)
    monkeypatch.setattr(harness.tasks.ceval, "load_hub_dataset", fake_hub)
    options = {"subject": "high_school_mathematics,logic"} if name == "ceval" else {}
    task = make(name, **options)
    from_hub = task.load()
    assert calls and calls[0][0] == task.dataset and calls[0][2] == task.split
    assert calls[0][1] in (task.config, "high_school_mathematics")
    assert [(i.id, i.question, i.target, i.choices) for i in from_hub] == \
        [(i.id, i.question, i.target, i.choices) for i in load_fixture(name, **options)]


# ---- per task targets -------------------------------------------------------------------------
def test_gsm8k_targets():
    items = load_fixture("gsm8k")
    assert [i.target for i in items] == ["17", "14400", "15", "0"]
    assert [i.id for i in items] == ["0", "1", "2", "3"]
    assert "####" not in items[1].meta["solution"]


def test_gsm8k_without_final_line_is_a_data_error(tmp_path):
    bad = tmp_path / "g.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="####"):
        make("gsm8k").load(bad)


def test_gsm8k_missing_field_names_the_line(tmp_path):
    bad = tmp_path / "g.jsonl"
    bad.write_text(json.dumps({"question": "q"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"g\.jsonl:1.*answer"):
        make("gsm8k").load(bad)


def test_math500_fields():
    a, b, c = load_fixture("math500")
    assert (a.id, a.target, a.meta["level"], a.meta["subject"]) == ("test/prealgebra/9001.json", "\\frac{5}{6}", 1, "Prealgebra")
    assert b.target == "3"
    assert c.id == "2" and c.target == "[2, \\infty)" and "level" not in c.meta
    assert make("math500").levels_field == "level"


def test_aime_accepts_both_spellings():
    a24 = load_fixture("aime24")
    assert [(i.id, i.target) for i in a24] == [("60", "24"), ("61", "9"), ("62", "0")]
    a25 = load_fixture("aime25")
    assert [(i.id, i.target) for i in a25] == [("0", "55"), ("1", "99"), ("2025-II-3", "8")]
    assert a25[2].question.startswith("How many primes")


def test_aime_row_without_question_is_a_data_error(tmp_path):
    bad = tmp_path / "a.jsonl"
    bad.write_text(json.dumps({"answer": "5"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="problem, question"):
        make("aime25").load(bad)


def test_arc_numeric_labels_map_to_letters():
    items = load_fixture("arc_challenge")
    assert [i.target for i in items] == ["B", "A", "C", "B"]
    assert items[1].choices == ("energy", "soil", "water", "wind")
    assert len(items[2].choices) == 5 and "E) uranium" in make("arc_challenge").format_question(items[2])
    assert items[0].id == "Toy_1"


def test_arc_bad_answer_key(tmp_path):
    row = {"id": "x", "question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}
    bad = tmp_path / "arc.jsonl"
    bad.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="answerKey"):
        make("arc_challenge").load(bad)


def test_cmath_fields():
    items = load_fixture("cmath")
    assert [i.target for i in items] == ["9", "0.9", "3/8"]
    assert items[1].meta == {"grade": 4, "reasoning_step": 1, "num_digits": 2}
    task = make("cmath")
    assert task.levels_field == "grade" and task.data_files == "cmath_dev.jsonl"
    assert make("cmath", file="test").data_files == "cmath_test.jsonl"
    with pytest.raises(ConfigError):
        make("cmath", file="train")


def test_ceval_subjects_ids_and_categories():
    items = load_fixture("ceval")
    assert [i.id for i in items] == ["high_school_mathematics/0", "high_school_mathematics/1", "logic/0"]
    assert [i.target for i in items] == ["B", "C", "B"]
    assert items[1].choices == ("1", "3", "2", "4")
    assert items[0].meta == {"subject": "high_school_mathematics", "category": "STEM"}
    assert items[2].meta["category"] == "Humanities"
    from harness.tasks.ceval import SUBJECTS

    assert len(SUBJECTS) == 52
    assert make("ceval").subjects == SUBJECTS
    assert len(make("ceval", subject="stem").subjects) == 20
    assert make("ceval", subject="logic, law").subjects == ("logic", "law")
    with pytest.raises(ConfigError, match="unknown subject"):
        make("ceval", subject="astrology")


def test_ceval_rows_without_subject_take_the_option(tmp_path):
    row = {"id": 3, "question": "q", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "d"}
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,) = make("ceval", subject="logic").load(path)
    assert item.id == "logic/3" and item.target == "D"


# ---- GPQA shuffle ------------------------------------------------------------------------------
def test_gpqa_shuffle_is_per_item_deterministic_and_private():
    random.seed(1234)
    before = random.getstate()
    first = load_fixture("gpqa_diamond")
    assert random.getstate() == before, "GPQA shuffling touched the global RNG"
    random.seed(99)  # a different global state must not change anything
    again = load_fixture("gpqa_diamond")
    assert [(i.choices, i.target) for i in first] == [(i.choices, i.target) for i in again]
    correct = {"recA1": "The photon", "recB2": "sp3", "recC3": "Mitochondrion"}
    for item in first:
        assert sorted(item.choices) == sorted(set(item.choices)) and len(item.choices) == 4
        assert item.choices["ABCD".index(item.target)] == correct[item.id]
    assert "The graviton" in first[0].choices  # answers are stripped
    # An item's order depends on its question, not its position in the file.
    reversed_rows = [json.loads(line) for line in (FIXTURES / "gpqa_diamond.jsonl").read_text().splitlines()][::-1]
    task = make("gpqa_diamond")
    by_id = {task.parse(r, i).id: task.parse(r, i).choices for i, r in enumerate(reversed_rows)}
    assert by_id == {i.id: i.choices for i in first}


def test_gpqa_seed_option_changes_orders():
    orders = {tuple(tuple(i.choices) for i in load_fixture("gpqa_diamond", seed=s)) for s in range(6)}
    assert len(orders) > 1


def test_gpqa_targets_spread_over_letters():
    task = make("gpqa_diamond")
    rows = [{"Question": f"question number {n}", "Correct Answer": "right", "Incorrect Answer 1": "w1",
             "Incorrect Answer 2": "w2", "Incorrect Answer 3": "w3"} for n in range(200)]
    letters = [task.parse(r, i).target for i, r in enumerate(rows)]
    counts = {x: letters.count(x) for x in "ABCD"}
    assert all(20 <= c <= 80 for c in counts.values()), counts


def test_gated_gpqa_without_token_is_a_data_error(monkeypatch, tmp_path):
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no cached token either
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="gated dataset and no Hugging Face token"):
        make("gpqa_diamond").load()


def test_hub_offline_is_a_data_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="--data-file ceval="):
        make("ceval", subject="logic").load(limit=1)


# ---- synthetic -----------------------------------------------------------------------------------
def recompute(item: Item) -> int:
    """An independent evaluation of the recorded operations (not the generator's `apply`), in
    exact fractions, so an inexact division or a negative amount on the way fails."""
    value = Fraction(item.meta["start"])
    for name, *args in item.meta["ops"]:
        if name == "add":
            value += args[0]
        elif name == "sub":
            value -= args[0]
        elif name == "add_each":
            value += args[0] * args[1]
        elif name == "sub_each":
            value -= args[0] * args[1]
        elif name == "mul":
            value *= args[0]
        elif name == "div":
            value /= args[0]
        else:
            raise AssertionError(f"unknown operation {name}")
        assert value.denominator == 1 and value >= 0, (item.id, name, args, value)
    return int(value)


@pytest.mark.parametrize("language", ["en", "zh", "mixed"])
def test_synthetic_answers_are_correct(language):
    items = make("synthetic", language=language, n=150, seed=3, steps=4, distractors=2).load()
    assert len(items) == 150 and len({i.id for i in items}) == 150
    for item in items:
        assert str(recompute(item)) == item.target
        assert item.meta["steps"] == 4 and len(item.meta["ops"]) == 4
        assert item.meta["language"] in ("en", "zh")
        for _name, *args in item.meta["ops"]:  # the text states every operand
            assert all(str(a) in item.question for a in args)
        has_cjk = re.search(r"[\u4e00-\u9fff]", item.question) is not None
        assert has_cjk == (item.meta["language"] == "zh")
    if language == "mixed":
        assert {i.meta["language"] for i in items} == {"en", "zh"}
    assert len({i.meta["scenario"] for i in items}) == 5
    assert len({name for i in items for name, *_ in i.meta["ops"]}) == 6


def test_synthetic_is_reproducible_and_private():
    random.seed(7)
    before = random.getstate()
    a = make("synthetic", seed=11, n=30).load()
    assert random.getstate() == before
    b = make("synthetic", seed=11, n=30).load()
    c = make("synthetic", seed=12, n=30).load()
    assert [(i.id, i.question, i.target) for i in a] == [(i.id, i.question, i.target) for i in b]
    assert [i.question for i in a] != [i.question for i in c]
    # --limit takes a prefix; en and zh with one seed are the same problems.
    assert [i.question for i in make("synthetic", seed=11, n=30).load(limit=5)] == [i.question for i in a[:5]]
    zh = make("synthetic", seed=11, n=30, language="zh").load()
    assert [(i.meta["ops"], i.target) for i in zh] == [(i.meta["ops"], i.target) for i in a]


def test_synthetic_distractors_and_options():
    plain = make("synthetic", n=20, distractors=0).load()
    noisy = make("synthetic", n=20, distractors=3).load()
    assert [i.target for i in plain] == [i.target for i in noisy]  # distractors never change the answer
    assert all(len(n.question) > len(p.question) for p, n in zip(plain, noisy))
    strings = make("synthetic", n="5", steps="2", seed="4").load()  # options may come from the command line
    assert len(strings) == 5 and all(len(i.meta["ops"]) == 2 for i in strings)
    assert "generated locally" in make("synthetic").describe()
    for bad in ({"language": "fr"}, {"n": 0}, {"steps": "many"}, {"max_number": 5}):
        with pytest.raises(ConfigError):
            make("synthetic", **bad)


# ---- real shared files (skipped when ../shared is absent) -------------------------------------------
def test_shared_gsm8k():
    path = shared_file("gsm8k")
    items = make("gsm8k").load(path)
    assert len(items) == 1000
    assert items[0].target == "18" and items[2].target == "70000"
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", i.target) for i in items)


def test_shared_math500():
    items = make("math500").load(shared_file("math500"))
    assert len(items) == 500 and items[0].id == "test/precalculus/807.json"
    assert items[0].target == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert {i.meta["level"] for i in items} == {1, 2, 3, 4, 5}


def test_shared_cmath():
    items = make("cmath").load(shared_file("cmath"))
    assert len(items) == 600 and items[0].target == "9"
    assert {i.meta["grade"] for i in items} == {1, 2, 3, 4, 5, 6}
    assert all(re.search(r"[\u4e00-\u9fff]", i.question) for i in items)
