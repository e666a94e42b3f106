"""The prompts a load test sends: real task prompts or synthetic ones of a fixed token length, and
the request body each becomes.

Task prompts come from our tasks (`--tasks gsm8k --data-file gsm8k=PATH`) rendered with the model's
prompt protocol, as a run would send them, over the chat endpoint. Synthetic prompts are random
common words (seeded, different per prompt, so no two share a prefix a server could cache) over the
text-completions endpoint, as vLLM's random dataset does; their length is set by asking the server
itself: one non-streamed request with max_tokens=1 per prompt returns `usage.prompt_tokens`, and
words are added or removed until it matches (at most CALIBRATION_ROUNDS tries, the count kept
either way). A fixed output length is enforced by `ignore_eos` (vLLM) or, for a GGUF served by
llama.cpp, a -1e9 logit bias on the end-of-sequence tokens read from the file.
"""

from __future__ import annotations

import random
from typing import Any

from harness.errors import ConfigError
from harness.load.client import Prompt

CALIBRATION_ROUNDS = 4
WORDS = ("time person year way day thing man world life hand part child eye woman place work week case point "
         "government company number group problem fact water money story month lot right study book word "
         "business issue side kind head house service friend father power hour game line end member law car "
         "city community name president team minute idea kid body information back parent face others level "
         "office door health art war history party result change morning reason research girl guy moment air "
         "teacher force education river table garden light music paper window market stone road field tree").split()
# Decoding that changes nothing: llama-cpp-python's server otherwise applies repeat_penalty 1.1.
NEUTRAL = {"temperature": 0.0, "top_p": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0, "repeat_penalty": 1.0}


def synthetic_text(words: int, seed: int, index: int) -> str:
    rng = random.Random(f"{seed}/{index}")
    return " ".join(rng.choice(WORDS) for _ in range(max(1, words)))


def task_prompts(tasks: list[str], data_files: dict[str, str], limit: int, model: str, protocol: str | None) -> list[Prompt]:
    """Up to `limit` prompts per task, rendered as a run renders them (the protocol's chat turns)."""
    from harness import protocols
    from harness.planning.plan import load_task

    proto = protocols.resolve(protocol, model)
    if not proto.chat:
        proto = protocols.override(proto, chat=True)  # a served chat endpoint: the few-shot text goes in one user turn
    out: list[Prompt] = []
    for name in tasks:
        task = load_task(name, {})
        for item in task.load(data_files.get(name), limit=limit):
            messages, _prefill = protocols.build(proto, task, item)
            out.append(Prompt(id=f"{name}/{item.id}", messages=tuple({"role": m["role"], "content": m["content"]} for m in messages)))
    return out


def eos_ids(gguf_path: str) -> list[int]:
    """End-of-sequence and end-of-turn token ids a GGUF declares (empty when it declares none)."""
    from harness.backends.gguf_file import read_header

    meta = read_header(gguf_path).metadata
    ids = [meta.get(k) for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")]
    return sorted({i for i in ids if isinstance(i, int) and not isinstance(i, bool)})


def body(prompt: Prompt, model: str, max_tokens: int, *, stream: bool, seed: int, fixed: dict[str, Any]) -> dict[str, Any]:
    """The JSON body: chat messages or a text prompt, neutral greedy decoding, streaming with usage asked for."""
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "stream": stream, "seed": seed, **NEUTRAL, **fixed}
    if prompt.messages:
        out["messages"] = [dict(m) for m in prompt.messages]
    else:
        out["prompt"] = prompt.text
    if stream:
        out["stream_options"] = {"include_usage": True}
    return out


def fixed_output(engine: str | None, model_path: str | None, output_tokens: int | None) -> tuple[dict[str, Any], str | None]:
    """(extra body fields, how a fixed output length is enforced) for --output-tokens."""
    if output_tokens is None:
        return {}, None
    if engine == "llamacpp" and model_path:
        ids = eos_ids(model_path)
        if ids:
            return {"logit_bias": {str(i): -1e9 for i in ids}}, f"logit_bias -1e9 on end tokens {ids} (read from the GGUF)"
    return {"ignore_eos": True, "min_tokens": output_tokens}, "ignore_eos + min_tokens (vLLM's fields; a server without them may stop early)"


async def measure(client: Any, url: str, prompt: Prompt, model: str) -> int | None:
    """The server's own count of the prompt's tokens (one non-streamed request, max_tokens=1)."""
    payload = body(prompt, model, 1, stream=False, seed=0, fixed={})
    try:
        r = await client.post(url, json=payload, timeout=120.0)
        if r.status_code != 200:
            return None
        n = (r.json().get("usage") or {}).get("prompt_tokens")
    except Exception:  # any failure leaves the count unmeasured, said in the record
        return None
    return n if isinstance(n, int) and n > 0 else None


async def synthetic_prompts(client: Any, url: str, model: str, n: int, input_tokens: int, seed: int) -> list[Prompt]:
    """n prompts of `input_tokens` tokens as the server counts them (as close as words allow)."""
    if input_tokens < 1:
        raise ConfigError(f"--input-tokens must be at least 1, got {input_tokens}", "e.g. --input-tokens 128")
    out: list[Prompt] = []
    ratio: float | None = None  # tokens per word, learnt from the first prompt
    for i in range(n):
        words = max(1, round(input_tokens / ratio)) if ratio else input_tokens
        text, got = synthetic_text(words, seed, i), None
        for _ in range(CALIBRATION_ROUNDS):
            got = await measure(client, url, Prompt(id=f"synthetic/{i}", text=text), model)
            if got is None or got == input_tokens:
                break
            ratio = got / words
            step = round((input_tokens - got) / max(ratio, 1e-6)) or (1 if got < input_tokens else -1)
            words = max(1, words + step)
            text = synthetic_text(words, seed, i)
        else:
            got = await measure(client, url, Prompt(id=f"synthetic/{i}", text=text), model)
        source = "server usage.prompt_tokens (max_tokens=1 probe)" if got is not None else "not measured: the server gave no usage"
        out.append(Prompt(id=f"synthetic/{i}", text=text, input_tokens=got, input_tokens_source=source))
    return out


async def measure_all(client: Any, url: str, prompts: list[Prompt], model: str) -> list[Prompt]:
    """Task prompts with their measured input length."""
    out = []
    for p in prompts:
        n = await measure(client, url, p, model)
        source = "server usage.prompt_tokens (max_tokens=1 probe)" if n is not None else "not measured: the server gave no usage"
        out.append(Prompt(id=p.id, messages=p.messages, text=p.text, input_tokens=n, input_tokens_source=source))
    return out
