"""Time per engine for the plan, before any model loads, and which engine decodes faster here.

Decoding is memory-bound: every step reads the weights once for the whole batch plus each
sequence's KV cache, so an engine's speed bound is bandwidth over the bytes *it* reads, and those
differ by engine for the same model. llama.cpp decodes straight from a GGUF's stored (often
quantized) tensors, one request at a time, with an f16 KV cache; transformers (and vLLM) dequantize
a GGUF to the run's dtype and read parameters x that dtype's width, once per batch. A rate measured
by an earlier run of the same model here replaces the bound whenever one exists.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from harness.core.architecture import dtype_bytes, weight_layout
from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError
from harness.planning import estimate as est

# Bits per weight of the GGUF types a CPU user would pick, from llama.cpp's quantize table
# (tools/quantize: Q8_0 8.50 bpw; Q4_K_M 4.89 bpw on Llama-3-8B, a mix of Q4_K and Q6_K).
GGUF_OFFERS = (("Q8_0", 8.5), ("Q4_K_M", 4.89))
LLAMACPP_KV_BYTES = 2  # llama.cpp's KV cache is f16 (backends/llamacpp.KV_CACHE_BYTES_PER_VALUE)
INSTALL_LLAMACPP = "pip install 'cnllm-harness[llamacpp]'"
UPPER_BOUND = "an upper bound on speed"
# What the roofline speed is on a device kind where the measured copy bandwidth is known to sit well
# below what an engine can stream: on a 2-core EPYC VM llama.cpp decoded at an effective 33.5 GB/s of
# weights while a torch copy measured 26.7 GB/s on the quiet machine (docs/benchmarks.md, 2026-11-29),
# so on a CPU the figure is an estimate, not a bound, and the plan's time is not a minimum.
ROOFLINE_KIND = {"cpu": ("an estimate, not a bound: on a CPU a torch copy does not reach the memory's peak (on a 2-core VM "
                         "llama.cpp streamed weights at 34 GB/s where the copy measured 27 GB/s, docs/benchmarks.md)")}


@dataclass(frozen=True)
class Reads:
    """What one decoding step of an engine reads: the weights once, the KV cache per sequence."""

    weights: int
    kv_per_token: int
    batch: int
    what: str

    def speed(self, gbps: float, context: float) -> float | None:
        return est.roofline_speed(gbps, self.weights, self.kv_per_token, context, self.batch)


def reads(engine: str, shape: dict, memory: dict | None, dtype: str, batch: int) -> Reads | None:
    """The bytes `engine` reads per step for this model: a GGUF's tensors as stored on llama.cpp,
    parameters x the run dtype's width elsewhere. llama.cpp runs at batch 1 (its engine's limit)."""
    gguf = shape.get("gguf")
    if gguf is not None and gguf.parameters:
        if engine == "llamacpp":
            return Reads(gguf.tensor_bytes, gguf.kv_bytes_per_token(LLAMACPP_KV_BYTES) or 0, 1, "GGUF tensors as stored")
        width = dtype_bytes(dtype)
        return Reads(gguf.parameters * width, gguf.kv_bytes_per_token(width) or 0, batch, f"{dtype} weights dequantized from the GGUF")
    if memory and memory.get("weights"):
        b = 1 if engine == "llamacpp" else batch
        config = shape.get("config")
        try:  # the weights a step reads: looked-up embedding rows and the experts the batch chose, not every weight
            weights = int(weight_layout(config, dtype_bytes(memory["dtype"])).read_per_step(b)) if config else memory["weights"]
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            weights = memory["weights"]
        return Reads(weights, memory["kv_per_token"], b, f"{memory['dtype']} weights")
    return None


def candidates(model: str, device_type: str) -> list[str]:
    """The engines `--backend auto` could run this model with here."""
    spec = parse_spec(model)
    if spec.is_served:
        return [spec.kind]
    names = ["transformers"]
    if spec.is_gguf and importlib.util.find_spec("llama_cpp"):
        names.append("llamacpp")
    if device_type == "cuda" and not spec.is_random and importlib.util.find_spec("vllm"):
        names.append("vllm")
    return names


def twins(model: str) -> list[str]:
    """`model` and its random-weights twin (same architecture, so the same speed): a card's Hub id
    and random:<the card's config name>."""
    from harness.backends.models import random_names

    names = [model]
    try:
        from harness.cards.loader import list_cards

        cards = list_cards()
    except ConfigError:
        return names
    randoms = set(random_names())
    for c in cards:
        stem = (c.architecture.config_file or "").removesuffix(".json")
        if not c.hub_id or stem not in randoms:
            continue
        if model.lower() == c.hub_id.lower():
            names.append(f"random:{stem}")
        elif model in (f"random:{stem}", f"random:{stem.removesuffix('-instruct')}"):
            names.append(c.hub_id)
    return names


def bandwidth(dev) -> tuple[float | None, str]:
    """The device's memory bandwidth as measured before (cached); a plan measures nothing itself.
    A --target device: its published figure."""
    from harness.planning.targets import TARGETS
    from harness.runtime.cache import cache_dir, read_cache

    for t in TARGETS.values():
        if t.name == dev.name and t.bandwidth_gbps:
            return t.bandwidth_gbps, f"published: {t.source}"
    hit = read_cache(cache_dir() / "bandwidth.json").get(f"{dev.type}:{dev.name}")
    if isinstance(hit, dict) and hit.get("gbps"):
        return float(hit["gbps"]), f"measured {hit.get('measured_utc', '')} (cached in {cache_dir() / 'bandwidth.json'})"
    return None, "not measured yet (`harness env` measures it)"


class EngineEstimates:
    """The per-engine estimate for one Preflight (`pre`: device, memory, tasks, price)."""

    def __init__(self, cfg, pre, shape: dict, batch: int, context: int):
        self.cfg, self.pre, self.shape, self.batch = cfg, pre, shape, batch
        self.context = context - max((t["max_new_tokens"] for t in pre.tasks), default=0) / 2  # mean context while decoding
        self._gbps: tuple[float | None, str] | None = None

    def reads(self, engine: str) -> Reads | None:
        return reads(engine, self.shape, self.pre.memory, self.pre.device.dtype, self.batch)

    def previous(self, engine: str) -> dict | None:
        from pathlib import Path

        # no earlier run: no need to read every card for the model's random-weights twin
        names = twins(self.cfg.model) if any(Path(self.cfg.output_dir).glob("*/run.json")) else [self.cfg.model]
        return est.previous_speed(self.cfg.output_dir, names, self.pre.device.name, engine)

    def gbps(self) -> tuple[float | None, str]:
        if self._gbps is None:
            self._gbps = bandwidth(self.pre.device)
        return self._gbps

    def rows(self) -> list[dict]:
        """Time and dollars for each engine that could run this model here."""
        cfg, pre = self.cfg, self.pre
        names = [cfg.backend] if cfg.backend != "auto" else candidates(cfg.model, pre.device.type)
        tokens = sum(t["requests"] * t["expected_tokens"] for t in pre.tasks)
        price, _ = pre.price
        out = []
        for name in names:
            speed, source, bound = None, "unknown", False
            prev, r = self.previous(name), self.reads(name)
            if prev:
                speed, source = prev["tokens_per_s"], f"earlier run {prev['run']}" + (
                    f" of {prev['model']}, the same architecture" if prev["model"] != cfg.model else "")
            elif r is not None:
                gbps, bw_source = self.gbps()
                if gbps:
                    speed, bound = r.speed(gbps, self.context), pre.device.type not in ROOFLINE_KIND
                    source = (f"bandwidth roofline at batch {r.batch} ({gbps:.0f} GB/s, {bw_source}; {est.human_bytes(r.weights)} of "
                              f"{r.what} read per step): {ROOFLINE_KIND.get(pre.device.type, UPPER_BOUND)}")
            seconds = tokens / speed if speed else None
            whole = self.whole_run(name, seconds)
            runs = len(cfg.think_budgets or ()) or 1
            if whole is not None and runs > 1:  # --think-budgets: one generation per budget, the model loaded once
                gen = sum(whole.phases.get(k, 0.0) for k in ("warmup", "prefill", "decode"))
                extra = (runs - 1) * gen
                whole.expected_s += extra
                whole.range_s = (whole.range_s[0] + extra * whole.range_s[0] / max(whole.expected_s - extra, 1e-9),
                                 whole.range_s[1] + extra * whole.range_s[1] / max(whole.expected_s - extra, 1e-9))
                whole.phases = {k: (v * runs if k in ("warmup", "prefill", "decode") else v) for k, v in whole.phases.items()}
                whole.notes.append(f"{runs} runs, one per thinking budget, each planned at the full token cap (a budget caps thinking, "
                                   "so smaller budgets take less)")
            if whole is not None:
                seconds, bound = whole.expected_s, False
                speed = tokens / (whole.phases.get("decode", 0) + whole.phases.get("prefill", 0)) if tokens and whole.phases.get("decode") else speed
                source = "; ".join(f"{k}: {v}" for k, v in whole.sources.items() if k in ("decode", "startup"))
            usd, usd_range = None, None
            if seconds is not None and price is not None and self.priced:
                usd = seconds / 3600 * price
                usd_range = [x / 3600 * price for x in whole.range_s] if whole is not None else None
            out.append({"engine": name, "tokens_per_s": speed, "speed_source": source, "seconds": seconds,
                        "speed_is_upper_bound": bound,  # then the time is a minimum
                        "weight_bytes": r.weights if r else None, "time": whole.asdict() if whole is not None else None,
                        "usd": usd, "usd_range": usd_range})
        return out

    @property
    def priced(self) -> bool:
        """The price is for the device the time is for (an --instance renting another device is not applied)."""
        return getattr(self.pre, "price_applies", True)

    def whole_run(self, engine: str, decode_s: float | None):
        """The whole run's time (start-up, load, warm-up, prefill, decode) from planning/timing.py: on a
        --target device from its published figures, on this CPU with transformers from the measured
        profile and earlier runs; other engines: their decode time plus this machine's start-up and load."""
        from harness.planning import timing

        job = self.job(engine)
        if job is None:
            return None
        target = getattr(self.pre, "target", None)
        if target is not None:
            from harness.planning.targets import estimate_target

            return estimate_target(job, target, self.pre.local_name or self.pre.device.name)
        if self.pre.device.type == "cpu" and engine == "transformers":
            return timing.estimate_cpu(job, self.pre.device.name)
        return None

    def job(self, engine: str):
        from harness.planning import timing

        pre, tasks = self.pre, self.pre.tasks
        requests = sum(t["requests"] for t in tasks)
        if not requests or not self.shape.get("params"):
            return None
        new = sum(t["requests"] * t["expected_tokens"] for t in tasks) / requests
        batch = self.batch if engine != "llamacpp" else 1
        return timing.job_for(self.shape, pre.device.dtype, batch, requests, getattr(pre, "prompt_mean", 128.0), new,
                              int(self.cfg.warmup if self.cfg.warmup is not None else 1), parse_spec(self.cfg.model).is_random, engine)

    def choice(self) -> str | None:
        """One line: on a CPU, which engine decodes this model faster and why; None where the
        question does not arise (a served model, another device, an unknown shape)."""
        cfg = self.cfg
        if self.pre.device.type != "cpu" or parse_spec(cfg.model).is_served or cfg.backend not in ("auto", "transformers", "llamacpp"):
            return None
        if self.shape.get("gguf") is not None:
            return self._gguf_choice()
        if self.shape.get("params") and not parse_spec(cfg.model).is_gguf:
            return self._gguf_offer()
        return None

    def _gguf_choice(self) -> str | None:
        hf, cpp = self.reads("transformers"), self.reads("llamacpp")
        if hf is None or cpp is None:
            return None
        cpp_speed, hf_speed = cpp.speed(1.0, self.context), hf.speed(1.0, self.context)
        if cpp_speed is None or hf_speed is None:  # a step that reads no bytes: no bound to compare
            return None
        bound = cpp_speed / hf_speed
        prev_hf, prev_cpp = self.previous("transformers"), self.previous("llamacpp")
        measured = prev_cpp["tokens_per_s"] / prev_hf["tokens_per_s"] if prev_hf and prev_cpp else None
        ratio = measured if measured is not None else bound
        winner = "llama.cpp (--backend llamacpp)" if ratio >= 1 else "transformers"
        gguf = self.shape["gguf"]
        line = (f"faster here: {winner}. Decoding is memory-bound: llama.cpp reads this GGUF's tensors as stored, "
                f"{est.human_bytes(cpp.weights)} per token ({8 * gguf.tensor_bytes / gguf.parameters:.1f} bits a weight, one request at a time); "
                f"transformers dequantizes it to {self.pre.device.dtype} and reads {est.human_bytes(hf.weights)} per step "
                f"at batch {hf.batch}; by that bound llama.cpp is {bound:.2f}x transformers")
        if measured is not None and prev_hf and prev_cpp:  # measured is set exactly when both are
            line += (f"; measured in earlier runs here: llama.cpp {prev_cpp['tokens_per_s']:.3g} vs transformers "
                     f"{prev_hf['tokens_per_s']:.3g} output tok/s ({measured:.2f}x)")
        else:
            line += "; not yet measured here (one run with each --backend measures it)"
        if not importlib.util.find_spec("llama_cpp"):
            line += f"; llama.cpp needs {INSTALL_LLAMACPP}"
        return line

    def _gguf_offer(self) -> str | None:
        hf = self.reads("transformers")
        if hf is None:
            return None

        params = self.shape["params"]
        config = self.shape.get("config")
        kv = hf.kv_per_token * LLAMACPP_KV_BYTES // dtype_bytes(self.pre.memory["dtype"])  # the same cache in f16
        now = hf.speed(1.0, self.context)
        if now is None:  # a step that reads no bytes: no bound to compare against
            return None

        def step_bytes(bits: float) -> float:  # what one llama.cpp step (batch 1) reads at `bits` a weight
            try:
                return weight_layout(config, bits / 8).read_per_step(1) if config else params * bits / 8
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                return params * bits / 8

        offers = [(name, bits, step_bytes(bits)) for name, bits in GGUF_OFFERS]
        ratios: list[float] = []
        for name, _, b in offers:
            offered = Reads(int(b), kv, 1, name).speed(1.0, self.context)
            if offered is None:  # a step that reads no bytes: no bound to offer
                return None
            ratios.append(offered / now)
        sizes = " and ".join(f"{est.human_bytes(b)} as {name} ({bits:g} bits a weight)" for name, bits, b in offers)
        speeds = " and ".join(f"{r:.1f}x" for r in ratios)
        batching = f" (llama.cpp decodes one request at a time; transformers here reads its weights once per {hf.batch} tokens)" if hf.batch > 1 else ""
        return (f"a GGUF on llama.cpp would read {sizes} per token instead of {est.human_bytes(hf.weights)} of {hf.what}: decoding is "
                f"memory-bound, so its speed bound is {speeds} this run's{batching}; convert with llama.cpp's convert_hf_to_gguf.py "
                f"(--outtype q8_0; llama-quantize for Q4_K_M) and run --backend llamacpp --model path/to/file.gguf")


__all__ = ["EngineEstimates", "Reads", "candidates", "reads", "twins"]
