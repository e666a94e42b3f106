"""Interoperability with EleutherAI's lm-evaluation-harness (lm-eval 0.4.x), four ways:

1. `harness run --tasks lm_eval:<task>`: `LMEvalTask` (task.py) turns an lm-eval task's evaluation
   docs into our Items (question = the task's `doc_to_text`, target = its `doc_to_target` cut to
   the final answer), so the task runs through our pipeline: our prompts, timings, scoring, run.json.
2. `python -m harness.lmeval --model harness --model_args model=... --tasks ...`: lm-eval's own CLI
   with our backends registered as the lm-eval model "harness" (model.py): generate_until through
   our timed generation path, loglikelihood and loglikelihood_rolling scored by the engine
   (harness/backends/logprobs.py). lm-eval 0.4.13 only knows models registered when it runs (it
   reads no plugin entry points), so this launcher imports the registration and then hands over
   to `lm_eval.__main__.cli_evaluate`.
3. `harness export --format lm-eval RUN_DIR` (export.py): a run as the results JSON and samples
   files lm-eval's CLI writes.
4. `harness export --format lm-eval-task TASK...` (taskexport.py): our tasks, with our prompt
   protocol, as lm-eval task YAML plus local data.

lm-eval is imported inside functions only: `harness export` works without it, and importing this
module costs nothing until a task is loaded.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """`python -m harness.lmeval [lm-eval arguments]`: lm-eval's CLI, with `--model harness` available."""
    from lm_eval.__main__ import cli_evaluate

    import harness.lmeval.model  # noqa: F401  (registers "harness" in lm-eval's model registry)

    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()
