"""Prepacked linear layers for the transformers engine on CPU: faster decoding, the same results at
decoding shapes.

PyTorch's plain `F.linear` on CPU hands a bfloat16 weight in its dense layout to oneDNN, which
reorders it into its blocked (AMX/AVX-512) layout on every call. Decoding is a few rows against
every weight of the model, so that reorder is paid once per weight per step. Reordering each
weight once at load time (`torch.ops.mkldnn._reorder_linear_weight`, the same pair of ops that
torch.compile's CPU freezing pass uses) and calling oneDNN on the packed weight
(`torch.ops.mkldnn._linear_pointwise`) removes it: Qwen2.5 0.5B, 16 GSM8K prompts x 256 tokens at
batch 8 on a 2-core Xeon ran in 0.81 of the plain engine's time (docs/benchmarks.md).

Packed: bfloat16/float16 `nn.Linear` layers on the CPU whose weight no other module shares (a tied
embedding table is read by lookup). The output head is packed as a copy beside its dense weight
(the embedding or greedy re-scoring, head.py, reads the dense rows) where that copy is a small share
of the free memory, and left dense otherwise. Only after a probe on the model's own first layer
gives bit-identical results to `F.linear` at decoding shapes (1 to 3 x batch + 1 rows); a long
prefill (hundreds of rows) may get another oneDNN kernel for a packed weight than for a dense one,
which moves bfloat16 rounding as a different batch composition does. Anything else, or a torch
without these ops, keeps PyTorch's plain matmul; the decision and its reason go to `info.engine`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.backends.head import output_head

DTYPES = (torch.bfloat16, torch.float16)
HEAD_COPY_FREE_SHARE = 8  # pack the head as a copy only where it is at most 1/8 of the free memory


def _reorder(weight: torch.Tensor, batch_hint: int) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight, batch_hint)


class PackedLinear(nn.Module):
    """An `nn.Linear` whose weight is in oneDNN's blocked layout (inference only). `keep_dense` keeps
    the dense weight as `weight` too (the output head: its rows are re-scored in float32, head.py)."""

    def __init__(self, linear: nn.Linear, batch_hint: int, keep_dense: bool = False):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("packed", _reorder(linear.weight.detach(), batch_hint), persistent=False)
        self.bias = linear.bias
        if keep_dense:
            self.weight = linear.weight

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


Place = tuple[nn.Module, str, nn.Linear]  # (parent, attribute, layer)


def _candidates(model: nn.Module) -> tuple[list[Place], Place | None, int]:
    """Every packable linear but the output head; the head's place when it is packable; and how many
    linears stay dense because another module shares their weight."""
    owners: dict[int, int] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        owners[p.data_ptr()] = owners.get(p.data_ptr(), 0) + 1
    head = output_head(model)
    found: list[Place] = []
    packable_head: Place | None = None
    shared = 0
    for parent in model.modules():
        for attr, child in parent.named_children():
            if type(child) is not nn.Linear or child.weight.device.type != "cpu" or child.weight.dtype not in DTYPES:
                continue
            if child is head:
                packable_head = (parent, attr, child)
            elif owners.get(child.weight.data_ptr(), 0) > 1:
                shared += 1
            else:
                found.append((parent, attr, child))
    return found, packable_head, shared


def _head_copy_fits(head: nn.Linear) -> bool:
    """A packed copy of the head (its dense weight stays: the embedding lookups or head.py read it) only
    where it is a small share of the free memory, and of the address space left under a ulimit -v."""
    import psutil

    free = psutil.virtual_memory().available
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        limit = -1
    if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
        free = min(free, limit - psutil.Process().memory_info().vms)
    return head.weight.numel() * head.weight.element_size() * HEAD_COPY_FREE_SHARE <= free


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
    found, head, shared = _candidates(model) if problem is None else ([], None, 0)
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
    total, done = len(found), 0
    while found:  # pop as we go: a replaced layer's dense weight is freed at once, so memory never holds both copies
        parent, attr, linear = found.pop()
        try:
            packed = PackedLinear(linear, batch_hint)
        except RuntimeError as exc:  # out of memory (or a limit) part-way: the rest stay dense, and say so
            return {"cpu_prepack": done > 0, "cpu_prepack_reason": f"{done} of {total} linear layers packed, then oneDNN's "
                    f"reorder failed ({str(exc).splitlines()[0][:120]}): the rest use plain matmul"}
        setattr(parent, attr, packed)
        del linear, packed
        done += 1
    notes: dict[str, Any] = {"cpu_prepack": True}
    what = f"{total} linear layers reordered once into oneDNN's blocked layout"
    if head is not None and _head_copy_fits(head[2]):
        parent, attr, linear = head
        setattr(parent, attr, PackedLinear(linear, batch_hint, keep_dense=True))
        notes["cpu_prepack_head_copy_bytes"] = linear.weight.numel() * linear.weight.element_size()
        what += f", the output head packed as a copy beside its dense weight (+{notes['cpu_prepack_head_copy_bytes'] / 2**20:.0f} MiB)"
    elif head is not None:
        what += f", the output head dense (a packed copy would take over 1/{HEAD_COPY_FREE_SHARE} of the free memory)"
    if shared:
        what += f", {shared} sharing a weight with another module dense"
    notes["cpu_prepack_reason"] = what + "; same results as F.linear at decoding shapes (probed)"
    return notes

