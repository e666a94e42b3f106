"""Which data a run measured: each benchmark's official set (its size and a content hash over its
normalised items, with the source) and how a run's items relate to it.

An item's fingerprint is the sha256 of its normalised question and target (Unicode NFKC, runs of
white space collapsed, ends stripped); the set's hash is the sha256 of its items' fingerprints in
sorted order, so the same problems in another order are the same set. Only the hashes live in the
harness (harness/data/official_sets.json, made by scripts/official_sets.py from the public files);
never the problems.

`data_identity` classifies a run's items against the official set:
- "official": every official problem, in any order;
- "sample": a seeded uniform sample of it (`--sample N`), which may support a verdict;
- "subset": some of its problems chosen otherwise (`--limit`, a hand-picked file, a narrowing task
  option), which may not: a benchmark file is often ordered (AIME by exam and problem number);
- "other": problems that are not in the official set at all;
- "unknown": the harness records no official set for this task (or only part of it, and the run's
  items lie outside the part it knows).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypedDict

OFFICIAL_SETS = Path(__file__).resolve().parent.parent / "data" / "official_sets.json"
ITEM_HASH_CHARS = 16  # 64 bits per item: collisions among a few thousand problems are negligible

Selection = Literal["official", "sample", "subset", "other", "unknown"]


class DataRecord(TypedDict, total=False):
    """run.json `tasks.<task>.data`: the items a run measured, against the official set."""

    selection: Selection
    n: int  # problems run
    n_official: int | None  # problems in the official set
    n_matched: int  # run items found in the official set
    sha256: str  # the run's items, order-independent
    official_sha256: str | None
    source: str | None  # where the official set is published
    how: str  # how the items were chosen: "all", "--limit N", "--sample N (seed S)", "task option ..."
    seed: int | None  # --sample's seed
    detail: str  # the sentence a reader sees


@dataclass(frozen=True)
class OfficialSet:
    """A benchmark's official set: size, set hash (None when only part is known), item hashes known."""

    task: str
    size: int
    sha256: str | None
    items: frozenset[str]
    source: str

    @property
    def complete(self) -> bool:
        return len(self.items) == self.size


def normalise(text: str) -> str:
    """The form an item is hashed in: NFKC, white space collapsed, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).split())


def item_hash(question: str, target: str) -> str:
    """The fingerprint of one problem (question and target, normalised)."""
    raw = normalise(question) + "\x1f" + normalise(target)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:ITEM_HASH_CHARS]


def set_hash(hashes: Iterable[str]) -> str:
    """Order-independent hash of a set of item fingerprints."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode("ascii")).hexdigest()


@lru_cache(maxsize=1)
def _table() -> dict[str, dict]:
    if not OFFICIAL_SETS.is_file():
        return {}
    return json.loads(OFFICIAL_SETS.read_text(encoding="utf-8"))


def official_set(task: str) -> OfficialSet | None:
    """The recorded official set of `task`, or None when the harness records none."""
    row = _table().get(task)
    if row is None:
        return None
    return OfficialSet(task, int(row["size"]), row.get("sha256"), frozenset(row["items"]), row["source"])


def _set(record: DataRecord, selection: Selection, detail: str) -> None:
    record["selection"], record["detail"] = selection, detail


def data_identity(task: str, pairs: list[tuple[str, str]], *, how: str = "all", seed: int | None = None,
                  sampled: bool = False, narrowed: str | None = None, population: list[tuple[str, str]] | None = None) -> DataRecord:
    """Classify the (question, target) `pairs` a run measured against `task`'s official set.

    `how` says how they were chosen (for the record); `sampled` marks a seeded uniform sample drawn
    from `population` (the items it was drawn from, which must themselves be the official set for the
    sample to count); `narrowed` names a task option that narrowed or changed the set.
    """
    hashes = [item_hash(q, t) for q, t in pairs]
    record: DataRecord = {"n": len(hashes), "sha256": set_hash(hashes), "how": how, "seed": seed}
    off = official_set(task)
    if off is None:
        record["n_official"], record["n_matched"], record["official_sha256"], record["source"] = None, 0, None, None
        if narrowed or how.startswith("--limit"):  # the first rows or a narrowed set are part of a benchmark, whatever it is
            _set(record, "subset", f"{len(hashes)} problems ({narrowed or how}); the official {task} set is not recorded")
        else:
            _set(record, "unknown", f"the harness records no official set for {task}: the data's identity is not checked")
        return record
    matched = sum(h in off.items for h in set(hashes))
    record["n_official"], record["n_matched"], record["official_sha256"], record["source"] = off.size, matched, off.sha256, off.source
    unmatched = len(set(hashes)) - matched
    if narrowed:
        _set(record, "subset", f"{len(hashes)} of {off.size} problems: {narrowed}")
        return record
    if unmatched and (off.complete or unmatched > off.size - len(off.items)):
        _set(record, "other", f"{unmatched} of the {len(hashes)} problems are not in the official {task} set "
                                                f"({off.size} problems, {off.source})")
        return record
    if unmatched:  # only part of the official set is recorded and these items lie outside it
        _set(record, "unknown", f"{unmatched} of the {len(hashes)} problems lie outside the part of the official "
                                                  f"{task} set the harness records ({len(off.items)} of {off.size}): not checked")
        return record
    if len(set(hashes)) == len(hashes) == off.size and (off.sha256 is None or record["sha256"] == off.sha256):
        _set(record, "official", f"the official {task} set ({off.size} problems, {off.source})")
        return record
    if sampled:
        base = data_identity(task, population, how="all") if population is not None else None
        if base is not None and base["selection"] == "official":
            _set(record, "sample", f"{len(hashes)} of {off.size} problems, a uniform sample (seed {seed})")
            return record
        _set(record, "subset", f"{len(hashes)} of {off.size} problems, sampled from data that is not the whole official set")
        return record
    _set(record, "subset", f"{len(hashes)} of {off.size} problems ({how})")
    return record
