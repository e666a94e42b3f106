"""The one path a run takes: plan -> run folder -> device -> backend -> generate -> summarise -> report.

Each stage is a call into a small module; this file only orders them. The run folder's life cycle
(create, resume, lock, clean-up) is harness/results/rundir.py's; generation, warm-up and retries
are harness/orchestration/generate.py's; run.json and the report are harness/orchestration/summary.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.backends import Backend, backend_class, load_backend
from harness.config import RunConfig
from harness.core.spec import parse as parse_spec
from harness.errors import Interrupted
from harness.measure.cost import hourly_price
from harness.orchestration.generate import first_batch, generate_all, order, warm_up
from harness.planning.plan import Plan, make_plan
from harness.planning.prepare import prepare
from harness.results import rundir
from harness.results.store import SampleWriter
from harness.runtime import device as devices
from harness.runtime import parallel
from harness.runtime.batching import choose as choose_batching
from harness.runtime.signals import StopSignals
from harness.scoring.record import sample_row


@dataclass(frozen=True)
class RunContext:
    """Everything a run's later stages need, decided once."""

    cfg: RunConfig
    plan: Plan
    dev: devices.DeviceChoice
    dist: parallel.Dist
    backend: Backend
    run_dir: Path
    state: rundir.RunState
    load_s: float
    progress: Callable[[int], None]
    batch_fits: Callable[[int], bool] = lambda b: True  # the memory estimate at the run's context, for --batch-size auto


def run(cfg: RunConfig, progress=None, backend=None, device=None) -> Path:
    """One run, start to finish; `backend` and its prepared `device` are given by a sweep that shares one engine."""
    card = card_of(cfg)
    plan = make_plan(cfg, card, served=_served(cfg))                          # tasks, items, protocol, sampling
    hourly_price(cfg.price_per_hour, cfg.instance)                            # a bad price fails now, not after measuring
    if cfg.backend_options and backend is None:
        backend_class(cfg)                                                    # a bad --backend-option fails before loading
    if cfg.resume:
        rundir.check_resume(cfg, plan)                                        # refuse changed settings or data before loading
    if backend is None:                                                       # device, dtype, memory, time and dollars
        ready = prepare(cfg, plan, card, on_plan=lambda pre: _hook(progress, "plan", pre))  # before loading; refused if too big
        dev, fits = ready.device, ready.batch_fits
    else:                                                                     # a sweep's shared engine: prepared by its caller
        dev, fits = device or devices.resolve(cfg.device, cfg.dtype), RunContext.batch_fits
    with StopSignals() as stop:                                               # a signal during loading still ends "interrupted"
        dist, opened, owned = parallel.Dist(), None, backend is None
        if parallel.launched_world() == 1:                                    # the folder exists before the slow loading,
            opened = rundir.open_run_dir(cfg, plan, dist)                     # so a run killed while loading can resume
            _hook(progress, "folder", opened[0])
        try:
            dev, dist = _ranked(dev, dist)                                    # each rank on its own accelerator
            opened = opened or rundir.open_run_dir(cfg, plan, dist)
            _hook(progress, "loading", cfg.model)
            t0 = time.perf_counter()
            backend = backend or load_backend(cfg, dev)                       # the model, on the device
            served = _budgeted(cfg, backend)
            load_s = time.perf_counter() - t0
            mode, why = choose_batching(cfg.batching, served, dev.type,      # static or continuous, with the reason
                                        [tp.sampling for tp in plan.tasks.values()])
            served.info.engine.update(batching=mode, batching_reason=why)
            ctx = RunContext(cfg, plan, dev, dist, served, *opened, load_s, progress or (lambda n: None), fits)
            _generate_and_finish(ctx, stop)
        except BaseException as e:
            if opened:                                                        # failed with nothing measured: no half folder;
                rundir.close_run_dir(*opened, failed=not isinstance(e, Interrupted))  # interrupted: resumable
            raise
        finally:
            if backend is not None and owned:
                backend.close()
    rundir.close_run_dir(*opened, failed=False, finished=True)
    return opened[0]


def _generate_and_finish(ctx: RunContext, stop: StopSignals) -> None:
    if stop.received():
        return _finish(ctx, "interrupted", 0.0, {"s": 0.0, "requests": 0}, None, raise_signal=stop.received())
    ctx.backend.info.sampling = {name: ctx.backend.engine_sampling(tp.sampling) for name, tp in ctx.plan.tasks.items()}  # as set
    work = [w for w in ctx.plan.work() if w[0].key not in ctx.state.done]    # what is left to generate
    mine = ctx.dist.shard(work)
    prompts = {req.key: ctx.backend.render(req) for req, *_ in mine}
    _check_prompt_chars(ctx.backend, mine, prompts)                           # before any tokenizer sees a huge text
    lengths = [ctx.backend.count_tokens(prompts[req.key]) or len(prompts[req.key]) for req, *_ in mine]
    _check_context(ctx.backend, mine, lengths)
    requests = [req for req, *_ in mine]
    auto_start = _auto_batch_size(ctx, mine, requests, lengths, stop)        # --batch-size auto: measured on these requests
    warmup = warm_up(ctx.backend, first_batch(requests, lengths, ctx.cfg.batch_size, ctx.backend, auto_start), ctx.cfg.warmup)
    by_key = {req.key: (tp, item, s) for req, tp, item, s in mine}
    writer = SampleWriter(ctx.run_dir / ctx.state.samples_file(ctx.dist))
    batch_log = SampleWriter(ctx.run_dir / ctx.state.batches_file(ctx.dist))

    def on_batch(reqs, completions, batch):                                   # score and persist as we go
        # the batch's record first: a kill between the two leaves a record whose rows are missing
        # (left out of the rates) rather than rows without their batch
        batch_log.append([{**batch.asdict(), "rank": ctx.dist.rank, "session": ctx.state.session, "keys": [r.key for r in reqs]}])
        writer.append([sample_row(req, done, task=by_key[req.key][0].name, answer_type=by_key[req.key][0].task.answer_type,
                                  item=by_key[req.key][1], sample=by_key[req.key][2], prompt=prompts[req.key],
                                  backend=ctx.backend, rank=ctx.dist.rank, scorer=by_key[req.key][0].task.score)
                       for req, done in zip(reqs, completions)])
        _hook(ctx.progress, "tokens", batch.output_tokens)

    from harness.measure.energy import EnergyMeter

    meter = EnergyMeter(ctx.dev.type, [ctx.dev.index] if ctx.dev.index is not None else None).start()
    status = "complete"
    gen_start = time.perf_counter()
    _hook(ctx.progress, "start", len(mine))
    try:
        generate_all(ctx.backend, requests, lengths, batch_size=ctx.cfg.batch_size, on_batch=on_batch,
                     stop_signal=stop.received, progress=ctx.progress,
                     batching=ctx.backend.info.engine.get("batching", "static"), auto_start=auto_start)
    except Interrupted as e:
        status, ctx.state.signum = "interrupted", e.signum
    except BaseException as e:
        writer.close()
        batch_log.close()
        if ctx.dist.world == 1 and not rundir.is_empty(ctx.run_dir):         # record what was measured, so the run can resume
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            _finish(ctx, status, time.perf_counter() - gen_start, warmup, meter)
        raise
    finally:
        writer.close()
        batch_log.close()
    _finish(ctx, status, time.perf_counter() - gen_start, warmup, meter, raise_signal=ctx.state.signum)


def _finish(ctx: RunContext, status: str, wall_s: float, warmup: dict, meter, raise_signal: int | None = None) -> None:
    measured = {"wall_s": wall_s, "load_s": ctx.load_s, "warmup": warmup, **(meter.stop() if meter else {}),
                "memory": ctx.backend.memory()}
    gathered = ctx.dist.gather(measured)                                      # every process's measurements
    status = "interrupted" if "interrupted" in ctx.dist.gather(status) else status
    if ctx.dist.is_main:
        from harness.orchestration.summary import finish_run, write_run

        write_run(ctx.run_dir, finish_run(ctx, gathered, status))
    ctx.dist.barrier()
    if raise_signal:
        raise Interrupted(raise_signal)


def _ranked(dev: devices.DeviceChoice, dist: parallel.Dist) -> tuple[devices.DeviceChoice, parallel.Dist]:
    if parallel.launched_world() > 1:
        dist = parallel.context(dev.type)
        if dev.type in ("cuda", "xpu", "npu"):
            dev = devices.resolve(f"{dev.type}:{dist.local_rank}", dev.dtype)
    return dev, dist


def _auto_batch_size(ctx: RunContext, mine, requests, lengths, stop: StopSignals) -> int | None:
    """The measured start for --batch-size auto, recorded with its reason in run.json's engine."""
    if ctx.cfg.batch_size != "auto" or not requests:
        return None
    from harness.planning.batch_size import choose

    expected = [min(tp.settings["max_new_tokens"], tp.settings.get("mean_output_tokens") or tp.settings["max_new_tokens"])
                for _, tp, *_ in mine]
    _hook(ctx.progress, "probing", "batch size")
    size, why, measured = choose(ctx.backend, order(requests, lengths), expected_tokens=round(sum(expected) / len(expected)),
                                 total_tokens=sum(expected), device_type=ctx.dev.type, device_name=ctx.dev.name, fits=ctx.batch_fits,
                                 should_stop=stop.received)
    ctx.backend.info.engine.update(batch_size=size, batch_size_reason=why, **({"batch_size_measurements": measured} if measured else {}))
    return size


def _hook(progress, name: str, *args) -> None:
    """Tell the progress display about a phase, if it listens (a plain callable only counts samples)."""
    fn = getattr(progress, name, None)
    if fn is not None:
        fn(*args)


def _budgeted(cfg: RunConfig, backend):
    if not cfg.think_budget:
        return backend
    from harness.backends.budget import BudgetedBackend

    return BudgetedBackend(backend, cfg.think_budget, cfg.answer_tokens)


def _served(cfg: RunConfig):
    """For an OpenAI-compatible endpoint: a lookup of the served model's metadata (for its protocol)."""
    if parse_spec(cfg.model).kind != "openai":
        return None
    from harness.backends.served import served_model

    return lambda: served_model(cfg.model, cfg.base_url, cfg.api_key_env)


def card_of(cfg: RunConfig):
    """The card `--card` names, or None."""
    if not cfg.card:
        return None
    from harness.cards.loader import find_card

    return find_card(cfg.card)


MAX_PROMPT_CHARS = 2_000_000
CHARS_PER_TOKEN_BOUND = 32  # no tokenizer packs more characters than this into a token, on average


def _check_prompt_chars(backend, work, prompts) -> None:
    """A prompt far too long for the model is refused by its length in characters, naming file:line:
    tokenizing a 50 MB text can abort the process (a tokenizer's own limits) before any check runs."""
    from harness.errors import DataError

    window = backend.info.context_length
    limit = min(MAX_PROMPT_CHARS, window * CHARS_PER_TOKEN_BOUND) if window else MAX_PROMPT_CHARS
    for req, tp, item, _ in work:
        n = len(prompts[req.key])
        if n > limit:
            why = f"the model's context window of {window} tokens" if window and limit < MAX_PROMPT_CHARS else "the harness's limit"
            raise DataError(f"{item.where or f'task {tp.name} item {item.id}'}: a prompt of {n:,} characters, far over {why} "
                            f"({limit:,} characters)", "shorten or drop that row")


def _check_context(backend, work, lengths) -> None:
    from harness.errors import ConfigError

    limit = backend.info.context_length
    if not limit:
        return
    for (req, tp, item, _), n in zip(work, lengths):
        if n + req.sampling.max_new_tokens > limit:
            raise ConfigError(f"task {tp.name} item {item.id}{' (' + item.where + ')' if item.where else ''}: prompt of {n} tokens + max_new_tokens {req.sampling.max_new_tokens} "
                              f"exceeds the model's context window of {limit}",
                              "lower --max-new-tokens, or drop that item from the data file")
