"""One home per formula: harness/core/architecture.py counts parameters, active parameters, KV bytes and
the bytes a decoding step reads for every shipped config (dense, GQA, MLA, MoE); the memory estimate,
the plan's engine reads, the roofline and the training FLOPs all agree with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.core import architecture as arch
from harness.training.flops import matmul_params as flops_matmul_params

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "harness" / "data" / "configs").glob("*.json"))

# A Qwen3-MoE-shaped config (Qwen3-30B-A3B's values): 128 experts, 8 active, every layer sparse.
QWEN3_MOE = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048, "num_hidden_layers": 48,
             "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "intermediate_size": 6144,
             "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "vocab_size": 151936,
             "tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": [], "torch_dtype": "bfloat16"}


def _card_exact() -> list[tuple[str, dict, int]]:
    out = []
    for path in sorted((ROOT / "model_cards").glob("*.yaml")):
        card = yaml.safe_load(path.read_text())
        name = (card.get("architecture") or {}).get("config_file")
        if name and (card.get("parameters") or {}).get("exact"):
            out.append((path.stem, json.loads((ROOT / "harness" / "data" / "configs" / name).read_text()), card["parameters"]["exact"]))
    return out


@pytest.mark.parametrize("name, config, exact", _card_exact(), ids=lambda x: x if isinstance(x, str) else "")
def test_parameter_count_matches_every_cards_published_count(name, config, exact):
    # dense Qwen2/2.5 (q/k/v biases), Qwen3 (q/k norms, own head_dim), Llama (no biases), DeepSeek-V2 (MLA + MoE)
    assert arch.count_parameters(config) == exact


def test_every_card_with_a_count_is_checked():
    assert len(_card_exact()) >= 10


@pytest.mark.parametrize("path", CONFIGS + ["qwen3-moe"], ids=lambda p: getattr(p, "stem", p))
def test_every_formula_agrees_on_every_shipped_config(path):
    """Totals, roles, matmul weights and bytes per step are one computation seen several ways."""
    config = QWEN3_MOE if path == "qwen3-moe" else json.loads(path.read_text())
    counts = arch.parameter_counts(config)
    total, active = counts["total"], arch.active_parameters(config)
    assert arch.count_parameters(config) == total
    assert 0 < active <= total
    assert (active < total) == (counts["experts"] > counts["experts_per_token"] > 0)
    # the training FLOPs' weights: every matmul (active=False) plus the lookup table, norms and biases
    every = flops_matmul_params(config, active=False)
    h, layers = config["hidden_size"], config["num_hidden_layers"]
    norms_and_biases = layers * (2 * h + arch.attention_params(config) - arch.attention_matmul_params(config)) + h
    router_bias = counts["moe_layers"] * counts["experts"] if config.get("topk_method") == "noaux_tc" else 0
    lookup_table = 0 if counts["tied"] else counts["embedding"]  # a tied table is the head the matmuls already count
    assert total - every["total"] == norms_and_biases + router_bias + lookup_table
    # a step at batch 1 reads the active weights, the embedding row instead of the table (a tied head reads it as logits)
    layout = arch.weight_layout(config, 1)
    expected = active - counts["embedding"] + counts["embedding_row"] + (counts["embedding"] if counts["tied"] else 0)
    assert layout.read_per_step(1) == pytest.approx(expected)
    assert layout.read_per_step(1) <= layout.read_per_step(64) <= total + (counts["embedding"] if counts["tied"] else 0)


def test_qwen3_moe_counts_every_expert():
    """The issue's example: 3.34 B counted before (the dense MLP width) where the model has 30.5 B."""
    total = arch.count_parameters(QWEN3_MOE)
    assert total == pytest.approx(30.53e9, rel=0.002)
    assert arch.active_parameters(QWEN3_MOE) == pytest.approx(3.35e9, rel=0.01)


def test_moe_layer_selection_follows_the_config():
    dense_first = {**QWEN3_MOE, "mlp_only_layers": [0, 1]}
    sparse_every_other = {**QWEN3_MOE, "decoder_sparse_step": 2}
    assert arch.parameter_counts(dense_first)["moe_layers"] == 46
    assert arch.parameter_counts(sparse_every_other)["moe_layers"] == 24
    deepseek = json.loads((ROOT / "harness" / "data" / "configs" / "deepseek-v2-lite-chat.json").read_text())
    assert arch.parameter_counts(deepseek)["moe_layers"] == deepseek["num_hidden_layers"] - deepseek["first_k_dense_replace"]


def test_count_parameters_is_none_without_the_shape():
    assert arch.count_parameters({"hidden_size": 8}) is None


def test_the_plan_reads_per_step_what_the_roofline_reads(tmp_path):
    """The plan's engine estimate and the run's roofline use the same bytes per step (DeepSeek-V2-Lite: the
    plan once assumed all 15.7 B parameters, 6.4x the 2.4 B a step reads)."""
    from harness.planning import engines

    config = json.loads((ROOT / "harness" / "data" / "configs" / "deepseek-v2-lite-chat.json").read_text())
    params = arch.count_parameters(config)
    memory = {"weights": params * 2, "kv_per_token": 10, "dtype": "bfloat16"}
    reads = engines.reads("transformers", {"gguf": None, "config": config}, memory, "bfloat16", 1)
    assert reads.weights == int(arch.weight_layout(config, 2).read_per_step(1))
    assert reads.weights < memory["weights"] / 4


def test_the_qwen3_moe_plan_refuses_on_a_machine_it_does_not_fit(tmp_path):
    """`harness plan` on a Qwen3-MoE folder counts ~30.5 B parameters (57 GiB in bf16) and refuses here
    unless the machine has that much memory."""
    import subprocess
    import sys

    from harness.planning.estimate import host_available

    (tmp_path / "moe").mkdir()
    (tmp_path / "moe" / "config.json").write_text(json.dumps(QWEN3_MOE))
    proc = subprocess.run([sys.executable, "-m", "harness", "plan", "--model", str(tmp_path / "moe"), "--tasks", "synthetic", "--limit", "2",
                           "--dtype", "bfloat16", "--device", "cpu"], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HARNESS_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)})
    text = proc.stdout + proc.stderr
    assert "bfloat16 weights 56.9 GiB" in text, text[-2000:]  # 30.5 B parameters x 2 bytes
    available, _ = host_available()
    if available is not None and available < 57 * 2**30:
        assert "does not fit" in text.lower() and "a run would stop here" in text, text[-2000:]
