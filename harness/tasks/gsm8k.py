"""GSM8K: grade-school math word problems with a single integer answer.

- dataset: openai/gsm8k, config `main`, split `test` (1,319 problems)
- paper:   Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems", arXiv 2110.14168
- license: MIT
- rows:    `question`, `answer` (a worked solution whose last line is "#### N")
- target:  N with thousands separators removed ("1,450,000" -> "1450000")
- id:      the row's position in the file or split, so a local copy of the same split gives the same ids
"""

from __future__ import annotations

from harness.errors import DataError
from harness.tasks.base import Item, Task
from harness.tasks.options import check_options


class GSM8K(Task):
    name = "gsm8k"
    size = 1319
    title = "GSM8K (grade-school math)"
    dataset = "openai/gsm8k"
    config = "main"
    split = "test"
    paper = "arXiv:2110.14168"
    license = "MIT"
    answer_type = "number"
    required_fields = ("question", "answer")

    def __init__(self, **options):
        super().__init__(**check_options(self.name, options, {}))

    def parse(self, row: dict, index: int) -> Item:
        solution, sep, final = str(row["answer"]).rpartition("####")
        target = final.strip().replace(",", "")
        if not sep or not target:
            raise DataError(f"task gsm8k: row {index} has no '#### N' final line in its answer",
                            "the answer field must end with '#### <number>' as in openai/gsm8k")
        return Item(id=str(index), question=str(row["question"]).strip(), target=target,
                    meta={"solution": solution.strip()})
