"""`harness claims RUN_DIR...`: published claims that involve two models, checked on your own runs.

Owns the comparisons file (harness/data/comparisons.yaml: schema and loading), naming the model
card each run measured, the verdict on each comparative claim, and the cost table that puts each
run's measured $ per 1M output tokens beside the published API prices, each with its source.

Verdicts, with diff = accuracy(a) - accuracy(b) over the problems both runs share (paired by
(task, id), equal targets only: harness.reports.compare.paired_test), alpha 0.05:
- "a > b": supported when diff > 0 and the paired test (McNemar with one sample per problem, a
  paired bootstrap of per-problem means otherwise) gives p < 0.05; contradicted when diff < 0
  with p < 0.05; otherwise inconclusive.
- "a ≈ b": supported when the 95% interval of diff lies within ±margin; contradicted when it
  lies wholly outside [-margin, margin]; otherwise inconclusive.
The interval of diff: one sample per problem -> Newcombe's hybrid score interval for paired
proportions (Newcombe 1998, Stat Med 17:2635, method 10), which stays honest on small or fully
concordant tables where a bootstrap collapses to a point; k > 1 -> the paired bootstrap interval.
Before any verdict, harness/claims/comparability.py checks each run against its card (random
weights, scripted backend, truncation, prompt protocol, decoding): a claim either run cannot
support gets verdict "not_comparable" with its reasons, its numbers kept as indicative; with
`verdicts="indicative"` the statistical verdict is stored beside it as `indicative_verdict`.

The module is longer than most because the command's pieces (file schema, run identity, verdict,
cost, rendering) each read the same few records and are only used together.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.claims.cards import Source, Status, find_card, stated_settings
from harness.claims.comparability import run_reasons, sentence
from harness.reports.compare import ALPHA, LoadedRun, load_runs, paired_test
from harness.errors import ConfigError, validation_message
from harness.results.schema import RunResult
from harness.stats import Z95, Z_POWER80, newcombe_paired_ci, problems_needed

__all__ = ["check", "check_claims", "identify", "load_comparisons", "newcombe_paired_ci"]
_EDGE = 1e-9
SETTING_KEYS = ("protocol", "system_prompt", "force_think", "temperature", "top_p", "top_k", "max_new_tokens", "num_samples")


# ---- the comparisons file ---------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pair(_Strict):
    a: float = Field(ge=0)
    b: float = Field(ge=0)


class Comparison(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    text: str
    a: str
    b: str
    task: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    metric: Literal["pass@1", "accuracy"]  # what a paired test of per-problem correctness measures
    relation: Literal["a > b", "a ≈ b"]
    margin_pts: Optional[float] = Field(None, gt=0)
    published: Pair
    source: str
    status: Status
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def check(self):
        gap = self.published.a - self.published.b
        if self.relation == "a ≈ b":
            if self.margin_pts is None:
                raise ValueError("an 'a ≈ b' claim needs margin_pts")
            if abs(gap) > self.margin_pts:
                raise ValueError(f"the published gap {gap:+.1f} pts is outside margin_pts {self.margin_pts}")
        elif gap <= 0:
            raise ValueError(f"published values {self.published.a} vs {self.published.b} do not show a > b")
        return self


class PriceClaim(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    text: str
    a: str
    b: str
    per: Literal["input", "output"]
    published: Pair
    ratio: float = Field(gt=0)
    source: str
    status: Status
    notes: list[str] = Field(default_factory=list)


class ComparisonsFile(_Strict):
    sources: dict[str, Source]
    comparisons: list[Comparison]
    prices: list[PriceClaim] = Field(default_factory=list)

    @model_validator(mode="after")
    def check(self):
        ids = [c.id for c in [*self.comparisons, *self.prices]]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        for c in self.comparisons:
            if c.source.split()[0] not in self.sources:
                raise ValueError(f"{c.id}: source must start with a key of `sources` ({', '.join(self.sources)})")
        return self


def load_comparisons(path: str | Path | None = None) -> ComparisonsFile:
    """The comparative claims (default: the packaged harness/data/comparisons.yaml)."""
    where = str(path or "harness/data/comparisons.yaml")
    try:
        text = Path(path).read_text(encoding="utf-8") if path else (resources.files("harness") / "data" / "comparisons.yaml").read_text(encoding="utf-8")
        return ComparisonsFile.model_validate(yaml.safe_load(text))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read comparisons file {where} ({e})".replace("\n", " "), "check the file") from None
    except ValidationError as e:
        raise ConfigError(f"{where}: {validation_message(e, ComparisonsFile)}", "fix the comparisons file") from None


def describe_source(text: str, sources: dict[str, Source]) -> str:
    """'KEY rest' -> 'KEY rest — repo path @ commit (url)' where KEY is a known source."""
    out = []
    for key in dict.fromkeys(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", text)):
        s = sources.get(key)
        if s is not None:
            where = " ".join(x for x in (s.repo, s.path, f"@ {s.commit[:7]}" if s.commit else None, s.url) if x)
            out.append(f"{key}: {where or s.note}")
    return f"{text} — {'; '.join(out)}" if out else text


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
    if m.random_weights or src.startswith("random:"):
        flags.append("random weights: meaningless (accuracy is chance; $/token is the architecture's)")
    if m.backend == "fake":
        flags.append("scripted fake backend: meaningless (the answers are not a model's)")
    if data.card:
        card, how = _try_card(str(data.card)), "run.json card"
    elif src.startswith("random:"):
        short = src.split(":", 1)[1]
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
    reasons, caveats = [], []
    for tag, run, ident in (("A", ra, ia), ("B", rb, ib)):
        card = _try_card(ident.card) if ident.card else None
        want = {**stated_settings(card, c.task), "dtype": card.dtype} if card is not None else None
        block = run.data.tasks.get(c.task)
        task = {**(block.model_dump(mode="json") if block else {}), "settings": _settings(run, c.task)}
        r, cv = run_reasons(task, run.data.model.model_dump(mode="json"), want=want, metric="accuracy",
                            immaterial=card.protocol.immaterial if card is not None else ())
        reasons += [{"code": x["code"], "detail": f"{tag}: {x['detail']}"} for x in r]
        caveats += [f"{tag}: {x}" for x in cv]
    return reasons, caveats


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
        for side, got, pub in (("a", a, pc.published.a), ("b", b, pc.published.b)):
            if abs(got["usd_per_1m"] - pub) > 1e-9:
                notes.append(f"the claim used ${pub:g} for {got['display']}; its card now says ${got['usd_per_1m']:g}")
        prices.append({"id": pc.id, "text": pc.text, "per": pc.per, "a": a, "b": b, "ratio": b["usd_per_1m"] / a["usd_per_1m"],
                       "published_ratio": pc.ratio, "source": describe_source(pc.source, cf.sources), "status": pc.status, "notes": notes})
    beside = {p[s]["card"]: p[s] for p in prices if p["per"] == "output" for s in ("a", "b")}
    rows = []
    for run, ident in zip(runs, idents):
        cost = run.data.cost
        measured = cost.usd_per_1m_output_tokens if cost else None
        if measured is None:
            continue
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
    run_rows = [{"run": r.label, "run_dir": str(r.path), "card": i.card, "display": i.display, "matched_by": i.how,
                 "tasks": sorted(r.data.tasks), "flags": list(i.flags)} for r, i in zip(runs, idents)]
    if not checked and not cost["runs"]:
        named = "; ".join(f"{r['run_dir']}: {r['card'] or 'no card'} on {', '.join(r['tasks']) or 'no task'}" for r in run_rows)
        example = cf.comparisons[0]
        raise ConfigError(f"no claim could be checked ({named})",
                          f"a claim needs two runs of the cards and task it names, e.g. {example.a} and {example.b} on {example.task} "
                          f"(run with --card NAME; see harness/data/comparisons.yaml), or a run with --price-per-hour/--instance for the cost table")
    return {"alpha": ALPHA, "verdicts_mode": verdicts, "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "runs": run_rows,
            "comparisons": checked, "unchecked": unchecked, "cost": cost}


def _pts(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _verdict(c: dict) -> str:
    """not_comparable, or not_comparable (indicative: supported) under --verdicts indicative."""
    return c["verdict"] + (f" (indicative: {c['indicative_verdict']})" if c.get("indicative_verdict") else "")


def _indicative_note(doc: dict) -> list[str]:
    if any(c.get("indicative_verdict") for c in doc["comparisons"]):
        return ["", "Indicative verdicts (--verdicts indicative): computed although the runs cannot support them; "
                    "for exploration only, not a finding."]
    return []


def _claim_title(c: dict) -> str:
    rel = "a > b" if c["relation"] == "a > b" else f"a ≈ b within ±{c['margin_pts']:g} pts"
    return f"{c['text']} ({rel}; published {c['published']['a']:g} vs {c['published']['b']:g})"


def _measured(c: dict) -> str:
    ci = "" if not c["ci95"] else f", 95% CI [{_pts(c['ci95'][0])}, {_pts(c['ci95'][1])}]"
    test = "McNemar" if c["test"] == "mcnemar" else "paired bootstrap"
    return (f"{100 * c['acc_a']:.1f}% vs {100 * c['acc_b']:.1f}% on {c['n']} shared problems: {_pts(c['diff'])} pts{ci}, "
            f"{test} p{'' if c['p_value'] < 0.001 else '='}{_p(c['p_value'])}")


def _usd(x: float) -> str:
    return f"${x:.3g}" if x < 1 else f"${x:,.2f}".rstrip("0").rstrip(".")


def _cost_lines(doc: dict) -> list[str]:
    out, seen = [], set()  # each card's price source once
    for p in doc["cost"]["prices"]:
        out.append(f"{p['text']}: {p['a']['display']} {_usd(p['a']['usd_per_1m'])} vs {p['b']['display']} {_usd(p['b']['usd_per_1m'])} "
                   f"per 1M {p['per']} tokens = {p['ratio']:.1f}x (published {p['published_ratio']:g}x, {p['status']})")
        for s in (p["a"], p["b"]):
            if s["card"] in seen:
                continue
            seen.add(s["card"])
            out.append(f"  {s['display']} ({s['api_model']}): {s['source']} [{s['status']}{', as of ' + s['as_of'] if s['as_of'] else ''}]")
            out += [f"  note: {n}" for n in s["notes"]]
        out += [f"  note: {n}" for n in p["notes"]]
    for r in doc["cost"]["runs"]:
        vs = ", ".join(f"{v['display']} API {_usd(v['api_usd_per_1m_output'])} ({v['api_over_measured']:.1f}x this)" for v in r["vs"])
        out.append(f"measured {_usd(r['usd_per_1m_output_tokens'])}/1M output tokens ({r['run']}; {r['basis']} basis: "
                   f"{r['price_source']}){' vs ' + vs if vs else ''}")
        other = [v["display"] for v in r["vs"] if not v["same_model"]]
        if other:
            out.append(f"  note: {r['card'] or 'this model'} is not {', '.join(other)}: the ratio compares prices per token, not models")
        out += [f"  warning: {f}" for f in r["flags"]]
    return out


def render_text(doc: dict) -> str:
    out = [f"Comparative claims: paired on the problems both runs share (alpha {doc['alpha']})", ""]
    for r in doc["runs"]:
        flags = f"  [{'; '.join(r['flags'])}]" if r["flags"] else ""
        out.append(f"run {r['run_dir']}: {r['card'] or 'no card'} ({r['matched_by']}){flags}")
    for c in doc["comparisons"]:
        tag = _verdict(c).upper() + (" (meaningless)" if c["meaningless"] else "")
        out += ["", f"{tag}: {_claim_title(c)}", f"  A {c['run_a']}", f"  B {c['run_b']}", f"  measured {_measured(c)}",
                f"  why: {c['reason']}", f"  source: {c['source']}"]
        out += [f"  caveat: {x}" for x in c["caveats"]]
    out += _indicative_note(doc)
    if doc["unchecked"]:
        out += ["", f"not checked ({len(doc['unchecked'])}):"] + [f"  {u['id']}: {u['why']}" for u in doc["unchecked"]]
    if doc["cost"]["prices"] or doc["cost"]["runs"]:
        out += ["", "Cost per 1M tokens: published API prices and your measurements"] + _cost_lines(doc)
    return "\n".join(out) + "\n"


def render_markdown(doc: dict) -> str:
    out = ["# Comparative claims", "", f"Paired on the problems both runs share (matched by task and id, equal targets); alpha {doc['alpha']}.",
           "", "| run | card | matched by | tasks | warnings |", "|---|---|---|---|---|"]
    out += [f"| {r['run_dir']} | {r['card'] or '—'} | {r['matched_by']} | {', '.join(r['tasks'])} | {'; '.join(r['flags'])} |" for r in doc["runs"]]
    out += ["", "## Verdicts", "", "| claim | A | B | n | acc A | acc B | diff (pts) | 95% CI | test | p | verdict | source |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in doc["comparisons"]:
        ci = "—" if not c["ci95"] else f"[{_pts(c['ci95'][0])}, {_pts(c['ci95'][1])}]"
        verdict = f"**{_verdict(c)}**" + (" (meaningless)" if c["meaningless"] else "")
        out.append(f"| {_claim_title(c)} | {c['run_a']} | {c['run_b']} | {c['n']} | {100 * c['acc_a']:.1f}% | {100 * c['acc_b']:.1f}% | "
                   f"{_pts(c['diff'])} | {ci} | {c['test']} | {_p(c['p_value'])} | {verdict} | {c['source']} |")
    for c in doc["comparisons"]:
        out += ["", f"- {c['id']} ({c['run_a']} vs {c['run_b']}): {c['reason']}; interval: {c['ci_method']}"]
        out += [f"  - caveat: {x}" for x in c["caveats"]]
    out += _indicative_note(doc)
    if doc["unchecked"]:
        out += ["", "## Not checked", ""] + [f"- {u['id']}: {u['why']}" for u in doc["unchecked"]]
    out += ["", "## Cost", ""] + [f"- {line.strip()}" if line.startswith("  ") else f"- **{line}**" for line in _cost_lines(doc)]
    return "\n".join(out) + "\n"


def check_claims(run_dirs: list[Path], output_dir: str | Path | None = None, comparisons: str | Path | None = None,
                 verdicts: str = "strict") -> int:
    """`harness claims`: print the verdicts and write claims.json and claims.md into output_dir (default ./claims)."""
    from harness.results.store import write_text_atomic

    doc = check(run_dirs, comparisons, verdicts)
    out = Path(output_dir or "claims")
    out.mkdir(parents=True, exist_ok=True)
    doc["files"] = {name: str(out / name) for name in ("claims.json", "claims.md")}
    write_text_atomic(out / "claims.json", json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out / "claims.md", render_markdown(doc))
    print(render_text(doc) + f"\nwrote {out / 'claims.md'} and {out / 'claims.json'}")
    return 0
