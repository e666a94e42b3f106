"""How long a whole run takes, from measurements: process start-up and imports, model load, warm-up,
prefill and decode, each phase with its source and the whole with a range.

The shape of each phase is physical: a decoding step costs a per-layer overhead plus the bytes it
reads over an effective bandwidth plus its FLOPs over an effective compute rate; a prefill costs a
per-layer overhead plus its FLOPs; a random model's load costs a fixed part plus its parameters.
The constants are measured, never assumed, on a CPU:

- a *profile* of this machine: `harness plan --calibrate` times real generations of random models
  (planning/calibrate.py) and fits the constants per dtype; before that, the profile stored with the package
  (measured on the reference 2-core VM, named in the plan) stands in, scaled to this CPU now;
- *earlier runs* on this machine (`record_run` stores each finished run's phase times in the cache):
  their measured/predicted ratio per phase corrects the profile, from runs of the same architecture,
  dtype and batch size when there are any, else from any run here;
- the machine's *load average* now against the one the profile and each earlier run were measured
  at (`busy`): a machine busier now than when it was measured is planned slower. (A sub-second NumPy
  `speed_index` was tried first: on the shared 2-core VM its repeats varied 5x at load 8 per core,
  so the 1-minute load average, smoother, scales the plan instead.)

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
from typing import Any

from harness.planning.contention import _exp, _load, _scale, busy, current_load, record_load
from harness.runtime.cache import cache_dir, read_cache, write_cache

PROFILE_CACHE = "time_profile.json"
RECORDS_CACHE = "run_timings.json"
MAX_RECORDS = 60
WARMUP_TOKENS = 8  # orchestration/generate.warm_up's max_new_tokens
STORED_PROFILE = Path(__file__).resolve().parents[1] / "data" / "cpu_time_profile.json"
COLD_RANGE = (0.5, 2.0)  # ratio range of a plan with no run measured on this machine
LOAD_DRIFT = (0.75, 1.5)  # how far a shared machine's speed moves between a plan and its run, beyond the runs' spread


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

def record_run(run: Any, run_dir: Path, total_s: float, shape: dict) -> None:
    """Store a finished run's phase times (from run.json's perf) and the job that took them, for the
    plans after it. `total_s`: the process's wall time from its start to its exit; `shape`: the
    model's (preflight.model_shape)."""
    job = job_from_run(run, shape)
    perf = run.perf
    if job is None or not perf.wall_s or run.status != "complete":
        return
    warm = getattr(perf.warmup, "s", 0.0) or 0.0
    load = float(perf.load_s or 0.0)
    entry = {"job": asdict(job), "device": run.device.name, "load_per_core": _load(), "load_runnable": current_load(), "total_s": total_s,
             "load_s": load, "warmup_s": float(warm or 0.0), "gen_s": float(perf.wall_s), "run": str(run_dir),
             "utc": run.created_utc}
    path = cache_dir() / RECORDS_CACHE
    data = read_cache(path)
    rows = [r for r in data.get("runs", []) if isinstance(r, dict) and r.get("run") != str(run_dir)][-(MAX_RECORDS - 1):]
    write_cache(path, {"runs": [*rows, entry]})


def job_from_run(run: Any, shape: dict) -> Job | None:
    """The Job a finished run did, from its run.json (mean prompt and output lengths per sample) and
    its model's shape (preflight.model_shape)."""
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
    from harness.core.architecture import dtype_bytes, kv_bytes_or_none

    config, params = shape.get("config") or {}, shape.get("params")
    if not params:
        return None
    text: dict = config["text_config"] if isinstance(config.get("text_config"), dict) else config
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


def physics(j: Job, p: Profile, rates: Rates) -> dict[str, float]:
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
    now = current_load() if load_now is None else load_now
    base = {k: v * _scale(now, p.load_per_core, True, k) for k, v in physics(j, p, rates).items()}
    sources = {k: f"{psource}, scaled to the load now ({_scale(now, p.load_per_core, True, k):.2f}x the profile's: "
                  f"{now:.1f} other runnable threads per core now, load average {p.load_per_core:.1f} per core then)" for k in base}
    ratios: dict[str, list[float]] = {"startup": [], "load": [], "gen": []}
    level = {"startup": 0, "load": 0, "gen": 0}
    picked: dict[str, list[dict]] = {"startup": [], "load": [], "gen": []}
    records = load_records(device_name)
    for r in reversed(records):
        if "load_runnable" not in r:  # recorded with the lagging 1-minute load average only: not comparable, skipped
            continue
        try:
            oj = Job(**r["job"])
        except TypeError:
            continue
        orates = _rates(p, oj.dtype)
        if orates is None:
            continue
        rl, rrun = record_load(r)
        pred = {k: v * busy(rl, running=rrun, exponent=_exp(k)) / busy(p.load_per_core, running=True, exponent=_exp(k))
                for k, v in physics(oj, p, orates).items()}
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
            # the median run, shrunk toward the profile as if the profile were one more run (geometric mean with
            # weight n/(n+1)): on a shared machine one run's burst of other tenants' work is evidence, not the truth
            mid = math.exp(math.log(rs[len(rs) // 2]) * len(rs) / (len(rs) + 1))
            rs = sorted([*rs, 1.0]) if len(rs) < 3 else rs
            # the runs' own spread, widened for what moves between a plan and its run: on the shared 2-core VM
            # the load average moved by half within minutes (docs/benchmarks.md, 2026-12-06)
            lo, hi = min(rs) * LOAD_DRIFT[0], max(rs) * LOAD_DRIFT[1]
            for k in keys:
                base[k] *= mid
                sources[k] = (f"{len(picked[phase])} earlier run{'s' if len(picked[phase]) > 1 else ''} here {names.get(level[phase], '')} "
                              f"(measured/profile {', '.join(f'{x:.2f}' for x in ratios[phase])}, x{mid:.2f} after shrinking toward "
                              f"the profile; newest {picked[phase][0]['run']}), "
                              f"on {psource}")
            part *= mid
        else:
            mid, (lo, hi) = 1.0, COLD_RANGE
        expected += part
        low += part * lo / mid
        high += part * hi / mid
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


def process_seconds() -> float:
    """Wall seconds since this process started (from /proc; 0 where unknown)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start)
    except (OSError, ValueError, IndexError):
        return 0.0


__all__ = ["Job", "Profile", "Rates", "TimeEstimate", "estimate_cpu", "job_for", "load_profile",
           "process_seconds", "record_run", "speed_index"]
