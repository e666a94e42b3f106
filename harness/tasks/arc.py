"""ARC-Challenge: grade-school science multiple-choice questions that retrieval and word
co-occurrence baselines got wrong (the Challenge set of the AI2 Reasoning Challenge).

- dataset: allenai/ai2_arc, config `ARC-Challenge`, split `test` (1,172 questions)
- paper:   Clark et al. 2018, "Think you have Solved Question Answering? Try ARC", arXiv 1803.05457
- license: CC BY-SA 4.0
- rows:    `id`, `question`, `choices` {`text`: [...], `label`: [...]}, `answerKey`
- target:  the letter of the correct option by position. Some questions label options "1".."4"
           instead of "A".."D"; options are always shown as A, B, C, ... in their given order and
           `answerKey` is mapped through its position among the labels.
- id:      the row's `id` (e.g. "Mercury_7175875")
"""

from __future__ import annotations

from harness.errors import DataError
from harness.tasks.base import Item, Task, letter
from harness.tasks.options import check_options


class ARCChallenge(Task):
    name = "arc_challenge"
    size = 1172
    title = "ARC-Challenge (grade-school science)"
    dataset = "allenai/ai2_arc"
    config = "ARC-Challenge"
    split = "test"
    paper = "arXiv:1803.05457"
    license = "CC BY-SA 4.0"
    answer_type = "choice"
    required_fields = ("id", "question", "choices", "answerKey")

    def __init__(self, **options):
        super().__init__(**check_options(self.name, options, {}))

    def parse(self, row: dict, index: int) -> Item:
        choices = row["choices"]
        if not isinstance(choices, dict) or "text" not in choices or "label" not in choices:
            raise DataError(f"task arc_challenge: row {index} `choices` is not {{'text': [...], 'label': [...]}}",
                            "use the allenai/ai2_arc row format")
        texts = [str(t).strip() for t in choices["text"]]
        labels = [str(label).strip() for label in choices["label"]]
        key = str(row["answerKey"]).strip()
        if len(texts) != len(labels) or key not in labels:
            raise DataError(f"task arc_challenge: row {index} answerKey {key!r} is not one of its labels {labels}",
                            "answerKey must equal one of choices.label")
        return Item(id=str(row["id"]), question=str(row["question"]).strip(), target=letter(labels.index(key)),
                    choices=tuple(texts))
