"""harness precision: variant names and builders, the paired statistics (against scipy), the divergence
arithmetic, and a matrix whose variant fails mid-way (kept, listed, resumed alone) on a tiny GGUF."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import tiny_models  # noqa: F401  (fixture)

from harness.errors import ConfigError
from harness.precision import divergence as div
from harness.precision import variants as var
from harness.precision.paired import non_inferiority
from harness.stats import mcnemar, newcombe_paired_ci

scipy_stats = pytest.importorskip("scipy.stats")
needs_llama = pytest.mark.skipif(__import__("importlib").util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")


# ---- names ----------------------------------------------------------------------------------------------

def test_precision_names_parse_in_order_with_kinds():
    vs = var.parse_precisions("bf16, Q8_0,q4_k_m,hf:bf16,torchao:int4wo,fp8")
    assert [v.name for v in vs] == ["bf16", "q8_0", "q4_k_m", "hf:bf16", "torchao:int4wo", "fp8"]
    assert [v.kind for v in vs] == ["gguf", "gguf", "gguf", "hf", "quantize_on_load", "quantize_on_load"]
    assert vs[3].dtype == "bfloat16" and vs[0].engine == "llamacpp" and vs[3].engine == "transformers"


@pytest.mark.parametrize("text, words", [("q4km", "did you mean q4_k_m"), ("bf16,bf16", "twice"), ("", "no precision"),
                                         ("/nope/x.gguf", "does not exist")])
def test_bad_precisions_are_one_clear_error(text, words):
    with pytest.raises(ConfigError, match=words):
        var.parse_precisions(text)


def test_variants_that_cannot_be_built_here_say_why():
    cpu = {v.name: var.unbuildable_reason(v, "cpu") for v in var.parse_precisions("bnb:nf4,bnb:int8,fp8,torchao:int8wo")}
    assert "CUDA" in cpu["bnb:nf4"] and "CUDA" in cpu["bnb:int8"] and "8.9" in cpu["fp8"]
    assert cpu["torchao:int8wo"]  # not installed here, or no quantise-on-load in the pipeline: either way a reason


def test_known_derived_source_is_noted(tmp_path):
    folder = tmp_path / "qwen2.5-coder-0.5b-instruct-bf16"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert any("dequantized from a Q4_K_M" in n for n in var.source_notes(str(folder)))
    other = tmp_path / "m"
    other.mkdir()
    (other / "config.json").write_text("{}")
    assert var.source_notes(str(other)) == []


# ---- paired statistics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("b01, b10", [(0, 0), (3, 0), (5, 2), (1, 9), (12, 11)])
def test_mcnemar_exact_matches_scipy_binomial_test(b01, b10):
    a = [False] * b01 + [True] * b10 + [True] * 7
    b = [True] * b01 + [False] * b10 + [True] * 7
    got = mcnemar(a, b, exact=True)
    want = 1.0 if b01 + b10 == 0 else scipy_stats.binomtest(b01, b01 + b10, 0.5).pvalue
    assert got["b01"] == b01 and got["b10"] == b10
    assert got["p_value"] == pytest.approx(want, rel=1e-12)


def test_non_inferiority_verdicts():
    assert non_inferiority(0.0, (-0.01, 0.01), 1000, 0.02).verdict == "non-inferior"
    assert non_inferiority(-0.10, (-0.14, -0.06), 1000, 0.02).verdict == "inferior"
    beyond = non_inferiority(-0.03, (-0.10, 0.04), 100, 0.02)
    assert beyond.verdict == "inconclusive" and beyond.more_problems_needed is None and "at or beyond" in beyond.text


def test_problems_needed_is_where_newcombe_clears_the_margin():
    table = (5, 1, 0, 2)  # both right, only the reference right, only the variant right, both wrong: 8 problems
    n = sum(table)
    lo, hi = newcombe_paired_ci(table[0], table[2], table[1], table[3])
    diff = (table[2] - table[1]) / n
    ni = non_inferiority(diff, (lo, hi), n, 0.2, table)
    assert ni.verdict == "inconclusive" and ni.problems_needed and ni.more_problems_needed == ni.problems_needed - n

    def lower(total):
        cells = [round(c * total / n) for c in table]
        cells[0] += total - sum(cells)
        return newcombe_paired_ci(cells[0], cells[2], cells[1], cells[3])[0]

    assert lower(ni.problems_needed) > -0.2 >= lower(ni.problems_needed - 1)
    assert "more problems needed" in ni.text


def test_paired_difference_on_rows_matches_scipy(tmp_path):
    from harness.precision.paired import paired_against

    ref_ok = [True, True, False, True, False, True, True, False, True, True]
    var_ok = [True, False, False, True, True, False, True, False, False, True]

    def rows(ok):
        return [{"task": "t", "id": str(i), "sample": 0, "target": "1", "correct": c} for i, c in enumerate(ok)]

    res = paired_against(rows(var_ok), rows(ref_ok), "t", 0.02)
    b01 = sum(1 for v, r in zip(var_ok, ref_ok) if not v and r)
    b10 = sum(1 for v, r in zip(var_ok, ref_ok) if v and not r)
    assert (res["b01"], res["b10"]) == (b01, b10)
    assert res["p_value"] == pytest.approx(scipy_stats.binomtest(b01, b01 + b10, 0.5).pvalue)
    assert res["diff"] == pytest.approx(np.mean(var_ok) - np.mean(ref_ok))
    assert res["table"] == (sum(v and r for v, r in zip(var_ok, ref_ok)), b01, b10, sum(not v and not r for v, r in zip(var_ok, ref_ok)))
    assert res["non_inferiority"].verdict == "inconclusive"


# ---- divergence -----------------------------------------------------------------------------------------

def _logps(rng, positions, vocab, scale=3.0):
    return div.log_softmax(rng.normal(size=(positions, vocab)) * scale)


def test_reference_against_itself_is_exactly_zero_and_kl_matches_scipy():
    rng = np.random.default_rng(0)
    tokens = [[int(x) for x in rng.integers(0, 50, size=9)], [int(x) for x in rng.integers(0, 50, size=5)]]
    ref_rows = [_logps(rng, 8, 50), _logps(rng, 4, 50)]
    ref, own = div.summarize_reference(tokens, iter(ref_rows), k=50)  # K = the whole vocabulary: the full KL
    assert own.kl_mean == 0.0 and own.kl_max == 0.0 and own.same_top_token == 1.0
    assert div.compare(ref, iter(ref_rows)).kl_mean == 0.0
    var_rows = [r + rng.normal(scale=0.3, size=r.shape) for r in ref_rows]
    var_rows = [div.log_softmax(r) for r in var_rows]
    got = div.compare(ref, iter(var_rows))
    want = np.mean([scipy_stats.entropy(np.exp(p), np.exp(q)) for rp, rq in zip(ref_rows, var_rows) for p, q in zip(rp, rq)])
    assert got.kl_mean == pytest.approx(want, rel=1e-4)
    nll = -np.mean([r[i, t[i + 1]] for t, r in zip(tokens, var_rows) for i in range(len(t) - 1)])
    assert got.perplexity == pytest.approx(math.exp(nll), rel=1e-9)


def test_top_k_with_a_bucket_is_a_lower_bound_on_the_full_kl(tmp_path):
    rng = np.random.default_rng(1)
    tokens = [[int(x) for x in rng.integers(0, 400, size=21)]]
    ref_rows = [_logps(rng, 20, 400, scale=1.0)]
    var_rows = [div.log_softmax(ref_rows[0] + rng.normal(scale=0.5, size=(20, 400)))]
    full, _ = div.summarize_reference(tokens, iter(ref_rows), k=400)
    part, _ = div.summarize_reference(tokens, iter(ref_rows), k=16)
    part.save(tmp_path / "r.npz")
    loaded = div.Reference.load(tmp_path / "r.npz")
    assert loaded.tokens == tokens
    exact, bound = div.compare(full, iter(var_rows)).kl_mean, div.compare(loaded, iter(var_rows)).kl_mean
    assert 0 < bound <= exact + 1e-12


# ---- builders on a tiny random Qwen2 converted to GGUF ----------------------------------------------------

@needs_llama
@pytest.mark.slow
def test_gguf_builders_convert_quantize_and_cache(tiny_models, tmp_path, monkeypatch):  # noqa: F811
    from harness.backends.gguf_file import read_header

    monkeypatch.setenv("HARNESS_PRECISION_CACHE", str(tmp_path / "cache"))
    src = str(tiny_models.qwen_dir)
    fp = var.fingerprint(src)
    built = {v.name: var.build(v, src, fp, "cpu") for v in var.parse_precisions("bf16,q8_0,q4_0,hf:f32")}
    assert built["hf:f32"].backend == "transformers" and built["hf:f32"].model == str(Path(src).resolve())
    sizes = {n: read_header(b.model).tensor_bytes for n, b in built.items() if b.backend == "llamacpp"}
    assert sizes["bf16"] > sizes["q8_0"] > sizes["q4_0"]
    assert 8.0 < built["q8_0"].bits_per_weight < 9.5  # Q8_0 is 8.5 bits a weight where every tensor takes it
    assert not built["q8_0"].cached and "llama_model_quantize" in built["q8_0"].derived_from
    stamp = Path(built["q8_0"].model).stat().st_mtime_ns
    again = var.build(var.parse_one("q8_0"), src, fp, "cpu")
    assert again.cached and again.model == built["q8_0"].model and Path(again.model).stat().st_mtime_ns == stamp
    meta = json.loads(Path(built["q8_0"].model).with_suffix(".json").read_text())
    assert meta["fingerprint"] == fp and meta["precision"] == "q8_0"


# ---- a matrix with a variant that fails mid-way, then resumed -----------------------------------------------

@needs_llama
@pytest.mark.slow
def test_failed_variant_is_kept_listed_and_resumed_alone(tiny_models, tmp_path, monkeypatch, shared):  # noqa: F811
    from harness.precision import matrix as mx
    from harness.precision.assemble import sample_keys
    from harness.results.store import all_samples

    monkeypatch.setenv("HARNESS_PRECISION_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "d.jsonl"
    data.write_text("".join((shared / "data" / "gsm8k" / "test.jsonl").read_text().splitlines(keepends=True)[:3]))
    values = {"model": str(tiny_models.qwen_dir), "tasks": ["gsm8k"], "data_files": {"gsm8k": str(data)}, "max_new_tokens": 6,
              "temperature": 0.0, "device": "cpu", "quiet": True, "n_threads": 1, "warmup": 0}
    spec = mx.new_spec(values, "f32,q8_0,q4_0,torchao:int8wo", None, 0.02, None)
    folder = mx.open_folder(spec, str(tmp_path / "out"))
    calls: list[str] = []
    failing = {"q8_0"}
    real_run, real_quantize = mx.run_variant, var.quantize

    def flaky(argv, log):
        target = json.loads(Path(argv[1]).read_text())["model"] if argv[0] == "--config" else argv[1]
        calls.append(target)
        if any(f in target for f in failing):
            return 1, "error: injected failure"
        return real_run(argv, log)

    monkeypatch.setattr(mx, "run_variant", flaky)
    first = mx.run_matrix(spec, folder, log=lambda *a, **k: None)
    rows = {r.precision: r for r in first.rows}
    assert first.status == "partial" and rows["q8_0"].status == "failed" and "injected" in rows["q8_0"].reason
    assert rows["f32"].status == rows["q4_0"].status == "complete"
    assert rows["torchao:int8wo"].status == "not_buildable" and rows["torchao:int8wo"].reason
    assert rows["torchao:int8wo"].tasks["gsm8k"].accuracy is None and "not measured" in rows["torchao:int8wo"].divergence.note
    assert any(m.startswith("q8_0: failed") for m in first.missing) and any(m.startswith("torchao:int8wo") for m in first.missing)
    assert rows["f32"].divergence.kl_divergence_mean == 0.0 and rows["q4_0"].divergence.kl_divergence_mean > 0
    on_disk = json.loads((folder / "matrix.json").read_text())
    assert on_disk["status"] == "partial" and len(on_disk["rows"]) == 4

    failing.clear()
    built: list[str] = []
    monkeypatch.setattr(var, "quantize", lambda *a, **k: built.append(str(a[2])) or real_quantize(*a, **k))
    calls.clear()
    resumed = mx.run_matrix(mx.Spec.load(folder), folder, log=lambda *a, **k: None)
    rows = {r.precision: r for r in resumed.rows}
    assert built == [] and len(calls) == 1 and "q8_0" in calls[0]  # only the missing run; every build came from the cache
    assert rows["q8_0"].status == "complete" and rows["q8_0"].tasks["gsm8k"].paired is not None
    assert rows["q8_0"].tasks["gsm8k"].paired.mcnemar is not None
    assert resumed.missing == [m for m in resumed.missing if m.startswith("torchao:int8wo")]
    keys = [sample_keys(all_samples(Path(rows[n].run_dir))) for n in ("f32", "q8_0", "q4_0")]
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 3 and resumed.same_items_and_seeds is True
    assert {k[3] for k in keys[0]} and all(k[3] is not None for k in keys[0])  # seeds recorded, and equal across variants
    assert (folder / "report.html").read_text().count("<img") == 2


@needs_llama
@pytest.mark.slow
def test_transformers_and_llama_cpp_logprobs_agree_on_the_same_f32_weights(tiny_models):  # noqa: F811
    texts = div.load_texts()
    tokens = div.tokenize(str(tiny_models.gguf), "llamacpp", texts.texts[:2])
    assert tokens == div.tokenize(str(tiny_models.qwen_dir), "transformers", texts.texts[:2])
    ref, own = div.summarize_reference(tokens, div.variant_logprobs(str(tiny_models.gguf), "llamacpp", None, tokens, 1))
    assert own.kl_mean == 0.0
    hf = div.compare(ref, div.variant_logprobs(str(tiny_models.qwen_dir), "transformers", "float32", tokens))
    assert hf.kl_mean < 1e-3 and hf.same_top_token > 0.95  # one set of weights, two engines: float32 noise only


def test_matrix_schema_round_trips(tmp_path):
    from harness.precision.schema import MatrixResult, Row, load_matrix

    m = MatrixResult(status="partial", created_utc="2026-12-06T00:00:00Z", model="m", source_fingerprint="f", reference="bf16",
                     margin=0.02, tasks=["gsm8k"], kl_method="x", kl_texts="y",
                     rows=[Row(precision="fp8", status="not_buildable", reason="needs CUDA", kind="quantize_on_load", engine="transformers")],
                     missing=["fp8: not_buildable (needs CUDA)"])
    p = tmp_path / "matrix.json"
    p.write_text(json.dumps(m.model_dump(mode="json")))
    assert load_matrix(p) == m
    bad = m.model_dump(mode="json") | {"schema_version": "9.0"}
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="schema"):
        load_matrix(p)


def test_quantization_claims_file_is_valid_and_cites_defined_sources():
    from harness.precision.claims import load_claims

    data = load_claims()
    assert {c.id for c in data.claims} >= {"nm-r1-distill-int4-recovers-97-at-7b-and-up", "nm-r1-distill-qwen-1.5b-int4-recovers-about-94"}
    assert all(c.status in ("verified", "secondary", "derived") for c in data.claims)


def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    from harness.cli import main

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert main(["precision", "--model", str(folder), "--tasks", "gsm8k"]) == 2
    assert "needs --precisions" in capsys.readouterr().err
    assert main(["precision", "--model", str(folder), "--precisions", "q9_9", "--tasks", "gsm8k"]) == 2
    assert "unknown precision" in capsys.readouterr().err
    assert main(["precision", "--model", str(folder), "--precisions", "bf16", "--reference", "q8_0", "--tasks", "gsm8k"]) == 2
    assert "not among --precisions" in capsys.readouterr().err
    assert not list(tmp_path.glob("results*")) and not (Path(os.getcwd()) / "results" / "precision_m").exists()
