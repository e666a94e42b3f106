"""Prompt protocols: how a task item becomes chat messages (and an assistant prefill) for one model
family. A protocol is data, chosen per model by default, overridable per run, and recorded in
run.json (`describe`), because a score means little without the exact prompt that produced it.

Sources for the built-in protocols:
- r1: DeepSeek-R1 README "Usage Recommendations": no system prompt ("all instructions should be
  contained within the user prompt"); for math "Please reason step by step, and put your final
  answer within \\boxed{}."; force the answer to start with "<think>\\n". Distill chat templates
  after about 2025-02-09 already end the generation prompt with "<think>\\n"; `join_prefill`
  then adds nothing.
- qwen: Qwen2.5-Math's evaluation prompt `qwen25-math-cot` (QwenLM/Qwen2.5-Math
  evaluation/utils.py): the same sentence as the *system* message and the bare question as the
  user turn. (Qwen2-Math used `qwen-boxed`: the default system prompt plus the sentence appended
  to the user turn.)
- qwen3-think / qwen3-nothink: Qwen3 quickstart: the chat template switch `enable_thinking`
  (True is the template's default); no system prompt; the R1 sentence as the user suffix.
- fewshot: a plain-text k-shot prompt for base models ("Question: ...\\nAnswer: ... The answer is
  N."), as in Qwen2.5's base-model GSM8K/MATH 4-shot numbers; the examples are our own.
- plain: the question plus the R1 sentence through the model's chat template.
DeepSeek used simple-evals prompts ("Answer: $LETTER") for GPQA and MMLU; the multiple-choice
suffixes here ask for the letter in \\boxed{} instead, so one extractor serves every task.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.core.prompt import join_prefill, plain_prompt  # noqa: F401  (the renderer owns them; re-exported)
from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError
from harness.tasks.base import Item, Task

THINK = "<think>\n"
BOXED = "Please reason step by step, and put your final answer within \\boxed{}."
BOXED_LETTER = "Please reason step by step, and put the letter of your final answer within \\boxed{}."
LETTER_ONLY = "Put only the letter of the correct option within \\boxed{}."
_R1_SUFFIX = {"number": BOXED, "math": BOXED, "choice": BOXED_LETTER}


@dataclass(frozen=True)
class Protocol:
    """One prompt recipe. `suffix` maps an answer type ("number", "math", "choice") to the text
    appended, after a newline, to the question in the user turn; a missing type appends nothing."""

    name: str
    system_prompt: str | None
    suffix: Mapping[str, str]
    force_think: bool  # prefill the answer with "<think>\n" (unless the chat template already does)
    fewshot: int  # worked examples shown before the question
    chat: bool  # False: one plain-text prompt, no chat template (base models)
    stop: tuple[str, ...] = ()  # extra stop strings (plain few-shot prompts would run on otherwise)
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)  # passed to apply_chat_template


PROTOCOLS: dict[str, Protocol] = {
    "r1": Protocol("r1", None, _R1_SUFFIX, force_think=True, fewshot=0, chat=True),
    "qwen": Protocol("qwen", BOXED, {"choice": LETTER_ONLY}, force_think=False, fewshot=0, chat=True),
    "qwen3-think": Protocol("qwen3-think", None, _R1_SUFFIX, force_think=False, fewshot=0, chat=True,
                            template_kwargs={"enable_thinking": True}),
    "qwen3-nothink": Protocol("qwen3-nothink", None, _R1_SUFFIX, force_think=False, fewshot=0, chat=True,
                              template_kwargs={"enable_thinking": False}),
    "fewshot": Protocol("fewshot", None, {}, force_think=False, fewshot=4, chat=False,
                        stop=("\nQuestion:", "\n问题：")),
    "plain": Protocol("plain", None, _R1_SUFFIX, force_think=False, fewshot=0, chat=True),
}


# ---- choosing and overriding -----------------------------------------------------------------
def default_protocol(model_name: str) -> str:
    """The protocol a model's publisher evaluated it with, guessed from its name or path."""
    name = parse_spec(model_name).name.lower().rstrip("/").rsplit("/", 1)[-1]
    if "distill" in name or "qwq" in name or re.search(r"(?<![a-z0-9])r1(?![0-9])", name):
        return "r1"
    base = "base" in name or ("qwen" in name and not re.search(r"instruct|chat|qwen3", name))
    if "qwen3" in name:
        return "fewshot" if base else "qwen3-think"
    if "qwen" in name:
        return "fewshot" if base else "qwen"
    return "plain"


def get(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown prompt protocol {name!r}", f"choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


_OVERRIDABLE = {"system_prompt", "suffix", "force_think", "fewshot", "chat"}


def override(protocol: Protocol, **changes: Any) -> Protocol:
    """A copy with some fields replaced. `suffix` may be one string (every answer type) or a
    mapping merged over the protocol's own; `system_prompt=""` means none."""
    unknown = sorted(set(changes) - _OVERRIDABLE)
    if unknown:
        raise ConfigError(f"cannot override protocol field(s) {', '.join(unknown)}", f"overridable: {', '.join(sorted(_OVERRIDABLE))}")
    if "suffix" in changes:
        s = changes["suffix"]
        changes["suffix"] = {t: s for t in ("number", "math", "choice")} if isinstance(s, str) else {**protocol.suffix, **dict(s)}
    if "system_prompt" in changes:
        changes["system_prompt"] = changes["system_prompt"] or None
    if "fewshot" in changes:
        k = changes["fewshot"]
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MAX_SHOTS:
            raise ConfigError(f"fewshot={k!r} is not a number of examples from 0 to {MAX_SHOTS}", f"use 0..{MAX_SHOTS}")
    for key in ("force_think", "chat"):
        if key in changes and not isinstance(changes[key], bool):
            raise ConfigError(f"{key}={changes[key]!r} is not true or false", f"set {key} to true or false")
    return dataclasses.replace(protocol, **changes)


def resolve(name: str | None, model_name: str, overrides: Mapping[str, Any] | None = None) -> Protocol:
    """The protocol for a run: the named one (None or "auto": the model's default), then overrides."""
    protocol = get(default_protocol(model_name) if name in (None, "", "auto") else name)
    return override(protocol, **dict(overrides)) if overrides else protocol


def describe(protocol: Protocol) -> dict:
    """run.json's `protocol` field."""
    return {"name": protocol.name, "system_prompt": protocol.system_prompt, "suffix": dict(protocol.suffix),
            "force_think": protocol.force_think, "fewshot": protocol.fewshot}


# ---- building prompts ------------------------------------------------------------------------
def build(protocol: Protocol, task: Task, item: Item, fewshot: Sequence[Item] = ()) -> tuple[tuple[dict, ...], str]:
    """(chat messages, assistant prefill) for one item. `fewshot` items (with meta["solution"])
    replace the built-in examples; the protocol's `fewshot` count says how many are shown."""
    zh = is_chinese(item.question)
    shots = list(fewshot or builtin_examples(task.answer_type, zh))[: protocol.fewshot]
    if len(shots) < protocol.fewshot:
        raise ConfigError(f"protocol {protocol.name} wants {protocol.fewshot} examples but only {len(shots)} exist",
                          f"use fewshot of at most {len(shots)}")
    if not protocol.chat:
        return ({"role": "user", "content": _plain_fewshot(task, shots, item, zh)},), ""
    messages: list[dict] = []
    if protocol.system_prompt:
        messages.append({"role": "system", "content": protocol.system_prompt})
    for shot in shots:
        messages.append({"role": "user", "content": _user_turn(protocol, task, shot)})
        messages.append({"role": "assistant", "content": _worked_answer(shot, zh, boxed=True)})
    messages.append({"role": "user", "content": _user_turn(protocol, task, item)})
    return tuple(messages), THINK if protocol.force_think else ""


def question_text(task: Task, item: Item) -> str:
    """The task's own rendering of the question (Task.format_question)."""
    return task.format_question(item)


def is_chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def _user_turn(protocol: Protocol, task: Task, item: Item) -> str:
    suffix = protocol.suffix.get(task.answer_type, "")
    q = question_text(task, item)
    return f"{q}\n{suffix}" if suffix else q


def _worked_answer(item: Item, zh: bool, boxed: bool) -> str:
    solution = str(item.meta.get("solution", "")).strip()
    if boxed:
        end = f"最终答案是 $\\boxed{{{item.target}}}$。" if zh else f"The final answer is $\\boxed{{{item.target}}}$."
        return f"{solution}\n\n{end}" if solution else end
    end = f"答案是{item.target}。" if zh else f"The answer is {item.target}."
    return f"{solution}{'' if zh else ' '}{end}" if solution else end


def _plain_fewshot(task: Task, shots: Sequence[Item], item: Item, zh: bool) -> str:
    q_label, a_label = ("问题：", "解答：") if zh else ("Question: ", "Answer:")
    blocks = [f"{q_label}{question_text(task, s)}\n{a_label}{'' if zh else ' '}{_worked_answer(s, zh, boxed=False)}"
              for s in shots]
    blocks.append(f"{q_label}{question_text(task, item)}\n{a_label}")
    return "\n\n".join(blocks)


# ---- built-in worked examples (written for this project, not taken from any benchmark) --------
def _shot(i: int, question: str, solution: str, target: str, choices: tuple[str, ...] = ()) -> Item:
    return Item(id=f"shot-{i}", question=question, target=target, choices=choices, meta={"solution": solution})


_EXAMPLES: dict[tuple[bool, bool], tuple[Item, ...]] = {  # (multiple choice, Chinese)
    (False, False): (
        _shot(1, "A baker makes 24 muffins. She sells 15 of them and then bakes 8 more. How many muffins does she have now?",
              "After selling she has 24 - 15 = 9 muffins. After baking more she has 9 + 8 = 17 muffins.", "17"),
        _shot(2, "Tom reads 12 pages a day for 5 days and then reads 7 more pages. How many pages has he read in all?",
              "In 5 days he reads 12 * 5 = 60 pages. With 7 more he has read 60 + 7 = 67 pages.", "67"),
        _shot(3, "A box holds 6 rows of 8 crayons. Lina gives away 13 crayons. How many crayons are left in the box?",
              "The box holds 6 * 8 = 48 crayons. After giving some away, 48 - 13 = 35 are left.", "35"),
        _shot(4, "Three friends split a 54 dollar bill equally, and each also pays a 2 dollar tip. How many dollars does each friend pay?",
              "Each share of the bill is 54 / 3 = 18 dollars. With the tip each pays 18 + 2 = 20 dollars.", "20"),
    ),
    (False, True): (
        _shot(1, "小华有36颗糖，分给同学15颗，妈妈又给了他8颗。小华现在有多少颗糖？",
              "分给同学后还剩36-15=21颗，妈妈又给了8颗，现在有21+8=29颗。", "29"),
        _shot(2, "一本书有120页，小明每天看15页，看了4天。还剩多少页没有看？",
              "4天看了15×4=60页，还剩120-60=60页。", "60"),
        _shot(3, "学校买了5箱粉笔，每箱24盒，用掉了38盒。还剩多少盒粉笔？",
              "一共有5×24=120盒，用掉38盒后还剩120-38=82盒。", "82"),
        _shot(4, "王阿姨买了3千克苹果，每千克8元，她付了50元。应找回多少元？",
              "苹果一共3×8=24元，应找回50-24=26元。", "26"),
    ),
    (True, False): (
        _shot(1, "Which gas do plants take in from the air to make their food?",
              "Plants use carbon dioxide in photosynthesis.", "B", ("Oxygen", "Carbon dioxide", "Nitrogen", "Helium")),
        _shot(2, "What is 7 times 8?", "7 * 8 = 56.", "A", ("56", "54", "64", "48")),
        _shot(3, "Which of these is a unit of electric current?",
              "Current is measured in amperes; volts, watts and ohms measure other things.", "D", ("Volt", "Watt", "Ohm", "Ampere")),
        _shot(4, "At sea level, at what temperature does pure water boil?",
              "At standard pressure water boils at 100 degrees Celsius.", "C", ("50 °C", "90 °C", "100 °C", "120 °C")),
    ),
    (True, True): (
        _shot(1, "植物进行光合作用时从空气中吸收哪种气体？", "光合作用吸收二氧化碳。", "B", ("氧气", "二氧化碳", "氮气", "氦气")),
        _shot(2, "7乘8等于多少？", "7×8=56。", "A", ("56", "54", "64", "48")),
        _shot(3, "下列哪一个是电流的单位？", "电流的单位是安培，伏特、瓦特和欧姆分别是电压、功率和电阻的单位。", "D",
              ("伏特", "瓦特", "欧姆", "安培")),
        _shot(4, "在标准大气压下，纯水的沸点是多少？", "标准大气压下水在100℃沸腾。", "C", ("50℃", "90℃", "100℃", "120℃")),
    ),
}
MAX_SHOTS = min(len(v) for v in _EXAMPLES.values())


def builtin_examples(answer_type: str, chinese: bool) -> tuple[Item, ...]:
    return _EXAMPLES[(answer_type == "choice", chinese)]
