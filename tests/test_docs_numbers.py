"""Numbers in docs/ that come from a raw file or a computation are checked against it, so a doc
cannot drift from what produced it: the fine-grid interval coverage (docs/intervals.md against
docs/cpu-2026-12-06-interval-coverage-fine.json) and the DeepSeek-V3 training-cost arithmetic
(docs/training-cost.md against harness claims --training on the card)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FINE = DOCS / "cpu-2026-12-06-interval-coverage-fine.json"


def test_fine_grid_coverage_table_matches_its_raw_file():
    cells = json.loads(FINE.read_text())["cells"]
    text = (DOCS / "intervals.md").read_text(encoding="utf-8")
    section = text[text.index("## Coverage near 0 and 1"):]
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)}
    ns = sorted({c["n"] for c in cells})
    assert set(rows) == {c["k"] for c in cells}
    for k, line in rows.items():
        shown = [float(x) for x in re.findall(r"(\d\.\d{3}) \(p=", line)]
        want = [min(c["coverage"] for c in cells if c["k"] == k and c["n"] == n) for n in ns]
        assert shown == pytest.approx(want, abs=5e-4), k
    worst = min(cells, key=lambda c: c["coverage"])
    assert f"lowest coverage {worst['coverage']:.3f}" in section
    assert f"{len(cells)} cells" in section


def test_training_cost_doc_numbers_match_the_arithmetic():
    from harness.cards.loader import find_card
    from harness.training.check import check_training

    doc = check_training(cards=[find_card("deepseek-v3")])
    v3, top = doc["cards"][0], doc["band"]["high"]
    m = next(s for s in v3["stages"] if s["name"] == "pre-training")["mfu"]
    eff = m["effective"]
    hours = 2.664e6
    text = (DOCS / "training-cost.md").read_text(encoding="utf-8")
    for shown in (f"{100 * m['mfu_bf16']:.1f}%", f"{100 * m['mfu_fp8']:.1f}%", f"{100 * eff['mfu']:.1f}% of it",
                  f"{eff['peak'] / 1e12:,.0f} TFLOP/s", f"about {hours * eff['mfu'] / top / 1e6:.2f}M", f"above {100 * top:.1f}%",
                  f"about {hours * eff['mfu'] / 1e6:.2f}M"):
        assert shown in text, f"docs/training-cost.md no longer shows {shown!r}"


def test_hf_speed_table_matches_its_raw_files():
    """docs/benchmarks.md's transformers-vs-lm-eval table and run-1 figures, recomputed from the raw files."""
    import statistics

    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    section = text[text.index("the transformers engine's CPU decoding against lm-eval"):]
    section = section[:section.index("\n## ")] if "\n## " in section else section
    for raw, rows in (("cpu-2026-12-07-hf-speed.json", {"harness": "prepacked linears", "harness-plain": "cpu_prepack=false",
                                                        "lm-eval": "HFLM"}),):
        doc = json.loads((DOCS / raw).read_text())
        walls = doc["walls_s"]
        for engine, label in rows.items():
            line = next(ln for ln in section.splitlines() if ln.startswith("|") and label in ln)
            med = statistics.median(walls[engine])
            paired = statistics.median(a / b for a, b in zip(walls[engine], walls["lm-eval"]))
            assert f"{med:.2f} s" in line and f"{doc['prompts'] * doc['max_new_tokens'] / med:.1f}" in line, line
            if engine != "lm-eval":
                assert f"{med / statistics.median(walls['lm-eval']):.3f}" in line and f"{paired:.3f}" in line, line
    run1 = json.loads((DOCS / "cpu-2026-12-06-hf-speed-run1.json").read_text())
    w = run1["walls_s"]
    for shown in (f"{statistics.median(w['compiled']):.2f} s per pass", f"{run1['ratio_compiled_over_lmeval']:.3f} of lm-eval",
                  f"paired {statistics.median(a / b for a, b in zip(w['compiled'], w['lm-eval'])):.3f}",
                  f"{run1['compile_warmup_s']:.1f} s of compilation", f"at {run1['ratio_harness_over_lmeval']:.3f}",
                  f"paired {statistics.median(a / b for a, b in zip(w['harness'], w['lm-eval'])):.3f}"):
        assert shown in section, shown


def _section(title_part: str) -> str:
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    section = text[text.index(title_part):]
    return section[:section.index("\n## ")] if "\n## " in section else section


def test_greedy_head_and_knobs_figures_match_their_raw_files():
    doc = json.loads((DOCS / "cpu-2026-12-07-greedy-head.json").read_text())
    section = _section("how much of a bfloat16 greedy output the output head's rounding decides")
    for pair in doc["pairs"]:
        assert f"| {pair['a']} vs {pair['b']} | {pair['identical']} | {pair['identical_first_64']} |" in section, pair
    knobs = json.loads((DOCS / "cpu-2026-12-07-hf-knobs.json").read_text())["paired_over_default"]
    hf = _section("the transformers engine's CPU decoding against lm-eval")
    assert f"took {knobs['1 thread']:.3f}x" in hf and f"eager attention instead of SDPA {knobs['eager attention']:.3f}x" in hf


def test_engine_agreement_table_matches_its_raw_file():
    import statistics

    doc = json.loads((DOCS / "cpu-2026-12-07-engine-agreement.json").read_text())
    section = _section("every engine against the others on the real model, 128 tokens")
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "/ 6" not in ln and "---" not in ln]
    assert len(rows) == len(doc["agreement"])
    shown = sorted((int(r.split("|")[2]), int(r.split("|")[3].split("(")[0]), sorted(float(x) for x in re.findall(r"\d\.\d{3}", r)))
                   for r in rows)
    want = sorted((p["identical"], p["near_tie"], sorted(round(d["margin"]["top2_margin"], 3) for d in p["divergences"]))
                  for p in doc["agreement"])
    assert shown == want
    assert all(p["wide_margin"] == 0 and p["n"] == 6 for p in doc["agreement"])
    v = doc["vllm_overhead"]
    assert f"paired **{statistics.median(a / b for a, b in zip(v['harness_s'], v['direct_s'])):.3f}**" in section
    assert f"ratio of medians {v['harness_over_direct']:.3f}" in section
    assert f"**{doc['llamacpp_overhead']['llamacpp'][0]['engine_over_direct']:.3f}**" in section
