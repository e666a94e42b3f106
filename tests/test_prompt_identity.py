"""The same prompt on every engine (issue 12 §6): every protocol x task rendered through the
transformers, vLLM (adapter, with the same tokenizer: vLLM itself is absent here) and llama.cpp
engines gives identical text, and identical token ids where the tokenizer is shared.

The tokenizer's template is swapped for a Qwen3-style one that reads `enable_thinking`, so an
engine that drops the protocol's template kwargs, ignores `chat`, or appends the prefill without
`join_prefill` renders differently and fails here."""

from __future__ import annotations

import pytest

from harness import protocols, registry
from harness.core.prompt import formatter_template, hf_template, render
from harness.core.types import Request, Sampling
from harness.planning.plan import load_task
from harness.tasks.base import Item

try:
    from engine_fixtures import tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.engine_fixtures import tiny_gguf, tiny_models, tiny_qwen_dir  # noqa: F401

# Qwen3's switch, reduced: with enable_thinking false the generation prompt carries an empty trace;
# an R1-style opening "<think>\n" otherwise (so join_prefill must not add a second one).
TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor -%}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)


def _items(task) -> list[Item]:
    if task.answer_type == "choice":
        return [Item("q1", "Which gas do plants take in?", "B", choices=("Oxygen", "Carbon dioxide", "Nitrogen", "Helium")),
                Item("q2", "植物吸收哪种气体？", "B", choices=("氧气", "二氧化碳", "氮气", "氦气"))]
    return [Item("q1", "Tom has 3 apples and buys 4 more. How many apples?", "7"), Item("q2", "小明有3个苹果，又买了4个。一共几个？", "7")]


def _requests() -> list[Request]:
    out = []
    for pname, protocol in protocols.PROTOCOLS.items():
        for tname in registry.entries("tasks"):
            task = load_task(tname, {})
            for item in _items(task):
                messages, prefill = protocols.build(protocol, task, item)
                out.append(Request(f"{pname}/{tname}/{item.id}", messages, Sampling(), seed=0, prefill=prefill,
                                   chat=protocol.chat, template_kwargs=tuple(sorted(protocol.template_kwargs.items()))))
    return out


REQUESTS = _requests()


@pytest.fixture(scope="module")
def tok_dir(tiny_qwen_dir, tmp_path_factory):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    tok.chat_template = TEMPLATE
    out = tmp_path_factory.mktemp("tok3")
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def engines(tok_dir, tiny_qwen_dir, tiny_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.backends.hf import TransformersBackend
    from harness.backends.vllm import VLLMBackend
    from harness.core.types import ModelInfo

    tok = AutoTokenizer.from_pretrained(tok_dir)
    hf = TransformersBackend(AutoModelForCausalLM.from_pretrained(tiny_qwen_dir), tok, ModelInfo("tiny", "transformers"), "cpu")
    vllm = object.__new__(VLLMBackend)  # the adapter's own render and prompt_ids, on the same tokenizer
    vllm._tokenizer = tok
    vllm._template = hf_template(tok)
    vllm._templated = True
    llama = None
    if pytest.importorskip("llama_cpp"):
        from harness.backends.llamacpp import LlamaCppBackend

        llama = LlamaCppBackend.from_options(str(tiny_gguf), n_ctx=2048, tokenizer=str(tok_dir))
    yield hf, vllm, llama
    llama.close()


def test_every_protocol_and_task_renders_identically_on_every_engine(engines):
    hf, vllm, llama = engines
    assert len(REQUESTS) >= len(protocols.PROTOCOLS) * 9 * 2
    kinds = set()
    for req in REQUESTS:
        text = hf.render(req)
        assert vllm.render(req) == text, req.key
        assert llama.render(req) == text, req.key
        templated = req.chat
        ids = hf.tokenizer(text, add_special_tokens=not templated).input_ids
        assert vllm.prompt_ids(req) == ids, req.key
        assert llama._prompt_tokens(llama.render(req), req.chat)[-len(ids):] == ids, req.key
        # what the protocol asked for is in the text
        if req.template_kwargs == (("enable_thinking", False),):
            kinds.add("nothink")
            assert text.endswith("<think>\n\n</think>\n\n")
        if req.prefill:
            kinds.add("prefill")
            assert text.endswith("<think>\n") and text.count("<think>") == 1  # joined, not doubled
        if not req.chat:
            kinds.add("plain")
            assert "<|im_start|>" not in text and text.startswith(("Question:", "问题："))
    assert kinds == {"nothink", "prefill", "plain"}


def test_gguf_embedded_template_gets_the_template_kwargs():
    """The llama.cpp engine's own (GGUF) template path passes the protocol's kwargs through too."""
    jinja = pytest.importorskip("llama_cpp.llama_chat_format")
    template = formatter_template(jinja.Jinja2ChatFormatter(template=TEMPLATE, eos_token="</s>", bos_token="<s>"))
    req = [r for r in REQUESTS if r.template_kwargs == (("enable_thinking", False),)][0]
    assert render(req, template).endswith("<think>\n\n</think>\n\n")
    r1 = [r for r in REQUESTS if r.prefill][0]
    assert render(r1, template).count("<think>") == 1


def test_backends_import_nothing_from_prompt_building():
    import ast
    from pathlib import Path

    import harness.backends as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "harness.protocols" and not (node.module == "harness" and
                                                                    any(a.name == "protocols" for a in node.names)), path


def test_gguf_embedded_template_renders_like_the_tokenizer_it_came_from(tiny_gguf, tiny_qwen_dir):
    pytest.importorskip("llama_cpp")
    from transformers import AutoTokenizer

    from harness.backends.llamacpp import LlamaCppBackend

    template = hf_template(AutoTokenizer.from_pretrained(tiny_qwen_dir))
    llama = LlamaCppBackend.from_options(str(tiny_gguf), n_ctx=2048)
    try:
        assert "GGUF" in " ".join(llama.info.notes)
        for req in REQUESTS:
            assert llama.render(req) == render(req, template), req.key
    finally:
        llama.close()
