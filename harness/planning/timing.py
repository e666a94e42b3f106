"""How long a whole run takes, from measurements: process start-up and imports, model load, warm-up,
prefill and decode, each phase with its source and the whole with a range.

The shape of each phase is physical: a decoding step costs a per-layer overhead plus the bytes it
reads over an effective bandwidth plus its FLOPs over an effective compute rate; a prefill costs a
per-layer overhead plus its FLOPs; a random model's load costs a fixed part plus its parameters.
The constants are measured, never assumed, on a CPU:

- a *profile* of this machine: `harness plan --calibrate` times real generations of random models
  (`calibrate`) and fits the constants per dtype; before that, the profile stored with the package
  (measured on the reference 2-core VM, named in the plan) stands in, scaled to this CPU now;
- *earlier runs* on this machine (`record_run` stores each finished run's phase times in the cache):
  their measured/predicted ratio per phase corrects the profile, from runs of the same architecture,
  dtype and batch size when there are any, else from any run here;
- a sub-second *speed index* taken when planning and when recording (`speed_index`): the same small
  NumPy workload, so a machine busier now than when it was measured is planned slower.

For a `--target` device (planning for hardware this machine is not), decoding is the device's
published bandwidth and compute at a stated efficiency range, start-up is this machine's, and the
plan says the device rates are not measured. The time is never below the bandwidth roofline.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from harness.runtime.cache import cache_dir, read_cache, write_cache

PROFILE_CACHE = "time_profile.json"
RECORDS_CACHE = "run_timings.json"
MAX_RECORDS = 60
WARMUP_TOKENS = 8  # orchestration/generate.warm_up's max_new_tokens
STORED_PROFILE = Path(__file__).resolve().parents[1] / "data" / "cpu_time_profile.json"
COLD_RANGE = (0.5, 2.0)  # ratio range of a plan with no run measured on this machine
# A target device's decoding efficiency is not measured here: these are the stated assumptions.
TARGET_BW_EFFICIENCY = (0.35, 0.55, 0.8)  # low, expected, high fraction of published bandwidth
TARGET_FLOP_EFFICIENCY = 0.5
TARGET_LAYER_OVERHEAD_S = (5e-5, 1.2e-4, 3e-4)  # per layer and step: kernel launches of eager decoding
TARGET_LOAD_GBPS = 2.0  # weights read from local NVMe


class Phases(TypedDict):
    startup: float
    load: float
    warmup: float
    prefill: float
    decode: float


@dataclass(frozen=True)
class Job:
    """What a run does, as the time model needs it."""

    arch: str  # a key naming the architecture's shape
    layers: int
    params: int
    weight_bytes: int
    kv_per_token: int
    dtype: str
    batch: int
    requests: int
    prompt_tokens: float  # mean per request
    new_tokens: float  # mean expected per request
    warmup: int
    random_weights: bool
    engine: str = "transformers"

    @property
    def flops_per_token(self) -> float:
        return 2.0 * self.params


@dataclass
class Rates:
    """One dtype's fitted constants (seconds, bytes/s, FLOP/s)."""

    layer_step_s: float  # per layer per decoding step
    bandwidth: float  # bytes/s a decoding step reads at
    flops: float  # FLOP/s of decoding's matmuls
    prefill_call_s: float  # per prefill (a generate call's set-up)
    prefill_layer_s: float  # per layer per prefill
    prefill_flops: float  # FLOP/s of prefill

    def step_s(self, j: Job, batch: int, context: float) -> float:
        read = j.weight_bytes + j.kv_per_token * context * batch
        return j.layers * self.layer_step_s + read / self.bandwidth + batch * j.flops_per_token / self.flops

    def prefill_s(self, j: Job, batch: int, prompt: float) -> float:
        return self.prefill_call_s + j.layers * self.prefill_layer_s + batch * prompt * j.flops_per_token / self.prefill_flops


@dataclass
class Profile:
    """A machine's measured constants: start-up, load and per-dtype generation rates."""

    machine: str
    measured_utc: str
    source: str
    speed_index_s: float  # speed_index() when the profile was measured
    startup_s: float  # imports, planning, scoring and reports: everything outside load and generation
    load_fixed_s: float  # tokenizer and config of a random model
    load_param_s: float  # per parameter of a random model (initialisation)
    load_disk_bps: float  # bytes/s of weights read from disk
    rates: dict[str, Rates] = field(default_factory=dict)
    load_per_core: float = 1.0  # the machine's load average per core while it was measured (other tenants' work)

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        rates = {k: Rates(**v) for k, v in (d.get("rates") or {}).items()}
        return cls(**{**{k: v for k, v in d.items() if k != "rates"}, "rates": rates})

    def asdict(self) -> dict:
        return asdict(self)


# ---- the speed index ---------------------------------------------------------------------------------

_INDEX: dict[str, float] = {}


def speed_index() -> float:
    """Seconds this CPU takes now for a fixed small NumPy and Python workload (median of 5): the
    same work each time, so its ratio between two moments says how much slower the machine is."""
    if "s" in _INDEX:
        return _INDEX["s"]
    import numpy as np

    a = np.ones((192, 192), np.float32)
    src = np.ones(4 * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(4):
            a @ a
        for _ in range(4):
            np.copyto(dst, src)
        s = 0
        for i in range(20000):
            s += i
        times.append(time.perf_counter() - t0)
    times.sort()
    _INDEX["s"] = times[len(times) // 2]
    return _INDEX["s"]


# ---- profiles ----------------------------------------------------------------------------------------

def machine_key(device_name: str) -> str:
    return device_name


def load_profile(device_name: str) -> tuple[Profile | None, str]:
    """(profile, where it came from): this machine's calibration, else the stored reference profile."""
    cached = read_cache(cache_dir() / PROFILE_CACHE).get(machine_key(device_name))
    if isinstance(cached, dict):
        try:
            p = Profile.from_dict(cached)
            return p, f"calibrated here {p.measured_utc} (cache {cache_dir() / PROFILE_CACHE})"
        except TypeError:
            pass
    try:
        p = Profile.from_dict(json.loads(STORED_PROFILE.read_text()))
    except (OSError, ValueError, TypeError):
        return None, "no profile"
    same = p.machine == device_name
    return p, (f"the profile stored with the harness ({p.source}, {p.measured_utc})"
               + ("" if same else f" for {p.machine}, not this CPU; `harness plan --calibrate` measures this one"))


def save_profile(p: Profile) -> Path:
    path = cache_dir() / PROFILE_CACHE
    write_cache(path, {**read_cache(path), machine_key(p.machine): p.asdict()})
    return path


# ---- records of earlier runs ---------------------------------------------------------------------------

def record_run(run: Any, run_dir: Path, total_s: float) -> None:
    """Store a finished run's phase times (from run.json's perf) and the job that took them, for the
    plans after it. `total_s`: the process's wall time from its start to the reports written."""
    job = job_from_run(run, run_dir)
    perf = run.perf
    if job is None or not perf.wall_s or run.status != "complete":
        return
    warm = getattr(perf.warmup, "s", 0.0) or 0.0
    load = float(perf.load_s or 0.0)
    entry = {"job": asdict(job), "device": run.device.name, "speed_index_s": speed_index(), "load_per_core": _load(), "total_s": total_s,
             "load_s": load, "warmup_s": float(warm or 0.0), "gen_s": float(perf.wall_s), "run": str(run_dir),
             "utc": run.created_utc}
    path = cache_dir() / RECORDS_CACHE
    data = read_cache(path)
    rows = [r for r in data.get("runs", []) if isinstance(r, dict)][-(MAX_RECORDS - 1):]
    write_cache(path, {"runs": [*rows, entry]})


def job_from_run(run: Any, run_dir: Path) -> Job | None:
    """The Job a finished run did, from its run.json and samples (mean prompt and output lengths)."""
    from harness.planning.preflight import model_shape

    try:
        shape = model_shape(run.model.name_or_path)
    except Exception:  # noqa: BLE001  (a run we cannot describe is simply not recorded)
        return None
    cfg = run.config if isinstance(run.config, dict) else {}
    samples = run.samples.done if run.samples else 0
    if not samples or not shape.get("params"):
        return None
    engine = run.model.engine or {}
    batch = engine.get("batch_size") or cfg.get("batch_size") or 1
    return job_for(shape, run.model.dtype or "float32", int(batch) if str(batch).isdigit() else 1, samples,
                   (run.perf.input_tokens or 0) / samples, (run.perf.output_tokens or 0) / samples, int(cfg.get("warmup") or 0),
                   bool(run.model.random_weights), run.model.backend or "transformers")


def job_for(shape: dict, dtype: str, batch: int, requests: int, prompt: float, new: float, warmup: int, random_weights: bool,
            engine: str) -> Job | None:
    from harness.measure.roofline import dtype_bytes, kv_bytes_or_none

    config, params = shape.get("config") or {}, shape.get("params")
    if not params:
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    width = dtype_bytes(dtype)
    gguf = shape.get("gguf")
    weights = gguf.tensor_bytes if engine == "llamacpp" and gguf is not None else params * width
    arch = json.dumps({k: text.get(k) for k in ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                                                "num_attention_heads", "num_key_value_heads", "vocab_size")}, sort_keys=True)
    return Job(arch, int(text.get("num_hidden_layers") or 1), int(params), int(weights), int(kv_bytes_or_none(dict(config), width) or 0),
               dtype, max(1, batch), max(1, requests), float(prompt), float(new), int(warmup), random_weights, engine)


def load_records(device_name: str) -> list[dict]:
    rows = read_cache(cache_dir() / RECORDS_CACHE).get("runs", [])
    return [r for r in rows if isinstance(r, dict) and r.get("device") == device_name and isinstance(r.get("job"), dict)]


# ---- the estimate ------------------------------------------------------------------------------------------

@dataclass
class TimeEstimate:
    expected_s: float
    range_s: tuple[float, float]
    phases: dict[str, float]
    sources: dict[str, str]
    roofline_s: float | None
    notes: list[str] = field(default_factory=list)

    def asdict(self) -> dict:
        return {"expected_s": self.expected_s, "range_s": list(self.range_s), "phases_s": self.phases, "sources": self.sources,
                "roofline_s": self.roofline_s, "notes": self.notes}


def _load() -> float:
    from harness.runtime.cache import load_per_core

    return round(load_per_core() or 0.0, 2)


def busy(load_per_core: float | None, *, running: bool) -> float:
    """How many times slower than on an idle machine a CPU-bound run goes at this load average per
    core: a run's own threads count in the load taken while it ran (`running`), not in one taken
    before it starts, so those get one more per core."""
    lpc = float(load_per_core or 0.0) + (0.0 if running else 1.0)
    return max(1.0, lpc)


def physics(j: Job, p: Profile, rates: Rates) -> Phases:
    """Phase times of `j` by `p`'s constants, at the speed the profile was measured at."""
    batch = max(1, min(j.batch, j.requests))
    batches = math.ceil(j.requests / batch)
    prefill = batches * rates.prefill_s(j, batch, j.prompt_tokens)
    decode = batches * j.new_tokens * rates.step_s(j, batch, j.prompt_tokens + j.new_tokens / 2)
    warm = (rates.prefill_s(j, batch, j.prompt_tokens) + WARMUP_TOKENS * rates.step_s(j, batch, j.prompt_tokens)) if j.warmup else 0.0
    load = p.load_fixed_s + (j.params * p.load_param_s if j.random_weights else j.weight_bytes / p.load_disk_bps)
    return {"startup": p.startup_s, "load": load, "warmup": warm, "prefill": prefill, "decode": decode}


def _rates(p: Profile, dtype: str) -> Rates | None:
    return p.rates.get(dtype) or p.rates.get("bfloat16" if dtype == "float16" else "float32")


def _similar(r: dict, j: Job) -> int:
    """How closely an earlier run matches `j`: 3 same architecture, dtype and batch; 2 same
    architecture and dtype; 1 same dtype and engine; 0 otherwise."""
    o = r["job"]
    if o.get("engine") != j.engine:
        return 0
    if o.get("arch") == j.arch and o.get("dtype") == j.dtype:
        return 3 if o.get("batch") == j.batch else 2
    return 1 if o.get("dtype") == j.dtype else 0


def estimate_cpu(j: Job, device_name: str, load_now: float | None = None) -> TimeEstimate | None:
    """The whole run's time on this CPU, from the profile and the earlier runs here."""
    p, psource = load_profile(device_name)
    rates = _rates(p, j.dtype) if p else None
    if p is None or rates is None:
        return None
    now = busy(_load() if load_now is None else load_now, running=False)
    scale = now / busy(p.load_per_core, running=True)
    base = {k: v * scale for k, v in physics(j, p, rates).items()}
    sources = {k: f"{psource}, scaled by the machine's load now ({scale:.2f}x the profile's: load average {now:.1f} per core with "
                  f"this run, {busy(p.load_per_core, running=True):.1f} then)" for k in base}
    ratios: dict[str, list[float]] = {"startup": [], "load": [], "gen": []}
    level = {"startup": 0, "load": 0, "gen": 0}
    picked: dict[str, list[dict]] = {"startup": [], "load": [], "gen": []}
    records = load_records(device_name)
    for r in reversed(records):
        if "load_per_core" not in r:
            continue
        try:
            oj = Job(**r["job"])
        except TypeError:
            continue
        orates = _rates(p, oj.dtype)
        if orates is None:
            continue
        then = busy(r.get("load_per_core"), running=True) / busy(p.load_per_core, running=True)
        pred = {k: v * then for k, v in physics(oj, p, orates).items()}
        gen_pred = pred["warmup"] + pred["prefill"] + pred["decode"]
        startup = r["total_s"] - r["load_s"] - r["warmup_s"] - r["gen_s"]
        sim = _similar(r, j)
        for phase, actual, predicted, s in (("startup", startup, pred["startup"], 1), ("load", r["load_s"], pred["load"],
                                                                                        1 if oj.random_weights == j.random_weights else -1),
                                            ("gen", r["warmup_s"] + r["gen_s"], gen_pred, sim)):
            if phase == "gen" and s < 2:  # another architecture's generation says little about this one's: the profile stands
                continue
            if predicted <= 0 or actual <= 0 or s < 1 or s < level[phase] or len(ratios[phase]) >= 5 and s == level[phase]:
                continue
            if s > level[phase]:
                ratios[phase], picked[phase], level[phase] = [], [], s
            ratios[phase].append(actual / predicted)
            picked[phase].append(r)
    low = high = 0.0
    expected = 0.0
    names = {3: "of the same architecture, dtype and batch size", 2: "of the same architecture and dtype",
             1: "of other models here (same dtype and engine)"}
    for phase, keys in (("startup", ("startup",)), ("load", ("load",)), ("gen", ("warmup", "prefill", "decode"))):
        part = sum(base[k] for k in keys)
        rs = sorted(ratios[phase])
        if rs:
            mid = rs[len(rs) // 2]
            pad = 0.2 if level[phase] >= 2 or phase != "gen" else 0.35
            lo, hi = min(rs) * (1 - pad), max(rs) * (1 + pad)
            for k in keys:
                base[k] *= mid
                sources[k] = (f"{len(rs)} earlier run{'s' if len(rs) > 1 else ''} here {names.get(level[phase], '')} "
                              f"(measured/profile {', '.join(f'{x:.2f}' for x in rs)}; newest {picked[phase][0]['run']}), "
                              f"on {psource}")
            part *= mid
        else:
            lo, hi = COLD_RANGE[0], COLD_RANGE[1]
            lo, hi = lo * (1 if part else 0), hi
        expected += part
        low += part * (lo / (rs[len(rs) // 2] if rs else 1.0))
        high += part * (hi / (rs[len(rs) // 2] if rs else 1.0))
    roof = roofline_s(j)
    notes = []
    if roof is not None and expected < roof:
        notes.append(f"raised to the bandwidth roofline ({roof:.1f} s)")
        expected, low = roof, max(low, roof)
    if not records:
        notes.append("no run measured on this machine yet: the range is wide; `harness plan --calibrate` or any run narrows it")
    return TimeEstimate(expected, (min(low, expected), max(high, expected)), {k: round(v, 3) for k, v in base.items()}, sources, roof,
                        notes)


def roofline_s(j: Job) -> float | None:
    """The decode time if every step streamed its bytes at this machine's measured copy bandwidth
    (cached by `harness env` or an earlier plan); None when none is cached."""
    from harness.runtime.device import cpu_name

    bw = read_cache(cache_dir() / "bandwidth.json").get(f"cpu:{cpu_name()}")
    gbps = bw.get("gbps") if isinstance(bw, dict) else None
    if not gbps:
        return None
    batch = max(1, min(j.batch, j.requests))
    steps = math.ceil(j.requests / batch) * j.new_tokens
    per_step = j.weight_bytes + j.kv_per_token * (j.prompt_tokens + j.new_tokens / 2) * batch
    return steps * per_step / (float(gbps) * 1e9)


def estimate_target(j: Job, t: Any, device_name_here: str) -> TimeEstimate:
    """The run's time on a device this machine is not (`t`: a targets.Target): decoding at the
    published bandwidth and compute at a stated efficiency range (not measured), the load from
    local NVMe, start-up as measured on this machine."""
    p, psource = load_profile(device_name_here)
    startup = p.startup_s if p else 10.0
    batch = max(1, min(j.batch, j.requests))
    batches = math.ceil(j.requests / batch)
    out = []
    if t.bandwidth_gbps is None:
        return TimeEstimate(float("nan"), (float("nan"), float("nan")), {}, {"decode": t.source}, None,
                            [f"{t.name}: no published memory bandwidth, so no decoding time"])
    for eff, overhead in zip(TARGET_BW_EFFICIENCY, TARGET_LAYER_OVERHEAD_S):
        bw, fl = t.bandwidth_gbps * 1e9 * eff, (t.bf16_tflops or 100) * 1e12 * TARGET_FLOP_EFFICIENCY
        ctx = j.prompt_tokens + j.new_tokens / 2
        step = j.layers * overhead + max((j.weight_bytes + j.kv_per_token * ctx * batch) / bw, batch * j.flops_per_token / fl)
        decode = batches * j.new_tokens * step
        prefill = batches * (j.layers * overhead + batch * j.prompt_tokens * j.flops_per_token / fl)
        load = j.weight_bytes / (TARGET_LOAD_GBPS * 1e9)
        out.append({"startup": startup, "load": load, "warmup": 0.0, "prefill": prefill, "decode": decode})
    lo, mid, hi = (sum(x.values()) for x in (out[2], out[1], out[0]))
    assumed = (f"{t.name} ({t.source}) at {TARGET_BW_EFFICIENCY[1]:.0%} of its published bandwidth "
               f"(range {TARGET_BW_EFFICIENCY[0]:.0%}-{TARGET_BW_EFFICIENCY[2]:.0%}, assumed: not measured on that device) and "
               f"{TARGET_LAYER_OVERHEAD_S[1] * 1e6:.0f} us per layer and step of kernel launches")
    roof = math.ceil(j.requests / batch) * j.new_tokens * (j.weight_bytes + j.kv_per_token * (j.prompt_tokens + j.new_tokens / 2) * batch) / (
        t.bandwidth_gbps * 1e9)
    return TimeEstimate(mid, (lo, hi), {k: round(v, 3) for k, v in out[1].items()},
                        {"startup": f"this machine's start-up ({psource})" if p else "assumed 10 s", "load": f"weights from NVMe at {TARGET_LOAD_GBPS:g} GB/s (assumed)",
                         "prefill": assumed, "decode": assumed, "warmup": "not counted"}, roof,
                        [f"planned for {t.name}, not measured on it: run there once to replace the assumptions"])


# ---- calibration ------------------------------------------------------------------------------------------

CAL_PROMPT, CAL_NEW = 24, 6


def calibrate(device_name: str, dtypes: tuple[str, ...] = ("bfloat16", "float32"), say=print) -> Profile:
    """Measure this CPU: imports in a fresh interpreter, a random model's load, and generation of random
    models at two depths and two batch sizes in each dtype; fit the constants and cache them."""
    import subprocess
    import sys

    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from harness.backends.models import arch_dict, hf_config, random_config

    load0 = _load()
    say("calibrating: imports in a fresh interpreter ...")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, transformers, transformers.generation"], check=False, timeout=300)
    imports = time.perf_counter() - t0
    index = speed_index()
    points: dict[str, list[tuple[list[float], float, list[float], float]]] = {d: [] for d in dtypes}
    load_pts = []
    archs = [("tiny", random_config("tiny"), 2), ("qwen2.5-0.5b-instruct", random_config("qwen2.5-0.5b-instruct"), 1),
             ("qwen2.5-0.5b-instruct", random_config("qwen2.5-0.5b-instruct"), 3)]
    for name, raw, layers in archs:
        say(f"calibrating: {name} at {layers} layer(s) ...")
        from harness.core.architecture import count_parameters

        cut = arch_dict(raw, layers)
        params = count_parameters(cut) or 0
        torch.manual_seed(0)
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_config(hf_config(cut), dtype=torch.float32).eval()
        load_pts.append((params, time.perf_counter() - t0))
        vocab = min(hf_config(cut).get_text_config().vocab_size, 700)
        for dtype in dtypes:
            model = model.to(getattr(torch, dtype))
            j = job_for({"config": cut, "params": params}, dtype, 1, 1, CAL_PROMPT, CAL_NEW, 0, True, "transformers")
            assert j is not None
            for batch in (1, 4):
                ids = torch.randint(3, vocab, (batch, CAL_PROMPT))

                def gen(n: int) -> float:
                    cfg = GenerationConfig(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0, eos_token_id=None)
                    t = time.perf_counter()
                    with torch.inference_mode():
                        model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=cfg)
                    return time.perf_counter() - t

                gen(2)  # warm
                one = min(gen(1), gen(1))
                full = gen(CAL_NEW + 1)
                step = max((full - one) / CAL_NEW, 1e-6)
                ctx = CAL_PROMPT + CAL_NEW / 2
                read = j.weight_bytes + j.kv_per_token * ctx * batch
                points[dtype].append(([j.layers, read, batch * j.flops_per_token], step,
                                      [1.0, j.layers, batch * CAL_PROMPT * j.flops_per_token], one))
        del model
    rates = {}
    for dtype, rows in points.items():
        s = _nnls([r[0] for r in rows], [r[1] for r in rows])
        q = _nnls([r[2] for r in rows], [r[3] for r in rows])
        rates[dtype] = Rates(s[0], 1 / s[1] if s[1] > 0 else 1e12, 1 / s[2] if s[2] > 0 else 1e15, q[0], q[1],
                             1 / q[2] if q[2] > 0 else 1e15)
    lp = _nnls([[1.0, n] for n, _ in load_pts], [t for _, t in load_pts])
    prof = Profile(device_name, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "harness plan --calibrate", index,
                   startup_s=imports, load_fixed_s=lp[0], load_param_s=lp[1], load_disk_bps=1e9, rates=rates, load_per_core=(load0 + _load()) / 2)
    _whole_run(prof, say)
    save_profile(prof)
    return prof


def _whole_run(prof: Profile, say) -> None:
    """What only a real run measures (the tokenizer's load, planning, scoring, reports): a smoke run of
    random:tiny in a fresh process; its start-up and the fixed part of its load go into the profile."""
    import subprocess
    import sys
    import tempfile

    from harness.results.store import load_run

    say("calibrating: a whole run of random:tiny in a fresh process ...")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "harness", "run", "--model", "random:tiny", "--limit", "2", "--max-new-tokens", "4",
                               "--quiet", "--dtype", "float32", "--output-dir", tmp], capture_output=True, text=True, timeout=600, check=False)
        total = time.perf_counter() - t0
        runs = list(Path(tmp).glob("*/run.json"))
        if done.returncode != 0 or not runs:
            say(f"calibrating: the smoke run failed ({done.stderr.strip()[-200:]}); start-up stays at the import time")
            return
        run = load_run(runs[0].parent)
    warm = getattr(run.perf.warmup, "s", 0.0) or 0.0
    prof.startup_s = max(prof.startup_s, total - float(run.perf.load_s or 0) - float(warm or 0) - float(run.perf.wall_s or 0))
    prof.load_fixed_s = max(prof.load_fixed_s, float(run.perf.load_s or 0) - (run.model.num_parameters or 0) * prof.load_param_s)


def _nnls(rows: list[list[float]], ys: list[float]) -> list[float]:
    """Non-negative least squares on relative error, by trying every subset of columns (few columns)."""
    import itertools

    import numpy as np

    a = np.array(rows, dtype=float)
    y = np.array(ys, dtype=float)
    w = 1.0 / np.maximum(y, 1e-9)
    best, best_err = [0.0] * a.shape[1], float("inf")
    for k in range(1, a.shape[1] + 1):
        for cols in itertools.combinations(range(a.shape[1]), k):
            sub = a[:, cols] * w[:, None]
            coef, *_ = np.linalg.lstsq(sub, y * w, rcond=None)
            if (coef < 0).any():
                continue
            err = float(np.sum((sub @ coef - y * w) ** 2))
            if err < best_err:
                full = [0.0] * a.shape[1]
                for c, v in zip(cols, coef):
                    full[c] = float(v)
                best, best_err = full, err
    return best


def process_seconds() -> float:
    """Wall seconds since this process started (from /proc; 0 where unknown)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start)
    except (OSError, ValueError, IndexError):
        return 0.0


__all__ = ["Job", "Profile", "Rates", "TimeEstimate", "calibrate", "estimate_cpu", "estimate_target", "job_for", "load_profile",
           "process_seconds", "record_run", "speed_index"]
