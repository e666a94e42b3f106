"""Next-token divergence of a variant from the reference, and its perplexity, on a fixed text set.

Every variant reads the same token ids (the reference's tokenization of harness/data/precision_texts.json,
or of a user's file) and yields, at every position, its full next-token distribution: from llama.cpp
with `logits_all=True` for a GGUF, from a transformers forward pass for a Hugging Face folder.

The reference's distributions are kept as their top-K tokens per position plus one bucket for the
rest of the vocabulary (reference.npz in the matrix folder: a few MB instead of positions x 150k
floats). KL(reference || variant) is computed over that partition: the K tokens one by one and the
rest as a single outcome. Merging outcomes never increases a KL divergence, so this is a lower bound
on the full KL, tight when the bucket's mass is small; the mean bucket mass is reported beside it.
Perplexity is exp(-mean log q(next token)), over the same positions, from the variant's full
distribution. The reference compared with its own stored distributions gives exactly 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

TOP_K = 512
KL_METHOD = (f"KL(reference || variant) per position over the reference's top-{TOP_K} tokens plus one bucket for the rest "
             "(a lower bound on the full KL, tight when the bucket's mass is small), averaged over positions")


@dataclass(frozen=True)
class TextSet:
    ids: list[str]
    texts: list[str]
    source: str


def load_texts(path: str | None = None) -> TextSet:
    """The fixed text set: the built-in one, or a JSON file {"texts": [{"id", "text"}]} / a plain text file (one text)."""
    if path is None:
        data = json.loads(resources.files("harness.data").joinpath("precision_texts.json").read_text(encoding="utf-8"))
        return TextSet([t["id"] for t in data["texts"]], [t["text"] for t in data["texts"]],
                       f"built-in precision_texts.json v{data['version']}")
    p = Path(path)
    raw = p.read_text(encoding="utf-8")
    if p.suffix == ".json":
        data = json.loads(raw)
        return TextSet([str(t["id"]) for t in data["texts"]], [t["text"] for t in data["texts"]], str(p))
    return TextSet([p.stem], [raw], str(p))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# ---- logits from an engine ----------------------------------------------------------------------------

def tokenize(model: str, backend: str, texts: list[str]) -> list[list[int]]:
    """Token ids of each text with the model's own tokenizer (no special tokens added)."""
    if backend == "llamacpp":
        from llama_cpp import Llama

        llm = Llama(model_path=model, vocab_only=True, verbose=False)  # vocabulary only: no compute, no buffer question
        try:
            return [llm.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts]
        finally:
            llm.close()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]


def logprobs_llama_cpp(model: str, token_lists: list[list[int]], n_threads: int | None = None):
    """Yield each text's (positions-1) x vocab next-token log-probabilities from llama.cpp."""
    import llama_cpp
    from llama_cpp import Llama

    from harness.backends.llamacpp import physical_cores
    from harness.backends.llamacpp_cpu import apply as cpu_workaround

    cpu_workaround(llama_cpp, model)

    threads = n_threads or physical_cores()
    llm = Llama(model_path=model, n_ctx=max(len(t) for t in token_lists) + 8, logits_all=True, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    try:
        for tokens in token_lists:
            llm.reset()
            llm.eval(tokens)
            yield log_softmax(np.array(llm.scores[:len(tokens) - 1], dtype=np.float32))
    finally:
        llm.close()


def logprobs_transformers(model: str, token_lists: list[list[int]], dtype: str | None = None):
    """Yield each text's next-token log-probabilities from a transformers causal LM on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype or "float32")).eval()
    with torch.inference_mode():
        for tokens in token_lists:
            logits = m(torch.tensor([tokens])).logits[0, :-1].float().numpy()
            yield log_softmax(logits)


def variant_logprobs(model: str, backend: str, dtype: str | None, token_lists: list[list[int]], n_threads: int | None = None):
    if backend == "llamacpp":
        return logprobs_llama_cpp(model, token_lists, n_threads)
    return logprobs_transformers(model, token_lists, dtype)


# ---- the reference's summary and the comparison -------------------------------------------------------

@dataclass
class Reference:
    """The reference's top-K distribution per position (float32 log-probs) and the rest's mass."""

    tokens: list[list[int]]
    top_idx: np.ndarray  # positions x K, int32
    top_logp: np.ndarray  # positions x K, float32
    tail: np.ndarray  # positions, float64: mass outside the top K

    def save(self, path: Path) -> None:
        lengths = np.array([len(t) for t in self.tokens], dtype=np.int64)
        flat = np.array([x for t in self.tokens for x in t], dtype=np.int64)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, lengths=lengths, flat=flat, top_idx=self.top_idx, top_logp=self.top_logp, tail=self.tail)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Reference:
        z = np.load(path)
        lengths, flat = z["lengths"], z["flat"].tolist()
        tokens, at = [], 0
        for n in lengths.tolist():
            tokens.append(flat[at:at + n])
            at += n
        return cls(tokens, z["top_idx"], z["top_logp"], z["tail"])


def _top(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = min(k, rows.shape[1])
    idx = np.argpartition(-rows, k - 1, axis=1)[:, :k].astype(np.int32)
    top = np.take_along_axis(rows, idx, axis=1).astype(np.float32)
    # the bucket's mass from the stored float32 values, exactly as compare() computes the variant's
    tail = np.clip(1.0 - np.exp(top.astype(np.float64)).sum(axis=1), 0.0, 1.0)
    return idx, top, tail


def _text_stats(idx: np.ndarray, top: np.ndarray, tail: np.ndarray, toks: list[int], rows: np.ndarray):
    """Per position of one text: KL over the top-K + bucket partition, whether the top token agrees, and -log q(next)."""
    n = len(toks) - 1
    if rows.shape[0] != n:
        raise ValueError(f"the variant gave {rows.shape[0]} positions for a text of {n}, the reference's")
    p_top = top.astype(np.float64)
    q_top = np.take_along_axis(rows, idx.astype(np.intp), axis=1).astype(np.float32).astype(np.float64)
    kl = (np.exp(p_top) * (p_top - q_top)).sum(axis=1)  # float32 like the stored p: the reference against itself is exactly 0
    q_tail = np.clip(1.0 - np.exp(q_top).sum(axis=1), 1e-300, 1.0)
    has_tail = tail > 0
    kl = kl + np.where(has_tail, tail * (np.log(np.where(has_tail, tail, 1.0)) - np.log(q_tail)), 0.0)
    best = idx[np.arange(n), top.argmax(axis=1)]
    return np.maximum(kl, 0.0), rows.argmax(axis=1) == best, -rows[np.arange(n), np.asarray(toks[1:], dtype=np.intp)]


@dataclass(frozen=True)
class Divergence:
    kl_mean: float
    kl_p95: float
    kl_max: float
    same_top_token: float  # share of positions where the variant's most likely token is the reference's
    perplexity: float
    positions: int
    tail_mass_mean: float


def _divergence(stats: list, tail: np.ndarray) -> Divergence:
    kl, same, nll = (np.concatenate([s[i] for s in stats]) for i in range(3))
    return Divergence(kl_mean=float(kl.mean()), kl_p95=float(np.percentile(kl, 95)), kl_max=float(kl.max()),
                      same_top_token=float(same.mean()), perplexity=float(np.exp(nll.mean())), positions=len(kl),
                      tail_mass_mean=float(tail.mean()))


def summarize_reference(tokens: list[list[int]], logps, k: int = TOP_K) -> tuple[Reference, Divergence]:
    """The reference's top-K per position, and its own row (KL exactly 0), from one pass over its
    log-probabilities (an iterable, one array per text: never all positions x vocabulary at once)."""
    parts, stats = [], []
    for toks, rows in zip(tokens, logps):
        part = _top(rows, k)
        parts.append(part)
        stats.append(_text_stats(*part, toks, rows))
    ref = Reference(tokens, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2] for p in parts]))
    return ref, _divergence(stats, ref.tail)


def compare(ref: Reference, logps) -> Divergence:
    """A variant against the stored reference; `logps` yields its log-probabilities text by text, in the reference's order."""
    stats, at = [], 0
    for toks, rows in zip(ref.tokens, logps):
        sl = slice(at, at + len(toks) - 1)
        at += len(toks) - 1
        stats.append(_text_stats(ref.top_idx[sl], ref.top_logp[sl], ref.tail[sl], toks, rows))
    if at != ref.top_idx.shape[0] or len(stats) != len(ref.tokens):
        raise ValueError(f"the variant covered {at} positions, the reference {ref.top_idx.shape[0]}")
    return _divergence(stats, ref.tail)


__all__ = ["KL_METHOD", "Divergence", "Reference", "compare", "load_texts", "summarize_reference", "tokenize", "variant_logprobs"]
