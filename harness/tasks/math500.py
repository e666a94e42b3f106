"""MATH-500: the 500-problem subset of the MATH test set chosen for "Let's Verify Step by Step".

- dataset: HuggingFaceH4/MATH-500, split `test`
- paper:   Hendrycks et al. 2021, "Measuring Mathematical Problem Solving With the MATH Dataset",
           arXiv 2103.03874; subset from Lightman et al. 2023 (PRM800K), arXiv 2305.20050
- license: MIT
- rows:    `problem`, `answer` (a LaTeX expression); optional `solution`, `subject`, `level` (1-5),
           `unique_id` (e.g. "test/precalculus/807.json")
- target:  `answer` as given; equivalence (fractions, intervals, ...) is the scorer's job
- id:      `unique_id` when present, else the row's position
"""

from __future__ import annotations

from harness.tasks.base import Item, Task
from harness.tasks.options import check_options

_META = ("subject", "level", "unique_id", "solution")


class Math500(Task):
    name = "math500"
    size = 500
    title = "MATH-500 (competition math)"
    dataset = "HuggingFaceH4/MATH-500"
    split = "test"
    paper = "arXiv:2103.03874; subset of arXiv:2305.20050"
    license = "MIT"
    answer_type = "math"
    required_fields = ("problem", "answer")
    levels_field = "level"

    def __init__(self, **options):
        super().__init__(**check_options(self.name, options, {}))

    def parse(self, row: dict, index: int) -> Item:
        meta = {k: row[k] for k in _META if row.get(k) is not None}
        item_id = str(row.get("unique_id") or index)
        return Item(id=item_id, question=str(row["problem"]).strip(), target=str(row["answer"]).strip(), meta=meta)
