"""A local model's default prompt protocol comes from its own files (metadata, chat template), never
from its file or folder name: the same weights under any name get the same prompt."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from harness.model_family import model_facts, model_protocol

QWEN_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
R1_TEMPLATE = "{% for m in messages %}<｜User｜>{{ m.content }}{% endfor %}<｜Assistant｜><think>\n"


def _gguf(path: Path, meta: dict[str, str]) -> Path:
    """A GGUF v3 header with string metadata and no tensors (enough for the header reader)."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b"".join(s(k) + struct.pack("<I", 8) + s(v) for k, v in meta.items())
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)) + body + b"\0" * 32)
    return path


def _folder(path: Path, model_type: str, template: str | None, **config) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type, **config}))
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": template} if template else {}))
    return path


@pytest.mark.parametrize("name", ["model.gguf", "qwen2.5-7b-instruct.gguf", "llama-base.gguf"])
def test_gguf_protocol_follows_metadata_not_file_name(tmp_path, name):
    path = _gguf(tmp_path / name, {"general.architecture": "qwen2", "general.name": "Qwen2.5 Coder 0.5B Instruct",
                                   "tokenizer.chat_template": QWEN_TEMPLATE})
    protocol, why = model_protocol(str(path))
    assert protocol == "qwen" and "general.name" in why
    bare = _gguf(tmp_path / f"x-{name}", {"general.architecture": "llama"})  # no name, no template: a base model
    assert model_protocol(str(bare))[0] == "fewshot"


@pytest.mark.parametrize("folder, model_type, template, want", [
    ("model", "qwen2", QWEN_TEMPLATE, "qwen"),
    ("Qwen2.5-7B-Instruct", "llama", None, "fewshot"),  # the name says Qwen instruct; the files say a base llama
    ("whatever", "qwen2", R1_TEMPLATE, "r1"),  # an R1 distill: Qwen2 architecture, a template that opens <think>
    ("x", "qwen3", QWEN_TEMPLATE, "qwen3-think"),
    ("smol", "llama", QWEN_TEMPLATE, "plain"),
])
def test_folder_protocol_follows_architecture_and_template(tmp_path, folder, model_type, template, want):
    assert model_protocol(str(_folder(tmp_path / folder, model_type, template)))[0] == want


def test_folder_name_from_metadata(tmp_path):
    named = _folder(tmp_path / "m", "qwen2", QWEN_TEMPLATE, _model_name_or_path="DeepSeek R1 Distill Qwen 1.5B")
    assert model_protocol(str(named))[0] == "r1"
    hub = _folder(tmp_path / "h", "llama", QWEN_TEMPLATE, _name_or_path="deepseek-ai/DeepSeek-R1-Distill-Llama-8B")
    assert model_protocol(str(hub))[0] == "r1"
    assert model_facts("Qwen/Qwen2.5-0.5B-Instruct") is None  # a hub id is left to the name rules


def test_plan_uses_the_files_for_a_local_model(tmp_path):
    from harness.config import RunConfig
    from harness.planning.plan import choose_protocol

    folder = _folder(tmp_path / "plain-name", "qwen2", QWEN_TEMPLATE)
    protocol, source = choose_protocol(RunConfig(model=str(folder), tasks=["gsm8k"]), None)
    assert protocol.name == "qwen" and "the model's files" in source


def test_real_qwen_gguf_and_its_bf16_folder_get_one_protocol(tmp_path):
    cache = Path(os.environ.get("HARNESS_TEST_MODELS", Path.home() / ".cache" / "cnllm-test-models"))
    gguf, folder = cache / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", cache / "qwen2.5-coder-0.5b-instruct-bf16"
    if not gguf.is_file() or not (folder / "config.json").is_file():
        pytest.skip("the real Qwen GGUF and bf16 folder are absent (../shared/models/get.sh qwen-coder-hf)")
    renamed = tmp_path / "model.gguf"
    renamed.symlink_to(gguf)
    assert model_protocol(str(renamed))[0] == model_protocol(str(folder))[0] == model_protocol(str(gguf))[0] == "qwen"
