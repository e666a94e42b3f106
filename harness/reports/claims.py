"""`harness claims`: the comparative-claims document as text on stdout and as claims.md and
claims.json in the output folder. Computes nothing: everything comes from
harness.claims.comparative.check.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.claims.comparative import check
from harness.reports.format import p_value, price, pts


def _claim_title(c: dict) -> str:
    rel = "a > b" if c["relation"] == "a > b" else f"a ≈ b within ±{c['margin_pts']:g} pts"
    return f"{c['text']} ({rel}; published {c['published']['a']:g} vs {c['published']['b']:g})"


def _measured(c: dict) -> str:
    ci = "" if not c["ci95"] else f", 95% CI [{pts(c['ci95'][0])}, {pts(c['ci95'][1])}]"
    test = "McNemar" if c["test"] == "mcnemar" else "paired bootstrap"
    return (f"{100 * c['acc_a']:.1f}% vs {100 * c['acc_b']:.1f}% on {c['n']} shared problems: {pts(c['diff'])} pts{ci}, "
            f"{test} p{'' if c['p_value'] < 0.001 else '='}{p_value(c['p_value'])}")


def _copy(quote: dict) -> str:
    """A secondary price is a third party's copy of the publisher's page: said next to the number."""
    return " (a third-party copy of the publisher's page)" if quote.get("status") == "secondary" else ""


def _cost_lines(doc: dict) -> list[str]:
    out, seen = [], set()  # each card's price source once
    for p in doc["cost"]["prices"]:
        out.append(f"{p['text']}: {p['a']['display']} {price(p['a']['usd_per_1m'])}{_copy(p['a'])} vs {p['b']['display']} "
                   f"{price(p['b']['usd_per_1m'])}{_copy(p['b'])} "
                   f"per 1M {p['per']} tokens = {p['ratio']:.1f}x (published {p['published_ratio']:g}x, {p['status']})")
        for s in (p["a"], p["b"]):
            if s["card"] in seen:
                continue
            seen.add(s["card"])
            out.append(f"  {s['display']} ({s['api_model']}): {s['source']} [{s['status']}{', as of ' + s['as_of'] if s['as_of'] else ''}]")
            out += [f"  note: {n}" for n in s["notes"]]
        out += [f"  note: {n}" for n in p["notes"]]
    for r in doc["cost"]["runs"]:
        vs = ", ".join(f"{v['display']} API {price(v['api_usd_per_1m_output'])} ({v['api_over_measured']:.1f}x this)" for v in r["vs"])
        out.append(f"measured {price(r['usd_per_1m_output_tokens'])}/1M output tokens ({r['run']}; {r['basis']} basis: "
                   f"{r['price_source']}){' vs ' + vs if vs else ''}")
        other = [v["display"] for v in r["vs"] if not v["same_model"]]
        if other:
            out.append(f"  note: {r['card'] or 'this model'} is not {', '.join(other)}: the ratio compares prices per token, not models")
        out += [f"  warning: {f}" for f in r["flags"]]
    return out


def _verdict(c: dict) -> str:
    """not_comparable, or not_comparable (indicative: supported) under --verdicts indicative."""
    return c["verdict"] + (f" (indicative: {c['indicative_verdict']})" if c.get("indicative_verdict") else "")


def _indicative_note(doc: dict) -> list[str]:
    if any(c.get("indicative_verdict") for c in doc["comparisons"]):
        return ["", "Indicative verdicts (--verdicts indicative): computed although the runs cannot support them; "
                    "for exploration only, not a finding."]
    return []


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
        ci = "—" if not c["ci95"] else f"[{pts(c['ci95'][0])}, {pts(c['ci95'][1])}]"
        verdict = f"**{_verdict(c)}**" + (" (meaningless)" if c["meaningless"] else "")
        out.append(f"| {_claim_title(c)} | {c['run_a']} | {c['run_b']} | {c['n']} | {100 * c['acc_a']:.1f}% | {100 * c['acc_b']:.1f}% | "
                   f"{pts(c['diff'])} | {ci} | {c['test']} | {p_value(c['p_value'])} | {verdict} | {c['source']} |")
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
