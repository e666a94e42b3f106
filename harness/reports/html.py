"""report.html: one self-contained page for one run, rendered from run.json and samples.jsonl.

Self-contained means no external URL of any kind: CSS is inline, figures are `data:` PNGs, there
are no fonts to fetch and no scripts (a Content-Security-Policy forbids them, so even a mistake
in escaping cannot run a model's output as code). Every piece of text that came from a model, a
dataset or a config is HTML-escaped. Like report.md, it summarises what was measured and
computes nothing new beyond histograms of per-sample values.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

from harness.reports import plots
from harness.results.schema import RunResult, as_run, dump

MAX_SAMPLES = 500  # beyond this the page gets slow to open; samples.jsonl holds them all
CLIP_HEAD, CLIP_TAIL = 6000, 2000  # characters of one long text kept from its start and end

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
:root{--fg:#1d2733;--muted:#5d6b7a;--line:#e3e7ec;--bg:#f6f8fa;--card:#fff;--accent:#0072B2;--good:#1a7f37;--bad:#c2410c;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1120px;margin:0 auto;padding:24px 28px 64px}
h1{font-size:24px;margin:0 0 2px}h2{font-size:18px;margin:36px 0 12px;padding-bottom:6px;border-bottom:2px solid var(--line)}
h3{font-size:14px;margin:18px 0 8px}h4{font-size:12px;margin:14px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.sub{color:var(--muted);margin:0 0 14px}
nav{position:sticky;top:0;z-index:2;background:rgba(246,248,250,.95);border-bottom:1px solid var(--line);padding:8px 0;margin-bottom:8px}
nav a{margin-right:16px;color:var(--accent);text-decoration:none;font-weight:600}
a{color:var(--accent)}
.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:10px;margin:14px 0}
.meta div,.tile{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.meta b{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:10px;margin:10px 0}
.tile .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.tile .v{font-size:22px;font-weight:650;margin:2px 0}.tile .n{font-size:12px;color:var(--muted)}
.warn{background:#fff8e6;border:1px solid #f0d58c;border-left:4px solid var(--warn);border-radius:6px;padding:8px 12px;margin:8px 0}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;font-size:13px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef2f6;font-size:12px;color:var(--muted);font-weight:650}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:last-child td{border-bottom:none}tbody tr:hover{background:#f3f8fc}
.ci{position:relative;height:10px;width:140px;background:#eef2f6;border-radius:5px;display:inline-block;vertical-align:middle}
.ci i{position:absolute;top:0;height:10px;background:#9cc7e4;border-radius:5px}.ci s{position:absolute;top:-2px;width:3px;height:14px;background:var(--accent)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:650;background:#eef2f6;color:var(--muted)}
.good{background:#dafbe1;color:var(--good)}.bad{background:#ffe9dc;color:var(--bad)}.mid{background:#fff3c4;color:var(--warn)}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:12px;align-items:start}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px}
figure img{width:100%;height:auto;display:block}figcaption{font-size:12px;color:var(--muted);padding:4px 4px 0}
.note{color:var(--muted);font-size:13px}
details.sample{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:8px 0;padding:0 12px}
details.sample>summary{cursor:pointer;padding:8px 0;font-weight:600}
details.sample[open]>summary{border-bottom:1px solid var(--line)}
.anchor{scroll-margin-top:90px}
details.sample:has(.anchor:target){outline:3px solid #9cc7e4}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:8px 10px;
font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;max-height:420px;overflow:auto;margin:0}
.kv{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:4px 16px;margin:10px 0;font-size:13px}
.kv span{color:var(--muted)}
"""

PERF_FIELDS = (("ttft_s", "time to first token (TTFT)"), ("tpot_s", "time per output token (TPOT)"), ("e2e_s", "end-to-end latency"))


def e(x) -> str:
    """Escape anything for HTML text or a quoted attribute; None shows as an em dash."""
    return "—" if x is None else html.escape(str(x), quote=True)


def pct(x, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def num(x, fmt: str = "{:.3g}", suffix: str = "") -> str:
    return "—" if x is None else fmt.format(x) + suffix


def pct_sig(x) -> str:
    """A percentage that keeps two significant digits when it is tiny (0.04%, not 0.0%)."""
    if x is None or x == 0 or abs(x) >= 0.01:
        return pct(x)
    return f"{100 * x:.2g}%"


def count(x) -> str:
    """1.5 B, 122 M, 12.3 K."""
    if x is None:
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return str(x)


def nbytes(x) -> str:
    if x is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if x >= size:
            return f"{x / size:.2f} {unit}"
    return f"{x} B"


def usd(x) -> str:
    """Dollars with three significant digits and no exponent: $0.0000613, $0.726, $1,234.50."""
    if x is None:
        return "—"
    if x >= 1 or x == 0:
        return f"${x:,.2f}"
    return f"${x:.{2 - math.floor(math.log10(x))}f}"


def seconds(x) -> str:
    if x is None:
        return "—"
    return f"{1000 * x:.3g} ms" if x < 1 else f"{x:.3g} s"


def clip(text: str | None, head: int = CLIP_HEAD, tail: int = CLIP_TAIL) -> str:
    """Long texts keep their start and end; the middle is replaced by a count (the full text is in samples.jsonl)."""
    text = text or ""
    if len(text) <= head + tail + 200:
        return text
    return f"{text[:head]}\n\n[… {len(text) - head - tail:,} characters omitted: the full text is in samples.jsonl …]\n\n{text[-tail:]}"


def verdict_class(verdict: str | None) -> str:
    v = (verdict or "").lower()
    return {"consistent": "good", "below": "bad", "above": "mid", "not_comparable": "mid"}.get(v, "")


def sample_verdict(row: dict) -> tuple[str, str]:
    """(label, css class) of one sample's outcome."""
    if row.get("finish_reason") == "error":
        return "error", "bad"
    if row.get("correct"):
        return "correct", "good"
    if row.get("finish_reason") == "length":
        return "truncated", "mid"
    if row.get("correct_lenient"):
        return "lenient only", "mid"
    return "wrong", "bad"


def _yes(flag) -> str:
    return "—" if flag is None else ("yes" if flag else "no")


def _ci_bar(value, ci) -> str:
    if value is None or not ci:
        return ""
    lo, hi = (max(0.0, min(1.0, c)) for c in ci)
    return (f'<span class="ci" title="95% CI {pct(lo)} to {pct(hi)}"><i style="left:{100 * lo:.1f}%;width:{100 * (hi - lo):.1f}%"></i>'
            f'<s style="left:calc({100 * max(0.0, min(1.0, value)):.1f}% - 1px)"></s></span>')


def _figure(png: bytes | None, caption: str, missing: str) -> str:
    if png is None:
        return f'<figure><figcaption>{e(caption)}: {e(missing)}</figcaption></figure>'
    return f'<figure><img alt="{e(caption)}" src="{plots.data_uri(png)}"><figcaption>{e(caption)}</figcaption></figure>'


def _tile(key: str, value: str, note: str = "") -> str:
    return f'<div class="tile"><div class="k">{e(key)}</div><div class="v">{e(value)}</div><div class="n">{e(note)}</div></div>'


def _table(head: Sequence[str], rows: list[list[str]], num_cols: Sequence[int] = ()) -> str:
    """rows hold already-escaped HTML cells."""
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in num_cols else ""}>{c}</td>' for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _header(d: dict) -> str:
    m, dev, proto = d.get("model") or {}, d.get("device") or {}, d.get("protocol") or {}
    status = d.get("status")
    done = d.get("samples") or {}
    cls = "good" if status == "complete" else "bad"
    out = [f"<h1>{e(m.get('name_or_path'))}</h1>",
           f'<p class="sub">run {e(d.get("run_id"))} · <span class="badge {cls}">{e(status)}</span> · '
           f'{e(done.get("done", "?"))}/{e(done.get("planned", "?"))} samples · created {e(d.get("created_utc"))} · '
           f'finished {e(d.get("finished_utc"))}</p>', '<div class="meta">']
    out.append(f"<div><b>model</b>{e(m.get('architecture') or '?')}, {e(count(m.get('num_parameters')))} parameters, "
               f"{e(m.get('dtype'))}, backend {e(m.get('backend'))}"
               f"{', quantization ' + e(m.get('quantization')) if m.get('quantization') else ''}"
               f"{', revision ' + e(str(m.get('revision'))[:12]) if m.get('revision') else ''}</div>")
    out.append(f"<div><b>device</b>{e(dev.get('name'))} ({e(dev.get('type'))}{' ×' + e(dev.get('count')) if (dev.get('count') or 1) > 1 else ''})"
               f"<br><span class=note>{e(dev.get('device_reason'))}; {e(dev.get('dtype_reason'))}</span></div>")
    out.append(f"<div><b>protocol</b>{e(proto.get('name'))}{' · fewshot ' + e(proto.get('fewshot')) if proto.get('fewshot') else ''}"
               f"{' · forced &lt;think&gt;' if proto.get('force_think') else ''}</div>")
    v = d.get("versions") or {}
    out.append(f"<div><b>software</b>harness {e(v.get('harness'))}, torch {e(v.get('torch'))}, transformers {e(v.get('transformers'))}, "
               f"python {e(v.get('python'))}</div></div>")
    out += [f'<div class="warn"><b>Warning:</b> {e(w)}</div>' for w in d.get("warnings") or []]
    return "\n".join(out)


def _accuracy(d: dict) -> str:
    rows = []
    for name, t in (d.get("tasks") or {}).items():
        for metric, v in (t.get("metrics") or {}).items():
            ci = v.get("ci95")
            rows.append([e(name), e(metric), f"<b>{pct(v.get('value'))}</b>",
                         e(f"[{pct(ci[0])}, {pct(ci[1])}]" if ci else "—"), _ci_bar(v.get("value"), ci), e(v.get("method")),
                         e(v.get("n", t.get("n"))), e(t.get("k")), pct(t.get("truncation_rate")),
                         num(t.get("mean_output_tokens"), "{:.1f}"), num(t.get("mean_thinking_tokens"), "{:.1f}")])
    sources = "".join(f"<li>{e(n)}: {e(t.get('source'))}</li>" for n, t in (d.get("tasks") or {}).items() if t.get("source"))
    return ('<h2 id="accuracy">Accuracy</h2>' + _table(
        ["task", "metric", "value", "95% CI", "", "method", "n", "k", "truncated", "mean output tok", "mean thinking tok"],
        rows, num_cols=(2, 3, 6, 7, 8, 9, 10)) + (f'<p class="note">Data:</p><ul class="note">{sources}</ul>' if sources else ""))


def _claims(d: dict) -> str:
    from harness.claims.verdicts import verdict_label

    claims = d.get("claims") or []
    if not claims:
        return ""
    rows = []
    for c in claims:
        ci = c.get("ci95")
        gap = c.get("gap")
        measured = pct(c.get("measured")) + (" (indicative)" if c.get("indicative") else "")
        rows.append([e(c.get("task")), e(c.get("published_metric") or c.get("metric")), pct(c.get("claimed")), measured,
                     e(f"[{pct(ci[0])}, {pct(ci[1])}]" if ci else "—"),
                     f'<span class="badge {verdict_class(c.get("verdict"))}">{e(verdict_label(c))}</span>',
                     e(None if gap is None else f"{100 * gap:+.1f} pts"), e(c.get("source")), e(c.get("note"))])
    diffs = sorted({x for c in claims for x in c.get("protocol_differences") or []})
    notes = (f'<p class="note">Protocol differences (why a verdict may not transfer to the published setting):</p>'
             f'<ul class="note">{"".join(f"<li>{e(x)}</li>" for x in diffs)}</ul>') if diffs else ""
    why = [c for c in claims if c.get("reasons")]
    if why:
        items = "".join(f"<li>{e(c['task'])} {e(c['metric'])}: " + "; ".join(f"<code>{e(r['code'])}</code> {e(r['detail'])}" for r in c["reasons"])
                        + "</li>" for c in why)
        notes += (f'<p class="note"><strong>Not comparable</strong>: no verdict; the measured value and interval are indicative only.</p>'
                  f'<ul class="note">{items}</ul>')
    if any(c.get("indicative_verdict") for c in claims):
        notes += ('<p class="note"><strong>Indicative verdicts</strong> (<code>--verdicts indicative</code>): computed although the run '
                  'cannot support them; for exploration only, not a finding.</p>')
    return ('<h2 id="claims">Published claims</h2>' + _table(
        ["task", "metric", "claimed", "measured", "95% CI", "verdict", "gap", "source", "note"], rows, num_cols=(2, 3, 4, 6)) + notes)


def _unmeasured(samples: list[dict], field: str) -> str:
    reasons = {r["unmeasured"][field] for r in samples if field in (r.get("unmeasured") or {})}
    return "; ".join(sorted(reasons)) or "not measured in this run"


def _performance(d: dict, samples: list[dict], step: Callable[[str], None]) -> str:
    perf, cost = d.get("perf") or {}, d.get("cost") or {}
    mem, roof = perf.get("peak_memory_bytes") or {}, perf.get("roofline") or {}
    dmem = mem.get("device") or {}
    out = ['<h2 id="performance">Performance</h2>', '<div class="tiles">',
           _tile("output throughput", num(perf.get("output_tokens_per_s"), suffix=" tok/s"),
                 f"prefill {num(perf.get('prefill_tokens_per_s'))} · decode {num(perf.get('decode_tokens_per_s'))} tok/s"),
           _tile("generation time", seconds(perf.get("wall_s")),
                 f"load {seconds(perf.get('load_s'))} · warm-up {seconds((perf.get('warmup') or {}).get('s'))} (excluded)"),
           _tile("tokens", num(perf.get("output_tokens"), "{:,}", " out"), num(perf.get("input_tokens"), "{:,}", " in")),
           _tile("peak memory", nbytes(dmem.get("reserved")) if dmem else nbytes(mem.get("host")),
                 f"device allocated {nbytes(dmem.get('allocated'))} · host RSS {nbytes(mem.get('host'))}" if dmem
                 else "host RSS (no device memory counter)"),
           _tile("energy", num(perf.get("energy_j"), suffix=" J"),
                 f"{num(perf.get('joules_per_output_token'))} J/token · {num(perf.get('joules_per_correct'))} J/correct · "
                 f"{perf.get('energy_source') or 'no energy counter'}"),
           _tile("cost", usd(cost.get("usd_total")),
                 f"{usd(cost.get('usd_per_1m_output_tokens'))} / 1M output tok · "
                 f"{usd(cost.get('usd_per_correct'))} / correct · {cost.get('price_source') or 'no price given'}"),
           _tile("roofline", pct_sig(roof.get("fraction")),
                 f"of the decode bound at batch {roof.get('batch', '—')}: {num(roof.get('bound_tokens_per_s_per_sequence'))} tok/s per sequence, "
                 f"{num(roof.get('bound_tokens_per_s'))} in aggregate, at {num(roof.get('bandwidth_gbps'))} GB/s measured "
                 f"(published peak {num(roof.get('peak_bandwidth_gbps'))} GB/s)"),
           "</div>"]
    rows = [[e(label)] + [seconds((perf.get(k) or {}).get(q)) for q in ("mean", "p50", "p90", "p99")] for k, label in PERF_FIELDS]
    out.append(_table(["per request", "mean", "p50", "p90", "p99"], rows, num_cols=(1, 2, 3, 4)))
    out.append('<h3>Latency distributions</h3><div class="figs">')
    for key, label in PERF_FIELDS:
        vals = [r.get(key) for r in samples]
        p = perf.get(key) or {}
        # Sub-second latencies read better in milliseconds.
        scale, unit = (1000.0, "ms") if max((v for v in vals if v is not None), default=1.0) < 1 else (1.0, "s")
        png = plots.histogram([None if v is None else v * scale for v in vals], title=label, xlabel=unit,
                              vlines={q: None if p.get(q) is None else p[q] * scale for q in ("p50", "p90")})
        n = sum(v is not None for v in vals)
        out.append(_figure(png, f"{label}: {n:,} requests · p50 {seconds(p.get('p50'))} · p90 {seconds(p.get('p90'))}",
                           _unmeasured(samples, key)))
        step(f"{key} histogram")
    png = plots.scatter([r.get("output_tokens") for r in samples], [r.get("e2e_s") for r in samples],
                        title="latency vs answer length", xlabel="output tokens", ylabel="end-to-end (s)")
    out.append(_figure(png, "end-to-end latency against output tokens (slope = time per token)", "needs output tokens and e2e"))
    step("latency scatter")
    out.append("</div>")
    return "\n".join(out)


def _lengths(d: dict, samples: list[dict], step: Callable[[str], None]) -> str:
    truncated = [r.get("finish_reason") == "length" for r in samples]
    budget = (d.get("config") or {}).get("max_new_tokens")
    tiles = "".join(_tile(f"{name} truncated", pct(t.get("truncation_rate")),
                          f"mean thinking {num(t.get('mean_thinking_tokens'), '{:.0f}')} · mean output {num(t.get('mean_output_tokens'), '{:.0f}')} tok")
                    for name, t in (d.get("tasks") or {}).items())
    vlines = {"budget": budget} if isinstance(budget, (int, float)) else None
    thinking = [r.get("thinking_tokens") for r in samples]
    think = None
    if any(thinking):  # all zero: the protocol has no thinking trace, and a bar at 0 says nothing
        think = plots.histogram(thinking, title="thinking length", xlabel="thinking tokens",
                                highlight=truncated, highlight_label="truncated (hit the budget)")
    think_missing = "no sample has a thinking trace" if any(t is not None for t in thinking) else "no thinking tokens counted"
    step("thinking histogram")
    outlen = plots.histogram([r.get("output_tokens") for r in samples], title="output length (thinking included)",
                             xlabel="output tokens", highlight=truncated, highlight_label="truncated (hit the budget)", vlines=vlines)
    step("output-length histogram")
    return ('<h2 id="lengths">Thinking length and truncation</h2>'
            f'<p class="note">A truncated trace (it reached the token budget{f" of {e(budget)}" if budget else ""} before answering) '
            'is never scored correct.</p>'
            f'<div class="tiles">{tiles}</div><div class="figs">'
            + _figure(think, "thinking tokens per sample", think_missing)
            + _figure(outlen, "output tokens per sample", "output tokens not measured") + "</div>")


def _levels(d: dict, step: Callable[[str], None]) -> str:
    parts = []
    for name, t in (d.get("tasks") or {}).items():
        by = t.get("by_level") or {}
        if not by:
            continue
        png = plots.level_bars(by, title=f"{name}: accuracy by level")
        step(f"{name} levels")
        rows = [[e(lv), e(v.get("n")), pct(v.get("accuracy")), e(f"[{pct(v['ci95'][0])}, {pct(v['ci95'][1])}]" if v.get("ci95") else "—"),
                 _ci_bar(v.get("accuracy"), v.get("ci95"))] for lv, v in by.items()]
        parts.append(f'<h3>{e(name)}</h3><div class="figs">{_figure(png, f"{name} accuracy by level", "no levels")}'
                     f'<div>{_table(["level", "n", "accuracy", "95% CI", ""], rows, num_cols=(1, 2, 3))}</div></div>')
    return '<h2 id="levels">Accuracy by difficulty level</h2>' + "".join(parts) if parts else ""


def _samples(samples: list[dict], max_samples: int, step: Callable[[str], None]) -> str:
    shown = samples[:max_samples]
    cap = (f"Showing the first {len(shown):,} of {len(samples):,} samples; samples.jsonl holds them all."
           if len(samples) > len(shown) else f"All {len(samples):,} samples.")
    rows, details = [], []
    for i, r in enumerate(shown):
        label, cls = sample_verdict(r)
        anchor = f"s-{i}"  # ids come from our counter, never from data, so they are always valid
        rows.append([f'<a href="#{anchor}">{i}</a>', e(r.get("task")), f'<a href="#{anchor}">{e(r.get("id"))}</a>', e(r.get("sample")),
                     f'<span class="badge {cls}">{e(label)}</span>', e(r.get("extracted")), e(r.get("target")),
                     num(r.get("output_tokens"), "{:,}"), num(r.get("thinking_tokens"), "{:,}"), e(r.get("finish_reason")),
                     seconds(r.get("e2e_s"))])
        meta = r.get("meta") or {}
        kv = [("verdict", f'<span class="badge {cls}">{e(label)}</span> strict {_yes(r.get("correct"))} · lenient {_yes(r.get("correct_lenient"))}'),
              ("extracted", e(r.get("extracted"))), ("extracted (lenient)", e(r.get("extracted_lenient"))), ("target", e(r.get("target"))),
              ("tokens", f'{e(r.get("input_tokens"))} in · {e(r.get("output_tokens"))} out · {e(r.get("thinking_tokens"))} thinking'),
              ("finish", e(r.get("finish_reason"))),
              ("timing", f'TTFT {seconds(r.get("ttft_s"))} · TPOT {seconds(r.get("tpot_s"))} · e2e {seconds(r.get("e2e_s"))}'),
              ("batch", f'{e(r.get("batch_size"))} rows, {seconds(r.get("batch_wall_s"))}'), ("seed", e(r.get("seed")))]
        kv += [(f"meta.{k}", e(v)) for k, v in meta.items()]
        kv += [(f"unmeasured {k}", e(v)) for k, v in (r.get("unmeasured") or {}).items()]
        body = "".join(f"<div><span>{e(k)}</span> {v}</div>" for k, v in kv)
        texts = "".join(f"<h4>{name}</h4><pre>{e(clip(r.get(field)))}</pre>"
                        for name, field in (("prompt", "prompt"), ("thinking", "thinking"), ("answer", "answer")) if r.get(field))
        if not r.get("thinking") and not r.get("answer") and r.get("output"):
            texts += f"<h4>output</h4><pre>{e(clip(r.get('output')))}</pre>"
        # The anchor sits inside the <details>: navigating to it makes the browser open the element.
        details.append(f'<details class="sample"><summary>#{i} · {e(r.get("task"))} · id {e(r.get("id"))} · sample {e(r.get("sample"))} · '
                       f'<span class="badge {cls}">{e(label)}</span> <span class="note">answer {e(r.get("extracted"))} · target {e(r.get("target"))}</span>'
                       f'</summary><div class="anchor" id="{anchor}"></div>'
                       f'<div class="kv">{body}</div>{texts}<p><a href="#samples">back to the table</a></p></details>')
    step("samples")
    table = _table(["#", "task", "id", "sample", "verdict", "extracted", "target", "output tok", "thinking tok", "finish", "e2e"],
                   rows, num_cols=(0, 7, 8, 10))
    return (f'<h2 id="samples">Samples</h2><p class="note">{e(cap)} Click a row\'s id to open its prompt, thinking and answer.</p>'
            f"{table}<h3>Sample details</h3>{''.join(details)}")


def render_html(run: RunResult | dict, samples: list[dict], *, max_samples: int = MAX_SAMPLES,
                step: Callable[[str], None] | None = None) -> str:
    """The whole page. `step(description)` is called after each figure or section (for a progress bar)."""
    step = step or (lambda _: None)
    data = dump(as_run(run))
    levels = _levels(data, step)
    sections = [_header(data), _accuracy(data), _claims(data), _performance(data, samples, step), _lengths(data, samples, step),
                levels, _samples(samples, max_samples, step)]
    links = [("accuracy", "Accuracy"), ("claims", "Claims"), ("performance", "Performance"), ("lengths", "Lengths"),
             ("levels", "By level"), ("samples", "Samples")]
    present = "".join(sections)
    nav = "".join(f'<a href="#{k}">{label}</a>' for k, label in links if f'id="{k}"' in present)
    title = f"{(data.get('model') or {}).get('name_or_path')} — run {data.get('run_id')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)}</title><style>{CSS}</style></head>\n<body><main>\n{sections[0]}\n<nav>{nav}</nav>\n"
            + "\n".join(s for s in sections[1:] if s) + "\n</main></body></html>\n")
