"""What a level's records become: metrics, the achieved load and its warnings, the console line;
then, over all levels, the summary with spread, the saturation point and the closing lines."""

from __future__ import annotations

from typing import Any

from harness.load import arrivals as arr
from harness.load import client as cl
from harness.load import metrics as me
from harness.load.economics import load_cost
from harness.load.schema import Achieved, Level, LoadResult, LoadSummary, Slo

CLIENT_CPU_LIMIT = 0.9  # this process busy for more than this share of the level's wall time: the client may be the limit
LAG_LIMIT_S = 0.05

def closing_lines(result: LoadResult) -> list[str]:
    out = []
    sat = result.saturation
    if sat is not None:
        what = "concurrency" if sat.mode == "concurrency" else "rate"
        out.append(f"saturation point: {what} {sat.load:g} ({sat.criterion}), {sat.output_throughput or 0:.3g} output tok/s"
                   if sat.load is not None else f"saturation point: none ({sat.reason}; {sat.criterion})")
    c = result.cost
    if c is not None:
        if c.usd_per_1m_output_tokens is not None:
            good = f", ${c.usd_per_1m_good_output_tokens:.3g} counting only SLO-conforming output" if c.usd_per_1m_good_output_tokens else ""
            out.append(f"cost: ${c.usd_per_1m_output_tokens:.3g} per 1M output tokens at the saturation point{good} ({c.price_source})")
        else:
            out.append(f"cost: {c.reason}")
        for p in c.by_load:
            if p.usd_per_1m_output_tokens is not None:
                out.append(f"  at {p.load:g}: ${p.usd_per_1m_output_tokens:.3g} per 1M output tokens"
                           f"{'' if p.meets_slo is None else (' (meets the SLO)' if p.meets_slo else ' (misses the SLO)')}")
        if c.verdict:
            out.append(f"verdict: {c.verdict}")
            out += [f"  caveat: {x}" for x in c.caveats]
    e = result.energy
    if e.get("energy_j") is not None:
        out.append(f"energy: {e['energy_j']:.4g} J over the measured levels, {e.get('j_per_output_token') or 0:.3g} J per output token ({e.get('energy_source')})")
    elif e.get("energy_source"):
        out.append(f"energy: {e['energy_source']}")
    return out


def finish_level(level: dict[str, Any], run: cl.LevelRun, cpu: float, slo: Slo | None, arrivals: arr.Arrivals | None) -> Level:
    recs = run.records
    duration = max(run.end - run.start, 1e-9)
    metrics = me.level_metrics(recs, duration)
    sends = sorted(r.sent_s for r in recs)
    send_rate = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 and sends[-1] > sends[0] else None
    mode, load = level["mode"], level["load"]
    warnings: list[str] = []
    limited = False
    lag90 = me.percentile(run.lags, 90) if run.lags else None
    scheduled = None
    if mode == "rate":
        ats = sorted(r.scheduled_s for r in recs if r.scheduled_s is not None)
        scheduled = (len(ats) - 1) / ats[-1] if len(ats) > 1 and ats[-1] > 0 else None
        if lag90 is not None and scheduled and lag90 > max(LAG_LIMIT_S, 0.1 / scheduled):
            limited = True
            warnings.append(f"sends ran late (p90 {lag90 * 1000:.0f} ms behind schedule): the client, not the server, limited the load")
        if send_rate and scheduled and send_rate < 0.9 * scheduled:
            warnings.append(f"achieved send rate {send_rate:.3g}/s is below the schedule's {scheduled:.3g}/s")
        if scheduled and abs(scheduled - load) > 0.25 * load:
            warnings.append(f"the drawn {arrivals.describe() if arrivals else ''} schedule of {len(ats)} requests has rate "
                            f"{scheduled:.3g}/s against the requested {load:g}/s (few requests: sampling noise; raise --requests)")
    else:
        if run.max_in_flight < min(int(load), len(recs)):
            limited = True
            warnings.append(f"never had {int(load)} requests in flight (at most {run.max_in_flight}): the client limited the load")
        if len(recs) < 2 * load:
            warnings.append(f"{len(recs)} requests at concurrency {load:g}: ramp-up and tail are a large share (raise --requests)")
    if cpu > CLIENT_CPU_LIMIT:
        limited = True
        warnings.append(f"the client used {cpu:.0%} of a CPU core: it, not the server, may be the limit")
    achieved = Achieved(mode=mode, requested=load, sent=len(recs), scheduled_rate=scheduled, send_rate=send_rate,
                        completion_rate=metrics.request_throughput,
                        mean_concurrency=sum(r.e2el_s or 0.0 for r in recs) / duration if recs else None,
                        max_in_flight=run.max_in_flight, schedule_lag_p90_s=lag90, client_cpu_fraction=cpu,
                        client_limited=limited, warnings=warnings)
    return Level(index=level["index"], mode=mode, load=load, repeat=level["repeat"], stopped=run.stopped, metrics=metrics,
                 achieved=achieved, goodput=me.goodput(recs, slo, duration) if slo else None)


def level_line(lv: Level, repeats: int) -> str:
    m, a = lv.metrics, lv.achieved
    what = f"concurrency {lv.load:g}" if lv.mode == "concurrency" else f"rate {lv.load:g}/s"
    rep = f" (repeat {lv.repeat + 1}/{repeats})" if repeats > 1 else ""

    def ms(x: float | None) -> str:
        return "n/a" if x is None else f"{x * 1000:.0f} ms"

    got = (f"achieved {a.send_rate:.3g} req/s sent" if lv.mode == "rate" and a.send_rate else
           f"mean in flight {a.mean_concurrency:.2f}" if a.mean_concurrency is not None else "")
    good = f", goodput {lv.goodput.request_goodput or 0:.3g} req/s ({(lv.goodput.attainment or 0):.0%} within SLO)" if lv.goodput else ""
    warn = "".join(f"\n  warning: {w}" for w in a.warnings)
    stop = f"\n  stopped: {lv.stopped}" if lv.stopped else ""
    return (f"{what}{rep}: {m.completed} ok, {m.failed} failed, {m.output_throughput or 0:.1f} output tok/s, "
            f"TTFT p50 {ms(m.ttft_s.median)} p99 {ms(m.ttft_s.p99)}, TPOT p50 {ms(m.tpot_s.median)}, "
            f"E2EL p99 {ms(m.e2el_s.p99)}, {got}{good}{warn}{stop}")


def summarise(result: LoadResult, mode: str, slo: Slo | None, prices: Any) -> None:
    by: dict[float, list[Level]] = {}
    for lv in result.levels:
        by.setdefault(lv.load, []).append(lv)
    summary = []
    points = []
    for load, lvs in sorted(by.items()):
        att = [lv.goodput.attainment for lv in lvs if lv.goodput] if slo else None
        meets = all(lv.goodput.meets_slo for lv in lvs if lv.goodput) if slo else None
        s = LoadSummary(mode=mode, load=load, repeats=len(lvs),
                        output_throughput=me.spread([lv.metrics.output_throughput for lv in lvs]),
                        request_throughput=me.spread([lv.metrics.request_throughput for lv in lvs]),
                        p99_ttft_s=me.spread([lv.metrics.ttft_s.p99 for lv in lvs]),
                        p99_tpot_s=me.spread([lv.metrics.tpot_s.p99 for lv in lvs]),
                        p99_e2el_s=me.spread([lv.metrics.e2el_s.p99 for lv in lvs]),
                        attainment=me.spread(att) if att is not None else None, meets_slo=meets)
        summary.append(s)
        if any(lv.metrics.completed for lv in lvs):
            points.append((load, s.output_throughput.mean, s.request_throughput.mean, meets))
    result.summary = summary
    result.saturation = me.saturation(points, mode, slo)
    result.cost = load_cost(result, prices)
    result.warnings = sorted({w for lv in result.levels for w in lv.achieved.warnings if "client" in w})


