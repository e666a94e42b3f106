"""split_thinking and prompt_opens_think edge cases."""

from __future__ import annotations

import pytest

from harness.scoring.thinking import Split, prompt_opens_think, split_thinking


@pytest.mark.parametrize("output,opened,expected", [
    # the model wrote both tags
    ("<think>\nreason\n</think>\n\nThe answer is 4.", False, Split("reason", "The answer is 4.", True)),
    # the template opened the trace (R1 distills): only the closing tag appears
    ("reason about it\n</think>\n\n\\boxed{4}", True, Split("reason about it", "\\boxed{4}", True)),
    # a closing tag is honoured even when the caller did not know the prompt opened it
    ("reason\n</think>\nanswer", False, Split("reason", "answer", True)),
    # the model opens its own tag although the template already did
    ("<think>\nreason\n</think>answer", True, Split("reason", "answer", True)),
    # split at the LAST closing tag: traces sometimes quote the tag
    ("I should write </think> then answer. ok\n</think>\nfinal", True,
     Split("I should write </think> then answer. ok", "final", True)),
    # never closed: no answer, whatever was boxed inside
    ("reason \\boxed{4} and then", True, Split("reason \\boxed{4} and then", "", False)),
    ("<think>\nreason \\boxed{4}", False, Split("reason \\boxed{4}", "", False)),
    ("Sure. <think>reason", False, Split("reason", "", False)),
    # no tags at all: a plain chat model; everything is the answer
    ("  The answer is 4.\n", False, Split("", "The answer is 4.", True)),
    # Qwen3 with thinking switched off writes an empty trace
    ("<think>\n\n</think>\n\nThe answer is 4.", False, Split("", "The answer is 4.", True)),
    ("", False, Split("", "", True)),
    ("", True, Split("", "", False)),
    ("</think>", True, Split("", "", True)),
])
def test_split(output, opened, expected):
    assert split_thinking(output, prompt_opened=opened) == expected


def test_reasoning_returned_separately():
    s = split_thinking("  \\boxed{4}\n", reasoning_text="  2 plus 2  ")
    assert s == Split("2 plus 2", "\\boxed{4}", True)
    # an API that returned a trace but no content was cut off while thinking
    assert split_thinking("", reasoning_text="still thinking about").closed is False
    # no trace at all (reasoning switched off) is an ordinary complete answer
    assert split_thinking("4", reasoning_text="") == Split("", "4", True)
    # a server that returned an empty trace but left the tags in the content
    assert split_thinking("<think>r</think>4", reasoning_text="") == Split("r", "4", True)


def test_split_is_fast_on_huge_output():
    big = "wait, " * 200_000 + "</think>" + "4"
    assert split_thinking(big, prompt_opened=True).answer == "4"


@pytest.mark.parametrize("prompt,opened", [
    ("<｜User｜>What is 2+2?<｜Assistant｜><think>\n", True),
    ("<|im_start|>assistant\n<think>", True),
    ("<|im_start|>assistant\n<think>\n  \n", True),
    ("<|im_start|>assistant\n<think>\n\n</think>\n\n", False),  # Qwen3 enable_thinking=False
    ("<|im_start|>assistant\n", False),
    ("Explain what <think> tags are.\nAnswer:", False),
    ("", False),
])
def test_prompt_opens_think(prompt, opened):
    assert prompt_opens_think(prompt) is opened


@pytest.mark.parametrize("output,opened,closed,answer", [
    # a trace that quotes the tag inline and is then cut off never closed
    ("I will write </think> and then the answer \\boxed{4}, but first", True, False, ""),
    ("the template uses `</think>` there; so \\boxed{4}", True, False, ""),
    ("he said \"</think>\" once", True, False, ""),
    # a stray repeat of the tag after the answer is dropped, not taken as the split
    ("r\n</think>\n\nThe answer is 4.\n</think>", True, True, "The answer is 4."),
    ("<think>r</think>\n\\boxed{4}</think>", False, True, "\\boxed{4}"),
    # the first tag standing on a line ends the trace, even after an inline quote
    ("quote </think> here\n</think>\n4", True, True, "4"),
    # glued tags (no spaces or quotes around them) still close
    ("reason.</think>4", True, True, "4"),
])
def test_which_closing_tag_ends_the_trace(output, opened, closed, answer):
    s = split_thinking(output, prompt_opened=opened)
    assert (s.closed, s.answer) == (closed, answer)
    if closed:
        assert output[s.close_at:].startswith("</think>")
