"""Checks a plan makes before anything is spent: cheap preconditions of the inputs (before any import
or plan), whether a price rents the device the time is for, and the waste a run summary would flag
afterwards (identical greedy samples, budgets a protocol cannot apply, several budget runs)."""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError, ModelLoadError


def check_cheap(values: dict, model: str, loading: bool) -> None:
    """Preconditions that cost nothing, checked before the plan and before any import: a model name
    that is a random: model without its prefix, a --tokenizer path that does not exist, an output
    folder that cannot be written, an unknown --target."""
    spec = parse_spec(model) if model else None
    if model and spec is not None and not spec.is_random and ":" not in model and "/" not in model and not Path(model).expanduser().exists():
        from harness.backends.models import random_names

        if model in random_names() or f"{model}-instruct" in random_names():
            raise ModelLoadError(f"model {model!r} not found", f"did you mean --model random:{model}? (random weights; see `harness list models`)")
    tok = values.get("tokenizer")
    if tok and (str(tok).startswith(("/", ".", "~")) or Path(str(tok)).expanduser().exists() is False and str(tok).count("/") != 1):
        if not Path(str(tok)).expanduser().is_dir():
            raise ModelLoadError(f"--tokenizer {tok}: not found (no such folder)", "pass a folder with tokenizer.json, or a Hub id like Qwen/Qwen2.5-0.5B-Instruct")
    out = values.get("output_dir")
    if loading and out and not values.get("resume"):
        existing = Path(str(out)).expanduser()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"output directory {out!r} is not writable ({existing} is {'not a directory' if not existing.is_dir() else 'read-only'})",
                              "pass --output-dir to a folder you can write")


def price_for(cfg, dev) -> tuple[float | None, str]:
    """(USD per hour, source) for the device the time is computed for: an --instance that rents
    another device is not applied to this time, and the source says so."""
    from harness.measure.cost import hourly_price, load_prices
    from harness.planning.targets import prices_device

    price, source = hourly_price(cfg.price_per_hour, cfg.instance)
    if cfg.instance and cfg.price_per_hour is None and price is not None:
        entry = load_prices()["instances"].get(cfg.instance.removesuffix("/gpu"), {})
        if not prices_device(entry.get("gpu"), dev.name, dev.type):
            return None, (f"not applied: --instance {cfg.instance} rents {entry.get('gpu') or 'another machine'}, but the time is "
                          f"for {dev.name}; add --target for that device (see `harness plan --help`) to price its time")
        source += f"; prices the {dev.name} time computed here"
    return price, source


def waste_warnings(cfg, plan) -> list[str]:
    """What the run summary would flag afterwards as wasted, said before anything is spent."""
    out = []
    for tp in plan.tasks.values():
        if tp.k > 1 and tp.sampling.temperature == 0:
            out.append(f"{tp.name}: {tp.k} samples per problem under greedy decoding (temperature 0) are identical: "
                       f"{tp.k - 1} of every {tp.k} generations are wasted; set --temperature > 0 or --num-samples 1")
    if cfg.think_budgets and not plan.protocol.force_think and "think" not in plan.protocol.name and plan.protocol.name != "r1":
        out.append(f"--think-budgets with protocol {plan.protocol.name}, which has no thinking section: the budgets cannot apply "
                   "(use a reasoning model's protocol, e.g. --protocol r1)")
    if cfg.think_budgets and len(cfg.think_budgets) > 1:
        out.append(f"--think-budgets {','.join(map(str, cfg.think_budgets))}: {len(cfg.think_budgets)} runs, one per budget "
                   "(the model loads once); the time and cost below cover all of them")
    return out
