"""Cost as a pure function of measured time or tokens and a price, with the price's source.

Two bases:
- time: a machine rented by the hour (`--price-per-hour`, or a named instance from
  harness/data/prices.yaml): usd_total = wall seconds / 3600 x price per hour;
- tokens: an API billed per token: usd_total = input x in-price + output x out-price (per 1M).

Derived figures are None where they are undefined (no price, no output tokens, nothing correct),
never 0 or infinity. Looking a price up is separate from computing with it, so the computing
functions stay pure.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from harness.errors import ConfigError

PER_GPU_SUFFIX = "/gpu"


@lru_cache(maxsize=4)
def load_prices(path: str | None = None) -> dict:
    """The price table: {"instances": {...}, "apis": {...}}. Instances come from prices.yaml
    (default: the packaged one); API prices come only from the model cards' `api.prices`, their
    one source, so a price cannot differ between two files."""
    from harness.config import safe_yaml

    text = Path(path).read_text() if path else (resources.files("harness") / "data" / "prices.yaml").read_text()
    loaded = safe_yaml(text, path or "prices.yaml")
    table: dict = loaded if isinstance(loaded, dict) else {}
    if table.get("apis"):
        raise ConfigError(f"{path or 'prices.yaml'} lists API prices", "API prices live in the model cards' api.prices only")
    return {"instances": table.get("instances") or {}, "apis": card_api_prices()}


def card_api_prices() -> dict:
    """{API model name: price entry} from every card with an `api` section. Each is listed under
    its snapshot name (o1-mini-2024-09-12), the name without the date (o1-mini) and the card name."""
    from harness.cards.loader import list_cards

    out: dict[str, dict] = {}
    for card in list_cards():
        if card.api is None:
            continue
        p = card.api.prices
        entry = {"input_per_1m": p.input_per_1m, "input_cache_hit_per_1m": p.cached_input_per_1m, "output_per_1m": p.output_per_1m,
                 "source": f"model card {card.name}: {p.source}", "status": p.status, "as_of": p.as_of or "not stated", "card": card.name}
        undated = re.sub(r"-\d{4}-\d{2}-\d{2}$", "", card.api.model)
        for key in (card.api.model, undated, card.name):
            out.setdefault(key, entry)
    return out


def provenance(status: str | None, source: str | None, via: str | None = None) -> str:
    """Where a price comes from, said next to the number: a secondary price is a third party's copy
    of the publisher's page, never the page itself."""
    if status == "secondary":
        return f"third-party copy of {source or 'an unnamed page'}{', via ' + via if via else ''}"
    if status in ("verified", "definition"):
        return f"{status}: {source or 'no source'}"
    return f"UNVERIFIED (no stored source): {source or 'no source'}"


def price_lines(table: dict | None = None) -> list[str]:
    """`harness list prices`: every instance and API price with its unit and provenance."""
    table = table or load_prices()
    out = ["instances (USD per hour):"]
    for name, e in table["instances"].items():
        out.append(f"  {name:<26} ${e['usd_per_hour']:g}/h  {e.get('gpus', '?')} x {e.get('gpu', '?')}, {e.get('region', '?')}, "
                   f"as of {e.get('as_of', '?')}  ({provenance(e.get('status'), e.get('source'), e.get('via'))})")
    out.append("APIs (USD per 1M tokens):")
    for name, e in table["apis"].items():
        cached = e.get("input_cache_hit_per_1m")
        out.append(f"  {name:<26} ${e['input_per_1m']:g} input{f', ${cached:g} cached input' if cached is not None else ''}, "
                   f"${e['output_per_1m']:g} output, as of {e.get('as_of', '?')}  ({provenance(e.get('status'), e.get('source'), e.get('via'))})")
    return out


def _describe(name: str, entry: dict) -> str:
    return (
        f"{name}: ${entry['usd_per_hour']}/h on-demand ({entry.get('region', '?')}), as of "
        f"{entry.get('as_of', '?')} ({provenance(entry.get('status'), entry.get('source'), entry.get('via'))})"
    )


MAX_USD_PER_HOUR = 1e6


def _check_price(value: float, what: str) -> float:
    # the upper bound keeps every derived figure (per 1M tokens, per answer) a finite JSON number
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= MAX_USD_PER_HOUR:
        raise ConfigError(f"{what} must be a number from 0 to {MAX_USD_PER_HOUR:,.0f}, got {value!r}", "pass a price in USD")
    return float(value)


def hourly_price(
    price_per_hour: float | None, instance: str | None, *, table: dict | None = None
) -> tuple[float | None, str]:
    """(USD per hour, where it came from). An explicit price wins over a named instance.

    `instance` is a name from prices.yaml; `NAME/gpu` charges one GPU's share of a multi-GPU
    instance. Neither given: (None, reason).
    """
    if price_per_hour is not None:
        price = _check_price(price_per_hour, "--price-per-hour")
        note = f" (overrides --instance {instance})" if instance else ""
        return price, f"user: --price-per-hour {price:g}{note}"
    if not instance:
        return None, "no price given: pass --price-per-hour or --instance"
    instances = (table or load_prices())["instances"]
    name, per_gpu = instance, False
    if instance.endswith(PER_GPU_SUFFIX):
        name, per_gpu = instance[: -len(PER_GPU_SUFFIX)], True
    if name not in instances:
        raise ConfigError(
            f"unknown instance '{instance}'",
            f"use one of {', '.join(sorted(instances))} (append /gpu for one GPU's share), or --price-per-hour",
        )
    entry = instances[name]
    price = _check_price(entry["usd_per_hour"], f"prices.yaml {name}.usd_per_hour")
    source = _describe(name, entry)
    if per_gpu:
        gpus = int(entry.get("gpus") or 0)
        if gpus < 1:
            raise ConfigError(f"instance '{name}' has no GPUs to share", f"use --instance {name}")
        return price / gpus, f"1/{gpus} of {source}"
    return price, source


def api_price(model: str, *, table: dict | None = None) -> tuple[float, float, str]:
    """(USD per 1M input tokens (cache miss), per 1M output tokens, source) for a named API model."""
    apis = (table or load_prices())["apis"]
    if model not in apis:
        raise ConfigError(f"no API price for '{model}'", f"use one of {', '.join(sorted(apis))}")
    e = apis[model]
    source = (
        f"{model}: ${e['input_per_1m']}/1M input, ${e['output_per_1m']}/1M output, as of "
        f"{e.get('as_of', '?')} ({provenance(e.get('status'), e.get('source'), e.get('via'))})"
    )
    return float(e["input_per_1m"]), float(e["output_per_1m"]), source


def _per(total: float | None, count: int | None, scale: float = 1.0) -> float | None:
    if total is None or not count:
        return None
    return total / count * scale


def time_cost(
    wall_s: float,
    price_per_hour: float | None,
    output_tokens: int | None,
    correct: int | None,
    *,
    price_source: str | None = None,
) -> dict:
    """Cost of renting a machine for `wall_s` seconds (pass the time the machine is billed for)."""
    total = None if price_per_hour is None else wall_s / 3600.0 * price_per_hour
    return {
        "price_per_hour_usd": price_per_hour,
        "price_source": price_source,
        "basis": "time",
        "usd_total": total,
        "usd_per_1m_output_tokens": _per(total, output_tokens, 1e6),
        "usd_per_correct": _per(total, correct),
    }


def token_cost(
    input_tokens: int | None,
    output_tokens: int | None,
    price_in_per_1m: float,
    price_out_per_1m: float,
    correct: int | None,
    *,
    price_source: str | None = None,
) -> dict:
    """Cost of an API run billed per token (reasoning tokens count as output)."""
    if input_tokens is None or output_tokens is None:
        total = None  # an unmeasured count would make any total a guess
    else:
        total = (input_tokens * price_in_per_1m + output_tokens * price_out_per_1m) / 1e6
    return {
        "price_per_hour_usd": None,
        "price_source": price_source,
        "basis": "tokens",
        "usd_total": total,
        "usd_per_1m_output_tokens": _per(total, output_tokens, 1e6),
        "usd_per_correct": _per(total, correct),
    }
