"""The llama.cpp backend: GGUF files through llama-cpp-python, one request at a time.

Requests run at batch 1 on llama.cpp's own decode loop (`Llama.generate`), token by token, so
this module sees every token: it times the first one (TTFT) and the last one (e2e), counts them
itself, and decides the finish reason itself (end-of-generation token, stop string, or budget).
The end-of-generation token, when sampled, counts as an output token, as it does in the
transformers and vLLM backends.

Prompts: the GGUF's embedded chat template (`tokenizer.chat_template`) rendered with
llama-cpp-python's Jinja formatter (the same template transformers would render), or, with a
`tokenizer` option, that Hugging Face tokenizer's template; a GGUF without a template gets the
message contents as plain text. Every request is prefilled in full: the KV cache is not reused
across requests, so TTFT does not depend on which prompt ran before.

llama_cpp is imported only when a backend is built.
"""

from __future__ import annotations

import codecs
import os
import struct
import time
from pathlib import Path

from pydantic import Field

from harness.backends._sampling import StopScanner, effective_top_k, engine_seed
from harness.backends.base import Backend, BackendOptions, split_options
from harness.core.fingerprint import from_gguf_metadata
from harness.core.prompt import formatter_template, hf_template, render
from harness.core.types import Completion, ModelInfo, Request
from harness.errors import ModelLoadError
from harness.measure.gguf_layout import gguf_weight_layout
from harness.runtime import tokens as tokens_meter

DEFAULT_MAX_CTX = 32768  # cap on the default context: the KV cache for 128k would not fit a laptop
KV_CACHE_BYTES_PER_VALUE = 2  # llama.cpp keeps its KV cache in f16 unless told otherwise


class LlamaCppOptions(BackendOptions):
    n_ctx: int | None = Field(None, gt=0, description="context window (default: the model's training context, capped)")
    n_threads: int | None = Field(None, gt=0, description="CPU threads for decoding (default: one per physical core)")
    n_gpu_layers: int | None = Field(None, ge=-1, description="layers offloaded to the GPU (-1: all; default all on a GPU device)")
    tokenizer: str | None = Field(None, description="a Hugging Face tokenizer folder for the chat template (default: the GGUF's own)")


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError("llama.cpp backend needs llama-cpp-python", "pip install 'cnllm-harness[llamacpp]'") from exc
    return llama_cpp


def _file_type_name(llama_cpp, code: str | None) -> str | None:
    """'15' -> 'Q4_K_M', from the LLAMA_FTYPE_* constants of the installed llama_cpp."""
    if code is None or not str(code).isdigit():
        return None
    for name in dir(llama_cpp):
        if name.startswith("LLAMA_FTYPE_") and getattr(llama_cpp, name) == int(code):
            return name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    return None


def _metadata_int(metadata: dict, key: str) -> int | None:
    value = metadata.get(key)
    return int(value) if value is not None and str(value).isdigit() else None


def physical_cores() -> int:
    """Decode threads by default: one per physical core (hyper-threads only contend for the same
    execution units, and llama.cpp's own default of 1 thread on a 2-core VM halves the rate)."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except ImportError:
        n = None
    return max(1, n or os.cpu_count() or 1)


def _training_context(llama_cpp, path: str) -> int:
    """The GGUF's training context from a vocab-only load: no weights, no KV cache, so the real
    load can size its context without first allocating the full training context."""
    from llama_cpp import _internals

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = _internals.LlamaModel(path_model=path, params=params, verbose=False)
    try:
        metadata = model.metadata()
        return _metadata_int(metadata, f"{metadata.get('general.architecture')}.context_length") or 0
    finally:
        model.close()


class LlamaCppBackend(Backend):
    """A GGUF model on llama.cpp. Build it with `from_options(path_to_gguf, **options)`."""

    name = "llamacpp"
    Options = LlamaCppOptions
    install = "llama.cpp for GGUF: pip install 'cnllm-harness[llamacpp]'"

    def __init__(self, model_path: str, *, n_ctx: int | None = None, n_threads: int | None = None, n_gpu_layers: int = 0,
                 tokenizer: str | None = None):
        llama_cpp = _import_llama_cpp()
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"no GGUF file at {model_path}", "llama.cpp reads .gguf files: pass --model path/to/model.gguf")
        try:
            # 0 lets llama.cpp take the training context when the metadata does not say it
            from harness.backends.llamacpp_cpu import apply as cpu_workaround

            self._buffers = cpu_workaround(llama_cpp, str(path))  # AMX/repack buffers crash on some VMs: probed once
            ctx = int(n_ctx) if n_ctx else min(_training_context(llama_cpp, str(path)), DEFAULT_MAX_CTX)
            threads = int(n_threads) if n_threads else physical_cores()
            self._llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=ctx, n_threads=threads, n_threads_batch=threads, n_gpu_layers=int(n_gpu_layers or 0),
                verbose=False
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelLoadError(f"llama.cpp could not load {model_path}: {exc}", "check that the file is a complete GGUF model") from exc
        self._llama_cpp = llama_cpp
        self._gpu_layers = int(n_gpu_layers or 0)
        self._vocab = self._llm._model.vocab
        self._n_ctx = self._llm.n_ctx()
        metadata = dict(self._llm.metadata)
        n_ctx_train = self._llm._model.n_ctx_train()
        self._template = None
        if tokenizer:
            from transformers import AutoTokenizer

            self._template = hf_template(AutoTokenizer.from_pretrained(tokenizer))
            template_source = f"tokenizer {tokenizer}" if self._template else f"none: tokenizer {tokenizer} has no chat template"
        elif metadata.get("tokenizer.chat_template"):
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self._llm._model

            def token_text(token_id: int) -> str:
                return model.token_get_text(token_id) if token_id != -1 else ""

            self._template = formatter_template(Jinja2ChatFormatter(
                template=metadata["tokenizer.chat_template"],
                eos_token=token_text(self._llm.token_eos()),
                bos_token=token_text(self._llm.token_bos()),
                add_generation_prompt=True,
            ))
            template_source = "the GGUF's tokenizer.chat_template"
        else:
            template_source = "none: message contents as plain text"
        self._eog_ids: list[int] | None = None  # filled on first use of min_new_tokens
        self.info = self._model_info(str(path), metadata, n_ctx_train, template_source)
        self.info.engine["cpu_buffer_types"] = self._buffers
        self.info.fingerprint = from_gguf_metadata(metadata, int(self._llm.n_vocab()))
        try:  # bytes a step reads, from the file's tensor table: one embedding row per sequence, only routed experts
            self.info.weight_layout = gguf_weight_layout(path)
        except (OSError, ValueError, struct.error) as e:
            self.info.notes.append(f"roofline: the GGUF tensor table could not be read ({e}); every weight counted as read each step")
        # GGUF files may recommend sampling settings (general.sampling.*); every request sets its own
        self.info.overridden_defaults = {k.removeprefix("general.sampling."): v for k, v in metadata.items()
                                         if k.startswith("general.sampling.")}

    @classmethod
    def from_options(cls, model: str, **options) -> LlamaCppBackend:
        """Build from CLI/config options; options meant for other engines are noted and ignored.

        On a GPU device without an explicit n_gpu_layers every layer is offloaded (-1)."""
        kwargs, ignored = split_options(options, cls.Options.model_fields)
        kwargs = cls.check_options(kwargs).model_dump(exclude_unset=True)
        device = getattr(options.get("device"), "type", options.get("device"))
        if "n_gpu_layers" not in kwargs and device not in (None, "cpu"):
            kwargs["n_gpu_layers"] = -1
        backend = cls(model, **kwargs)
        if ignored:
            backend.info.notes.append(f"options ignored by llama.cpp: {', '.join(ignored)}")
        return backend

    def _model_info(self, path: str, metadata: dict, n_ctx_train: int, template_source: str) -> ModelInfo:
        arch = metadata.get("general.architecture")
        file_type = _file_type_name(self._llama_cpp, metadata.get("general.file_type"))
        layers = _metadata_int(metadata, f"{arch}.block_count")
        heads = _metadata_int(metadata, f"{arch}.attention.head_count")
        kv_heads = _metadata_int(metadata, f"{arch}.attention.head_count_kv") or heads
        embd = _metadata_int(metadata, f"{arch}.embedding_length")
        head_dim = _metadata_int(metadata, f"{arch}.attention.key_length") or (embd // heads if embd and heads else None)
        kv_bytes = layers * kv_heads * head_dim * 2 * KV_CACHE_BYTES_PER_VALUE if layers and kv_heads and head_dim else None
        threads = getattr(self._llm, "n_threads", None)
        layers_on_gpu = self._gpu_layers
        offload = self._llama_cpp.llama_supports_gpu_offload()
        placement = (f"{'all' if layers_on_gpu < 0 else layers_on_gpu} layers offloaded to the GPU" if layers_on_gpu and offload
                     else "CPU only" + (" (this llama-cpp-python build cannot offload)" if layers_on_gpu else ""))
        return ModelInfo(
            name_or_path=path,
            backend=self.name,
            revision=None,
            dtype=file_type,
            num_parameters=int(self._llm._model.n_params()),
            architecture=arch,
            context_length=n_ctx_train,
            weight_bytes=int(self._llm._model.size()),
            kv_bytes_per_token=kv_bytes,
            quantization=file_type if file_type not in (None, "F32", "F16", "BF16") else None,
            notes=[
                "revision: a local GGUF file has no hub revision",
                f"llama.cpp context {self._n_ctx} tokens (training context {n_ctx_train}); {threads} decode threads; {placement}",
                f"chat template: {template_source}",
                "each request prefilled in full (no KV reuse across requests); batch size 1",
            ],
        )

    # ---- hooks ----------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        return render(request, self._template)

    def count_tokens(self, text: str) -> int | None:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def decode(self, ids: list[int]) -> str:
        return self._llm.detokenize(ids).decode("utf-8", errors="replace")  # as each streamed piece is

    def max_batch_size(self) -> int:
        return 1

    def engine_sampling(self, sampling) -> dict:
        """Every knob of `Llama.generate`, set: its own defaults (top-k 40, top-p 0.95, min-p 0.05,
        temperature 0.8) are not neutral."""
        greedy = sampling.greedy
        return {"temp": 0.0 if greedy else sampling.temperature, "top_k": effective_top_k(sampling),
                "top_p": 1.0 if greedy else sampling.top_p, "min_p": 0.0 if greedy else sampling.min_p, "typical_p": 1.0,
                "tfs_z": 1.0, "mirostat_mode": 0, "repeat_penalty": sampling.repetition_penalty,
                "presence_penalty": sampling.presence_penalty, "frequency_penalty": sampling.frequency_penalty}

    # ---- log-likelihood scoring (backends/logprobs.py) ------------------------------------
    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        add_bos = self._llm._model.add_bos_token() if add_special_tokens is None else add_special_tokens
        bos = self._llm.token_bos()
        if add_special_tokens is None and bos != -1 and text.startswith(self._llm._model.token_get_text(bos)):
            add_bos = False  # the text already carries its BOS
        return self._llm.tokenize(text.encode("utf-8"), add_bos=bool(add_bos and bos != -1), special=True)

    @property
    def prefix_token_id(self) -> int:
        bos = self._llm.token_bos()
        return bos if bos != -1 else self._llm.token_eos()

    @property
    def scoring_length(self) -> int:
        return self._n_ctx

    def score(self, requests: list, max_length: int | None = None) -> list:
        from harness.backends.logprobs import score_llama_cpp

        return score_llama_cpp(self._llm, requests, min(max_length or self._n_ctx, self._n_ctx))

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()

    # ---- generation -----------------------------------------------------------------------
    def _prompt_tokens(self, prompt: str, chat: bool = True) -> list[int]:
        # A chat template writes its own BOS text (parsed as the special token); plain text gets
        # the BOS the vocabulary asks for. This matches how llama-cpp-python's chat path does it.
        templated = self._template is not None and chat
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=not templated, special=True)

    def _eog(self) -> list[int]:
        if self._eog_ids is None:
            is_eog = self._llama_cpp.llama_vocab_is_eog
            self._eog_ids = [t for t in range(self._llm.n_vocab()) if is_eog(self._vocab, t)]
        return self._eog_ids

    def generate(self, requests: list[Request]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _one(self, request: Request) -> Completion:
        s = request.sampling
        start = time.perf_counter()
        tokens = self._prompt_tokens(self.render(request), request.chat)
        room = self._n_ctx - len(tokens)
        if room <= 0:
            why = f"prompt of {len(tokens)} tokens does not fit the {self._n_ctx}-token context (raise --n-ctx)"
            return Completion("", len(tokens), 0, "error", None, None, unmeasured={"ttft_s": why, "e2e_s": why})
        budget = min(s.max_new_tokens, room)
        generated = 0  # read by the min-tokens processor while sampling the next token

        processors = None
        if s.min_new_tokens > 0:
            import numpy as np

            banned = np.array(self._eog(), dtype=np.intp)

            def hold_eog(_input_ids, scores):
                if generated < s.min_new_tokens:
                    scores[banned] = -np.inf
                return scores

            processors = self._llama_cpp.LogitsProcessorList([hold_eog])

        self._llm.set_seed(engine_seed(request.seed))
        self._llm.reset()  # full prefill: no KV reuse from the previous request
        stream = self._llm.generate(tokens, reset=True, logits_processor=processors, **self.engine_sampling(s))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        scanner = StopScanner(s.stop)
        first = last = None
        finish = "length"
        ids: list[int] = []
        try:
            for token in stream:
                last = time.perf_counter()
                first = first or last
                generated += 1
                tokens_meter.tick(1)
                ids.append(int(token))
                if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    finish = "eos"
                    break
                piece = decoder.decode(self._llm.detokenize([token]))
                # Like vLLM, stop strings are not looked for until the minimum length is reached.
                if scanner.feed(piece, check=generated >= s.min_new_tokens):
                    finish = "stop"
                    break
                if generated >= budget:
                    break
        finally:
            stream.close()
        if finish != "stop":
            scanner.feed(decoder.decode(b"", final=True), check=False)
        unmeasured = {}
        if first is None:
            unmeasured["ttft_s"] = unmeasured["e2e_s"] = "no token generated"
        completion = Completion(
            text=scanner.text,
            input_tokens=len(tokens),
            output_tokens=generated,
            finish_reason=finish,
            token_ids=ids,
            ttft_s=None if first is None else first - start,
            e2e_s=None if last is None else last - start,
            batch_size=1,
            batch_wall_s=time.perf_counter() - start,
            unmeasured=unmeasured,
        )
        note = f"some requests stopped at the {self._n_ctx}-token context before max_new_tokens (raise --n-ctx)"
        if finish == "length" and budget < s.max_new_tokens and note not in self.info.notes:
            self.info.notes.append(note)
        return completion

    def __repr__(self) -> str:
        return f"LlamaCppBackend({self.info.name_or_path!r})"


__all__ = ["LlamaCppBackend"]
