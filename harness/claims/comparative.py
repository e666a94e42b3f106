"""`harness claims RUN_DIR...`: published claims that involve two models, checked on your own runs.

Owns naming the model card each run measured, the verdict on each comparative claim, and the
cost table that puts each run's measured $ per 1M output tokens beside the published API prices,
each with its source. The comparisons file is harness/cards/comparisons.py; the printed and
written report is harness/reports/claims.py.

Verdicts, with diff = accuracy(a) - accuracy(b) over the problems both runs share (paired by
(task, id), equal targets only: harness.results.runs.paired_test), alpha 0.05:
- "a > b": supported when diff > 0 and the paired test (McNemar with one sample per problem, a
  paired bootstrap of per-problem means otherwise) gives p < 0.05; contradicted when diff < 0
  with p < 0.05; otherwise inconclusive.
- "a ≈ b": supported when the 95% interval of diff lies within ±margin; contradicted when it
  lies wholly outside [-margin, margin]; otherwise inconclusive.
The interval of diff is harness.stats.paired_diff_ci (Newcombe's paired score interval with one
sample per problem, the paired bootstrap otherwise, never zero-width).

Before any verdict, harness/claims/comparability.py checks each run against its card (random
weights, scripted backend, truncation, prompt protocol, decoding): a claim either run cannot
support gets verdict "not_comparable" with its reasons, its numbers kept as indicative; with
`verdicts="indicative"` the statistical verdict is stored beside it as `indicative_verdict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.cards.comparisons import Comparison, ComparisonsFile, describe_source, load_comparisons
from harness.cards.loader import find_card
from harness.cards.schema import Source
from harness.cards.settings import stated_settings
from harness.claims.comparability import run_reasons, sentence
from harness.core.generation import PROTOCOL_SETTINGS
from harness.core.spec import parse as parse_spec
from harness.errors import ConfigError
from harness.results.runs import ALPHA, LoadedRun, load_runs, paired_test
from harness.results.schema import RunResult
from harness.stats import Z95, Z_POWER80, newcombe_paired_ci, problems_needed

__all__ = ["check", "identify", "newcombe_paired_ci"]
_EDGE = 1e-9
SETTING_KEYS = PROTOCOL_SETTINGS


# ---- which card a run measured ------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    card: str | None
    display: str
    how: str
    flags: tuple[str, ...]

    @property
    def meaningless(self) -> bool:
        return bool(self.flags)


def _try_card(name: str):
    try:
        return find_card(name)
    except ConfigError:
        return None


def identify(data: RunResult) -> Identity:
    """The card a run measured: run.json `card`, else its model name (random:<card>, Hub id, API model, folder)."""
    m = data.model
    src = str(m.name_or_path or "").strip().rstrip("/")
    flags = []
    if m.random_weights or parse_spec(src).is_random:
        flags.append("random weights: meaningless (accuracy is chance; $/token is the architecture's)")
    if m.backend == "fake":
        flags.append("scripted fake backend: meaningless (the answers are not a model's)")
    if data.card:
        card, how = _try_card(str(data.card)), "run.json card"
    elif parse_spec(src).is_random:
        short = parse_spec(src).name
        card, how = _try_card(short) or _try_card(f"{short}-instruct"), f"random model {short}"
    else:
        hub = re.search(r"models--([^/]+?)--([^/]+)", src)  # a Hub cache snapshot path
        names = [src, src.split(":", 1)[-1], f"{hub.group(1)}/{hub.group(2)}" if hub else "", Path(src).name]
        card, how = None, ""
        for name in dict.fromkeys(n for n in names if n):
            card = _try_card(name)
            if card is not None:
                how = f"model {name}"
                break
    if card is None:
        return Identity(None, src or "?", "no card matches the model", tuple(flags))
    return Identity(card.name, card.display_name, how, tuple(flags))


# ---- one comparative claim on one pair of runs ---------------------------------------------------

def judge(c: Comparison, res: dict, ci: tuple[float, float] | None) -> tuple[str, str]:
    """(verdict, reason) for one claim on one paired result; see the module docstring for the rules."""
    diff, p, n = res["diff"], res["p_value"], res["n"]
    pub_gap = (c.published.a - c.published.b) / 100
    if c.relation == "a > b":
        if p < ALPHA and diff > 0:
            return "supported", f"a is ahead and the paired test is significant (p < {ALPHA})"
        if p < ALPHA and diff < 0:
            return "contradicted", f"b is ahead and the paired test is significant (p < {ALPHA})"
        need = problems_needed(width=2 * Z95 * pub_gap / (Z95 + Z_POWER80), n=n, ci=ci) if pub_gap > 0 else None
        more = f"; roughly {need} shared problems would detect the published gap of {100 * pub_gap:.1f} pts with 80% power" if need and need > n else ""
        return "inconclusive", f"not significant (p >= {ALPHA}) on {n} shared problems{more}"
    assert c.margin_pts is not None  # Comparison's validator requires margin_pts for an 'a ≈ b' claim
    m = c.margin_pts / 100
    if ci is None:
        return "inconclusive", f"no interval for the difference on {n} shared problems"
    lo, hi = ci
    if lo >= -m - _EDGE and hi <= m + _EDGE:
        return "supported", f"the 95% interval lies within ±{c.margin_pts:g} pts"
    if lo > m + _EDGE or hi < -m - _EDGE:
        return "contradicted", f"the 95% interval lies outside ±{c.margin_pts:g} pts"
    need = problems_needed(width=2 * (m - abs(pub_gap)), n=n, ci=ci) if m > abs(pub_gap) else None
    more = f"; roughly {need} shared problems would narrow it enough if the published gap held" if need and need > n else ""
    return "inconclusive", f"the 95% interval straddles ±{c.margin_pts:g} pts on {n} shared problems{more}"


def _settings(run: LoadedRun, task: str) -> dict:
    t = run.data.tasks.get(task)
    s = dict(t.settings) if t else {}
    if not s:  # older runs: the run-wide config
        cfg = run.data.config
        s = {k: cfg[k] for k in SETTING_KEYS if cfg.get(k) is not None}
        s["protocol"] = run.data.protocol.name if run.data.protocol else None
    s.setdefault("num_samples", t.k if t else None)
    return s


def caveats(ra: LoadedRun, rb: LoadedRun, ia: Identity, ib: Identity, task: str, res: dict) -> list[str]:
    """Why a verdict may not carry over: meaningless runs, protocol differences, partial overlap."""
    out: list[str] = []
    for tag, run, ident in (("A", ra, ia), ("B", rb, ib)):
        out += [f"{tag}: {f}" for f in ident.flags]
        if run.data.status != "complete":
            out.append(f"{tag}: run status {run.data.status}: not every planned sample ran")
        out += [f"{tag} vs its card: {d}" for d in run.data.protocol_differences.get(task, [])]
    sa, sb = _settings(ra, task), _settings(rb, task)
    for key in SETTING_KEYS:
        if key in sa and key in sb and sa[key] != sb[key]:
            out.append(f"runs differ in {key}: A {sa[key]!r}, B {sb[key]!r}")
    for key in ("dtype", "quantization"):
        a, b = getattr(ra.data.model, key), getattr(rb.data.model, key)
        if a != b:
            out.append(f"runs differ in {key}: A {a!r}, B {b!r}")
    ta, tb = ra.data.tasks.get(task), rb.data.tasks.get(task)
    src = [t.source if t else None for t in (ta, tb)]
    if src[0] and src[1] and src[0] != src[1]:
        out.append(f"different data sources: A {src[0]}, B {src[1]}")
    na, nb = (t.n if t else None for t in (ta, tb))
    if na is not None and nb is not None and res["n"] < max(na, nb):
        out.append(f"only {res['n']} shared problems (A ran {na}, B ran {nb})")
    if res.get("target_mismatch"):
        out.append(f"{res['target_mismatch']} problems left out: same id, different targets")
    return out


def comparability(c: Comparison, ra: LoadedRun, rb: LoadedRun, ia: Identity, ib: Identity) -> tuple[list[dict], list[str]]:
    """(reasons, caveats): each run checked against its own card's protocol for the claim's task."""
    reasons, caveats_ = [], []
    for tag, run, ident in (("A", ra, ia), ("B", rb, ib)):
        card = _try_card(ident.card) if ident.card else None
        want = {**stated_settings(card, c.task), "dtype": card.dtype} if card is not None else None
        block = run.data.tasks.get(c.task)
        task = {**(block.model_dump(mode="json") if block else {}), "settings": _settings(run, c.task)}
        r, cv = run_reasons(task, run.data.model.model_dump(mode="json"), want=want, metric="accuracy",
                            immaterial=card.protocol.immaterial if card is not None else (), card=card, name=c.task)
        reasons += [{"code": x["code"], "detail": f"{tag}: {x['detail']}"} for x in r]
        caveats_ += [f"{tag}: {x}" for x in cv]
    return reasons, caveats_


def check_comparison(c: Comparison, ra: LoadedRun, rb: LoadedRun, ia: Identity, ib: Identity, sources: dict[str, Source],
                     verdicts: str = "strict") -> dict | None:
    """One claim on one pair of runs; None when they share no problem of the task."""
    res = paired_test(ra.samples, rb.samples, c.task)
    if res is None:
        return None
    ci, ci_method = res["ci95"], res["ci_method"]
    stat, reason = judge(c, res, ci)
    reasons, extra = comparability(c, ra, rb, ia, ib)
    verdict, indicative = stat, None
    if reasons:
        verdict, reason = "not_comparable", sentence(reasons)
        indicative = stat if verdicts == "indicative" else None
    return {"id": c.id, "text": c.text, "a": c.a, "b": c.b, "task": c.task, "relation": c.relation, "margin_pts": c.margin_pts,
            "published": c.published.model_dump(), "run_a": ra.label, "run_b": rb.label, "run_dir_a": str(ra.path),
            "run_dir_b": str(rb.path), "n": res["n"], "acc_a": res["acc_a"], "acc_b": res["acc_b"], "diff": res["diff"],
            "ci95": list(ci) if ci else None, "ci_method": ci_method, "test": res["test"], "p_value": res["p_value"],
            "verdict": verdict, "indicative_verdict": indicative, "comparable": not reasons, "reasons": reasons,
            "reason": reason, "meaningless": ia.meaningless or ib.meaningless,
            "caveats": caveats(ra, rb, ia, ib, c.task, res) + extra, "source": describe_source(c.source, sources), "status": c.status,
            "notes": list(c.notes)}


# ---- cost ---------------------------------------------------------------------------------------

def api_price(card_name: str, per: str, sources: dict[str, Source]) -> dict | None:
    """A card's published API price per 1M input or output tokens, with its source (None without an api)."""
    card = _try_card(card_name)
    if card is None or card.api is None:
        return None
    p = card.api.prices
    value = p.output_per_1m if per == "output" else p.input_per_1m
    notes: list[str] = []  # API prices have one source (the card): nothing to reconcile
    return {"card": card.name, "display": card.display_name, "api_model": card.api.model, "usd_per_1m": value, "per": per,
            "source": describe_source(p.source, {**sources, **card.sources}), "status": p.status, "as_of": p.as_of, "notes": notes}


def cost_section(runs: list[LoadedRun], idents: list[Identity], cf: ComparisonsFile) -> dict:
    prices = []
    for pc in cf.prices:
        a, b = api_price(pc.a, pc.per, cf.sources), api_price(pc.b, pc.per, cf.sources)
        if a is None or b is None:
            continue
        notes = list(pc.notes)
        for _side, got, pub in (("a", a, pc.published.a), ("b", b, pc.published.b)):
            if abs(got["usd_per_1m"] - pub) > 1e-9:
                notes.append(f"the claim used ${pub:g} for {got['display']}; its card now says ${got['usd_per_1m']:g}")
        prices.append({"id": pc.id, "text": pc.text, "per": pc.per, "a": a, "b": b, "ratio": b["usd_per_1m"] / a["usd_per_1m"],
                       "published_ratio": pc.ratio, "source": describe_source(pc.source, cf.sources), "status": pc.status, "notes": notes})
    beside = {p[s]["card"]: p[s] for p in prices if p["per"] == "output" for s in ("a", "b")}
    rows = []
    for run, ident in zip(runs, idents):
        cost = run.data.cost
        if cost is None or cost.usd_per_1m_output_tokens is None:
            continue
        measured = cost.usd_per_1m_output_tokens
        apis = dict(beside)
        own = api_price(ident.card, "output", cf.sources) if ident.card else None
        if own is not None:
            apis.setdefault(own["card"], own)
        rows.append({"run": run.label, "run_dir": str(run.path), "card": ident.card, "usd_per_1m_output_tokens": measured,
                     "basis": cost.basis, "price_source": cost.price_source, "device": run.data.device.name,
                     "flags": list(ident.flags),
                     "vs": [{"card": p["card"], "display": p["display"], "api_usd_per_1m_output": p["usd_per_1m"],
                             "api_over_measured": p["usd_per_1m"] / measured if measured else None,
                             "same_model": p["card"] == ident.card} for p in apis.values()]})
    return {"prices": prices, "runs": rows}


# ---- the command ----------------------------------------------------------------------------------

def check(run_dirs: list[Path], comparisons: str | Path | None = None, verdicts: str = "strict") -> dict:
    """Every checkable claim across the runs, the claims left unchecked (and why), and the cost table."""
    if not run_dirs:
        raise ConfigError("claims needs run folders", "pass folders written by `harness run`")
    cf = load_comparisons(comparisons)
    runs = load_runs(list(run_dirs))
    idents = [identify(r.data) for r in runs]
    checked, unchecked = [], []
    for c in cf.comparisons:
        has = {side: [(r, i) for r, i in zip(runs, idents) if i.card == card and c.task in r.data.tasks]
               for side, card in (("a", c.a), ("b", c.b))}
        rows = [check_comparison(c, ra, rb, ia, ib, cf.sources, verdicts) for ra, ia in has["a"] for rb, ib in has["b"] if ra is not rb]
        rows = [r for r in rows if r is not None]
        checked += rows
        if not rows:
            missing = [card for side, card in (("a", c.a), ("b", c.b)) if not has[side]]
            why = "; ".join(f"no run of {m} on {c.task}" for m in missing) or f"the runs of {c.a} and {c.b} share no {c.task} problem"
            unchecked.append({"id": c.id, "text": c.text, "needs": f"runs of {c.a} and {c.b} on {c.task}", "why": why})
    cost = cost_section(runs, idents, cf)
    run_rows: list[dict[str, Any]] = [{"run": r.label, "run_dir": str(r.path), "card": i.card, "display": i.display, "matched_by": i.how,
                 "tasks": sorted(r.data.tasks), "flags": list(i.flags)} for r, i in zip(runs, idents)]
    if not checked and not cost["runs"]:
        named = "; ".join(f"{r['run_dir']}: {r['card'] or 'no card'} on {', '.join(r['tasks']) or 'no task'}" for r in run_rows)
        example = cf.comparisons[0]
        raise ConfigError(f"no claim could be checked ({named})",
                          f"a claim needs two runs of the cards and task it names, e.g. {example.a} and {example.b} on {example.task} "
                          f"(run with --card NAME; see harness/data/comparisons.yaml), or a run with --price-per-hour/--instance for the cost table")
    return {"alpha": ALPHA, "verdicts_mode": verdicts, "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "runs": run_rows,
            "comparisons": checked, "unchecked": unchecked, "cost": cost}
