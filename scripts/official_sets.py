"""Write harness/data/official_sets.json: each benchmark's official set as hashes only (size, the
set's order-independent sha256, one 64-bit fingerprint per problem, and the source), computed from
the public files with the task's own parser, so the harness can tell the official set, a subset of
it and other data apart without shipping a single problem.

usage: python scripts/official_sets.py DATA_DIR   (DATA_DIR holds gsm8k/, math500/, cmath/ test.jsonl)
Rerun it when a task's parser or harness/tasks/official.py's normalisation changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.tasks.cmath import CMath
from harness.tasks.gsm8k import GSM8K
from harness.tasks.math500 import Math500
from harness.tasks.official import OFFICIAL_SETS, item_hash, set_hash

# task -> (class, file under DATA_DIR, official size, where the set is published). GSM8K's local copy
# holds the first 1000 of its 1319 problems: the set hash stays unknown and membership is checked
# against the 1000 known fingerprints only.
SETS = {
    "math500": (Math500, "math500/test.jsonl", 500, "HuggingFaceH4/MATH-500 split test (PRM800K's MATH-500 subset)"),
    "gsm8k": (GSM8K, "gsm8k/test.jsonl", 1319, "openai/gsm8k config main split test (grade_school_math/data/test.jsonl)"),
    "cmath": (CMath, "cmath/test.jsonl", 600, "weitianwen/cmath cmath_dev.jsonl (= QwenLM/Qwen2.5-Math evaluation/data/cmath/test.jsonl)"),
}


def main(data_dir: Path) -> None:
    out = {}
    for name, (cls, rel, size, source) in SETS.items():
        items = cls().load(data_dir / rel)
        hashes = sorted({item_hash(it.question, it.target) for it in items})
        if len(hashes) != len(items):
            raise SystemExit(f"{name}: {len(items) - len(hashes)} duplicate problems in {rel}")
        complete = len(hashes) == size
        out[name] = {"size": size, "sha256": set_hash(hashes) if complete else None, "source": source,
                     "known": len(hashes), "items": hashes}
        print(f"{name}: {len(hashes)} of {size} problems, set sha256 {out[name]['sha256']}")
    OFFICIAL_SETS.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
