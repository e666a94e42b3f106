"""cnllm-harness: benchmark open-weight Chinese LLMs on the hardware you own.

The package root stays import-light: `harness --help` must answer without importing torch.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.5"

# The layers, bottom first. A package (or top-level module) imports only from its own layer or below, and
# no two units import each other (tests/test_architecture.py enforces both; README's Layout is checked
# against this list). Each entry: the units of one layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core", "errors", "secrets", "stats", "safeio", "sanitize"),  # shared types, formulas, safe file/text helpers
    ("runtime", "tasks", "config", "results"),        # device, task data, run settings, the run folder's files
    ("registry", "protocols", "cards"),               # plugins, prompt protocols, model cards as data
    ("measure",),                                     # time, memory, energy, bandwidth, cost
    ("backends", "scoring", "model_family"),          # engines; a reply to a score; what a local model is (its files)
    ("claims", "planning"),                           # verdicts on claims; everything decided before loading
    ("reports",),                                     # what people read (renders, starts nothing)
    ("orchestration",),                               # runs: pipeline, generate, summary, budgets, bench
    ("training", "lmeval", "load", "precision", "diff"),  # training costs; lm-eval interop; serving load; precision; run diffs
    ("commands", "cli", "flags", "__main__"),         # the command line
)
