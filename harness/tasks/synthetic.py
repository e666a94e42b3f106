"""Synthetic: multi-step arithmetic word problems generated from a seed, in English and Chinese.

- source:  generated locally; no download, and no chance that a model saw these exact problems
- options: n=100 problems, seed=0, language="en" | "zh" | "mixed", steps=3 operations per problem,
           max_number=100 (bound on the starting amount and on added or subtracted amounts),
           distractors=1 sentence per problem carrying an irrelevant number
- target:  the exact integer answer, known by construction; every intermediate amount is a
           non-negative integer (subtractions never go below zero, divisions are exact)
- id:      "<language>-<seed>-<index>"; problem i depends only on (seed, i), so --limit 10 gives the
           first 10 problems of the full set, and language=en and language=zh with one seed give
           the same problems in the two languages (a paired comparison)
- meta:    steps, language, scenario, start, ops (the operations as [name, args...], enough to
           recompute the answer: add a, sub a, mul a, div a, add_each a b (+a*b), sub_each a b (-a*b))
- license: the generator is part of this project (Apache-2.0)

A data file (--data-file synthetic=PATH) may still be given: rows need `question` and `answer`,
and may carry `id`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.tasks.base import Item, Task
from harness.tasks.options import as_int, check_options

# Each scenario has an opening sentence, one or more phrasings per operation, the question, and
# distractors. Placeholders: {n} a name, {v} the starting amount, {a}/{b} operands, {d} a distractor
# number. Chinese text keeps Arabic numerals, as CMATH does.
SCENARIOS: dict[str, dict[str, dict[str, list[str] | str]]] = {
    "shopping": {
        "en": {"start": "{n} has {v} dollars.",
               "add": ["{n} earns {a} dollars by helping a neighbour.", "{n} finds {a} dollars in an old coat."],
               "sub": ["{n} spends {a} dollars on a book.", "{n} pays {a} dollars for lunch."],
               "add_each": ["{n} sells {b} drawings for {a} dollars each."],
               "sub_each": ["{n} buys {b} pens that cost {a} dollars each."],
               "mul": ["A lucky prize makes {n}'s money {a} times as much as before."],
               "div": ["{n} splits all the money equally into {a} envelopes and keeps only one envelope."],
               "question": "How many dollars does {n} have now?",
               "distractors": ["The shop is {d} metres from {n}'s home.", "{n}'s bicycle has {d} gears."]},
        "zh": {"start": "{n}有{v}元钱。",
               "add": ["{n}帮邻居干活，挣了{a}元。", "{n}在旧外套里找到{a}元。"],
               "sub": ["{n}花{a}元买了一本书。", "{n}付了{a}元午饭钱。"],
               "add_each": ["{n}卖出{b}幅画，每幅{a}元。"],
               "sub_each": ["{n}买了{b}支笔，每支{a}元。"],
               "mul": ["{n}中了奖，钱变成了原来的{a}倍。"],
               "div": ["{n}把所有的钱平均装进{a}个信封，只留下其中一个信封。"],
               "question": "{n}现在有多少元钱？",
               "distractors": ["商店离{n}家有{d}米。", "{n}的自行车有{d}个挡位。"]},
    },
    "sharing": {
        "en": {"start": "A basket holds {v} apples.",
               "add": ["A farmer puts {a} more apples into the basket."],
               "sub": ["{n} eats {a} apples from the basket.", "{a} apples are taken out of the basket."],
               "add_each": ["{b} friends each add {a} apples to the basket."],
               "sub_each": ["{b} children each take {a} apples from the basket."],
               "mul": ["After a big harvest the basket holds {a} times as many apples as before."],
               "div": ["The apples are shared equally among {a} baskets, and only one of those baskets is kept."],
               "question": "How many apples are in the basket now?",
               "distractors": ["The apple tree is {d} years old.", "{n} lives {d} kilometres from the farm."]},
        "zh": {"start": "篮子里有{v}个苹果。",
               "add": ["农民又往篮子里放了{a}个苹果。"],
               "sub": ["{n}从篮子里吃掉了{a}个苹果。", "有人从篮子里拿走了{a}个苹果。"],
               "add_each": ["{b}个朋友每人往篮子里放了{a}个苹果。"],
               "sub_each": ["{b}个小朋友每人从篮子里拿走{a}个苹果。"],
               "mul": ["丰收以后，篮子里的苹果变成了原来的{a}倍。"],
               "div": ["这些苹果被平均分到{a}个篮子里，只留下其中一个篮子。"],
               "question": "现在篮子里有多少个苹果？",
               "distractors": ["那棵苹果树已经{d}岁了。", "{n}家离果园有{d}千米。"]},
    },
    "travel": {
        "en": {"start": "A bus leaves the depot with {v} passengers.",
               "add": ["At the next stop {a} passengers get on."],
               "sub": ["At the market {a} passengers get off."],
               "add_each": ["At the station {b} groups of {a} passengers get on."],
               "sub_each": ["At the school {b} classes of {a} students get off."],
               "mul": ["At the stadium the number of passengers becomes {a} times as many as before."],
               "div": ["At the terminal the passengers split equally into {a} buses; count only the passengers on one of them."],
               "question": "How many passengers are on the bus now?",
               "distractors": ["The bus driver, {n}, has driven for {d} years.", "The bus is painted with {d} stripes."]},
        "zh": {"start": "一辆公交车从车站出发时有{v}名乘客。",
               "add": ["下一站上来了{a}名乘客。"],
               "sub": ["到了菜市场，下去了{a}名乘客。"],
               "add_each": ["在火车站，上来了{b}组乘客，每组{a}人。"],
               "sub_each": ["到了学校，下去了{b}个班的学生，每班{a}人。"],
               "mul": ["到了体育馆，车上的乘客变成了原来的{a}倍。"],
               "div": ["到了终点站，乘客平均分坐{a}辆车，只算其中一辆车上的乘客。"],
               "question": "现在这辆车上有多少名乘客？",
               "distractors": ["司机{n}已经开了{d}年车。", "这辆车身上画着{d}条彩带。"]},
    },
    "saving": {
        "en": {"start": "{n} has {v} coins in a piggy bank.",
               "add": ["{n}'s grandmother gives {n} {a} coins for the piggy bank."],
               "sub": ["{n} takes {a} coins out to buy a snack."],
               "add_each": ["{n} saves {a} coins a week for {b} weeks."],
               "sub_each": ["{n} takes out {a} coins a day for {b} days."],
               "mul": ["{n}'s parents make the savings {a} times as large as before."],
               "div": ["{n} divides the coins equally into {a} jars and gives away all the jars but one; only that jar's coins are left."],
               "question": "How many coins does {n} have now?",
               "distractors": ["{n}'s piggy bank is {d} centimetres tall.", "{n}'s class has {d} students."]},
        "zh": {"start": "{n}的存钱罐里有{v}枚硬币。",
               "add": ["奶奶又给了{n}{a}枚硬币。"],
               "sub": ["{n}拿出{a}枚硬币买零食。"],
               "add_each": ["{n}每周存{a}枚硬币，存了{b}周。"],
               "sub_each": ["{n}每天拿出{a}枚硬币，拿了{b}天。"],
               "mul": ["爸爸妈妈让{n}的硬币变成了原来的{a}倍。"],
               "div": ["{n}把硬币平均放进{a}个罐子，送走了其余的罐子，只剩一个罐子的硬币。"],
               "question": "{n}现在有多少枚硬币？",
               "distractors": ["{n}的存钱罐高{d}厘米。", "{n}的班上有{d}名同学。"]},
    },
    "library": {
        "en": {"start": "A school library has {v} books on one shelf.",
               "add": ["The librarian, {n}, adds {a} new books to the shelf."],
               "sub": ["Students borrow {a} books from the shelf."],
               "add_each": ["{b} parents each donate {a} books to the shelf."],
               "sub_each": ["{b} classes each borrow {a} books from the shelf."],
               "mul": ["After a book fair the shelf holds {a} times as many books as before."],
               "div": ["The books are spread equally over {a} shelves; count only the books on one of those shelves."],
               "question": "How many books are on the shelf now?",
               "distractors": ["The library opened {d} years ago.", "The library has {d} chairs."]},
        "zh": {"start": "学校图书馆的一个书架上有{v}本书。",
               "add": ["图书管理员{n}往书架上添了{a}本新书。"],
               "sub": ["同学们从书架上借走了{a}本书。"],
               "add_each": ["{b}位家长每人捐给书架{a}本书。"],
               "sub_each": ["{b}个班每班从书架上借走{a}本书。"],
               "mul": ["书展以后，书架上的书变成了原来的{a}倍。"],
               "div": ["这些书被平均放到{a}个书架上，只算其中一个书架上的书。"],
               "question": "现在这个书架上有多少本书？",
               "distractors": ["图书馆建成已经{d}年了。", "图书馆里有{d}把椅子。"]},
    },
}
NAMES = {"en": ["Alice", "Ben", "Chen", "Dana", "Emil", "Fatima", "Grace", "Hiro", "Ivan", "Mei"],
         "zh": ["小明", "小红", "小刚", "小丽", "王芳", "李华", "张伟", "陈静", "刘洋", "赵雪"]}
LANGUAGES = ("en", "zh", "mixed")
OPS = ("add", "sub", "add_each", "sub_each", "mul", "div")


def apply(value: int, op: list) -> int:
    """One operation on the running amount; the recomputation the tests check against."""
    name, args = op[0], op[1:]
    if name == "add":
        return value + args[0]
    if name == "sub":
        return value - args[0]
    if name == "add_each":
        return value + args[0] * args[1]
    if name == "sub_each":
        return value - args[0] * args[1]
    if name == "mul":
        return value * args[0]
    if name == "div":
        return value // args[0]
    raise ValueError(f"unknown operation {name}")


def _choose_op(rng: random.Random, value: int, max_number: int) -> list:
    """A random operation that keeps the amount a non-negative integer of bounded size."""
    cap = 10 * max_number  # keeps numbers readable and the arithmetic modest
    while True:
        name = rng.choice(OPS)
        if name == "add":
            return [name, rng.randint(1, max_number)]
        if name == "sub" and value >= 1:
            return [name, rng.randint(1, min(value, max_number))]
        if name == "add_each":
            a, b = rng.randint(2, max(2, min(20, max_number))), rng.randint(2, 6)
            if value + a * b <= cap:
                return [name, a, b]
        if name == "sub_each" and value >= 4:
            b = rng.randint(2, min(6, value // 2))
            return [name, rng.randint(2, value // b), b]
        if name == "mul" and 1 <= value and value * 2 <= cap:
            return [name, rng.randint(2, max(2, min(5, cap // value)))]
        if name == "div":
            divisors = [k for k in range(2, 10) if value >= k and value % k == 0]
            if divisors:
                return [name, rng.choice(divisors)]


def generate(index: int, *, seed: int = 0, language: str = "en", steps: int = 3,
             max_number: int = 100, distractors: int = 1) -> Item:
    """Problem `index` of the set `seed`: a private random.Random, so the global RNG is untouched."""
    rng = random.Random(f"synthetic:{seed}:{index}")
    lang = rng.choice(("en", "zh")) if language == "mixed" else language
    scenario = rng.choice(sorted(SCENARIOS))
    text: dict[str, Any] = SCENARIOS[scenario][lang]
    name = rng.choice(NAMES[lang])
    start = rng.randint(max(2, max_number // 5), max_number)
    value, ops, sentences = start, [], []
    for _ in range(steps):
        op = _choose_op(rng, value, max_number)
        value = apply(value, op)
        ops.append(op)
        b = op[2] if len(op) > 2 else None
        sentences.append(rng.choice(text[op[0]]).format(n=name, a=op[1], b=b))
    for _ in range(distractors):
        line = rng.choice(text["distractors"]).format(n=name, d=rng.randint(2, 50))  # plausible ages, sizes
        sentences.insert(rng.randint(0, len(sentences)), line)
    parts = [text["start"].format(n=name, v=start), *sentences, text["question"].format(n=name)]
    question = ("" if lang == "zh" else " ").join(parts)
    meta = {"steps": steps, "language": lang, "scenario": scenario, "start": start, "ops": ops}
    return Item(id=f"{lang}-{seed}-{index}", question=question, target=str(value), meta=meta)


def _language(value) -> str:
    value = str(value)
    if value not in LANGUAGES:
        raise ValueError(f"choose one of {', '.join(LANGUAGES)}")
    return value


def _positive(value) -> int:
    n = as_int(value)
    if n < 1:
        raise ValueError("must be at least 1")
    return n


def _bounded(limit: int):
    def check(value) -> int:
        n = _positive(value)
        if n > limit:
            raise ValueError(f"must be at most {limit:,}")
        return n
    return check


def _bounded_zero(limit: int):
    def check(value) -> int:
        n = as_int(value)
        if not 0 <= n <= limit:
            raise ValueError(f"must be from 0 to {limit}")
        return n
    return check


class Synthetic(Task):
    name = "synthetic"
    title = "Synthetic multi-step arithmetic (en/zh)"
    dataset = None
    paper = ""
    license = "Apache-2.0 (generated)"
    answer_type = "number"
    required_fields = ("question", "answer")  # only for a data file

    def __init__(self, **options):
        opts = check_options(self.name, options, {
            "n": _bounded(100_000), "seed": as_int, "language": _language, "steps": _bounded(50),
            "max_number": _bounded(10**9), "distractors": _bounded_zero(20)})
        super().__init__(**opts)
        self.n = opts.get("n", 100)
        self.settings = {"seed": opts.get("seed", 0), "language": opts.get("language", "en"),
                         "steps": opts.get("steps", 3), "max_number": opts.get("max_number", 100),
                         "distractors": opts.get("distractors", 1)}
        if self.settings["max_number"] < 10:
            raise ConfigError(f"max_number={self.settings['max_number']} is too small for word problems", "use 10 or more")

    def describe(self) -> str:
        s = self.settings
        return (f"generated locally (n={self.n}, seed={s['seed']}, language={s['language']}, "
                f"steps={s['steps']}, max_number={s['max_number']}, distractors={s['distractors']})")

    def load(self, data_file: str | Path | None = None, limit: int | None = None) -> list[Item]:
        if data_file:
            return super().load(data_file, limit)
        count = self.n if limit is None else min(self.n, limit)
        return [generate(i, **self.settings) for i in range(count)]

    def parse(self, row: dict, index: int) -> Item:
        meta: dict = row["meta"] if isinstance(row.get("meta"), dict) else {}
        return Item(id=str(row.get("id", index)), question=str(row["question"]).strip(),
                    target=str(row["answer"]).strip(), meta=meta)
