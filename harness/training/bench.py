"""`harness bench --train`: a measured training step (forward + backward + AdamW) on this device.

Builds a `random:<name>` architecture (the real config, random weights; `--layers` overrides the
depth so a large model fits a small machine, and the override is stated everywhere), feeds random
token ids of `--micro-batch` x `--seq-len` with the inputs as labels, and times `--iterations`
full steps after `--warmup` excluded ones, synchronising the device around each. Model FLOPs per
step come from harness/training/flops.py (6 N_active + attention, the convention behind published MFU), so
    achieved FLOP/s = model FLOPs per step / median step time
    MFU = achieved / peak, against the peak matmul rate measured here (a square matmul in the same
          dtype) and against the device's published dense peak where one is known.
The projection then asks what DeepSeek-V3's pre-training (model_cards/deepseek-v3.yaml) would
take at this achieved rate: device-hours and dollars, beside the published GPU-hours.
Writes <output-dir>/<stamp>_train_<name>/train.json (schema below, in results/README.md) with
report.md and report.html rendered from it.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError

SCHEMA_VERSION = "1.0"
MAX_TOKENS_PER_STEP = 1 << 20
DEFAULT_SEQ_LEN, DEFAULT_MICRO_BATCH = 128, 2
DEFAULT_BUDGET_S = 20.0  # timed steps stop after this much time (at least one step runs)


def _check_args(args) -> str:
    args.seq_len = DEFAULT_SEQ_LEN if args.seq_len is None else args.seq_len
    args.micro_batch = DEFAULT_MICRO_BATCH if args.micro_batch is None else args.micro_batch
    model = str(args.model or "")
    if not parse_spec(model).is_random:
        raise ConfigError(f"--train builds a random-weight architecture, got --model {model!r}", "pass --model random:<name> (see `harness list models`)")
    for flag, v, lo in (("--layers", args.layers, 1), ("--seq-len", args.seq_len, 2), ("--micro-batch", args.micro_batch, 1),
                        ("--iterations", args.iterations, 1), ("--warmup", args.warmup, 0)):
        if v is not None and v < lo:
            raise ConfigError(f"{flag} must be >= {lo}, got {v}", f"e.g. {flag} {max(lo, 2)}")
    if args.seq_len * args.micro_batch > MAX_TOKENS_PER_STEP:
        raise ConfigError(f"--seq-len x --micro-batch = {args.seq_len * args.micro_batch} tokens per step is over {MAX_TOKENS_PER_STEP}",
                          "use a smaller --seq-len or --micro-batch")
    if args.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ConfigError(f"--train trains in auto, float32, bfloat16 or float16, got --dtype {args.dtype!r}", "e.g. --dtype bfloat16")
    if getattr(args, "max_seconds", None) is not None and not (0 < args.max_seconds <= 3600):
        raise ConfigError(f"--max-seconds must be in (0, 3600], got {args.max_seconds}", "e.g. --max-seconds 20")
    if args.price_per_hour is not None and not (0 < args.price_per_hour <= 1000):
        raise ConfigError(f"--price-per-hour must be in (0, 1000] USD per hour, got {args.price_per_hour}", "e.g. --price-per-hour 2.5")
    return parse_spec(model).name


def arch_config(name: str, layers: int | None) -> tuple[dict, list[str]]:
    """The random:<name> config dict with the depth override applied, and the overrides stated."""
    from harness.backends.models import arch_dict, random_config

    raw = arch_dict(random_config(name))
    overrides = []
    if layers is not None and layers != raw.get("num_hidden_layers"):
        overrides.append(f"num_hidden_layers {raw.get('num_hidden_layers')} -> {layers} (--layers)")
        raw = arch_dict(raw, layers)
    raw["use_cache"] = False
    return raw, overrides


def measure_matmul_peak(device, dtype, n: int | None = None, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n x n matmul (2 n^3 FLOPs) in this dtype on this device."""
    import torch

    from harness.measure.roofline import sync_device

    n = n or (1024 if device.type == "cpu" else 8192)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: kernel selection, first touch
    best = float("inf")
    for _ in range(max(1, repeats)):
        sync_device(device)
        t0 = time.perf_counter()
        a @ b
        sync_device(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def check_memory(raw: dict, dev, dtype_name: str) -> int:
    """Bytes the weights, gradients and AdamW's two states need (4 copies in the training dtype);
    ConfigError when that is over 90% of the memory free on the device, before anything is built."""
    from harness.training.flops import matmul_params

    h, vocab = int(raw["hidden_size"]), int(raw["vocab_size"])
    params = matmul_params(raw, active=False)["total"] + (0 if raw.get("tie_word_embeddings") else h * vocab)
    need = params * 4 * {"float32": 4, "bfloat16": 2, "float16": 2}.get(dtype_name, 4)
    free = None
    if dev.type == "cpu":
        import psutil

        free = psutil.virtual_memory().available
    elif dev.type == "cuda":
        import torch

        free = torch.cuda.mem_get_info(dev.index or 0)[0]
    if free is not None and need > 0.9 * free:
        raise ConfigError(f"training {params / 1e9:.2f}B parameters in {dtype_name} needs about {need / 2**30:.1f} GiB for weights, "
                          f"gradients and AdamW states; {free / 2**30:.1f} GiB is free on {dev.type}",
                          "use fewer --layers, a smaller model or a bigger device")
    return need


def _train_dtype(dev, requested: str) -> tuple[str, str]:
    if requested != "auto":
        return requested, f"requested: {requested}"
    if dev.type == "cpu":
        return "float32", "auto: float32 on CPU (weights, gradients and AdamW states in full precision)"
    return "bfloat16", f"auto: bfloat16 on {dev.type} (pure bf16 weights and AdamW; no fp32 master copy)"


def measure(name: str, raw: dict, dev, dtype_name: str, seq_len: int, micro_batch: int, iterations: int, warmup: int,
            max_seconds: float = DEFAULT_BUDGET_S, seed: int = 0) -> dict:
    """Build the model and time its training steps; returns the measurement part of train.json.

    Times up to `iterations` steps, stopping early (after at least one) once the timed steps add up
    to `max_seconds`, so a slow or busy machine still finishes; the count timed is recorded."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.backends.models import hf_config
    from harness.measure.memory import device_peak, host_peak_rss_bytes, reset_device_peak
    from harness.measure.roofline import sync_device

    cfg = hf_config(raw)
    dtype = getattr(torch, dtype_name)
    device = torch.device(dev.torch_device)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with device:
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.train()
    build_s = time.perf_counter() - t0
    try:  # the fused kernel is one pass over the weights where the device has it (CUDA, and CPU in recent torch)
        opt, fused = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True), True
    except (RuntimeError, TypeError, ValueError):
        opt, fused = torch.optim.AdamW(model.parameters(), lr=1e-5), False
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, int(raw["vocab_size"]), (micro_batch, seq_len), generator=gen).to(device)
    reset_device_peak(dev.type, [dev.index] if dev.index is not None else None)

    def step() -> float:
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out.loss.detach())

    for _ in range(warmup):
        step()
    times, losses = [], []
    for _ in range(iterations):
        sync_device(device)
        t = time.perf_counter()
        losses.append(step())
        sync_device(device)
        times.append(time.perf_counter() - t)
        if sum(times) >= max_seconds:
            break
    params = sum(p.numel() for p in model.parameters())
    peak = device_peak(dev.type, [dev.index] if dev.index is not None else None)
    return {"build_s": build_s, "fused_adamw": fused, "step_s": times, "step_s_median": statistics.median(times), "losses": losses, "num_parameters": params,
            "memory": {"host_peak_rss_bytes": host_peak_rss_bytes(), "device_peak": peak,
                       "note": "host peak RSS is the whole process's high-water mark (model build included)"}}


def run_train_bench(args) -> int:
    from harness.cards.loader import find_card
    from harness.runtime import device as devices
    from harness.training.check import gpu_peak, load_refs, projection
    from harness.training.flops import matmul_params, train_flops_per_token

    name = _check_args(args)
    raw, overrides = arch_config(name, args.layers)
    max_pos = raw.get("max_position_embeddings")
    if max_pos and args.seq_len > int(max_pos):
        raise ConfigError(f"--seq-len {args.seq_len} is over random:{name}'s {max_pos} positions", f"use --seq-len {max_pos} or less")
    dev = devices.resolve(args.device, "auto")
    dtype_name, dtype_reason = _train_dtype(dev, args.dtype)
    import torch

    check_memory(raw, dev, dtype_name)
    fl = train_flops_per_token(raw, args.seq_len)
    tokens_per_step = args.seq_len * args.micro_batch
    flops_per_step = fl["total"] * tokens_per_step
    budget = args.max_seconds if getattr(args, "max_seconds", None) is not None else DEFAULT_BUDGET_S
    try:
        m = measure(name, raw, dev, dtype_name, args.seq_len, args.micro_batch, args.iterations, args.warmup, budget)
    except torch.OutOfMemoryError:
        raise ConfigError(f"a training step of random:{name} at micro-batch {args.micro_batch} x seq-len {args.seq_len} ran out of "
                          f"{dev.type} memory", "use a smaller --micro-batch, --seq-len or --layers") from None
    achieved = flops_per_step / m["step_s_median"]
    matmul_peak = measure_matmul_peak(torch.device(dev.torch_device), getattr(torch, dtype_name))
    published = None
    if dev.type == "cuda":
        hit = gpu_peak(dev.name, load_refs())
        if hit and dtype_name in ("bfloat16", "float16"):
            published = {"gpu": hit[0], "flops": hit[1].bf16_dense_flops, "source": hit[1].source, "status": hit[1].status, "precision": "bf16 dense"}
    published_note = None if published else (f"no published dense peak in harness/data/training_refs.yaml for {dev.name} in {dtype_name}")
    active = matmul_params(raw)
    everything = matmul_params(raw, active=False)
    v3 = find_card("deepseek-v3")
    proj = projection(v3, achieved, args.price_per_hour)
    if proj is not None:
        proj["device"] = dev.type
    doc = {
        "schema_version": SCHEMA_VERSION, "kind": "train_step", "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {"name": f"random:{name}", "model_type": raw["model_type"], "random_weights": True, "overrides": overrides,
                  "num_hidden_layers": raw["num_hidden_layers"], "num_parameters": m["num_parameters"],
                  "active_matmul_params": active["total"], "all_matmul_params": everything["total"], "moe": active["total"] != everything["total"]},
        "device": {"type": dev.type, "name": dev.name, "reason": dev.device_reason, "dtype": dtype_name, "dtype_reason": dtype_reason},
        "shape": {"seq_len": args.seq_len, "micro_batch": args.micro_batch, "tokens_per_step": tokens_per_step},
        "timing": {"warmup_steps": args.warmup, "timed_steps": len(m["step_s"]), "requested_steps": args.iterations, "budget_s": budget,
                   "fused_adamw": m["fused_adamw"], "build_s": m["build_s"], "step_s": m["step_s"],
                   "step_s_median": m["step_s_median"], "losses": m["losses"]},
        "flops": {"per_token": fl, "per_step": flops_per_step, "method": "6 x active matmul weights + 6 L H (d_qk + d_v) T (harness/training/flops.py)"},
        "throughput": {"tokens_per_s": tokens_per_step / m["step_s_median"], "achieved_flops_per_s": achieved},
        "peak": {"measured_matmul_flops_per_s": matmul_peak, "measured_method": f"best of 5 square matmuls in {dtype_name}",
                 "published": published, "published_note": published_note},
        "mfu": {"vs_measured_matmul": achieved / matmul_peak, "vs_published": achieved / published["flops"] if published else None},
        "memory": m["memory"], "projection": proj,
    }
    out_root = Path(args.output_dir or "results")
    run_dir = out_root / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}_train_{name}"
    from harness.training.report import render_text, write_reports

    write_reports(run_dir, doc)
    print(render_text(doc) + f"wrote {run_dir / 'train.json'}, report.md, report.html")
    return 0


def load_result(run_dir: Path) -> dict:
    """A `--train` folder's train.json, or ConfigError naming the file."""
    path = Path(run_dir) / "train.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path} ({e})", "re-run `harness bench --train`") from None
    if not isinstance(doc, dict) or doc.get("kind") != "train_step":
        raise ConfigError(f"{path} is not a `harness bench --train` result", "pass a folder written by `harness bench --train`")
    return doc
