"""The one step every entry point takes before loading a model: device, dtype and the memory decision.

`harness run`, `--think-budgets`, `harness bench`, the lm-eval adapter (and any new command that loads a
model) go through `prepare` (with a plan of requests) or `prepare_model` (without one), so they all run in
the dtype `run` would choose and are all refused, with one line, when the model does not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.planning import fitting, preflight
from harness.runtime import device as devices


@dataclass
class Prepared:
    """What the entry point loads with: the device (dtype decided), the plan's estimates, and the batch
    sizes that fit (for --batch-size auto)."""

    device: Any  # runtime.device.DeviceChoice
    preflight: preflight.Preflight | None
    batch_fits: Callable[[int], bool]


def prepare(cfg: Any, plan: Any, card: Any = None, *, on_plan: Callable[[preflight.Preflight], None] | None = None,
            batch: int | None = None, context: int | None = None, what: str = "run") -> Prepared:
    """Device and dtype for `plan`, its memory, time and dollars, and a refusal (unless --force) when it does not fit."""
    pre = preflight.assess(cfg, plan, devices.resolve(cfg.device, cfg.dtype), card, batch=batch, context=context)
    if on_plan is not None:
        on_plan(pre)
    preflight.refuse_if_too_big(pre, cfg.force, what)
    dev: Any = pre.device
    return Prepared(dev, pre, fitting.batch_fits(pre.memory, pre.shape, dev.type, pre.available))


def prepare_model(cfg: Any, dev: Any, *, batch: int, context: int, force: bool = False, what: str = "model") -> Prepared:
    """The same decision where no plan of requests exists (the lm-eval adapter, whose requests lm-eval sends):
    the run dtype and the memory check for `batch` sequences of `context` tokens."""
    shape = preflight.model_shape(cfg.model)
    dev, memory, notes = fitting.run_dtype(cfg, dev, shape, batch, context)
    available, why = preflight.est.device_available(dev.type, dev.index)
    pre = preflight.Preflight(cfg.model, dev, [], memory, available, why, shape["source"], [], (None, ""), notes, shape=shape)
    preflight.refuse_if_too_big(pre, force, what)
    return Prepared(dev, pre, fitting.batch_fits(memory, shape, dev.type, available))
