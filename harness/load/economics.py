"""Dollars and joules at load: $ per 1M output tokens at the saturation point, set beside API prices.

The hourly price comes from harness.measure.cost (`--price-per-hour`, or `--instance` from
prices.yaml); API prices come only from the model cards (`--api NAME`, or `--card NAME`: that
card's API, else every API the cards price). A served machine costs its hourly price whether busy
or not, so $ per 1M output tokens = price per hour / 3600 / output tokens per second, at the
highest load that met the SLO: the cheapest a deployment keeping that SLO can be, idle time not
counted. The API side is billed for the same input:output token mix, per 1M output tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from harness.load.schema import ApiComparison, LoadCost, LoadPrice, LoadResult


@dataclass(frozen=True)
class ApiPrice:
    name: str
    input_per_1m: float
    output_per_1m: float
    source: str
    params: str  # the API model's size as its card states it


@dataclass(frozen=True)
class Prices:
    per_hour: float | None
    source: str
    apis: list[ApiPrice] = field(default_factory=list)
    card: str | None = None
    card_params: str | None = None
    note: str | None = None


def _params(card: object) -> str:
    p = getattr(card, "parameters", None)
    total = getattr(p, "total_b", None)
    active = getattr(p, "active_b", None)
    if total is None:
        return "size not disclosed"
    return f"{total:g}B parameters" + (f" ({active:g}B active)" if active and active != total else "")


def resolve_prices(price_per_hour: float | None, instance: str | None, card: str | None, apis: tuple[str, ...] | list[str]) -> Prices:
    """Look every price up now, so a bad name fails before the test starts."""
    from harness.cards.loader import find_card, list_cards
    from harness.measure.cost import api_price, hourly_price, load_prices

    per_hour, source = hourly_price(price_per_hour, instance)
    table = load_prices() if (apis or card) else None
    wanted: list[str] = list(apis)
    note = None
    card_params = None
    if card:
        c = find_card(card)
        card_params = _params(c)
        if c.api is not None:
            wanted.append(c.api.model)
        else:
            wanted += [x.api.model for x in list_cards() if x.api is not None]
            note = f"card {c.name} has no API price: compared with every API the cards price"
    by_model = {x.api.model: x for x in list_cards() if x.api is not None} if wanted else {}
    out: list[ApiPrice] = []
    for name in dict.fromkeys(wanted):
        i, o, src = api_price(name, table=table)
        api_card = by_model.get(name)
        out.append(ApiPrice(name, i, o, src, _params(api_card) if api_card else "size not stated"))
    return Prices(per_hour, source, out, card, card_params, note)


def load_cost(result: LoadResult, prices: Prices) -> LoadCost:
    sat = result.saturation
    if prices.per_hour is None:
        return LoadCost(price_per_hour_usd=None, price_source=prices.source, reason=prices.source)
    per_token_s = prices.per_hour / 3600.0
    by_load = [LoadPrice(load=s.load, output_throughput=s.output_throughput.mean, meets_slo=s.meets_slo,
                         usd_per_1m_output_tokens=per_token_s / s.output_throughput.mean * 1e6 if s.output_throughput.mean else None)
               for s in result.summary]
    if sat is None or sat.load is None or not sat.output_throughput:
        why = sat.reason if sat and sat.reason else "no load level produced output"
        return LoadCost(price_per_hour_usd=prices.per_hour, price_source=prices.source, by_load=by_load,
                        reason=f"no saturation point: {why} (by_load gives the cost at each load, SLO unmet)")
    usd = per_token_s / sat.output_throughput * 1e6
    good = [lv.goodput.output_goodput for lv in result.levels if lv.load == sat.load and lv.goodput and lv.goodput.output_goodput]
    usd_good = per_token_s / (sum(good) / len(good)) * 1e6 if good else None
    levels = [lv for lv in result.levels if lv.load == sat.load]
    tin = sum(lv.metrics.total_input_tokens or 0 for lv in levels)
    tout = sum(lv.metrics.total_output_tokens for lv in levels)
    mix = tin / tout if tout else 0.0
    apis = [ApiComparison(api=a.name, input_per_1m=a.input_per_1m, output_per_1m=a.output_per_1m,
                          usd_per_1m_output_same_mix=a.output_per_1m + mix * a.input_per_1m, source=a.source,
                          served_cheaper=usd < a.output_per_1m + mix * a.input_per_1m) for a in prices.apis]
    slo = f"at this SLO ({result.slo.describe()})" if result.slo else "at its highest measured throughput (no SLO given)"
    unit = "concurrency" if sat.mode == "concurrency" else "req/s"
    verdict = None
    if apis:
        cheaper = [a.api for a in apis if a.served_cheaper]
        dearer = [a.api for a in apis if not a.served_cheaper]
        verdict = (f"serving {result.model.rsplit('/', 1)[-1]} here at {unit} {sat.load:g} costs ${usd:.3g} per 1M output tokens {slo}: "
                   + (f"cheaper than {', '.join(cheaper)}" if cheaper else "")
                   + ("; " if cheaper and dearer else "")
                   + (f"not cheaper than {', '.join(dearer)}" if dearer else "")
                   + " (same input:output mix)")
    caveats = [
        "not like for like: the served model and the API models differ in size and quality"
        + (f" (card {prices.card}: {prices.card_params}; " + "; ".join(f"{a.name}: {a.params}" for a in prices.apis) + ")" if prices.card else ""),
        "quantisation, hardware and engine differ: this is this machine at this price, serving this file",
        "the served cost assumes the machine runs at the saturation load all the time; idle hours raise it",
        f"input tokens: ours are in the measured time ({tin} input for {tout} output tokens); the API bill counts them at its input price",
        "API prices change; each carries its source and date",
    ]
    if prices.note:
        caveats.append(prices.note)
    return LoadCost(price_per_hour_usd=prices.per_hour, price_source=prices.source, by_load=by_load, at_load=sat.load,
                    usd_per_1m_output_tokens=usd,
                    usd_per_1m_good_output_tokens=usd_good, apis=apis, verdict=verdict, caveats=caveats)


class _Meter:
    """Energy over the measured levels: NVML for a local GPU server, else None with the reason."""

    def __init__(self, base_url: str):
        self._meter = None
        self._reason = None
        host = (urlsplit(base_url).hostname or "").lower()
        if host not in ("127.0.0.1", "localhost", "::1"):
            self._reason = f"unavailable: the server at {host} is not on this machine"
            return
        try:
            import pynvml  # noqa: F401  (nvidia-ml-py)
        except ImportError:
            self._reason = "unavailable: nvidia-ml-py is not installed"
            return
        from harness.measure.energy import EnergyMeter

        self._meter = EnergyMeter("cuda", None).start()

    def stop(self, output_tokens: int) -> dict[str, float | str | None]:
        if self._meter is None:
            return {"energy_j": None, "energy_source": self._reason, "j_per_output_token": None}
        got = self._meter.stop()
        j = got.get("energy_j")
        return {"energy_j": j, "energy_source": got.get("energy_source"),
                "j_per_output_token": j / output_tokens if j is not None and output_tokens else None}


def energy_meter(base_url: str) -> _Meter:
    return _Meter(base_url)
