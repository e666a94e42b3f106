"""`harness diff`: pairing two runs sample by sample, refusing runs of different work, and the
divergence margin re-scored with a real (tiny, random) transformers model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, run_result, tiny_model_folder, write_jsonl

from harness.diff import diff_runs, first_divergence
from harness.errors import ConfigError

SETTINGS = {"protocol": "qwen", "temperature": 0.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 32, "num_samples": 1, "seed": 1234}


def _run(folder: Path, rows: list[dict], *, model: str = "m", backend: str = "transformers", settings: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    run = run_result(model={"name_or_path": model, "backend": backend},
                     tasks={"gsm8k": {"n": len(rows), "k": 1, "metrics": {}, "settings": settings or SETTINGS}})
    (folder / "run.json").write_text(run.model_dump_json(), encoding="utf-8")
    write_jsonl(folder / "samples.jsonl", rows)
    return folder


def _row(i: int, output: str, correct: bool, **extra) -> dict:
    return {"task": "gsm8k", "id": str(i), "sample": 0, "prompt": f"question {i}", "output": output, "correct": correct,
            "output_tokens": len(output.split()), "finish_reason": "eos", "ttft_s": 0.1, "tpot_s": 0.02, **extra}


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert first_divergence([1, 2], [1, 2, 3]) == 2
    assert first_divergence("abc", "abd") == 2


def test_pairs_counts_flips_and_ratios(tmp_path, capsys):
    a = _run(tmp_path / "a", [_row(0, "same text", True), _row(1, "one two", True), _row(2, "x", False),
                              _row(3, "y z", False, finish_reason="length")])
    b = _run(tmp_path / "b", [_row(0, "same text", True, ttft_s=0.2, tpot_s=0.04), _row(1, "one three", False, ttft_s=0.2, tpot_s=0.04),
                              _row(2, "w", True, ttft_s=0.2, tpot_s=0.04), _row(3, "y z", False, ttft_s=0.2, tpot_s=0.04)], backend="vllm")
    d = diff_runs(a, b, rescore=False)
    assert (d.n, d.identical, d.correct_a, d.correct_b) == (4, 2, 2, 2)
    assert d.mcnemar["b10"] == 1 and d.mcnemar["b01"] == 1 and d.mcnemar["p_value"] == 1.0
    assert d.truncated_a == 1 and d.truncated_b == 0
    assert d.ttft_ratio_b_over_a == pytest.approx(2.0) and d.tpot_ratio_b_over_a == pytest.approx(2.0)
    diverged = [p for p in d.pairs if not p.identical]
    assert [p.diverge_at for p in diverged] == [5, 0] and all(p.unit == "character" for p in diverged)
    assert d.margin_unknown == 2 and "margin unknown" in (diverged[0].margin_unknown or "")

    out_dir = tmp_path / "out"
    code, out, err = run_cli(["diff", str(a), str(b), "--no-rescore", "--output-dir", str(out_dir)], capsys)
    assert code == 0, err
    assert "identical outputs: 2/4" in out and "McNemar exact p = 1" in out
    saved = json.loads((out_dir / "diff.json").read_text())
    assert saved["identical"] == 2 and len(saved["pairs"]) == 4
    assert "identical" in (out_dir / "diff.html").read_text()


def test_html_escapes_model_text(tmp_path):
    from harness.diff import render_html

    a = _run(tmp_path / "a", [_row(0, "<script>alert(1)</script>", False)])
    b = _run(tmp_path / "b", [_row(0, "<b>bold</b>", False)])
    page = render_html(diff_runs(a, b, rescore=False))
    assert "<script>" not in page and "<b>bold" not in page


@pytest.mark.parametrize("change, words", [
    ({"rows": [_row(0, "a", True)]}, "different items"),
    ({"rows": [_row(0, "a", True, prompt="another prompt"), _row(1, "b", True)]}, "different prompts"),
    ({"rows": [_row(0, "a", True, prompt='[{"role": "user", "content": "q0"}]'), _row(1, "b", True)]},
     "run B recorded its prompts as chat messages"),
    ({"settings": {**SETTINGS, "max_new_tokens": 16}}, "max_new_tokens 32 vs 16"),
    ({"settings": {**SETTINGS, "protocol": "plain"}}, "protocol 'qwen' vs 'plain'"),
])
def test_refuses_runs_of_different_work(tmp_path, capsys, change, words):
    a = _run(tmp_path / "a", [_row(0, "a", True), _row(1, "b", True)])
    b = _run(tmp_path / "b", change.get("rows", [_row(0, "a", True), _row(1, "b", True)]), settings=change.get("settings"))
    with pytest.raises(ConfigError, match=words):
        diff_runs(a, b, rescore=False)
    code, out, err = run_cli(["diff", str(a), str(b), "--no-rescore"], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("diff_*"))  # nothing half-written


def test_margin_is_rescored_with_the_reference_model(tmp_path):
    """The divergence margin is the reference model's log-probabilities of both tokens after the shared prefix."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = tiny_model_folder(tmp_path / "model")
    tok = AutoTokenizer.from_pretrained(model_dir)
    a = _run(tmp_path / "a", [_row(0, "The answer is 12", True)], model=str(model_dir))
    b = _run(tmp_path / "b", [_row(0, "The answer was 12", False)], model=str(model_dir), backend="vllm")
    d = diff_runs(a, b)
    pair = d.pairs[0]
    ids_a = tok.encode("The answer is 12", add_special_tokens=False)
    ids_b = tok.encode("The answer was 12", add_special_tokens=False)
    i = first_divergence(ids_a, ids_b)
    assert pair.unit == "token" and pair.diverge_at == i and pair.margin is not None
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([tok.encode("question 0", add_special_tokens=False) + ids_a[:i]])).logits[0, -1]
    logp = torch.log_softmax(logits.float(), -1)
    assert pair.margin["logprob_a"] == pytest.approx(float(logp[ids_a[i]]), abs=1e-4)
    assert pair.margin["logprob_b"] == pytest.approx(float(logp[ids_b[i]]), abs=1e-4)
    assert pair.margin["near_tie"] == (abs(pair.margin["logprob_a"] - pair.margin["logprob_b"]) <= d.near_tie_nats)
    assert d.reference and str(model_dir) in d.reference
