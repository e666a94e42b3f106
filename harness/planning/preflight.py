"""Know before you spend: what a run or bench will do, need and cost, decided before any model loads.

`check_inputs` catches the mistakes that need no torch (a missing local model, an unknown task,
card or backend, a missing data file) in well under a second. `assess` turns a Plan and the chosen
device into a Preflight: requests, output tokens (cap and expected), the settings and where each
came from, a memory estimate against what the machine has, and time and dollars per engine from
earlier runs of the same model here or else the bandwidth roofline. `refuse_if_too_big` stops a
run whose estimate exceeds the memory available (`--force` overrides); harness/planning/preview.py
prints it.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.architecture import count_parameters
from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError, ModelLoadError
from harness.planning import estimate as est
from harness.planning import fitting
from harness.tasks.base import check_data_path

if TYPE_CHECKING:
    from harness.runtime.device import DeviceChoice

PROMPT_TOKEN_MARGIN = 64  # template and special tokens around a question


def is_local_path(spec: str) -> bool:
    """The model spec names a file or folder (not random:, openai:, fake: or a Hub org/name id)."""
    return parse_spec(spec).is_local


def check_inputs(values: dict, *, loading: bool = True) -> None:
    """Cheap checks of explicit settings, run before pydantic, torch or a dataset is imported.
    `loading=False` (a plan): a Hub model need not be downloaded yet."""
    from harness import registry

    model = str(values.get("model") or "")
    from harness.planning.checks import check_cheap

    check_cheap(values, model, loading)
    if model and is_local_path(model) and not Path(model).expanduser().exists():
        raise ModelLoadError(f"model path not found: {model}", "check the path, or pass a Hub id like Qwen/Qwen2.5-0.5B-Instruct")
    if parse_spec(model).is_random:
        from harness.backends.models import random_config

        random_config(parse_spec(model).name)
    elif (loading and model.count("/") == 1 and not is_local_path(model) and ":" not in model and _offline()
          and values.get("backend") in (None, "auto", "transformers", "vllm")):  # a plugin backend names models its own way
        _check_cached(model, values)
    for name in values.get("tasks") or ():
        if not str(name).startswith("lm_eval:"):
            registry.get("tasks", str(name))
    backend = values.get("backend")
    if backend and backend != "auto":
        registry.get("backends", str(backend))
    for path in (values.get("data_files") or {}).values():
        check_data_path(Path(str(path)).expanduser())
    if values.get("card"):
        from harness.cards.loader import find_card

        find_card(str(values["card"]))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def _check_cached(repo: str, values: dict) -> None:
    """Offline, a Hub model must already be in the cache: say so before the plan, not after it."""
    from harness.backends.models import check_hub_model

    check_hub_model(repo, values.get("revision"), bool(values.get("allow_pickle")))


# ---- the model's shape, without loading it ---------------------------------------------------------

def model_shape(model: str, card=None) -> dict:
    """{"config": dict | None, "params": int | None, "file_bytes": int | None, "source": str}."""
    config, source, file_bytes, gguf = None, "unknown", None, None
    spec = parse_spec(model)
    if spec.is_random:
        from harness.backends.models import random_config

        config, source = random_config(spec.name), f"architecture of {model}"
    elif spec.is_served:
        return {"config": None, "params": None, "file_bytes": None, "source": "served elsewhere: no local memory", "gguf": None}
    elif spec.is_gguf and Path(model).is_file():
        file_bytes, source = Path(model).stat().st_size, "GGUF file size"
        gguf = _gguf_header(model)
    elif Path(model).expanduser().is_dir():
        path = Path(model).expanduser() / "config.json"
        config, source = (_read_json(path), f"{path}") if path.is_file() else (None, "no config.json")
    else:
        config, source = _hub_config(model, card)
    params = count_parameters(config) if config else None
    if params is None and card is not None and card.parameters.exact:
        params, source = card.parameters.exact, f"card {card.name}"
    return {"config": config, "params": params, "file_bytes": file_bytes, "source": source, "gguf": gguf}


def _gguf_header(path: str):
    """The GGUF's header (parameters, tensor bytes, KV shape), or None for a file that is not one:
    the load will say what is wrong with it."""
    from harness.backends.gguf_file import read_header

    try:
        return read_header(path)
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _hub_config(repo: str, card) -> tuple[dict | None, str]:
    from harness.backends.models import CONFIGS

    for c in _cards_for(repo, card):
        name = c.architecture.config_file
        if name and (CONFIGS / name).is_file():
            return _read_json(CONFIGS / name), f"config of card {c.name} ({repo})"
    try:  # a model downloaded before: its config.json is in the Hub cache
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, "config.json")
        if isinstance(hit, str):
            return _read_json(Path(hit)), "Hugging Face cache"
    except Exception:
        pass
    return None, "no config found offline"


def _cards_for(repo: str, card) -> list:
    if card is not None:
        return [card]
    try:
        from harness.cards.loader import list_cards

        return [c for c in list_cards() if c.hub_id and c.hub_id.lower() == repo.lower()]
    except ConfigError:
        return []


# ---- the assessment ---------------------------------------------------------------------------------

@dataclass
class Preflight:
    model: str
    device: DeviceChoice
    tasks: list[dict]
    memory: dict | None
    available: int | None
    available_source: str
    shape_source: str
    engines: list[dict]
    price: tuple[float | None, str]
    notes: list[str] = field(default_factory=list)
    shape: dict | None = None  # model_shape(): config, parameters, file size
    engine_choice: str | None = None  # on a CPU: which engine decodes faster here, and why
    target: object | None = None  # targets.Target when planning for a device this machine is not
    local_name: str | None = None  # this machine's device name (its start-up is measured here)
    prompt_mean: float = 128.0  # mean prompt tokens per request (estimated from characters)
    price_applies: bool = True  # the price rents the device the time is for
    warnings: list[str] = field(default_factory=list)  # waste the run would incur, said before it spends

    @property
    def time(self) -> dict | None:
        """The chosen engine's whole-run time (timing.TimeEstimate as a dict), or None."""
        return self.engines[0].get("time") if self.engines else None

    @property
    def requests(self) -> int:
        return sum(t["requests"] for t in self.tasks)

    @property
    def fits(self) -> bool:
        return self.memory is None or est.fits(self.memory, self.available)


def _prompt_chars(plan) -> list[int]:
    from harness import protocols

    out = []
    for tp in plan.tasks.values():
        for item in tp.items:
            messages, prefill = protocols.build(plan.protocol, tp.task, item)
            out += [sum(len(str(m.get("content", ""))) for m in messages) + len(prefill or "")] * tp.k
    return out


def _prompt_tokens(plan) -> int:
    return max(_prompt_chars(plan), default=0) // 3 + PROMPT_TOKEN_MARGIN  # about 3-4 characters a token in English, fewer in Chinese


CHARS_PER_TOKEN = 3.5  # the mean for the time model: English text through a BPE tokenizer (Chinese is fewer)
TEMPLATE_TOKENS = 20  # a chat template's special tokens and role names


def _prompt_mean(plan) -> float:
    chars = _prompt_chars(plan)
    return sum(chars) / len(chars) / CHARS_PER_TOKEN + (TEMPLATE_TOKENS if plan.protocol.chat else 0) if chars else 128.0


def assess(cfg, plan, dev, card=None, *, batch: int | None = None, context: int | None = None, target=None,
           measure: bool = False) -> Preflight:
    """The plan's cost on `dev` (or on `target`, a targets.Target this machine is not). `batch`/`context`
    override the run's (bench passes its largest cell); `measure`: time the CPU dtype now if not cached."""
    shape = model_shape(cfg.model, card)
    tasks = [_task_row(tp, cfg) for tp in plan.tasks.values()]
    if batch is None:
        total = sum(t["requests"] for t in tasks)
        batch = 1 if cfg.batch_size == "auto" else max(1, min(int(cfg.batch_size), total or 1))
    if context is None:
        context = _prompt_tokens(plan) + max((t["max_new_tokens"] for t in tasks), default=0)
    local_name = dev.name
    memory: dict | None
    notes: list[str]
    available: int | None
    if target is not None:
        from harness.planning.targets import target_choice

        dev = target_choice(target, cfg.dtype)
        memory, notes = (est.memory_estimate(shape["config"] or {}, shape["params"], dev.dtype, batch, context, "cuda")
                         if shape["params"] else None), []
        available, why = int(target.memory_gb * 1e9), f"{target.name}: {target.memory_gb:g} GB ({target.source})"
    else:
        dev, memory, notes = fitting.run_dtype(cfg, dev, shape, batch, context, measure=measure)
        available, why = est.device_available(dev.type, dev.index)
    from harness.planning.checks import price_for, waste_warnings

    pre = Preflight(cfg.model, dev, tasks, memory, available, why, shape["source"], [], price_for(cfg, dev), notes,
                    shape=shape, target=target, local_name=local_name, prompt_mean=_prompt_mean(plan))

    pre.price_applies = not pre.price[1].startswith("not applied")
    pre.warnings = waste_warnings(cfg, plan)
    pre.engines = _engines(cfg, pre, shape, batch, context)
    if cfg.batch_size == "auto" and memory is not None:
        from harness.planning.batch_size import ceiling_for, memory_limit

        limit, _ = memory_limit(ceiling_for(dev.type, pre.requests), fitting.batch_fits(memory, shape, dev.type, available))
        pre.notes.append(f"batch size auto: measured when the model is loaded (transformers), at batch 1, 2, 4, ... up to {limit}, "
                         f"the largest that fits memory at {context} tokens; the memory line is for batch {batch}")
    return pre


def _task_row(tp, cfg) -> dict:
    expected, why = tp.settings["max_new_tokens"], "the cap (no mean length known)"
    mean = tp.settings.get("mean_output_tokens")
    if mean:
        expected, why = min(mean, expected), tp.sources.get("mean_output_tokens", "card")
    return {"name": tp.name, "problems": len(tp.items), "k": tp.k, "requests": len(tp.items) * tp.k,
            "max_new_tokens": tp.settings["max_new_tokens"], "expected_tokens": expected, "expected_source": why,
            "settings": {k: tp.settings.get(k) for k in ("protocol", "temperature", "top_p", "top_k", "max_new_tokens", "num_samples")},
            "sources": dict(tp.sources)}


def _engines(cfg, pre: Preflight, shape, batch: int, context: int) -> list[dict]:
    """Time and dollars for each engine that could run this model here, each from the bytes that
    engine reads per token; sets `pre.engine_choice`, the line saying which engine is faster (engines.py)."""
    from harness.planning.engines import EngineEstimates

    plan = EngineEstimates(cfg, pre, shape, batch, context)
    pre.engine_choice = plan.choice()
    return plan.rows()


def refuse_if_too_big(pre: Preflight, force: bool, what: str = "run") -> None:
    if pre.fits or force:
        return
    m = pre.memory
    assert m is not None  # `fits` is True without a memory estimate
    raise ConfigError(
        f"this {what} needs about {est.human_bytes(m['total'])} ({m['dtype']} weights {est.human_bytes(m['weights'])} + "
        f"KV cache {est.human_bytes(m['kv_cache'])} at batch {m['batch']} x {m['context']} tokens + margin) but "
        f"{pre.device.type} has {est.human_bytes(pre.available)} available ({pre.available_source})",
        "use a smaller --dtype (bfloat16), --device-map auto with --max-memory, a GGUF with --backend llamacpp, "
        "a smaller --batch-size or --max-new-tokens; --force tries anyway")


def plan_for(cfg, *, batch: int | None = None, context: int | None = None, target: str | None = None,
             measure: bool = False) -> tuple[object, Preflight]:
    """(Plan, Preflight) for a config: tasks loaded and the device chosen, no model loaded. On a
    CPU-only machine the device is chosen without importing torch, so a plan takes well under 2 s."""
    from harness.planning.plan import make_plan
    from harness.planning.targets import cpu_choice
    from harness.planning.targets import target as find_target

    card = None
    if cfg.card:
        from harness.cards.loader import find_card

        card = find_card(cfg.card)
    plan = make_plan(cfg, card)
    tgt = find_target(target) if target else None
    dev = cpu_choice(cfg.device, cfg.dtype)
    if dev is None:
        from harness.runtime import device as devices

        dev = devices.resolve(cfg.device, cfg.dtype)
    return plan, assess(cfg, plan, dev, card, batch=batch, context=context, target=tgt, measure=measure)


def print_plan(cfg, *, as_json: bool = False, target: str | None = None, calibrate: bool = False) -> int:
    """`harness plan` / `harness run --dry-run`: print the plan and stop; writes nothing but the
    measurement caches (`calibrate`: this machine's time profile and CPU dtype, measured now)."""
    from harness.planning.preview import plan_json, render

    if calibrate:
        from harness.planning.calibrate import calibrate as measure_machine
        from harness.runtime.device import cpu_name

        prof = measure_machine(cpu_name(), say=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"calibrated: profile of {prof.machine} cached", file=sys.stderr)
    _, pre = plan_for(cfg, target=target, measure=calibrate)
    stop = None
    try:
        refuse_if_too_big(pre, cfg.force)
    except ConfigError as e:
        stop = str(e)
    if as_json:
        print(json.dumps(plan_json(pre, stop), indent=1, default=str))
        return 0
    print(render(pre))
    if stop:
        print(f"a run would stop here: {stop}")
    return 0


FAITHFUL_PROMPT_TOKENS = 512  # a generous prompt length when the task's data is not at hand


def card_cost(card, *, price_per_hour: float | None = None, instance: str | None = None) -> Preflight | None:
    """What running every claim of `card` that this harness can check costs here, the card's way
    (full benchmark sizes, the card's samples and token caps); None for a card with nothing to run."""
    from harness import registry
    from harness.config import make_config
    from harness.planning.plan import card_settings
    from harness.runtime import device as devices

    runnable = registry.entries("tasks")
    tasks = sorted({c.task for c in card.claims if c.value is not None and c.unit == "percent" and c.task in runnable})
    model = card.hub_id or (f"openai:{card.api.model}" if card.api else None)
    if not tasks or not model:
        return None
    cfg = make_config(model=model, card=card.name, tasks=tasks, price_per_hour=price_per_hour, instance=instance)
    rows = []
    for name in tasks:
        d, why = card_settings(card, name)
        size = runnable[name].load().size or 0
        expected, exp_why = d["max_new_tokens"], "the cap (no mean length known)"
        if d.get("mean_output_tokens"):
            expected, exp_why = min(d["mean_output_tokens"], expected), f"card {card.name}"
        rows.append({"name": name, "problems": size, "k": d["num_samples"], "requests": size * d["num_samples"],
                     "max_new_tokens": d["max_new_tokens"], "expected_tokens": expected, "expected_source": exp_why,
                     "settings": {k: d.get(k) for k in ("protocol", "temperature", "top_p", "top_k", "max_new_tokens", "num_samples")},
                     "sources": why})
    dev = devices.resolve("auto", "auto")
    shape = model_shape(model, card)
    batch = min(int(cfg.batch_size), max(r["requests"] for r in rows) or 1)
    context = FAITHFUL_PROMPT_TOKENS + max(r["max_new_tokens"] for r in rows)
    fitted, memory, notes = fitting.fit_dtype(cfg, dev, shape, batch, context)
    assert isinstance(fitted, devices.DeviceChoice)  # fit_dtype returns `dev`, or a dataclasses.replace of it
    dev = fitted
    available, available_why = est.device_available(dev.type, dev.index)
    from harness.measure.cost import hourly_price

    pre = Preflight(model, dev, rows, memory, available, available_why, shape["source"], [], hourly_price(price_per_hour, instance), notes)
    pre.engines = _engines(cfg, pre, shape, batch, context)
    return pre
