"""`harness load`, one readable path: check settings -> folder -> server -> prompts -> warm-up ->
levels x repeats -> summary, saturation, cost -> load.json and report.

Every loop is bounded: requests per level (`--requests`), time per level (`--duration`), and one
deadline for the whole test (`--deadline`); a request in flight past it is cancelled and counted
failed. A server that dies ends the test with what it measured (status `partial`, exit 4), and a
server harness started is stopped whatever happens (harness.load.server).
"""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import ConfigError, Interrupted
from harness.load import arrivals as arr
from harness.load import client as cl
from harness.load import folder as fo
from harness.load import levels as lvl
from harness.load import metrics as me
from harness.load import prompts as pr
from harness.load.economics import energy_meter, resolve_prices
from harness.load.schema import LoadPlan, LoadResult, RequestRecord, Slo, Warmup, Workload
from harness.load.server import ManagedServer, check_engine

EXIT_PARTIAL = 4


@dataclass(frozen=True)
class LoadConfig:
    """Every setting of a load test, as given on the command line (checked by `check`)."""

    model: str
    base_url: str | None = None
    serve: str | None = None
    concurrency: tuple[int, ...] = ()
    rates: tuple[float, ...] = ()
    arrivals: str = "poisson"
    requests: int = 32
    duration_s: float = 300.0
    deadline_s: float = 1800.0
    request_timeout_s: float = 120.0
    repeats: int = 1
    warmup: int = 2
    seed: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    max_tokens: int | None = None
    tasks: tuple[str, ...] = ()
    data_files: dict[str, str] = field(default_factory=dict)
    prompts: int = 16
    protocol: str | None = None
    slo: str | None = None
    slo_attainment: float = 0.9
    price_per_hour: float | None = None
    instance: str | None = None
    card: str | None = None
    apis: tuple[str, ...] = ()
    output_dir: str = "results"
    api_key_env: str | None = None
    server_timeout_s: float = 300.0
    n_ctx: int | None = None
    n_threads: int | None = None
    max_concurrency: int | None = None
    quiet: bool = False


def check(cfg: LoadConfig) -> tuple[str, list[float], Slo | None, arr.Arrivals | None]:
    """(mode, loads, slo, arrivals), or a ConfigError naming the fix; nothing has started yet."""
    if bool(cfg.base_url) == bool(cfg.serve):
        raise ConfigError("give either --base-url (a running server) or --serve llamacpp|vllm (harness starts one)",
                          "e.g. harness load --serve llamacpp --model model.gguf --concurrency 1,4")
    if cfg.concurrency and cfg.rates:
        raise ConfigError("--concurrency and --rate are two kinds of test", "give one: closed-loop --concurrency, or open-loop --rate")
    if any(c < 1 or c > 4096 for c in cfg.concurrency):
        raise ConfigError(f"--concurrency values must be 1..4096, got {list(cfg.concurrency)}", "e.g. --concurrency 1,4,16")
    for name, v, lo in (("--requests", cfg.requests, 1), ("--repeats", cfg.repeats, 1), ("--warmup", cfg.warmup, 0), ("--prompts", cfg.prompts, 1)):
        if v < lo:
            raise ConfigError(f"{name} must be at least {lo}, got {v}", f"e.g. {name} {max(lo, 2)}")
    for name, s in (("--duration", cfg.duration_s), ("--deadline", cfg.deadline_s), ("--request-timeout", cfg.request_timeout_s),
                    ("--server-timeout", cfg.server_timeout_s)):
        if not s > 0:
            raise ConfigError(f"{name} must be a positive number of seconds, got {s}", f"e.g. {name} 60")
    for name, n in (("--output-tokens", cfg.output_tokens), ("--max-tokens", cfg.max_tokens), ("--input-tokens", cfg.input_tokens)):
        if n is not None and n < 1:
            raise ConfigError(f"{name} must be at least 1, got {n}", f"e.g. {name} 128")
    if cfg.tasks and cfg.input_tokens:
        raise ConfigError("--input-tokens is for synthetic prompts; --tasks brings its own", "drop one of them")
    if cfg.serve:
        check_engine(cfg.serve, cfg.model)
    mode = "rate" if cfg.rates else "concurrency"
    loads = [float(r) for r in cfg.rates] if cfg.rates else [float(c) for c in (cfg.concurrency or (1,))]
    arrivals = arr.parse_arrivals(cfg.arrivals) if mode == "rate" else None
    if arrivals:
        arr.gaps(arrivals, min(loads), 1, cfg.seed)  # a bad rate fails now
    return mode, loads, me.parse_slo(cfg.slo, cfg.slo_attainment), arrivals


def _reachable(base_url: str, api_key_env: str | None) -> None:
    """A key for a remote API, and a server that answers at all, before any folder is made."""
    from harness.backends.openai_http import import_httpx, public_url, resolve_api_key

    httpx = import_httpx()  # a missing httpx is one line naming the extra to install
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url must start with http:// or https://, got {public_url(base_url)!r}", "e.g. --base-url http://127.0.0.1:8000/v1")
    key, _ = resolve_api_key(base_url, api_key_env)
    try:
        httpx.get(f"{base_url.rstrip('/')}/models", headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=10.0)
    except httpx.HTTPError as e:
        raise ConfigError(f"no server answers at {public_url(base_url)} ({type(e).__name__})",
                          "start the server first, or let harness start one with --serve llamacpp|vllm --model PATH") from None


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Interrupted (SIGINT raises KeyboardInterrupt), so every `finally` runs
    and the server harness started is stopped."""
    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    old = {}
    for s in (signal.SIGTERM, signal.SIGHUP):
        try:
            old[s] = signal.signal(s, handler)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _say(cfg: LoadConfig, text: str) -> None:
    if not cfg.quiet:
        print(text, flush=True)


def run_load(cfg: LoadConfig) -> tuple[Path, int]:
    """Run the test; (folder, exit code): 0 complete, 4 partial or failed; raises on user errors."""
    mode, loads, slo, arrivals = check(cfg)
    prices = resolve_prices(cfg.price_per_hour, cfg.instance, cfg.card, cfg.apis)  # a bad price fails before anything starts
    if cfg.base_url:
        _reachable(cfg.base_url, cfg.api_key_env)
    else:
        from harness.backends.openai_http import import_httpx

        import_httpx()  # the client needs it whichever server it talks to
    folder, run_id = fo.new_folder(cfg.output_dir, cfg.model)
    _say(cfg, f"load folder: {folder}")
    started = time.perf_counter()
    deadline = started + cfg.deadline_s
    result = LoadResult(
        run_id=run_id, created=fo.utc_now(), status="running", status_reason="in progress (a test killed here keeps its records)",
        harness_version=__version__, base_url=cfg.base_url or "", model=cfg.model,
        workload=Workload(source="synthetic", endpoint="completions", prompts=0, input_tokens=cfg.input_tokens,
                          output_tokens=cfg.output_tokens, max_tokens=0, fixed_output_by=None, sampling={}, mean_input_tokens=None),
        plan=LoadPlan(mode=mode, loads=loads, arrivals=arrivals.describe() if arrivals else None, requests=cfg.requests,
                  duration_s=cfg.duration_s, deadline_s=cfg.deadline_s, request_timeout_s=cfg.request_timeout_s, repeats=cfg.repeats,
                  warmup=cfg.warmup, seed=cfg.seed, max_concurrency=cfg.max_concurrency),
        slo=slo, machine=_machine(), versions=_versions(cfg.serve))
    fo.write_result(folder, result)
    writer = fo.RecordWriter(folder / fo.REQUESTS)
    server: ManagedServer | None = None
    code = EXIT_PARTIAL
    try:
        with _signals_raise():
            ctx = ManagedServer(cfg.serve, cfg.model, folder / fo.SERVER_LOG, ready_timeout_s=min(cfg.server_timeout_s, cfg.deadline_s),
                                n_ctx=cfg.n_ctx, n_threads=cfg.n_threads) if cfg.serve else nullcontext()
            with ctx as server:
                if server is not None:
                    _say(cfg, f"server: {cfg.serve} on {server.base_url}, ready in {server.ready_s:.1f} s (log: {folder / fo.SERVER_LOG})")
                    result.base_url = server.base_url
                base = (server.base_url if server is not None else str(cfg.base_url)).rstrip("/")
                alive: Callable[[], str | None] = server.died if server is not None else (lambda: None)
                asyncio.run(_measure(cfg, result, base, mode, loads, slo, arrivals, writer, folder, deadline, alive, prices))
                if server is not None:
                    died = server.died()
                    if died and result.status == "complete":
                        result.status, result.status_reason = "partial", died
            if server is not None:
                result.served = server.describe()
        code = 0 if result.status == "complete" else EXIT_PARTIAL
    except (KeyboardInterrupt, Interrupted) as e:
        result.status, result.status_reason = "interrupted", f"stopped by signal {getattr(e, 'signum', signal.SIGINT)}; what was measured is kept"
        raise
    except BaseException as e:
        if result.status == "running":
            result.status, result.status_reason = "failed", f"{type(e).__name__}: {str(e)[:300]}"
        raise
    finally:
        if server is not None and result.served is None:
            result.served = server.describe()
        result.finished = fo.utc_now()
        try:
            writer.close()
        finally:
            _finish(cfg, folder, result)
    return folder, code


def _finish(cfg: LoadConfig, folder: Path, result: LoadResult) -> None:
    fo.write_result(folder, result)
    for line in lvl.closing_lines(result):
        _say(cfg, line)
    try:
        from harness.load.report import write_report

        path = write_report(folder, result)
        _say(cfg, f"report: {path}")
    except Exception as e:  # the numbers are in load.json; a figure that fails must not lose them
        print(f"warning: report not written ({type(e).__name__}: {e})", file=sys.stderr)
    _say(cfg, f"load.json: {folder / fo.LOAD_JSON} (status {result.status}{': ' + result.status_reason if result.status_reason else ''})")


async def _measure(cfg: LoadConfig, result: LoadResult, base: str, mode: str, loads: list[float], slo: Slo | None,
                   arrivals: arr.Arrivals | None, writer: fo.RecordWriter, folder: Path, deadline: float,
                   alive: Callable[[], str | None], prices: Any) -> None:
    from harness.backends.openai_http import import_httpx, resolve_api_key

    httpx = import_httpx()
    key, _ = resolve_api_key(base, cfg.api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    top = int(max(loads)) if mode == "concurrency" else (cfg.max_concurrency or cfg.requests)
    limits = httpx.Limits(max_connections=top + 4, max_keepalive_connections=top + 4)
    timeout = httpx.Timeout(cfg.request_timeout_s, connect=10.0)
    endpoint = "chat" if cfg.tasks else "completions"
    url = f"{base}/{'chat/completions' if endpoint == 'chat' else 'completions'}"
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        try:  # the length probes are bounded by the test's deadline too
            prompts = await asyncio.wait_for(_prompts(cfg, client, url), max(1.0, deadline - time.perf_counter()))
        except asyncio.TimeoutError:
            result.status, result.status_reason = "failed", f"measuring the prompts' lengths ran past the {cfg.deadline_s:g} s deadline"
            return
        fixed, fixed_by = pr.fixed_output(cfg.serve, cfg.model if cfg.serve else None, cfg.output_tokens)
        max_tokens = cfg.output_tokens or cfg.max_tokens or 256
        measured = [p.input_tokens for p in prompts if p.input_tokens is not None]
        result.workload = Workload(
            source="+".join(cfg.tasks) if cfg.tasks else "synthetic", endpoint=endpoint, prompts=len(prompts),
            input_tokens=cfg.input_tokens, output_tokens=cfg.output_tokens, max_tokens=max_tokens, fixed_output_by=fixed_by,
            sampling={k: v for k, v in pr.NEUTRAL.items()}, mean_input_tokens=sum(measured) / len(measured) if measured else None)
        _say(cfg, f"prompts: {len(prompts)} {result.workload.source} ({endpoint} endpoint), mean input "
                  f"{result.workload.mean_input_tokens or 0:.0f} tokens, max_tokens {max_tokens}"
                  f"{', fixed output: ' + fixed_by if fixed_by else ''}")

        streak = [0]  # requests in a row that found no server

        def make_send(level: int, load: float, repeat: int, start: float, warmup: bool = False) -> cl.Send:
            async def send_one(i: int, at: float | None) -> RequestRecord:
                p = prompts[(i + (0 if warmup else level * 7919 + repeat * 104729)) % len(prompts)]
                sent = time.perf_counter()
                out = await cl.send(client, url, pr.body(p, cfg.model, max_tokens, stream=True,
                                                         seed=cfg.seed + i, fixed=fixed), cfg.request_timeout_s)
                n, how = cl.output_tokens(out, max_tokens)
                rec = RequestRecord(level=level, load=load, repeat=repeat, index=i, warmup=warmup, prompt_id=p.id,
                                    input_tokens=p.input_tokens, input_tokens_source=p.input_tokens_source, scheduled_s=at,
                                    sent_s=sent - start, ok=out.ok, status=out.status, error=out.error, ttft_s=out.ttft_s,
                                    itl_s=out.itl_s, e2el_s=out.e2el_s, output_tokens=n if out.ok else out.chunks,
                                    output_tokens_source=how, chunks=out.chunks, finish_reason=out.finish_reason)
                writer.put(rec)
                lost = (out.error or "").startswith(("connect", "stream cut"))
                streak[0] = streak[0] + 1 if lost else 0
                return rec
            return send_one

        if cfg.warmup:
            t0 = time.perf_counter()
            run = await cl.closed_loop(make_send(-1, 1.0, 0, t0, warmup=True), t0, 1, cfg.warmup, cfg.duration_s, deadline, alive)
            ok = sum(r.ok for r in run.records)
            result.warmup = Warmup(requests=len(run.records), ok=ok, s=time.perf_counter() - t0)
            _say(cfg, f"warm-up: {len(run.records)} requests ({ok} ok) in {result.warmup.s:.1f} s, excluded from every metric")
            if ok == 0 and run.records:
                result.status, result.status_reason = "failed", f"every warm-up request failed: {run.records[0].error}"
                return

        meter = energy_meter(base)
        stop_why: str | None = None
        for repeat in range(cfg.repeats):
            for load in loads:
                why = alive() or (f"deadline: the test's {cfg.deadline_s:g} s passed" if time.perf_counter() >= deadline else None)
                if why:
                    stop_why = why
                    break
                level = _level(cfg, result, mode, load, repeat, len(result.levels))
                cpu0, t0 = time.process_time(), time.perf_counter()
                send = make_send(level["index"], load, repeat, t0)
                unreachable = _unreachable(alive, streak, max(3, int(load)) if mode == "concurrency" else 3)
                if mode == "concurrency":
                    run = await cl.closed_loop(send, t0, int(load), cfg.requests, cfg.duration_s, deadline, unreachable)
                else:
                    assert arrivals is not None
                    times = arr.schedule(arrivals, load, cfg.requests, cfg.seed + 1000 * repeat)
                    run = await cl.open_loop(send, t0, times, cfg.duration_s, deadline, unreachable, cfg.max_concurrency)
                cpu = (time.process_time() - cpu0) / max(time.perf_counter() - t0, 1e-9)
                finished = lvl.finish_level(level, run, cpu, slo, arrivals)
                result.levels.append(finished)
                _say(cfg, lvl.level_line(finished, cfg.repeats))
                fo.write_result(folder, result)
                if run.stopped and not run.stopped.startswith("duration"):
                    stop_why = run.stopped
                    break
            if stop_why:
                break
        result.energy = meter.stop(sum(lv.metrics.total_output_tokens for lv in result.levels))
        lvl.summarise(result, mode, slo, prices)
        if stop_why:
            result.status, result.status_reason = "partial", f"stopped early: {stop_why}"
        elif not any(lv.metrics.completed for lv in result.levels):
            result.status, result.status_reason = "failed", "no request succeeded"
        else:
            result.status, result.status_reason = "complete", None


async def _prompts(cfg: LoadConfig, client: Any, url: str) -> list[cl.Prompt]:
    model = cfg.model
    if cfg.tasks:
        loaded = pr.task_prompts(list(cfg.tasks), dict(cfg.data_files), cfg.prompts, cfg.model, cfg.protocol)
        return await pr.measure_all(client, url, loaded, model)
    n = min(cfg.prompts, cfg.requests)
    return await pr.synthetic_prompts(client, url, model, n, cfg.input_tokens or 128, cfg.seed)


def _unreachable(alive: Callable[[], str | None], streak: list[int], limit: int) -> Callable[[], str | None]:
    """Stop when the managed server died, or when `limit` requests in a row could not reach a server."""
    def why() -> str | None:
        return alive() or (f"the server stopped answering: {streak[0]} requests in a row failed to connect or were cut off"
                           if streak[0] >= limit else None)
    return why


def _level(cfg: LoadConfig, result: LoadResult, mode: str, load: float, repeat: int, index: int) -> dict[str, Any]:
    return {"index": index, "mode": mode, "load": load, "repeat": repeat, "requested": cfg.requests}


def _machine() -> dict[str, str | int | float | None]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu or platform.processor() or None, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def _versions(engine: str | None) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"harness": __version__}
    for pkg in ("httpx", "pydantic") + (("llama-cpp-python",) if engine == "llamacpp" else ("vllm",) if engine == "vllm" else ()):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
