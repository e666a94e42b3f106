"""Fixtures for the engine tests: a tiny random Qwen2 model, saved as safetensors and as GGUF.

The model has the real Qwen2.5 tokenizer (from the shared fixtures, so the GGUF converter
recognises its pre-tokenizer) and random weights: hidden 64, 2 layers, 4 heads, 2 KV heads,
intermediate 128, tied embeddings (about 10 M parameters, nearly all vocabulary).

GGUF conversion uses `convert_hf_to_gguf.py` from the llama.cpp sources vendored in the
llama-cpp-python sdist (the PyPI `gguf` package is too old for it; the converter puts its own
`gguf-py` on the path). The sdist of the installed version is fetched with `pip download` (pip's
cache makes that cheap right after installing the extra) and the three parts the converter needs
are kept under ~/.cache/cnllm-harness; $HARNESS_LLAMA_CPP_SRC can point at a llama.cpp checkout
instead. Import the fixtures into a test module: `from engine_fixtures import tiny_gguf`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARNESS_SHARED", REPO.parent / "shared")).resolve()
QWEN_TOKENIZER = SHARED / "fixtures" / "qwen2.5-tokenizer"
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion", "gguf-py")

requires_shared = pytest.mark.skipif(not QWEN_TOKENIZER.is_dir(), reason=f"shared fixtures absent: {QWEN_TOKENIZER}")


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnllm-harness"


def _extract_converter(sdist: Path, dest: Path) -> None:
    """Unpack only the converter's parts of vendor/llama.cpp, then move them into place at once."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".staging-"))
    try:
        with tarfile.open(sdist) as tar:
            members = []
            for m in tar.getmembers():
                parts = Path(m.name).parts  # <name-version>/vendor/llama.cpp/<part>/...
                if len(parts) > 3 and parts[1:3] == ("vendor", "llama.cpp") and parts[3] in CONVERTER_PARTS and (m.isfile() or m.isdir()):
                    m.name = str(Path(*parts[3:]))
                    members.append(m)
            # the "data" filter refuses links and absolute paths (Python >= 3.10.12 / 3.11.4 have it)
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **safe)
        if not (staging / CONVERTER_PARTS[0]).is_file():
            raise RuntimeError(f"{sdist.name} holds no vendor/llama.cpp/{CONVERTER_PARTS[0]}")
        try:
            staging.rename(dest)
        except OSError:  # another session got there first
            if not (dest / CONVERTER_PARTS[0]).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def llama_cpp_converter() -> Path:
    """The directory holding convert_hf_to_gguf.py with its siblings, fetched once and cached."""
    if os.environ.get("HARNESS_LLAMA_CPP_SRC"):
        return Path(os.environ["HARNESS_LLAMA_CPP_SRC"])
    version = metadata.version("llama-cpp-python")
    dest = _cache_root() / f"llama.cpp-from-llama-cpp-python-{version}"
    if (dest / CONVERTER_PARTS[0]).is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               f"llama-cpp-python=={version}", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if not sdists:  # pip may fail on metadata after the download: the file is what we need
            raise RuntimeError(f"could not fetch the llama-cpp-python {version} sdist: {done.stderr[-500:]}")
        _extract_converter(sdists[0], dest)
    return dest


def build_tiny_qwen(out: Path, seed: int = 0, eager_eos: bool = False) -> Path:
    """Save a random tiny Qwen2 with the real Qwen2.5 tokenizer to `out` (safetensors).

    The weights are drawn with std 0.5 (not transformers' 0.02): at 0.02 the tied embeddings
    dominate the residual stream and greedy decoding repeats the last prompt token forever,
    which would make any parity check trivial; at 0.5 the output varies and the top-2 logit
    margins stay far above float32 noise.

    eager_eos=True (drawn at 0.02) makes <|im_end|> the greedy choice at every step: every token's embedding
    gets a large constant in dimension 0, which dominates the residual stream, so the final
    hidden state points along dimension 0; the (tied) output row of <|im_end|> has twice that
    constant there, so its logit is about twice any other's. Random weights never end on their own.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(QWEN_TOKENIZER)
    config = Qwen2Config(
        vocab_size=151936,  # Qwen2.5's padded vocabulary, as in the released checkpoints
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=4096,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        initializer_range=0.02 if eager_eos else 0.5,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    if eager_eos:
        with torch.no_grad():
            embeddings = model.get_input_embeddings().weight
            embeddings[:, 0] = 10.0
            embeddings[config.eos_token_id, 0] = 20.0
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


# Runs convert_hf_to_gguf.py once per "<model dir> <outfile> <outtype>" triple in ONE process,
# so torch and transformers are imported once (most of a conversion's time on a small model).
# The converter imports sentencepiece before it looks for a tokenizer.model, even for BPE
# tokenizers that need none: without the package, that step reports the missing file first, so
# the converter falls through to its BPE path as it would with the package installed.
_RUN_CONVERTER = """
import importlib.util, os, runpy, sys
script, jobs = sys.argv[1], sys.argv[2:]
here = os.path.dirname(script)
sys.path[:0] = [here, os.path.join(here, "gguf-py")]  # as `python convert_hf_to_gguf.py` would
if importlib.util.find_spec("sentencepiece") is None:
    from conversion import base
    original = base.TextModel._create_vocab_sentencepiece
    def without_sentencepiece(self):
        if not (self.dir_model / "tokenizer.model").is_file():
            raise FileNotFoundError(self.dir_model / "tokenizer.model")
        return original(self)
    base.TextModel._create_vocab_sentencepiece = without_sentencepiece
for i in range(0, len(jobs), 3):
    model_dir, outfile, outtype = jobs[i:i + 3]
    sys.argv = [script, model_dir, "--outfile", outfile, "--outtype", outtype]
    runpy.run_path(script, run_name="__main__")
"""


def convert_to_gguf(jobs: list[tuple[Path, Path]], outtype: str = "f32") -> list[Path]:
    """Convert each (model dir, outfile) pair; one converter process for all of them."""
    converter = llama_cpp_converter()
    cmd = [sys.executable, "-c", _RUN_CONVERTER, str(converter / "convert_hf_to_gguf.py")]
    for model_dir, outfile in jobs:
        cmd += [str(model_dir), str(outfile), outtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    missing = [str(out) for _, out in jobs if not out.is_file()]
    if done.returncode != 0 or missing:
        raise RuntimeError(f"convert_hf_to_gguf failed ({done.returncode}, missing {missing}): {done.stderr[-2000:]}")
    return [out for _, out in jobs]


@dataclass(frozen=True)
class TinyModels:
    qwen_dir: Path  # random weights, safetensors + tokenizer
    gguf: Path  # the same model as f32 GGUF
    eager_eos_dir: Path  # a variant that ends at once unless held back (see build_tiny_qwen)
    eager_eos_gguf: Path


_built: dict[str, TinyModels] = {}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    # Each test module that imports this fixture gets its own session-scoped copy of it, so the
    # models are memoised here: they are built once per session, whichever module asks first.
    if not QWEN_TOKENIZER.is_dir():
        pytest.skip(f"shared fixtures absent: {QWEN_TOKENIZER}")
    if "models" not in _built:
        root = tmp_path_factory.mktemp("tiny-models")
        plain = build_tiny_qwen(root / "tiny-qwen")
        eager = build_tiny_qwen(root / "eager-eos-qwen", eager_eos=True)
        ggufs = convert_to_gguf([(plain, root / "tiny-qwen-f32.gguf"), (eager, root / "eager-eos-f32.gguf")])
        _built["models"] = TinyModels(plain, ggufs[0], eager, ggufs[1])
    return _built["models"]


@pytest.fixture(scope="session")
def tiny_qwen_dir(tiny_models) -> Path:
    return tiny_models.qwen_dir


@pytest.fixture(scope="session")
def tiny_gguf(tiny_models) -> Path:
    return tiny_models.gguf


@pytest.fixture(scope="session")
def eager_eos_qwen_dir(tiny_models) -> Path:
    return tiny_models.eager_eos_dir


@pytest.fixture(scope="session")
def eager_eos_gguf(tiny_models) -> Path:
    return tiny_models.eager_eos_gguf
