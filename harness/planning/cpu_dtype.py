"""`--dtype auto` on CPU for the transformers engine: the dtype that generates faster, decided from a
short real generation of the model's own architecture, not from a matmul microbenchmark.

Why: prefill is compute-bound and decode memory-bound, so a matmul timing (which favoured
float32 4x on a 2-core EPYC VM) can pick the dtype that generates 2x slower (bfloat16 decoded a
real 0.5B Qwen2.5 at 11.9 vs 6.3 tok/s there). The probe builds the architecture with random
weights cut to a few layers (embedding, attention, MLP and LM head at full size:
the per-token cost per layer and of the head is what differs between dtypes), generates a fixed
number of tokens after a short prompt in float32 and in bfloat16 at two depths, scales the
per-layer cost to the full depth, and keeps the faster. A model whose config is not at hand
before loading (a Hub id not downloaded yet, a GGUF), or whose probe would itself need too much
memory, is timed on a stand-in architecture (STAND_IN), which still measures how this CPU
generates in each dtype. The decision and its
measurements are cached per CPU model, torch version and architecture shape.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from harness.core.spec import parse as parse_spec

LAYERS = 2
METHOD = "generation timed at 2 and 4 layers, 3 interleaved repeats, scaled to full depth"  # part of the cache key: a new method re-measures
PROMPT_TOKENS = 32
CACHE = "cpu_dtype_generation.json"
STAND_IN = "qwen2.5-0.5b-instruct"  # timed when the model's own config is not at hand
NEW_TOKENS = 16
SHAPE_KEYS = ("model_type", "hidden_size", "intermediate_size", "moe_intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "vocab_size", "n_routed_experts", "num_experts", "num_experts_per_tok",
              "kv_lora_rank", "q_lora_rank", "tie_word_embeddings")


def refine(dev, cfg, arch: dict | None = None, *, measure: bool = False):
    """The DeviceChoice with the dtype a decoding measurement picked, where that applies (CPU, dtype
    auto, transformers, an architecture config at hand: `arch`, else read from the model spec);
    otherwise `dev` unchanged. Without a cached measurement and without `measure`, nothing is timed
    (a plan stays instant): the memory-cheaper bfloat16, and the reason names the measurement that
    would decide and how to take it. A probe that would itself need too much memory is skipped, and says so."""
    from harness.backends import backend_for

    if dev.type != "cpu" or cfg.dtype != "auto" or (cfg.backend if cfg.backend != "auto" else backend_for(cfg.model)) != "transformers":
        return dev
    arch = arch or architecture(cfg.model)
    why_stand_in = f"no config of {cfg.model} at hand before loading" if arch is None else _probe_too_big(arch)
    if why_stand_in:  # a known architecture's generation still says how this CPU decodes in each dtype
        from harness.backends.models import random_config

        arch = random_config(STAND_IN)
        too_big = _probe_too_big(arch)
        if too_big:
            return replace(dev, dtype="bfloat16", dtype_reason=f"auto: bfloat16, the memory-cheaper dtype; generation not timed: {why_stand_in}, and {too_big}")
    assert arch is not None  # a missing architecture sets why_stand_in, which replaces it with the stand-in's
    hit = cached(arch)
    if hit is None and not measure:
        by_profile = _from_profile(arch, dev.name)
        if by_profile is not None:
            return replace(dev, dtype=by_profile[0], dtype_reason=by_profile[1])
        return replace(dev, dtype="bfloat16", dtype_reason=(
            "auto: bfloat16, the memory-cheaper dtype: which dtype generates faster on this CPU is not measured yet "
            f"(it would time {REPEATS} interleaved generations of {NEW_TOKENS} tokens in float32 and bfloat16 at {LAYERS} and "
            f"{2 * LAYERS} layers of this architecture, about a minute; `harness plan --calibrate` takes it, or pass --dtype)"))
    dtype, reason, measured = hit if hit is not None else decide(arch)
    if why_stand_in:
        reason += f" ({why_stand_in}: timed on {STAND_IN}'s architecture instead)"
    return replace(dev, dtype=dtype, dtype_reason=reason, dtype_measurements=measured)


PROFILE_MARGIN = 1.5  # the profile's predicted speed-up that counts as beyond its error (its fits are within ~2x)


def _from_profile(arch: dict, device_name: str) -> tuple[str, str] | None:
    """Without a probe of this architecture: the dtype this machine's measured profile (planning/timing.py,
    fitted on real generations of random models in both dtypes) predicts faster by more than
    PROFILE_MARGIN, else bfloat16, the memory-cheaper one; None without a profile with both dtypes."""
    from harness.core.architecture import count_parameters
    from harness.planning import timing

    prof, source = timing.load_profile(device_name)
    params = count_parameters(arch)
    if prof is None or not params or not {"float32", "bfloat16"} <= set(prof.rates):
        return None
    per = {}
    for dtype in ("float32", "bfloat16"):
        job = timing.job_for({"config": arch, "params": params}, dtype, 1, 1, PROMPT_TOKENS, NEW_TOKENS, 0, True, "transformers")
        if job is None:
            return None
        phases = timing.physics(job, prof, prof.rates[dtype])
        per[dtype] = phases["prefill"] + phases["decode"]
    ratio = per["bfloat16"] / per["float32"]
    pick = "float32" if ratio > PROFILE_MARGIN else "bfloat16"
    why = ("float32 predicted faster by more than that" if pick == "float32" else
           "no difference beyond that, so bfloat16, the memory-cheaper dtype")
    return pick, (f"auto: {pick}: this architecture not timed yet; this machine's measured profile ({source}) predicts "
                  f"float32 {NEW_TOKENS / per['float32']:.2g} vs bfloat16 {NEW_TOKENS / per['bfloat16']:.2g} tok/s at batch 1 "
                  f"({ratio:.2f}x; a decision needs {PROFILE_MARGIN}x): {why}; `harness plan --calibrate` times it (about a minute)")


PROBE_MEMORY_SHARE = 0.25  # of the memory available: the probe model in float32, at its deeper depth


def _probe_too_big(arch: dict) -> str | None:
    """Why the probe model (the architecture at 2 * LAYERS layers, float32) would not fit comfortably, or None."""
    from harness.core.architecture import count_parameters
    from harness.planning.estimate import device_available, human_bytes

    sub = arch.get("text_config")
    text: dict = sub if isinstance(sub, dict) else arch
    params = count_parameters({**text, "num_hidden_layers": min(2 * LAYERS, int(text.get("num_hidden_layers") or LAYERS))})
    available, _ = device_available("cpu", None)
    if params is None or available is None or params * 4 <= PROBE_MEMORY_SHARE * available:
        return None
    return (f"a {2 * LAYERS}-layer float32 probe of this architecture needs {human_bytes(params * 4)}, more than "
            f"{PROBE_MEMORY_SHARE:.0%} of the {human_bytes(available)} available")


def architecture(spec: str) -> dict | None:
    """The config dict of a random: model or a local folder; None for anything else (GGUF, Hub ids
    not in the cache): then the matmul-based choice stands, and says so."""
    from harness.backends.models import random_config

    parsed = parse_spec(spec)
    if parsed.is_random:
        try:
            return random_config(parsed.name)
        except Exception:
            return None
    path = Path(spec).expanduser() / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


def shape_key(arch: dict) -> str:
    sub = arch.get("text_config")
    text: dict = sub if isinstance(sub, dict) else arch
    return json.dumps({k: text.get(k) for k in SHAPE_KEYS if text.get(k) is not None}, sort_keys=True)


def _key(arch: dict) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from harness.runtime.device import cpu_name

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "none"
    return f"{METHOD} | {cpu_name()} | torch {torch_version} | {shape_key(arch)}"


def cached(arch: dict, load: float | None = None) -> tuple[str, str, dict] | None:
    """The cached decision for this CPU, torch and shape (None when none, or when it was taken on a
    busy machine that is quieter now)."""
    from harness.runtime.cache import cache_dir, load_per_core, recall

    path = cache_dir() / CACHE
    hit = recall(path, _key(arch), {"dtype", "reason", "measured"}, load if load is not None else load_per_core())
    return (hit["dtype"], f"{hit['reason']} (cached in {path})", hit["measured"]) if hit else None


def decide(arch: dict, measure=None, load: float | None = None) -> tuple[str, str, dict]:
    """(dtype, reason, measurements), from the cache when this CPU, torch and shape were measured
    (unless that was on a busy machine and it is quieter now: `load`, the load per core, else read).
    A dtype wins only when its slowest repeat beats the other's fastest (the difference is larger
    than the noise); otherwise bfloat16, the memory-cheaper one."""
    from harness.runtime.cache import BUSY_LOAD, cache_dir, load_per_core, remember

    path = cache_dir() / CACHE
    load = load if load is not None else load_per_core()
    hit = cached(arch, load)
    if hit:
        return hit
    measured = (measure or measure_generation)(arch)
    dtypes = measured["dtypes"]
    spread = {k: v.get("spread_tokens_per_s") or [v["tokens_per_s"]] for k, v in dtypes.items()}  # one timing: no spread known
    detail = ", ".join(f"{k} {v['tokens_per_s']:.1f} tok/s (repeats {min(spread[k]):.1f}-{max(spread[k]):.1f})" for k, v in dtypes.items())
    f32, b16 = spread["float32"], spread["bfloat16"]
    if min(f32) > max(b16):
        best, verdict = "float32", "float32 is faster beyond the noise"
    elif min(b16) > max(f32):
        best, verdict = "bfloat16", "bfloat16 is faster beyond the noise"
    else:
        best, verdict = "bfloat16", "the repeats overlap (no difference beyond the noise), so bfloat16, the memory-cheaper dtype"
    reason = (f"auto: generation timed on this CPU at {measured['layers_timed']} of {measured['layers']} layers of this "
              f"architecture (prompt {PROMPT_TOKENS}, {NEW_TOKENS} new tokens, {REPEATS} interleaved repeats), scaled to the full depth: "
              f"{detail}; {verdict}")
    if measured.get("note"):
        reason += f"; {measured['note']}"
    if load is not None and load > BUSY_LOAD:
        reason += f" (timed at load {load:.1f} per core: the rates are low, re-timed once the machine is quieter)"
    remember(path, _key(arch), {"dtype": best, "reason": reason, "measured": measured}, load)
    return best, reason, measured


REPEATS = 3


def measure_generation(arch: dict) -> dict:
    """Generation time of NEW_TOKENS after a PROMPT_TOKENS prompt at batch 1, in float32 and bfloat16,
    on the architecture cut to LAYERS and to 2 * LAYERS layers, REPEATS times with the dtypes
    interleaved (a burst of load slows both, not one). Per repeat, the difference between the depths
    is the cost of LAYERS layers, the rest the embedding and head, scaled to the full depth:
    t(full) = t(short) + (layers - LAYERS) * per-layer cost. A per-layer cost that comes out negative
    (the deeper model timed faster: noise) is not clamped into a fast figure: that repeat scales
    the short model's time per layer instead, and the note says so."""
    import torch

    layers = int(arch.get("num_hidden_layers") or LAYERS)
    depths = sorted({min(LAYERS, layers), min(2 * LAYERS, layers)})
    timed = {d: _time_depth(arch, d, torch) for d in depths}  # depth -> dtype -> [seconds per repeat]
    out = {}
    negatives = 0
    for name in ("float32", "bfloat16"):
        fulls = []
        for i in range(REPEATS):
            short = timed[depths[0]][name][i]
            if len(depths) > 1:
                per_layer = (timed[depths[-1]][name][i] - short) / (depths[-1] - depths[0])
                if per_layer <= 0:
                    negatives += 1
                    per_layer = short / depths[0]  # an upper bound: the whole short model's time per layer
            else:
                per_layer = 0.0
            fulls.append(short + (layers - depths[0]) * per_layer)
        fulls.sort()
        mid = fulls[len(fulls) // 2]
        out[name] = {"s": mid, "tokens_per_s": NEW_TOKENS / mid, "spread_tokens_per_s": [NEW_TOKENS / f for f in fulls],
                     "timed_s": {str(d): timed[d][name] for d in depths}}
    note = (f"{negatives} repeat(s) timed the deeper model faster (noise): scaled by the short model's whole time per layer instead"
            if negatives else None)
    return {"layers": layers, "layers_timed": "+".join(map(str, depths)), "prompt_tokens": PROMPT_TOKENS, "new_tokens": NEW_TOKENS,
            "batch": 1, "repeats": REPEATS, "dtypes": out, **({"note": note} if note else {})}


def _time_depth(arch: dict, depth: int, torch) -> dict[str, list[float]]:
    from transformers import AutoModelForCausalLM, GenerationConfig

    from harness.backends.models import arch_dict, hf_config

    config = hf_config(arch_dict(arch, depth))
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    models = {"float32": base, "bfloat16": AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval().to(torch.bfloat16)}
    ids = torch.randint(0, min(config.get_text_config().vocab_size, 1000), (1, PROMPT_TOKENS))
    gen = GenerationConfig(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0, eos_token_id=None)
    warm = GenerationConfig(max_new_tokens=2, do_sample=False, pad_token_id=0, eos_token_id=None)
    out: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=warm)
        for i in range(REPEATS):
            for name in (("float32", "bfloat16") if i % 2 == 0 else ("bfloat16", "float32")):  # interleaved, order alternating
                t0 = time.perf_counter()
                models[name].generate(ids, attention_mask=torch.ones_like(ids), generation_config=gen)
                out[name].append(time.perf_counter() - t0)
    del models, base
    return out
