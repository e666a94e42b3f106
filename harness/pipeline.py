"""The one path a run takes:
config -> device -> backend -> task -> timed generation -> scoring -> results -> report.

Each stage is a call into a small module; this file only orders them and owns the run folder's
life cycle (new or resumed, interrupted or complete).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

from harness.runtime import device as devices
from harness import results
from harness.runtime import parallel
from harness.config import RunConfig
from harness.measure.cost import hourly_price
from harness.errors import ConfigError, Interrupted
from harness.backends import backend_class, load_backend
from harness.runtime.batching import choose as choose_batching
from harness.runtime.cpu_dtype import refine as refine_cpu_dtype
from harness.generate import generate_all
from harness.plan import make_plan
from harness.scoring.record import sample_row
from harness.runtime.signals import StopSignals


def run(cfg: RunConfig, progress=None, backend=None) -> Path:
    card = _card(cfg)
    plan = make_plan(cfg, card, served=_served(cfg))                          # tasks, items, protocol, sampling
    hourly_price(cfg.price_per_hour, cfg.instance)                            # a bad price fails now, not after measuring
    if cfg.backend_options and backend is None:
        backend_class(cfg)                                                    # a bad --backend-option fails before loading
    if cfg.resume:
        _check_resume(cfg)                                                    # refuse changed settings before loading
    dist, opened, shared = parallel.Dist(), None, backend is not None
    if parallel.launched_world() == 1:                                        # the folder exists before the slow loading,
        opened = _open_run_dir(cfg, plan, dist)                               # so a run killed while loading can resume
    try:
        dev = devices.resolve(cfg.device, cfg.dtype)                          # device and dtype, with reasons
        if parallel.launched_world() > 1:
            dist = parallel.context(dev.type)
            if dev.type in ("cuda", "xpu", "npu"):
                dev = devices.resolve(f"{dev.type}:{dist.local_rank}", cfg.dtype)
            opened = _open_run_dir(cfg, plan, dist)
        dev = refine_cpu_dtype(dev, cfg)                                      # CPU auto dtype: timed on this architecture
        run_dir, state = opened
        t0 = time.perf_counter()
        backend = backend or load_backend(cfg, dev)                           # the model, on the device
        load_s = time.perf_counter() - t0
        if cfg.think_budget:
            from harness.backends.budget import BudgetedBackend

            backend = BudgetedBackend(backend, cfg.think_budget, cfg.answer_tokens)
        mode, why = choose_batching(cfg.batching, backend, dev.type)         # static or continuous, with the reason
        backend.info.engine.update(batching=mode, batching_reason=why)
        return _generate_and_finish(cfg, plan, dev, dist, backend, run_dir, state, load_s, progress)
    except BaseException:
        if opened and opened[1].new and _empty(opened[0]):
            shutil.rmtree(opened[0], ignore_errors=True)                      # nothing measured: leave no half folder
            base = opened[1].made_base
            if base and base.is_dir() and not any(base.iterdir()):
                base.rmdir()
        raise
    finally:
        if backend is not None and not shared:
            backend.close()


def _empty(run_dir: Path) -> bool:
    """True when no sample was written (no shard files, or only empty ones)."""
    return all(f.stat().st_size == 0 for f in run_dir.glob("samples*.jsonl"))


def _generate_and_finish(cfg, plan, dev, dist, backend, run_dir, state, load_s, progress) -> Path:
    backend.info.sampling = {name: backend.engine_sampling(tp.sampling) for name, tp in plan.tasks.items()}  # as the engine sets it
    work = [w for w in plan.work() if w[0].key not in state.done]             # what is left to generate
    mine = dist.shard(work)
    prompts = {req.key: backend.render(req) for req, *_ in mine}
    lengths = [backend.count_tokens(prompts[req.key]) or len(prompts[req.key]) for req, *_ in mine]
    _check_context(backend, mine, lengths)
    warmup = _warm_up(backend, [req for req, *_ in mine[:1]], cfg.warmup)
    by_key = {req.key: (tp, item, s) for req, tp, item, s in mine}
    writer = results.SampleWriter(run_dir / state.samples_file(dist))
    batch_log = results.SampleWriter(run_dir / state.batches_file(dist))

    def on_batch(reqs, completions, batch):                                   # score and persist as we go
        rows = []
        for req, done in zip(reqs, completions):
            tp, item, s = by_key[req.key]
            rows.append(sample_row(req, done, task=tp.name, answer_type=tp.task.answer_type, item=item, sample=s,
                                   prompt=prompts[req.key], backend=backend, rank=dist.rank))
        writer.append(rows)
        batch_log.append([{**batch.asdict(), "rank": dist.rank}])

    from harness.measure.energy import EnergyMeter

    meter = EnergyMeter(dev.type, [dev.index] if dev.index is not None else None).start()
    status = "complete"
    gen_start = time.perf_counter()
    try:
        with StopSignals() as stop:
            generate_all(backend, [r for r, *_ in mine], lengths, batch_size=cfg.batch_size, on_batch=on_batch,
                         stop_signal=stop.received, progress=progress or (lambda n: None),
                         batching=backend.info.engine.get("batching", "static"))
    except Interrupted as e:
        status, state.signum = "interrupted", e.signum
    except Exception:
        writer.close(), batch_log.close()
        if dist.world == 1 and not _empty(run_dir):  # record what was measured, so the run can be resumed
            _finish(run_dir, cfg, plan, dev, backend, state, dist, "failed", gen_start, load_s, warmup, meter)
        raise
    finally:
        writer.close(), batch_log.close()
    _finish(run_dir, cfg, plan, dev, backend, state, dist, status, gen_start, load_s, warmup, meter)
    if status == "interrupted":
        raise Interrupted(state.signum or 2)
    return run_dir


def _finish(run_dir, cfg, plan, dev, backend, state, dist, status, gen_start, load_s, warmup, meter) -> None:
    measured = {"wall_s": time.perf_counter() - gen_start, "load_s": load_s, "warmup": warmup, **meter.stop(),
                "memory": backend.memory()}
    gathered = dist.gather(measured)                                          # every process's measurements
    status = "interrupted" if "interrupted" in dist.gather(status) else status
    if dist.is_main:
        from harness.results.summary import finish_run

        finish_run(run_dir, cfg, plan, dev, backend.info, state, gathered, status, world=dist.world)
    dist.barrier()


class RunState:
    """What is already on disk for this run: finished sample keys and the files to append to."""

    def __init__(self, run_id: str, created: str, done: set[str], previous: dict | None, new: bool):
        self.run_id, self.created, self.done, self.previous, self.new = run_id, created, done, previous, new
        self.signum: int | None = None
        self.made_base: Path | None = None

    @staticmethod
    def samples_file(dist) -> str:
        return results.SAMPLES if dist.world == 1 else f"samples.rank{dist.rank}.jsonl"

    @staticmethod
    def batches_file(dist) -> str:
        return "batches.jsonl" if dist.world == 1 else f"batches.rank{dist.rank}.jsonl"


def _open_run_dir(cfg: RunConfig, plan, dist) -> tuple[Path, RunState]:
    if cfg.resume:
        run_dir = Path(cfg.resume)
        dist.barrier()
        rows = results.all_samples(run_dir, repair=dist.is_main)
        dist.barrier()
        previous = results.load_run(run_dir) if (run_dir / results.RUN).exists() else None
        run_id = (previous.run_id if previous else None) or results.read_config(run_dir).get("_run_id") or run_dir.name.rsplit("_", 1)[-1]
        created = (previous.created_utc if previous else None) or results.utc_now()
        return run_dir, RunState(run_id, created, {f"{r['task']}/{r['id']}/{r.get('sample', 0)}" for r in rows}, previous, False)
    run_id = dist.broadcast(results.new_run_id())
    name = dist.broadcast(results.run_dir_name(cfg.model, plan.tasks, run_id))
    made_base = None if Path(cfg.output_dir).exists() else Path(cfg.output_dir)
    if dist.is_main:
        run_dir = results.create_run_dir(cfg.output_dir, name)
        results.write_json_atomic(run_dir / results.CONFIG, {**cfg.stored(), "_run_id": run_id})
        (run_dir / RunState.samples_file(dist)).touch()  # a run killed before its first sample is still a run folder
    dist.barrier()
    run_dir = Path(cfg.output_dir).resolve() / name
    state = RunState(run_id, results.utc_now(), set(), None, True)
    state.made_base = made_base  # removed again if this run ends with nothing measured
    return run_dir, state


def _check_resume(cfg: RunConfig) -> None:
    run_dir = Path(cfg.resume)
    if not run_dir.is_dir():
        raise ConfigError(f"--resume folder not found: {run_dir}", "pass a run folder written by `harness run`")
    stored = results.read_config(run_dir)
    diff = cfg.differs_from(stored)
    if diff:
        raise ConfigError(f"--resume with settings that differ from the stored run: {', '.join(diff)}",
                          f"resume with the original settings (see {run_dir / results.CONFIG}) or start a new run")


def _served(cfg: RunConfig):
    """For an OpenAI-compatible endpoint: a lookup of the served model's metadata (for its protocol)."""
    if not cfg.model.startswith("openai:"):
        return None
    from harness.backends.served import served_model

    return lambda: served_model(cfg.model, cfg.base_url, cfg.api_key_env)


def _card(cfg: RunConfig):
    if not cfg.card:
        return None
    from harness.claims.cards import find_card

    return find_card(cfg.card)


def _check_context(backend, work, lengths) -> None:
    limit = backend.info.context_length
    if not limit:
        return
    for (req, tp, item, _), n in zip(work, lengths):
        if n + req.sampling.max_new_tokens > limit:
            raise ConfigError(f"task {tp.name} item {item.id}: prompt of {n} tokens + max_new_tokens {req.sampling.max_new_tokens} "
                              f"exceeds the model's context window of {limit}",
                              "lower --max-new-tokens, or drop that item from the data file")


def _warm_up(backend, requests, times: int) -> dict:
    """Short generations before timing, so kernel compilation and caches stay out of the numbers."""
    if not requests or times == 0:
        return {"s": 0.0, "requests": 0}
    short = [replace(r, sampling=replace(r.sampling, max_new_tokens=min(8, r.sampling.max_new_tokens), min_new_tokens=0)) for r in requests]
    t0 = time.perf_counter()
    for _ in range(times):
        backend.generate(short)
    backend.synchronize()
    backend.reset_peak_memory()
    return {"s": time.perf_counter() - t0, "requests": len(short) * times, "max_new_tokens": short[0].sampling.max_new_tokens}
