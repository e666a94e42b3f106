"""AIME 2024 and AIME 2025: the American Invitational Mathematics Examination, 30 problems a year
(parts I and II), each answer an integer from 0 to 999.

aime24
- dataset: HuggingFaceH4/aime_2024, split `train` (30 problems; taken from AI-MO/aimo-validation-aime)
- rows:    `id`, `problem`, `solution`, `answer`, `url`, `year`
aime25
- dataset: yentinglin/aime_2025, split `train` (30 problems). Chosen because it has the same row
           shape as aime_2024 (`id`, `problem`, `answer`, ...) and it is the dataset lighteval's
           `aime25` task and open-r1 style evaluations read, so our numbers compare with theirs.
           Other mirrors (opencompass/AIME2025: `question`, `answer`; Maxwell-Jia/AIME_2024:
           `ID`, `Problem`, `Answer`) also load through --data-file: every spelling below is accepted.

- paper:   none; the problems are the Mathematical Association of America's (https://maa.org)
- license: not stated on either dataset card; the problems are (c) MAA
- target:  the integer answer without leading zeros ("033" -> "33")
- id:      the row's `id`/`ID` when present, else its position
"""

from __future__ import annotations

from harness.tasks.base import Item, Task
from harness.tasks.options import check_options, field

_QUESTION = ("problem", "question", "Problem", "Question")
_ANSWER = ("answer", "Answer")
_ID = ("id", "ID", "Id")


class _AIME(Task):
    size = 30
    split = "train"
    paper = "https://maa.org (AIME)"
    license = "not stated (problems (c) MAA)"
    answer_type = "math"
    # Mirrors spell the fields differently, so `parse` checks them (with the row number) instead.
    required_fields = ()

    def __init__(self, **options):
        super().__init__(**check_options(self.name, options, {}))

    def parse(self, row: dict, index: int) -> Item:
        question = str(field(row, _QUESTION, self.name, index)).strip()
        target = str(field(row, _ANSWER, self.name, index)).strip()
        if target.isdigit():
            target = str(int(target))
        raw_id = next((row[k] for k in _ID if row.get(k) is not None), index)
        meta = {k: row[k] for k in ("year", "url", "solution") if row.get(k) is not None}
        return Item(id=str(raw_id), question=question, target=target, meta=meta)


class AIME24(_AIME):
    name = "aime24"
    title = "AIME 2024"
    dataset = "HuggingFaceH4/aime_2024"


class AIME25(_AIME):
    name = "aime25"
    title = "AIME 2025"
    dataset = "yentinglin/aime_2025"
