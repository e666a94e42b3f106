"""Decoding defaults and the settings that define a decoding protocol, in one place.

Every engine reads a `harness.core.types.Sampling`; every default budget and the list of settings
compared between a run and a claim (or two runs) come from here.
"""

from __future__ import annotations

DEFAULT_MAX_NEW_TOKENS = 1024  # a task's budget when neither the task, the card nor a flag sets one
RANDOM_MAX_NEW_TOKENS = 64  # random weights never stop early: a smaller cap keeps the quickstart under a minute
WARMUP_TOKENS = 8  # each untimed warm-up generation is cut to this many tokens

# The decoding numbers that change what a model outputs (temperature 0 = greedy). Compared between a run and a
# claim, and between two runs, by every comparison (claims, comparative claims, `harness compare`).
DECODING_SETTINGS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty")
# What else defines a protocol: the prompt and the budget.
PROTOCOL_SETTINGS = ("protocol", "system_prompt", "force_think", *DECODING_SETTINGS, "max_new_tokens", "num_samples")
