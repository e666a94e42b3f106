"""Find and load a model and its tokenizer: `random:<name>`, a Hub id, a local folder or a GGUF file.

Security defaults live here: safetensors only unless `allow_pickle`; remote code only with
`trust_remote_code`. Every way a load can fail that the user can fix becomes a ModelLoadError
with one line naming the fix. `random:` models are built from the real architecture configs in
harness/data/configs (facts from each model's config.json) with random weights and the local
tokenizer in harness/data/tokenizer, so they need no network at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness.core.spec import parse as parse_spec
from harness.errors import ModelLoadError

DATA = Path(__file__).resolve().parents[1] / "data"
CONFIGS = DATA / "configs"
LOCAL_TOKENIZER = DATA / "tokenizer"

# random:tiny: a few MB Qwen2 for smoke tests; vocab matches the local tokenizer.
TINY = {
    "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
    "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "vocab_size": 740,
    "bos_token_id": None, "eos_token_id": 2, "pad_token_id": 0, "_hf_id": None, "_status": "synthetic",
    # a wide init so random:tiny emits varied text instead of one repeated token
    "initializer_range": 0.5,
}


def random_names() -> list[str]:
    return ["tiny"] + sorted(p.stem for p in CONFIGS.glob("*.json"))


def random_config(name: str) -> dict:
    """The architecture dict for random:<name>; accepts names with or without '-instruct'."""
    if name == "tiny":
        return dict(TINY)
    for cand in (name, f"{name}-instruct"):
        path = CONFIGS / f"{cand}.json"
        if path.exists():
            return json.loads(path.read_text())
    raise ModelLoadError(f"unknown random model {name!r}", f"choose one of: {', '.join(random_names())} (see `harness list models`)")


@dataclass
class Loaded:
    model: object
    tokenizer: object
    source: str  # "random" | "hub" | "local" | "gguf"
    revision: str | None
    path: str


def load(spec: str, *, torch_dtype, device_map, revision: str | None = None, trust_remote_code: bool = False,
         allow_pickle: bool = False, tokenizer: str | None = None, max_memory: dict | None = None, seed: int = 0) -> Loaded:
    if parse_spec(spec).is_random:
        return _load_random(parse_spec(spec).name, torch_dtype, device_map, tokenizer, seed)
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}", "check the path")
        return _load_gguf(path, torch_dtype, device_map, tokenizer)
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path} is not a model folder or a .gguf file", "pass a folder with config.json, a .gguf file, a Hub id or random:<name>")
        return _load_folder(path, "local", None, torch_dtype, device_map, trust_remote_code, allow_pickle, tokenizer, max_memory)
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelLoadError(f"model path not found: {spec}", "check the path, or pass a Hub id like Qwen/Qwen2.5-0.5B-Instruct")
    folder, sha = _hub_snapshot(spec, revision, allow_pickle)
    return _load_folder(folder, "hub", sha, torch_dtype, device_map, trust_remote_code, allow_pickle, tokenizer, max_memory, repo=spec)


def load_tokenizer(source: str | Path, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except Exception as e:
        raise ModelLoadError(f"could not load a tokenizer from {source}: {_first_line(e)}", "pass --tokenizer PATH to a folder with tokenizer.json") from None
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def arch_dict(raw: dict, layers: int | None = None) -> dict:
    """A config.json dict ready to build the architecture from: our notes (`_` keys) and the
    loader-only keys dropped, and with `layers`, cut to the first `layers` layers (per-layer lists too)."""
    out = {k: v for k, v in raw.items() if not k.startswith("_") and k not in ("torch_dtype", "transformers_version", "auto_map")}
    if layers is not None:
        out["num_hidden_layers"] = layers
        if isinstance(out.get("layer_types"), list):
            out["layer_types"] = out["layer_types"][:layers]
    return out


def hf_config(raw: dict):
    """The transformers config of a config.json dict (its model_type picks the class)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(raw["model_type"], **{k: v for k, v in raw.items() if k != "model_type"})


def _load_random(name: str, torch_dtype, device_map, tokenizer: str | None, seed: int) -> Loaded:
    import torch
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(tokenizer or LOCAL_TOKENIZER)
    raw = arch_dict(random_config(name))
    config = hf_config(raw)
    if getattr(config, "eos_token_id", None) is None or name == "tiny" or tokenizer is None:
        config.eos_token_id, config.pad_token_id = tok.eos_token_id, tok.pad_token_id
    device = device_map if isinstance(device_map, str) else "cpu"
    try:
        torch.device(device)
    except RuntimeError:  # e.g. --device-map auto: accelerate placement needs weights on disk
        raise ModelLoadError(f"--device-map {device!r} does not apply to random:{name} models", "drop --device-map; use --device") from None
    torch.manual_seed(seed)  # the same random model every time
    from harness.core.architecture import count_parameters

    large = (count_parameters(raw) or 0) > FAST_FILL_PARAMS
    try:
        with torch.device(device), _no_init(large):
            model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        if large:
            _fill_random(model, float(getattr(config, "initializer_range", 0.02) or 0.02), seed)
    except torch.OutOfMemoryError:
        raise ModelLoadError(f"random:{name} does not fit in {device} memory", "use a smaller model, --dtype bfloat16, or a bigger device") from None
    model.eval()
    return Loaded(model, tok, "random", None, f"random:{name}")


FAST_FILL_PARAMS = 10**9


def _no_init(active: bool):
    """transformers' switch that skips weight initialisation (drawing 7.6 B normal values one by
    one takes minutes on a CPU); a no-op for small models, which keep the library's own init."""
    import contextlib

    if not active:
        return contextlib.nullcontext()
    from transformers.initialization import no_init_weights

    return no_init_weights()


def _fill_random(model, std: float, seed: int) -> None:
    """Random weights for a large model in one pass over memory: every matrix is tiled from one
    seeded block of N(0, std) values, biases are zero and norms keep the ones they were built with.
    Timing and memory depend on shapes and dtypes, not on which random values fill them."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    block = torch.randn(1 << 20, generator=gen) * std
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2:
                if name.endswith("bias"):
                    p.zero_()
                continue
            flat = p.view(-1)
            src = block.to(device=p.device, dtype=p.dtype)
            whole = flat.numel() // src.numel() * src.numel()
            if whole:
                flat[:whole].view(-1, src.numel()).copy_(src)
            flat[whole:].copy_(src[: flat.numel() - whole])


def check_hub_model(repo: str, revision: str | None, allow_pickle: bool = False) -> None:
    """Offline: the model is in the Hub cache (the same lookup, and the same errors, as loading)."""
    _hub_snapshot(repo, revision, allow_pickle)


def _hub_snapshot(repo: str, revision: str | None, allow_pickle: bool) -> tuple[Path, str | None]:
    """Download (or find in the cache) a Hub repo's weights, safetensors only unless allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py"]
    if allow_pickle:
        patterns += ["*.bin", "*.pt", "*.pth"]
    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=patterns, local_files_only=offline))
    except GatedRepoError:
        raise ModelLoadError(f"{repo} is gated and needs an accepted licence and a token", "accept its terms on huggingface.co and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(f"model {repo!r} was not found on the Hugging Face Hub", "check the id (e.g. Qwen/Qwen2.5-0.5B-Instruct), or log in for a private repo") from None
    except RevisionNotFoundError:
        raise ModelLoadError(f"revision {revision!r} does not exist in {repo}", "pass a branch, tag or commit sha that exists") from None
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE=1" if offline else "the Hub is unreachable"
        raise ModelLoadError(f"model {repo!r} is not in the local Hugging Face cache and {why}",
                             "download it once with network access (huggingface-cli download), or pass a local folder") from None
    except (HfHubHTTPError, OSError) as e:
        raise ModelLoadError(f"could not download {repo}: {_first_line(e)}", "check the network, the id and HF_TOKEN") from None
    sha = folder.name if folder.parent.name == "snapshots" else revision
    return folder, sha


def _load_folder(folder: Path, source: str, sha: str | None, torch_dtype, device_map, trust_remote_code: bool,
                 allow_pickle: bool, tokenizer: str | None, max_memory: dict | None, repo: str | None = None) -> Loaded:
    from transformers import AutoModelForCausalLM

    name = repo or str(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise ModelLoadError(f"{name} has no config.json", "pass a folder saved with save_pretrained, a .gguf file or a Hub id")
    try:
        cfg = json.loads(cfg_path.read_text())
    except ValueError:
        raise ModelLoadError(f"{cfg_path} is not valid JSON", "re-download or re-save the model") from None
    if cfg.get("auto_map") and not trust_remote_code:
        raise ModelLoadError(f"{name} ships its own modelling code (auto_map in config.json)",
                             "read that code, then pass --trust-remote-code to run it")
    has_safe = any(folder.glob("*.safetensors"))
    has_pickle = any(p for ext in ("*.bin", "*.pt", "*.pth") for p in folder.glob(ext))
    if not has_safe and has_pickle and not allow_pickle:
        raise ModelLoadError(f"{name} has only pickle (.bin/.pt) weights, which can run code when loaded",
                             "pass --allow-pickle if you trust this checkpoint, or use a safetensors version")
    if not has_safe and not has_pickle:
        raise ModelLoadError(f"{name} has no weight files (*.safetensors)", "check the folder or the download")
    tok = load_tokenizer(tokenizer or folder, trust_remote_code=trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), dtype=torch_dtype, device_map=device_map, max_memory=max_memory,
            trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True)
    except Exception as e:
        if type(e).__name__ == "OutOfMemoryError":
            raise ModelLoadError(f"{name} does not fit in device memory", "use --dtype bfloat16, --device-map auto with --max-memory, or a smaller model") from None
        raise ModelLoadError(f"could not load {name}: {_first_line(e)}", "check the model files and your transformers version") from None
    model.eval()
    return Loaded(model, tok, source, sha, name)


def _load_gguf(path: Path, torch_dtype, device_map, tokenizer: str | None) -> Loaded:
    from transformers import AutoModelForCausalLM, GgufConfig

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch_dtype, device_map=device_map,
                                                     quantization_config=GgufConfig(dequantize=True))
        tok = load_tokenizer(tokenizer) if tokenizer else _gguf_tokenizer(path)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"could not load GGUF {path}: {_first_line(e)}", "check the file, or use the llamacpp backend (--backend llamacpp)") from None
    model.eval()
    return Loaded(model, tok, "gguf", None, str(path))


def _gguf_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:240]
