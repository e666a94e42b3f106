"""The plan and the model cards as text: what a run will do, need and cost (harness/planning/preflight.py
computes it), and one card's model, protocol, claims and the cost of checking them here."""

from __future__ import annotations

from typing import Any

from harness.planning import estimate as est


def render(pre: Any) -> str:  # a planning.preflight.Preflight (which imports this module)
    """The plan as text: what runs, what it needs, what it costs."""
    out = [f"plan: {pre.model} on {pre.device.type} ({pre.device.name}), {pre.device.dtype} ({pre.device.dtype_reason})"]
    for t in pre.tasks:
        out.append(f"  {t['name']}: {t['problems']} problems x {t['k']} sample{'s' if t['k'] != 1 else ''} = {t['requests']} requests; "
                   f"max {t['max_new_tokens']} output tokens each, expected {t['expected_tokens']} ({t['expected_source']})")
        for key, value in t["settings"].items():
            out.append(f"    {key} = {value}  [{t['sources'].get(key, 'default')}]")
    tokens_max = sum(t["requests"] * t["max_new_tokens"] for t in pre.tasks)
    tokens_exp = sum(t["requests"] * t["expected_tokens"] for t in pre.tasks)
    out.append(f"  requests: {pre.requests}; output tokens: at most {tokens_max:,}, expected {tokens_exp:,}")
    m = pre.memory
    if m is None:
        out.append(f"  memory: unknown ({pre.shape_source})")
    else:
        verdict = "fits" if pre.fits else "DOES NOT FIT"
        out.append(f"  memory: about {est.human_bytes(m['total'])} = {m['dtype']} weights {est.human_bytes(m['weights'])} + KV cache "
                   f"{est.human_bytes(m['kv_cache'])} (batch {m['batch']} x {m['context']} tokens) + activations "
                   f"{est.human_bytes(m['activations'])} + runtime {est.human_bytes(m['runtime'])}; available "
                   f"{est.human_bytes(pre.available)} ({pre.available_source}): {verdict}")
    _, price_source = pre.price
    for e in pre.engines:
        when = est.human_seconds(e["seconds"])
        bound = "at least " if e["seconds"] is not None and e.get("speed_is_upper_bound") else ""
        tps = e["tokens_per_s"]
        speed = (f"{tps:,.0f} tok/s" if tps >= 100 else f"{tps:.3g} tok/s") if tps else "speed unknown"
        usd = f"${e['usd']:,.2f}" if e["usd"] is not None else "$ unknown"
        if e["usd"] is not None and e.get("usd_range"):
            usd += f" (${e['usd_range'][0]:,.2f}-${e['usd_range'][1]:,.2f})"
        t = e.get("time")
        if t is None:
            out.append(f"  time ({e['engine']}): {bound}{when} at {speed} ({e['speed_source']}); cost {usd}")
            continue
        lo, hi = t["range_s"]
        parts = ", ".join(f"{k} {est.human_seconds(v)}" for k, v in t["phases_s"].items() if v)
        out.append(f"  time ({e['engine']}): about {when} (range {est.human_seconds(lo)} to {est.human_seconds(hi)}), the whole run: "
                   f"{parts}; decoding at about {speed}; cost {usd}")
        for phase, src in _grouped(t["sources"]):
            out.append(f"    {phase}: {src}")
        out += [f"    note: {n}" for n in t.get("notes", [])]
    if pre.engine_choice:
        out.append(f"  engine: {pre.engine_choice}")
    out.append(f"  price: {price_source}")
    out += [f"  note: {n}" for n in pre.notes]
    out += [f"  warning: {w}" for w in pre.warnings]
    return "\n".join(out)


def _grouped(sources: dict[str, str]) -> list[tuple[str, str]]:
    """Phases sharing a source on one line: [("warmup, prefill, decode", source), ...]."""
    seen: dict[str, list[str]] = {}
    for phase, src in sources.items():
        seen.setdefault(src, []).append(phase)
    return [(", ".join(phases), src) for src, phases in seen.items()]


def plan_json(pre: Any, stop: str | None = None) -> dict:  # pre: a planning.preflight.Preflight
    """The plan for scripts (`harness plan --json`): time (expected_s, range_s, phases, sources), cost
    (usd, null without a price that applies), device, memory, requests and tokens, warnings."""
    e = pre.engines[0] if pre.engines else {}
    t = e.get("time") or {"expected_s": e.get("seconds"), "range_s": [e.get("seconds"), e.get("seconds")] if e.get("seconds") else None,
                          "phases_s": {"decode": e.get("seconds")}, "sources": {"decode": e.get("speed_source")}, "roofline_s": None}
    price, price_source = pre.price
    target = pre.target
    return {
        "model": pre.model,
        "engine": e.get("engine"),
        "device": {"name": pre.device.name, "type": pre.device.type, "dtype": pre.device.dtype, "dtype_reason": pre.device.dtype_reason,
                   "target": getattr(target, "key", None), "source": getattr(target, "source", "this machine")},
        "requests": pre.requests,
        "output_tokens": {"max": sum(x["requests"] * x["max_new_tokens"] for x in pre.tasks),
                          "expected": sum(x["requests"] * x["expected_tokens"] for x in pre.tasks)},
        "prompt_tokens_mean": round(pre.prompt_mean, 1),
        "tasks": [{k: v for k, v in x.items() if k != "sources"} | {"sources": x["sources"]} for x in pre.tasks],
        "time": {**t, "tokens_per_s": e.get("tokens_per_s")},
        "cost": {"usd": e.get("usd"), "usd_range": e.get("usd_range"), "price_per_hour": price if pre.price_applies else None,
                 "price_source": price_source},
        "memory": {"bytes": pre.memory, "available": pre.available, "available_source": pre.available_source, "fits": pre.fits},
        "engines": [{k: v for k, v in x.items() if k != "time"} for x in pre.engines],
        "engine_choice": pre.engine_choice,
        "notes": pre.notes,
        "warnings": pre.warnings,
        "refused": stop,
    }


def render_card(card, cost) -> str:
    """`harness cards NAME`: the model, its evaluation protocol, every claim with its source and
    status, and what a faithful check costs on this machine (`cost` from preflight.card_cost)."""
    p = card.protocol
    out = [f"{card.display_name} ({card.name}, {card.kind})"]
    if card.hub_id:
        out.append(f"  model: {card.hub_id} @ {card.revision or 'unpinned: ' + (card.revision_note or '')}")
        out.append(f"  parameters: {card.parameters.total_b} B; {card.dtype}; context {card.context_length:,} tokens; license {card.license}")
    if card.api:
        out.append(f"  api: {card.api.provider} {card.api.model} at {card.api.base_url} (key from {card.api.api_key_env})")
        pr = card.api.prices
        from harness.measure.cost import provenance

        out.append(f"  price: ${pr.input_per_1m:g}/1M input, ${pr.output_per_1m:g}/1M output ({provenance(pr.status, pr.source)})")
    d = p.defaults
    out.append(f"  protocol {p.name}: system prompt {p.system_prompt_policy}, force <think> {p.force_think}, "
               f"temperature {d.temperature}, top_p {d.top_p}, max_new_tokens {d.max_new_tokens}, samples {d.num_samples} ({p.source})")
    for task, t in p.per_task.items():
        stated = ", ".join(f"{k} {v}" for k, v in t.model_dump().items() if v is not None and k != "note")
        out.append(f"    {task}: {stated or 'notes only'}{' — ' + t.note if t.note else ''}")
    out.append(f"  claims ({len(card.claims)}):")
    for c in card.claims:
        value = "no published value" if c.value is None else (f"{c.value:g}%" if c.unit == "percent" else f"{c.value:g}")
        samples = f", {c.samples} samples" if c.samples else ""
        out.append(f"    {c.task:<14} {c.metric:<8} {value:<20} [{c.status}{samples}] {c.source}")
    if cost is None:
        out.append("  faithful run here: nothing this harness runs has a published value on this card")
    else:
        out.append("  a faithful run of the checkable claims on this machine:")
        out += ["  " + line for line in render(cost).splitlines()]
    return "\n".join(out)


IDENTITY_RULES = (
    "**Which model and which data a verdict is about.** A claim is the card's model on the whole benchmark, so a verdict "
    "needs evidence of both (`harness/cards/identity.py`, `harness/tasks/official.py`). The model: the card's Hub id, at the "
    "card's pinned revision when the run records one; a local folder or GGUF file whose fingerprint (model type, layers, widths, "
    "heads, vocabulary, trained context, tied embeddings, the tokenizer's bos/eos ids) and parameter count match the card's "
    "config (a quantised file of the card's model keeps its verdict with a caveat; a fingerprint cannot tell apart two "
    "fine-tunes of one architecture that share a tokenizer, and the verdict says so); or a served `openai:` model whose name "
    "is the card's and which the server does not contradict in its responses: \"asserted by the server, not verified\", "
    "a caveat. Anything else (another model, a sibling checkpoint such as Qwen2.5-Math-1.5B-Instruct run against the "
    "R1-Distill-Qwen-1.5B card) is `not_comparable` with reason `model`.",
    "",
    "**Subsets.** Each benchmark task knows its official set as hashes only: its size and an order-independent sha256 over "
    "its normalised problems, with the source. Data that is not the official set nor part of it is `not_comparable` with "
    "reason `data`; the same problems in another order are the official set. Part of it says \"N of M problems\" everywhere, "
    "and gets a verdict only as a seeded uniform sample (`--sample N`, seed recorded, interval over the N problems plus the "
    "finite-population interval for the whole set in the note). The first N rows (`--limit N`: benchmark files are often "
    "ordered), a hand-picked file and a task option that narrows the set (a C-Eval subject, another CMATH file) are "
    "`not_comparable` with reason `subset`. A card that states another prompt for a task (GPQA-Diamond: `prompt: "
    "simple-evals`) refuses a verdict on it to a run under any other protocol.",
)


def claims_table(cards) -> str:
    """docs/claims.md: every claim of every card, generated (`harness cards --markdown`); a test keeps it current."""
    out = ["# Published claims in the model cards", "",
           "Generated from model_cards/*.yaml by `harness cards --markdown > docs/claims.md`; do not edit by hand.",
           "`harness cards NAME` shows one card with the protocol and what checking it costs on your machine;",
           "a run with `--card NAME` gives a verdict on each claim (see the README's \"Check a claim\").", "",
           *IDENTITY_RULES, "",
           "| card | model | task | benchmark | metric | value | samples | status | source |",
           "|---|---|---|---|---|---|---|---|---|"]
    for card in cards:
        model = card.hub_id or (card.api.model if card.api else "")
        for c in card.claims:
            value = "—" if c.value is None else (f"{c.value:g}%" if c.unit == "percent" else f"{c.value:g}")
            cells = [card.name, model, c.task, c.benchmark, c.metric, value, str(c.samples or ""), c.status, c.source]
            out.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(out) + "\n"
