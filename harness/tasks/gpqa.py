"""GPQA Diamond: 198 graduate-level, "Google-proof" multiple-choice questions in biology, physics
and chemistry (the subset where both expert validators agreed and most non-experts failed).

- dataset: Idavidrein/gpqa, config `gpqa_diamond`, split `train` (the only split). Gated: accept
           the terms on the Hub and set HF_TOKEN, or pass --data-file gpqa_diamond=PATH.jsonl.
- paper:   Rein et al. 2023, "GPQA: A Graduate-Level Google-Proof Q&A Benchmark", arXiv 2311.12022
- license: CC BY 4.0 (the authors ask that examples not be revealed online in plain text)
- rows:    `Question`, `Correct Answer`, `Incorrect Answer 1`..`3`; optional `Record ID`,
           `Subdomain`, `High-level domain`
- target:  the letter (A-D) of the correct answer after shuffling
- shuffle: the four options are shuffled with a random.Random seeded from a hash of the task
           option `seed` (default 0) and the question text, so an item's order is the same on every
           machine and run, independent of item order, --limit, or anything else using `random`.
- id:      `Record ID` when present, else the row's position
"""

from __future__ import annotations

import hashlib
import random

from harness.tasks.base import Item, Task, letter
from harness.tasks.options import as_int, check_options

_WRONG = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def item_seed(question: str, seed: int) -> int:
    digest = hashlib.sha256(f"gpqa\x00{seed}\x00{question}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class GPQADiamond(Task):
    name = "gpqa_diamond"
    size = 198
    title = "GPQA Diamond (graduate-level science)"
    dataset = "Idavidrein/gpqa"
    config = "gpqa_diamond"
    split = "train"
    paper = "arXiv:2311.12022"
    license = "CC BY 4.0"
    answer_type = "choice"
    required_fields = ("Question", "Correct Answer", *_WRONG)
    gated = True

    def __init__(self, **options):
        opts = check_options(self.name, options, {"seed": as_int})
        super().__init__(**opts)
        self.seed = opts.get("seed", 0)

    def parse(self, row: dict, index: int) -> Item:
        question = str(row["Question"]).strip()
        options = [str(row["Correct Answer"]).strip()] + [str(row[k]).strip() for k in _WRONG]
        order = list(range(4))
        # A private generator: the global `random` state is never read or changed.
        random.Random(item_seed(question, self.seed)).shuffle(order)
        choices = tuple(options[i] for i in order)
        target = letter(order.index(0))  # track the correct option by position, not text
        meta = {"domain": row.get("High-level domain"), "subdomain": row.get("Subdomain")}
        item_id = row.get("Record ID") or str(index)
        return Item(id=str(item_id), question=question, target=target, choices=choices,
                    meta={k: v for k, v in meta.items() if v is not None})
