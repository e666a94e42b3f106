"""Training cost: FLOPs from config dims, the V3 arithmetic ($5.576M, implied MFU, verdict) and
the measured training step (`harness bench --train`) with its projection.

FLOPs expectations are computed by hand in the comments; the config formula is also checked
against the parameters of models transformers actually builds, so a wrong term in any layout
(GQA, explicit head_dim, MLA, MoE, tied head) fails here.
"""

from __future__ import annotations

import json
import math
import typing

import pytest

from harness.cards import loader as cards
from harness.cards import training as training_card
from harness.cards.loader import find_card
from harness.cli import main
from harness.errors import ConfigError
from harness.training.check import check_card, check_training, load_refs, mfu_band, projection, verdict
from harness.training.flops import attention_flops_per_token, matmul_params, train_flops_per_token

DENSE = {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 740, "tie_word_embeddings": True, "max_position_embeddings": 512}
MOE = {"model_type": "deepseek_v2", "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2,
       "first_k_dense_replace": 1, "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2, "num_attention_heads": 2,
       "num_key_value_heads": 2, "q_lora_rank": None, "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
       "vocab_size": 100, "tie_word_embeddings": False, "max_position_embeddings": 512, "moe_layer_freq": 1, "n_group": 1, "topk_group": 1}


def test_dense_flops_by_hand():
    # head_dim 64/4 = 16. Per layer: q 64*64 = 4096, k and v 2*64*(2*16) = 4096, o 4096 -> 12,288;
    # MLP 3*64*128 = 24,576; two layers 73,728; output head (tied, still a matmul) 64*740 = 47,360.
    assert matmul_params(DENSE)["total"] == 121_088
    # attention at T=128: 6 * L2 * H4 * (16 + 16) * 128 = 196,608
    assert attention_flops_per_token(DENSE, 128) == 196_608
    assert train_flops_per_token(DENSE, 128)["total"] == 6 * 121_088 + 196_608 == 923_136


def test_moe_flops_by_hand():
    # MLA, no q low rank: q 32*2*(8+4) = 768; kv_a 32*(16+4) = 640; kv_b 16*2*(8+8) = 512; o 2*8*32 = 512 -> 2,432 per layer.
    # Layer 0 dense: 3*32*64 = 6,144. Layer 1 MoE: router 32*4 = 128, 2 of 4 experts 2*3*32*16 = 3,072, shared 3*32*16 = 1,536.
    # Head 32*100 = 3,200. Active: 2*2432 + 6144 + 4736 + 3200 = 18,944.
    assert matmul_params(MOE)["total"] == 18_944
    # All experts: layer 1 = 128 + 4*1536 + 1536 = 7,808 -> 4864 + 6144 + 7808 + 3200 = 22,016.
    assert matmul_params(MOE, active=False)["total"] == 22_016
    # attention at T=64: 6 * 2 * 2 * (12 + 8) * 64 = 30,720
    assert train_flops_per_token(MOE, 64)["total"] == 6 * 18_944 + 30_720 == 144_384


_QWEN_MOE = {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_experts": 4, "num_experts_per_tok": 2,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "tie_word_embeddings": False}


@pytest.mark.parametrize("name", ["tiny", "qwen2.5-0.5b-instruct", "qwen3-0.6b", "deepseek-v2-lite-chat", "moe", "qwen2_moe", "qwen3_moe"])
def test_matmul_count_matches_the_built_model(name):
    """Every 2-D weight transformers builds (embedding lookups aside; a tied head counted once more)."""
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, AutoModelForCausalLM

    from harness.training.bench import arch_config

    raw = {"moe": MOE,
           "qwen2_moe": dict(_QWEN_MOE, model_type="qwen2_moe", shared_expert_intermediate_size=48, mlp_only_layers=[0]),
           "qwen3_moe": dict(_QWEN_MOE, model_type="qwen3_moe", head_dim=16)}.get(name) or arch_config(name, 2)[0]
    cfg = AutoConfig.for_model(raw["model_type"], **{k: v for k, v in raw.items() if k != "model_type"})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    built = sum(p.numel() for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n)
    built += raw["hidden_size"] * raw["vocab_size"] if cfg.tie_word_embeddings else 0
    assert matmul_params(raw, active=False)["total"] == built


def test_v3_reproduces_the_published_dollars_and_a_hand_checkable_mfu():
    doc = check_training(cards=[find_card("deepseek-v3")])
    v3 = doc["cards"][0]
    assert v3["stage_hours_sum"] == 2_788_000 and v3["total_usd_assumed"] == pytest.approx(5.576e6) and v3["reproduced"] is True
    pre = next(s for s in v3["stages"] if s["name"] == "pre-training")
    assert pre["usd_assumed"] == pytest.approx(5.328e6)
    m = pre["mfu"]
    # By hand: 6*37e9*14.8e12 = 3.2856e24; attention 6 * 62 layers (61 + 1 MTP) * 128 heads * (192 + 128) * 4096 * 14.8e12
    # = 9.237e23; MTP 6*2.4e9*14.8e12 = 2.131e23. Capacity 2.664e6 h * 3600 s * 989e12 FLOP/s = 9.485e24.
    flops = 6 * 37e9 * 14.8e12 + 6 * 62 * 128 * 320 * 4096 * 14.8e12 + 6 * 2.4e9 * 14.8e12
    assert m["flops"]["total"] == pytest.approx(flops)
    assert m["mfu_bf16"] == pytest.approx(flops / (2.664e6 * 3600 * 989e12)) == pytest.approx(0.4662, abs=1e-3)
    assert m["mfu_fp8"] == pytest.approx(m["mfu_bf16"] * 989 / 1979)
    assert m["dense_only_mfu_bf16"] == pytest.approx(3.2856e24 / 9.48470e24, rel=1e-3)  # 34.6%
    assert m["verdict"] == v3["verdict"] == "plausible"
    # The stated mix (FP8 linear layers, BF16 attention and head), by hand: head 6 * 129280 * 7168 * D twice (MTP has its own).
    head = 6 * 129280 * 7168 * 14.8e12 * 2
    attention = 6 * 62 * 128 * 320 * 4096 * 14.8e12
    seconds = (flops - attention - head) / 1979e12 + (attention + head) / 989e12
    assert m["effective"]["peak"] == pytest.approx(flops / seconds)
    assert m["effective"]["mfu"] == pytest.approx(seconds / (2.664e6 * 3600)) == pytest.approx(0.290, abs=2e-3)


def test_user_price_scales_the_dollars_and_bad_prices_fail():
    v3 = check_training(3.0, cards=[find_card("deepseek-v3")])["cards"][0]
    assert v3["total_usd_at_price"] == pytest.approx(2_788_000 * 3.0)
    for bad in (0, -1, 1e6):
        with pytest.raises(ConfigError, match="price-per-hour"):
            check_training(bad)


def test_verdict_band_and_rules():
    band = mfu_band(load_refs())
    assert all(e["status"] != "UNVERIFIED" and e["kind"] == "full_training" and e["precision"] == "bf16" for e in band["entries"])
    assert band["unverified"] and band["benchmarks"]  # listed, never in the band
    assert band["low"] == min(e["mfu"] for e in band["entries"]) and band["high"] == max(e["mfu"] for e in band["entries"])
    assert verdict(band["high"] + 0.01, band["high"] + 0.2, band)[0] == "implausibly high"
    assert verdict(1.03, 1.12, band)[0] == "implausible"  # above 100% of every peak
    low = verdict(0.01, band["low"] - 0.01, band)
    assert low[0] == "plausible" and "below the published band" in low[1]  # slower costs more: not refuted
    assert verdict(0.01, band["low"] + 0.01, band)[0] == "plausible"
    fp8 = mfu_band(load_refs(), "fp8")
    assert fp8["note"] and "BF16 band is used" in fp8["note"]


def _with_hours(card, hours: float):
    t = card.training
    stages = [s.model_copy(update={"gpu_hours": s.gpu_hours.model_copy(update={"value": hours})}) if s.name == "pre-training" else s
              for s in t.stages]
    return card.model_copy(update={"training": t.model_copy(update={"stages": stages})})


@pytest.mark.parametrize("factor,expected", [(0.1, "implausible"), (0.4, "implausibly high"), (0.6, "implausibly high"),
                                             (0.7, "plausible"), (20.0, "plausible")])
def test_the_same_tokens_in_far_fewer_or_more_gpu_hours_change_the_verdict(factor, expected):
    refs = load_refs()
    card = _with_hours(find_card("deepseek-v3"), 2_664_000 * factor)
    assert check_card(card, refs, mfu_band(refs))["verdict"] == expected


def test_cards_without_compute_figures_are_not_checkable_not_guessed():
    doc = check_training()
    by = {c["card"]: c for c in doc["cards"]}
    assert {"deepseek-v3", "deepseek-r1", "qwen2.5-7b-instruct"} <= set(by)
    assert by["deepseek-r1"]["verdict"] == "not checkable" and by["deepseek-r1"]["total_usd_assumed"] == pytest.approx(294_000)
    assert by["qwen2.5-7b-instruct"]["verdict"] == "not checkable" and by["qwen2.5-7b-instruct"]["total_usd_assumed"] is None


def test_training_schema_rejects_unsourced_numbers_and_keeps_statuses_in_step():
    assert typing.get_args(training_card.Status) == typing.get_args(cards.Status)
    with pytest.raises(ValueError, match="UNVERIFIED"):
        training_card.Figure(value=None, status="verified", source="x")
    with pytest.raises(ValueError):
        training_card.Figure(value=1.0, status="verified", source="x", extra=1)


def test_projection_is_flops_over_the_measured_rate():
    v3 = find_card("deepseek-v3")
    p = projection(v3, 1e12, 1.5)
    assert p["device_hours"] == pytest.approx(p["model_flops"] / 1e12 / 3600)
    assert p["usd"] == pytest.approx(p["device_hours"] * 1.5) and p["published_gpu_hours"] == 2_664_000


def test_cli_claims_training(capsys, tmp_path):
    assert main(["claims", "--training", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "$5.576M" in out and "implied MFU" in out and "PLAUSIBLE" in out and "band" in out
    doc = json.loads((tmp_path / "training_claims.json").read_text())
    assert any(c["card"] == "deepseek-v3" for c in doc["cards"])
    assert main(["claims"]) == 2 and "error:" in capsys.readouterr().err
    assert main(["claims", "--price-per-hour", "2"]) == 2


def test_measured_training_step_writes_result_and_reports(tmp_path, capsys):
    pytest.importorskip("torch")
    rc = main(["bench", "--train", "--model", "random:tiny", "--seq-len", "32", "--micro-batch", "2", "--iterations", "2",
               "--output-dir", str(tmp_path), "--price-per-hour", "1.5"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "MFU" in out and "GPU-hours" in out
    (run,) = list(tmp_path.iterdir())
    d = json.loads((run / "train.json").read_text())
    assert d["kind"] == "train_step" and d["shape"]["tokens_per_step"] == 64
    # random:tiny has DENSE's dims: 6 * 121,088 + 6 * 2 * 4 * (16 + 16) * 32 = 775,680 FLOPs per token at T=32
    assert d["flops"]["per_token"]["total"] == 775_680 and d["flops"]["per_step"] == 775_680 * 64
    assert d["throughput"]["achieved_flops_per_s"] == pytest.approx(d["flops"]["per_step"] / d["timing"]["step_s_median"])
    assert 0 < d["mfu"]["vs_measured_matmul"] and all(math.isfinite(x) for x in d["timing"]["losses"])
    assert d["projection"]["usd"] == pytest.approx(d["projection"]["device_hours"] * 1.5)
    for name in ("report.md", "report.html"):
        assert "GPU-hours" in (run / name).read_text()
        (run / name).unlink()
    assert main(["report", str(run)]) == 0 and "GPU-hours" in (run / "report.html").read_text()  # re-rendered from train.json


def test_measured_moe_step(tmp_path):
    pytest.importorskip("torch")
    from harness.runtime.device import resolve
    from harness.training.bench import measure

    m = measure("moe", dict(MOE, use_cache=False), resolve("cpu", "auto"), "float32", 16, 2, iterations=2, warmup=1)
    assert len(m["step_s"]) == 2 and all(t > 0 for t in m["step_s"]) and all(math.isfinite(x) for x in m["losses"])


@pytest.mark.parametrize("argv,msg", [
    (["bench", "--train", "--model", "Qwen/Qwen2.5-0.5B-Instruct"], "random"),
    (["bench", "--train", "--model", "random:tiny", "--layers", "0"], "--layers"),
    (["bench", "--train", "--model", "random:tiny", "--seq-len", "100000"], "positions"),
    (["bench", "--layers", "2"], "--train"),
    (["bench", "--seq-len", "64"], "--seq-len goes with --train"),
    (["bench", "--train", "--model", "random:tiny", "--dtype", "fp8"], "--dtype"),
    (["bench", "--train", "--model", "random:tiny", "--max-seconds", "0"], "--max-seconds"),
])
def test_train_bench_user_errors_are_one_line(argv, msg, capsys, tmp_path):
    assert main(argv + ["--output-dir", str(tmp_path)] if "--train" in argv else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and msg in err[0]
    assert not any(tmp_path.iterdir())


def test_memory_guard_refuses_before_building(monkeypatch):
    import psutil

    from harness.runtime.device import resolve
    from harness.training.bench import arch_config, check_memory

    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("VM", (), {"available": 2**30})())
    raw, _ = arch_config("qwen2.5-0.5b-instruct", 2)
    with pytest.raises(ConfigError, match="GiB"):
        check_memory(raw, resolve("cpu", "auto"), "float32")


def test_an_unknown_gpu_leaves_the_mfu_unchecked_and_says_why():
    refs = load_refs()
    v3 = find_card("deepseek-v3")
    gpu = v3.training.gpu.model_copy(update={"value": "Ascend 910B"})
    card = v3.model_copy(update={"training": v3.training.model_copy(update={"gpu": gpu})})
    doc = check_card(card, refs, mfu_band(refs))
    assert doc["verdict"] == "not checkable" and doc["reproduced"] is True
    assert "no reference peak for GPU 'Ascend 910B'" in doc["stages"][0]["unchecked"]
