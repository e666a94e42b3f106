"""Prepacked linear layers for the transformers engine on CPU: the same outputs, faster decoding.

PyTorch's plain `F.linear` on CPU hands a bfloat16 weight in its dense layout to oneDNN, which
reorders it into its blocked (AMX/AVX-512) layout on every call. Decoding is a few rows against
every weight of the model, so that reorder is paid once per weight per step. Reordering each
weight once at load time (`torch.ops.mkldnn._reorder_linear_weight`, the same pair of ops that
torch.compile's CPU freezing pass uses) and calling oneDNN on the packed weight
(`torch.ops.mkldnn._linear_pointwise`) removes it: on a 2-core Xeon the Qwen2.5 0.5B decode step
went from 121 to 95 ms at batch 8, with bit-identical outputs (docs/benchmarks.md).

Only what keeps the numbers unchanged is packed: bfloat16/float16 `nn.Linear` layers on the CPU
whose weight is not shared with another module (a tied embedding table is read by lookup) and
that is not the output head (greedy decoding re-scores a few of its rows in float32, head.py),
and only after a probe on the model's own first layer gives bit-identical results to `F.linear`. Anything else, or a torch without these
ops, keeps PyTorch's plain matmul; the decision and its reason go to `info.engine`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.head import output_head

DTYPES = (torch.bfloat16, torch.float16)


class PackedLinear(nn.Module):
    """An `nn.Linear` whose weight is in oneDNN's blocked layout (inference only)."""

    def __init__(self, linear: nn.Linear, batch_hint: int):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), batch_hint), persistent=False)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, oneDNN-packed"


def _why_not(model: nn.Module) -> str | None:
    if not torch.backends.mkldnn.is_available():
        return "this torch has no oneDNN"
    if not all(hasattr(torch.ops.mkldnn, op) for op in ("_reorder_linear_weight", "_linear_pointwise")):
        return "this torch lacks oneDNN's packed-linear ops"
    if getattr(model, "hf_quantizer", None) is not None:
        return "a quantized model"
    return None


def _candidates(model: nn.Module) -> tuple[list[tuple[nn.Module, str, nn.Linear]], int]:
    """(parent, attribute, layer) for every packable linear; and how many were left dense: the output
    head (greedy decoding re-scores its rows in float32, backends/head.py) and weights shared with
    another module."""
    owners: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        owners[p.data_ptr()] = owners.get(p.data_ptr(), 0) + 1
    head = output_head(model)
    found, shared = [], 0
    for parent in model.modules():
        for attr, child in parent.named_children():
            if type(child) is not nn.Linear or child.weight.device.type != "cpu" or child.weight.dtype not in DTYPES:
                continue
            if child is head or owners.get(child.weight.data_ptr(), 0) > 1:
                shared += 1
                continue
            found.append((parent, attr, child))
    return found, shared


def _identical(linear: nn.Linear, batch_hint: int) -> bool:
    """Does the packed call give bit-identical results to F.linear on this layer (decode and prefill shapes)?"""
    packed = PackedLinear(linear, batch_hint)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for rows in (1, batch_hint, 3 * batch_hint + 1):
            x = torch.randn(rows, linear.in_features, generator=gen).to(linear.weight.dtype)
            if not torch.equal(packed(x), F.linear(x, linear.weight, linear.bias)):
                return False
    return True


def prepack(model: nn.Module, batch_hint: int = 8) -> dict[str, Any]:
    """Swap `model`'s packable linears for PackedLinear in place; returns the engine notes to record."""
    problem = _why_not(model)
    found, shared = _candidates(model) if problem is None else ([], 0)
    if problem is None and not found:
        problem = "no bfloat16/float16 linear layer on the CPU to pack"
    if problem is None:
        try:
            same = _identical(found[0][2], batch_hint)
        except RuntimeError as exc:  # an op this oneDNN build cannot run
            problem = f"oneDNN's packed linear failed here ({str(exc).splitlines()[0][:120]})"
        else:
            if not same:
                problem = "oneDNN's packed linear did not reproduce F.linear bit for bit on this machine"
    if problem is not None:
        return {"cpu_prepack": False, "cpu_prepack_reason": f"{problem}: plain matmul"}
    for parent, attr, linear in found:
        setattr(parent, attr, PackedLinear(linear, batch_hint))
    kept = f", {shared} kept dense (the output head, weights shared with another module)" if shared else ""
    return {"cpu_prepack": True,
            "cpu_prepack_reason": f"{len(found)} linear layers reordered once into oneDNN's blocked layout{kept} (bit-identical to F.linear)"}
