"""CMATH: Chinese elementary-school math word problems, grades 1 to 6.

- dataset: weitianwen/cmath, file `cmath_dev.jsonl` (600 problems, 100 per grade: the first public
           release, which Qwen2.5-Math's evaluation uses as its CMATH test set) or, with the task
           option file=test, `cmath_test.jsonl` (about 1.1k more). The repository is plain files,
           so `datasets` names the one split it reads `train`.
- paper:   Wei et al. 2023, "CMATH: Can Your Language Model Pass Chinese Elementary School Math
           Test?", arXiv 2306.16636
- license: CC BY 4.0
- rows:    `question`, `answer` (a string: integer, decimal or fraction such as "2/6");
           optional `grade` (1-6), `reasoning_step`, `num_digits`
- target:  `answer` as given; numeric equivalence ("2/6" vs 1/3) is the scorer's job
- id:      the row's position
"""

from __future__ import annotations

from harness.tasks.base import Item, Task
from harness.tasks.options import check_options

_FILES = {"dev": "cmath_dev.jsonl", "test": "cmath_test.jsonl"}
_META = ("grade", "reasoning_step", "num_digits")


def _file(value) -> str:
    value = str(value)
    if value not in _FILES:
        raise ValueError(f"choose {' or '.join(_FILES)}")
    return value


class CMath(Task):
    name = "cmath"
    size = 600
    title = "CMATH (Chinese elementary math)"
    dataset = "weitianwen/cmath"
    split = "train"
    data_files = _FILES["dev"]
    paper = "arXiv:2306.16636"
    license = "CC BY 4.0"
    answer_type = "number"
    required_fields = ("question", "answer")
    levels_field = "grade"
    narrowing_options = ("file",)

    def __init__(self, **options):
        opts = check_options(self.name, options, {"file": _file})
        super().__init__(**opts)
        self.data_files = _FILES[opts.get("file", "dev")]

    def parse(self, row: dict, index: int) -> Item:
        meta = {k: row[k] for k in _META if row.get(k) is not None}
        return Item(id=str(index), question=str(row["question"]).strip(), target=str(row["answer"]).strip(), meta=meta)
