"""Prompt protocols: the exact published sentences, the message shapes each family expects, few-shot
prompts, overrides, and the record that goes into run.json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import protocols
from harness.errors import ConfigError
from harness.protocols import PROTOCOLS, build, default_protocol, describe, join_prefill, override, plain_prompt, resolve
from harness.tasks.ceval import CEval
from harness.tasks.cmath import CMath
from harness.tasks.gpqa import GPQADiamond
from harness.tasks.gsm8k import GSM8K
from harness.tasks.math500 import Math500
from harness.tasks.synthetic import Synthetic

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
DEEPSEEK = "Please reason step by step, and put your final answer within \\boxed{}."


@pytest.fixture(scope="module")
def gsm():
    task = GSM8K()
    return task, task.load(FIXTURES / "gsm8k.jsonl")[0]


@pytest.fixture(scope="module")
def gpqa():
    task = GPQADiamond()
    return task, task.load(FIXTURES / "gpqa_diamond.jsonl")[0]


def test_required_protocols_exist():
    assert {"r1", "qwen", "qwen3-think", "fewshot", "plain"} <= set(PROTOCOLS)
    for name, p in PROTOCOLS.items():
        assert p.name == name


def test_r1_messages(gsm):
    task, item = gsm
    messages, prefill = build(PROTOCOLS["r1"], task, item)
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"] == item.question + "\n" + DEEPSEEK
    assert prefill == "<think>\n"
    math_task = Math500()
    math_item = math_task.load(FIXTURES / "math500.jsonl")[0]
    assert DEEPSEEK in build(PROTOCOLS["r1"], math_task, math_item)[0][0]["content"]


def test_r1_multiple_choice(gpqa):
    task, item = gpqa
    (message,), _ = build(PROTOCOLS["r1"], task, item)
    content = message["content"]
    assert content.startswith(item.question + "\n\nA) ")
    for letter, choice in zip("ABCD", item.choices):
        assert f"\n{letter}) {choice}" in content
    assert content.endswith("put the letter of your final answer within \\boxed{}.")


def test_qwen_uses_a_system_prompt(gsm, gpqa):
    task, item = gsm
    messages, prefill = build(PROTOCOLS["qwen"], task, item)
    assert messages[0] == {"role": "system", "content": DEEPSEEK}
    assert messages[1] == {"role": "user", "content": item.question}
    assert prefill == ""
    (_, user), _ = build(PROTOCOLS["qwen"], *gpqa)
    assert user["content"].endswith("letter of the correct option within \\boxed{}.")


def test_qwen3_thinking_switch(gsm):
    think, nothink = PROTOCOLS["qwen3-think"], PROTOCOLS["qwen3-nothink"]
    assert think.template_kwargs == {"enable_thinking": True} and not think.force_think
    assert nothink.template_kwargs == {"enable_thinking": False}
    messages, prefill = build(think, *gsm)
    assert [m["role"] for m in messages] == ["user"] and DEEPSEEK in messages[0]["content"] and prefill == ""


def test_plain_protocol(gsm):
    messages, prefill = build(PROTOCOLS["plain"], *gsm)
    assert len(messages) == 1 and messages[0]["content"].endswith(DEEPSEEK) and prefill == ""


def test_fewshot_plain_prompt_english(gsm):
    task, item = gsm
    messages, prefill = build(PROTOCOLS["fewshot"], task, item)
    assert len(messages) == 1 and messages[0]["role"] == "user" and prefill == ""
    text = plain_prompt(messages)
    assert text.count("Question: ") == 5
    assert text.count("The answer is ") == 4
    assert text.endswith(f"Question: {item.question}\nAnswer:")
    # Each built-in example's arithmetic is right and its stated answer matches the target.
    for shot in protocols.builtin_examples("number", chinese=False):
        for a, op, b, c in re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)", shot.meta["solution"]):
            assert eval(f"{a}{op}{b}") == int(c)
        assert re.findall(r"= (\d+)", shot.meta["solution"])[-1] == shot.target
    assert "\nQuestion:" in PROTOCOLS["fewshot"].stop


def test_fewshot_chinese_for_cmath():
    task = CMath()
    item = task.load(FIXTURES / "cmath.jsonl")[0]
    text = plain_prompt(build(PROTOCOLS["fewshot"], task, item)[0])
    assert text.count("问题：") == 5 and text.count("答案是") == 4
    assert text.endswith(f"问题：{item.question}\n解答：")
    for shot in protocols.builtin_examples("number", chinese=True):
        for a, b, c in re.findall(r"(\d+)×(\d+)=(\d+)", shot.meta["solution"]):
            assert int(a) * int(b) == int(c)
        for a, b, c in re.findall(r"(\d+)-(\d+)=(\d+)", shot.meta["solution"]):
            assert int(a) - int(b) == int(c)
        assert re.findall(r"=(\d+)", shot.meta["solution"])[-1] == shot.target


def test_fewshot_multiple_choice_in_chinese_and_english(gpqa):
    ceval = CEval()
    item = ceval.load(FIXTURES / "ceval.jsonl")[0]
    text = plain_prompt(build(PROTOCOLS["fewshot"], ceval, item)[0])
    assert "A) " in text and "问题：" in text and text.count("答案是") == 4
    text = plain_prompt(build(PROTOCOLS["fewshot"], *gpqa)[0])
    assert "The answer is B." in text  # the first built-in choice example
    for shot in protocols.builtin_examples("choice", chinese=False):
        assert shot.target in "ABCD" and len(shot.choices) == 4


def test_chat_fewshot_alternates_turns(gsm):
    p = override(PROTOCOLS["r1"], fewshot=2)
    messages, prefill = build(p, *gsm)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert "\\boxed{17}" in messages[1]["content"] and prefill == "<think>\n"


def test_given_fewshot_items_replace_builtins(gsm):
    task, item = gsm
    shots = task.load(FIXTURES / "gsm8k.jsonl")[1:3]
    text = plain_prompt(build(override(PROTOCOLS["fewshot"], fewshot=2), task, item, fewshot=shots)[0])
    assert shots[0].question in text and "The answer is 14400." in text
    with pytest.raises(ConfigError, match="wants 3 examples"):
        build(override(PROTOCOLS["fewshot"], fewshot=3), task, item, fewshot=shots)


def test_default_protocol():
    cases = {
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": "r1",
        "random:r1-distill-qwen-1.5b": "r1",
        "/models/DeepSeek-R1-Distill-Llama-8B-Q4_K_M.gguf": "r1",
        "deepseek-ai/DeepSeek-R1": "r1",
        "Qwen/QwQ-32B": "r1",
        "Qwen/Qwen3-8B": "qwen3-think",
        "random:qwen3-0.6b": "qwen3-think",
        "Qwen/Qwen3-8B-Base": "fewshot",
        "Qwen/Qwen2.5-7B-Instruct": "qwen",
        "Qwen/Qwen2.5-Math-1.5B-Instruct": "qwen",
        "Qwen/Qwen2.5-Math-7B": "fewshot",
        "deepseek-ai/DeepSeek-V2-Lite-Chat": "plain",
        "random:tiny": "plain",
        "gpt2": "plain",
    }
    assert {m: default_protocol(m) for m in cases} == cases


def test_resolve_and_override():
    assert resolve(None, "Qwen/Qwen3-4B").name == "qwen3-think"
    assert resolve("auto", "random:r1-distill-qwen-7b").name == "r1"
    p = resolve("r1", "anything", {"system_prompt": "Be brief.", "suffix": "Answer:", "force_think": False})
    assert p.system_prompt == "Be brief." and p.suffix == {"number": "Answer:", "math": "Answer:", "choice": "Answer:"}
    assert not p.force_think and PROTOCOLS["r1"].force_think  # the built-in is untouched
    merged = override(PROTOCOLS["r1"], suffix={"choice": "Letter only."})
    assert merged.suffix["choice"] == "Letter only." and merged.suffix["number"] == DEEPSEEK
    assert override(PROTOCOLS["qwen"], system_prompt="").system_prompt is None
    with pytest.raises(ConfigError, match="unknown prompt protocol"):
        resolve("chatml", "m")
    with pytest.raises(ConfigError, match="cannot override"):
        override(PROTOCOLS["r1"], name="x")
    for bad in ({"fewshot": -1}, {"fewshot": 99}, {"fewshot": "2"}, {"force_think": "yes"}):
        with pytest.raises(ConfigError):
            override(PROTOCOLS["r1"], **bad)


def test_describe_is_the_run_json_record():
    d = describe(PROTOCOLS["r1"])
    assert d == {"name": "r1", "system_prompt": None,
                 "suffix": {"number": DEEPSEEK, "math": DEEPSEEK,
                            "choice": "Please reason step by step, and put the letter of your final answer within \\boxed{}."},
                 "force_think": True, "fewshot": 0}
    import json

    json.dumps(describe(PROTOCOLS["fewshot"]), ensure_ascii=False)


def test_join_prefill():
    assert join_prefill("<｜User｜>q<｜Assistant｜>", "<think>\n") == "<｜User｜>q<｜Assistant｜><think>\n"
    assert join_prefill("<｜User｜>q<｜Assistant｜><think>\n", "<think>\n") == "<｜User｜>q<｜Assistant｜><think>\n"
    assert join_prefill("prompt", "") == "prompt"


def test_synthetic_chinese_item_gets_chinese_fewshot():
    task = Synthetic(language="zh", n=1)
    item = task.load()[0]
    text = plain_prompt(build(PROTOCOLS["fewshot"], task, item)[0])
    assert text.startswith("问题：") and text.endswith("解答：")
