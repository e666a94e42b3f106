"""Build the small byte-level BPE tokenizer that `random:` models use offline.

It is trained on a built-in corpus (English and Chinese arithmetic prose, LaTeX, digits), uses
Qwen's ChatML special tokens and chat template, and splits digits one by one as Qwen2.5 does.
Run once; the output is committed under harness/data/tokenizer/. Deterministic for a given
`tokenizers` version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parents[1] / "harness" / "data" / "tokenizer"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = ["<think>", "</think>"]

CORPUS = r"""
Please reason step by step, and put your final answer within \boxed{}.
Janet has 16 apples. She gives 3 to her friend and buys 7 more. How many apples does she have now?
First, 16 - 3 = 13. Then 13 + 7 = 20. The answer is 20. #### 20
A train travels 60 miles per hour for 3 hours. How far does it travel? 60 * 3 = 180 miles.
The store sells pencils for $2 each. Tom buys 5 pencils and pays with a $20 bill. What is his change?
Let x be the number of students. Then 2x + 5 = 17, so x = 6. Therefore the final answer is \boxed{6}.
We have \frac{3}{4} + \frac{1}{4} = 1, and \sqrt{16} = 4, so the interval is [0, \infty).
The probability is \dfrac{1}{6}. The angle is 30^\circ. Evaluate \sum_{k=1}^{n} k = \frac{n(n+1)}{2}.
Question: Which of the following is correct? A) 12 B) 15 C) 18 D) 21 Answer: C
Okay, so I need to figure out how many eggs are left. Wait, let me check that again. Hmm.
小明有15个苹果，他给了小红4个，又买了8个。他现在有多少个苹果？15 - 4 = 11，11 + 8 = 19。答案是19。
妈妈带了30元，买了一条鱼，剩6元，这条鱼多少钱？30 - 6 = 24（元）。答：这条鱼24元。
一年级有84人去郊游，二年级比一年级多去8人，二年级有多少人？84 + 8 = 92（人）。
请一步一步推理，并把最终答案放在\boxed{}中。所以最终答案是 \boxed{92}。
The quick brown fox jumps over the lazy dog. Therefore, so, then, because, each, total, how many, more, less.
system user assistant You are a helpful assistant. Solve the following math problem.
"""


def build() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    tok.add_tokens(ADDED)
    return tok


CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    tok = build()
    tok.save(str(OUT / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 131072,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    (OUT / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {OUT} ({tok.get_vocab_size()} tokens)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
