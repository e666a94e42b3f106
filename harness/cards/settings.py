"""What a model card implies for a run: the settings it states per task, the generation
defaults to run a task its way, and every way a run differs from its protocol (a verdict may
not transfer to the published setting when they differ).
"""

from __future__ import annotations

from typing import Any

from harness.cards.schema import Card
from harness.core.generation import DECODING_SETTINGS

# Used by card_generation_defaults for settings a card leaves unstated (null). They are the
# harness's own choices, never the card's: protocol_differences compares stated values only.
FALLBACK_SETTINGS: dict[str, Any] = {"temperature": 0.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 2048, "num_samples": 1}


# ---- what a card implies for a run ---------------------------------------------------------------

def stated_settings(card: Card, task: str) -> dict[str, Any]:
    """The card's stated settings for a task (protocol defaults overlaid with per-task values; null = unstated)."""
    merged = card.protocol.defaults.model_dump()
    override = card.protocol.per_task.get(task)
    if override is not None:
        merged.update({k: v for k, v in override.model_dump().items() if v is not None})
    merged["protocol"] = (override.protocol if override is not None and override.protocol else card.protocol.name)
    merged["prompt"] = override.prompt if override is not None else None
    return merged


def card_generation_defaults(card: Card, task: str) -> dict:
    """The protocol and decoding settings to run `task` the card's way.

    Returns {"protocol", "temperature", "top_p", "top_k", "max_new_tokens", "num_samples"}.
    Settings the card leaves null take FALLBACK_SETTINGS; the budget never exceeds the context.
    """
    stated = stated_settings(card, task)
    out = {"protocol": stated["protocol"]}
    for key, fallback in FALLBACK_SETTINGS.items():
        out[key] = stated[key] if stated.get(key) is not None else fallback
    if stated.get("max_new_tokens") is None and card.context_length:
        out["max_new_tokens"] = min(out["max_new_tokens"], card.context_length)
    return out


def _same_model(model_source: str, card: Card) -> bool:
    src = model_source.strip().rstrip("/")
    ids = [i for i in (card.hub_id, card.api.model if card.api else None) if i]
    if any(src.lower() == i.lower() for i in ids):
        return True
    # A Hub cache snapshot path names the repo as models--org--name.
    return any(f"models--{i.replace('/', '--')}".lower() in src.lower() for i in ids if "/" in i)


_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


# Decoding settings compared number to number; with num_fewshot, max_new_tokens and num_samples
# (compared above them in protocol_differences) these are every field of a card's EvalSettings.
SAMPLING_COMPARED = DECODING_SETTINGS  # every decoding number a card can state


def protocol_differences(card: Card, task: str, used: dict, *, random_weights: bool, model_source: str) -> list[str]:
    """Every way a run of `task` differs from the card's protocol, as short sentences.

    `used` may hold: protocol, temperature, top_p, top_k, min_p, presence_penalty, repetition_penalty,
    num_fewshot, max_new_tokens, num_samples, dtype,
    quantization, revision, force_think, system_prompt, limit, n (problems run), n_total
    (problems in the full benchmark). Missing keys are not compared; other keys are ignored.
    Only settings the card states are compared.
    """
    stated = stated_settings(card, task)
    diffs: list[str] = []

    if random_weights:
        diffs.append("random weights: the model's parameters are random, not the published checkpoint")
    elif model_source and not _same_model(model_source, card):
        expected = card.hub_id or (card.api.model if card.api else card.name)
        diffs.append(f"model: {model_source} is not the card's {expected}")

    rev = used.get("revision")
    if rev and card.revision and not (card.revision.startswith(rev) or rev.startswith(card.revision)):
        diffs.append(f"revision {used['revision']} instead of the card's pinned {card.revision}")

    if stated.get("prompt") and used.get("protocol") != stated["prompt"]:
        diffs.append(f"the card's claims on {task} were scored with the {stated['prompt']} prompt, not protocol {used.get('protocol')!r}")
    elif used.get("protocol") and used["protocol"] != stated["protocol"]:
        diffs.append(f"prompt protocol {used['protocol']!r} instead of the card's {stated['protocol']!r}")
    if "force_think" in used and used["force_think"] is not None and bool(used["force_think"]) != card.protocol.force_think:
        diffs.append("the reply was " + ("" if used["force_think"] else "not ") + "forced to start with <think>, unlike the card's protocol")
    if "system_prompt" in used:
        sp, policy = used["system_prompt"], card.protocol.system_prompt_policy
        if policy == "none" and sp:
            diffs.append("a system prompt was used; the card's protocol uses none")
        elif policy == "fixed" and sp != card.protocol.system_prompt:
            diffs.append("the system prompt differs from the card's")

    want_f, got_f = stated.get("num_fewshot"), used.get("num_fewshot")
    if want_f is not None and got_f is not None and int(got_f) != int(want_f):
        diffs.append(f"{got_f}-shot prompts instead of the card's {want_f}-shot")
    want_k, got_k = stated.get("num_samples"), used.get("num_samples")
    if want_k is not None and got_k is not None and got_k < want_k:
        diffs.append(f"{got_k} sample{'' if got_k == 1 else 's'} per problem instead of the card's {want_k} for {task}")
    want_t, got_t = stated.get("max_new_tokens"), used.get("max_new_tokens")
    if want_t is not None and got_t is not None and got_t != want_t:
        effect = "smaller token budget" if got_t < want_t else "larger token budget"
        tail = ": long answers are cut off and count as wrong" if got_t < want_t else ""
        diffs.append(f"{effect}: max_new_tokens {got_t} instead of the card's {want_t}{tail}")
    for key in SAMPLING_COMPARED:
        want, got = stated.get(key), used.get(key)
        if want is not None and got is not None and abs(float(got) - float(want)) > 1e-9:
            greedy = " (greedy)" if key == "temperature" and float(got) == 0.0 else ""
            diffs.append(f"{key} {_num(got)}{greedy} instead of the card's {_num(want)}")

    dtype = str(used.get("dtype") or "").replace("torch.", "")
    dtype = _DTYPE_ALIASES.get(dtype, dtype)
    if dtype and dtype != "auto" and card.dtype and dtype != card.dtype:
        diffs.append(f"dtype {dtype} instead of the card's {card.dtype}")
    if used.get("quantization"):
        diffs.append(f"quantised weights ({used['quantization']}) instead of the card's {card.dtype or 'published'} checkpoint")

    limit, n, n_total = used.get("limit"), used.get("n"), used.get("n_total")
    if limit is not None:
        ran = n if n is not None else limit
        if n_total is not None and ran < n_total:
            diffs.append(f"--limit {limit}: {ran} of {n_total} problems")
        elif n_total is None:
            diffs.append(f"--limit {limit}: {ran} problems, not the full benchmark")
    elif n is not None and n_total is not None and n < n_total:
        diffs.append(f"{n} of {n_total} problems")
    return diffs
