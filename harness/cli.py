"""Command line: parses flags into a config and hands it to the module that does the work.

Start-up imports nothing heavy (no torch, transformers or pydantic) so `harness --help` is
instant; each command imports what it needs. Every user error ends in one `error:` line.
"""

from __future__ import annotations

import argparse
import os
import sys

from harness import __version__
from harness.flags import PAIR_EXAMPLES, RUN_EXAMPLES, RUN_FLAGS, SWITCH_HELP, SWITCHES


class _DefaultsHelp(argparse.RawDescriptionHelpFormatter):
    """Shows each run flag's default from RunConfig (imported only when help is printed)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or "default" in text or action.dest in ("help", "config", "dry_run"):
            return text
        from harness.config import RunConfig

        field = RunConfig.model_fields.get(action.dest)
        if field is None or action.const is True:
            return text
        default = field.get_default(call_default_factory=True)
        if default in (None, {}, ()):
            default = "none" if default is None else "none given"
        elif isinstance(default, tuple):
            default = ",".join(map(str, default))
        return f"{text} (default: {default})".strip()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error also ends in one `error:` line naming the fix, and flags are never
    abbreviated: `--api-key sk-...` must fail, not be taken as `--api-key-env` and stored."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str):
        """One line on stderr (no usage block: docs/bad-input.md promises one line), exit 2. Every
        subparser is a _Parser too (add_subparsers passes parser_class), so this holds for all."""
        from harness.errors import one_line

        self.exit(2, f"error: {one_line(message)} — see `{self.prog} --help`\n")


def _run_flags(run: argparse.ArgumentParser) -> None:
    for flag, (_, typ, help_) in RUN_FLAGS.items():
        run.add_argument(flag, type=typ, default=None, help=help_)
    run.add_argument("--data-file", action="append", default=[], metavar="TASK=PATH", help="read a task's rows from a local JSONL file")
    run.add_argument("--task-option", action="append", default=[], metavar="TASK.KEY=VALUE", help="a task option, e.g. ceval.subject=physics")
    run.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE",
                     help="an option the backend declares (see `harness list backends`), e.g. n_ctx=4096")
    run.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    run.add_argument("--max-memory", action="append", default=[], metavar="DEVICE=SIZE", help="with --device-map: e.g. 0=20GiB cpu=64GiB")
    for flag in SWITCHES:
        run.add_argument(flag, action="store_true", default=None, help=SWITCH_HELP[flag])
    run.add_argument("--config", help="YAML/JSON file of run settings (flags override it; keys as in config.json, e.g. max_new_tokens)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="harness", description="Benchmark open-weight LLMs on your own hardware: accuracy with "
                                "intervals, latency, throughput, memory, energy, cost, and verdicts on published claims.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run tasks on a model and write a results folder", epilog=RUN_EXAMPLES, formatter_class=_DefaultsHelp)
    _run_flags(run)
    run.add_argument("--dry-run", action="store_true", help="print the plan (requests, tokens, memory, time, dollars) and stop")
    plan = sub.add_parser("plan", help="what a run would do, need and cost; loads nothing (= run --dry-run)",
                          epilog=RUN_EXAMPLES.replace("harness run --dry-run", "harness plan"), formatter_class=_DefaultsHelp)
    _run_flags(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON for scripts (time.expected_s, time.range_s, cost.usd, device.name, ...)")
    plan.add_argument("--target", metavar="DEVICE", help="plan for a device this machine need not have, from its published memory, "
                      "bandwidth and compute: h100-sxm, h100-pcie, h200, a100-80gb, a100-40gb, a10g, l4, rtx-4090, ascend-910b "
                      "(default: this machine)")
    plan.add_argument("--calibrate", action="store_true", help="measure this machine first (about a minute: imports, a smoke run, "
                      "generation of random models in each dtype, the CPU dtype of this architecture) and cache it")

    from harness.precision.command import PRECISION_EXAMPLES, add_flags

    prec = sub.add_parser("precision", help="a precision matrix: bf16, q8_0, q4_k_m, ... on the same items, paired against a reference",
                          epilog=PRECISION_EXAMPLES, formatter_class=_DefaultsHelp)
    _run_flags(prec)
    add_flags(prec)

    ls = sub.add_parser("list", help="list tasks, models, backends, devices, protocols, cards or prices")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "tasks", "models", "backends", "devices", "protocols", "cards", "prices"])
    env = sub.add_parser("env", help="what this machine has: devices, memory bandwidth, energy counters, versions")
    env.add_argument("--remeasure-bandwidth", action="store_true",
                     help="measure the memory bandwidth again instead of using the cached value")
    cards = sub.add_parser("cards", help="list and validate the model cards, or show one: model, protocol, claims, cost here")
    cards.add_argument("name", nargs="?", help="a card to show (file name, Hub id or display name)")
    cards.add_argument("--markdown", action="store_true", help="print every card's claims as the table in docs/claims.md")
    cards.add_argument("--dir", help="cards folder (default: model_cards/)")

    bench = sub.add_parser("bench", help="performance sweep: batch sizes x prompt lengths x output lengths", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    bench.add_argument("--model", default="random:tiny", help="the model, as for `harness run`")
    bench.add_argument("--backend", default="auto", help="transformers | vllm | llamacpp | openai (auto: from --model)")
    bench.add_argument("--batch-sizes", default="1,4", help="comma-separated batch sizes, one cell each")
    bench.add_argument("--prompt-tokens", default="128", help="comma-separated prompt lengths in tokens")
    bench.add_argument("--output-tokens", default="64", help="comma-separated output lengths in tokens")
    bench.add_argument("--iterations", type=int, default=3, help="timed repeats per cell (their spread is reported)")
    bench.add_argument("--warmup", type=int, default=1, help="untimed warm-up generations per cell")
    bench.add_argument("--cell-budget-s", type=float, default=60.0,
                       help="a cell stops repeating (after at least one timed iteration) once its iterations took this long")
    bench.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] | mps | xpu | npu")
    bench.add_argument("--dtype", default="auto", help="auto | bfloat16 | float16 | float32")
    bench.add_argument("--batching", default="auto", help="auto | static | continuous (see `harness run --help`)")
    bench.add_argument("--compile", default="auto", help="auto | on | off: compiled decoding (transformers on CUDA)")
    bench.add_argument("--tokenizer", help="tokenizer folder (default: the model's own)")
    bench.add_argument("--output", help="write the JSON here (default: printed)")
    bench.add_argument("--force", action="store_true", help="start even when the memory estimate exceeds what is available")
    bench.add_argument("--train", action="store_true", help="time training steps (forward + backward + AdamW) of a random: model instead")
    bench.add_argument("--layers", type=int, help="with --train: override the number of layers (stated in the output)")
    bench.add_argument("--seq-len", type=int, help="with --train: tokens per sequence (default 128)")
    bench.add_argument("--micro-batch", type=int, help="with --train: sequences per step (default 2)")
    bench.add_argument("--output-dir", help="with --train: where the result folder goes (default results/)")
    bench.add_argument("--price-per-hour", type=float, help="with --train: USD per hour of this device, for the projection")
    bench.add_argument("--max-seconds", type=float, help="with --train: stop timing steps after this long (default 20; at least one step)")

    rep = sub.add_parser("report", help="write report.md and report.html for a run folder")
    rep.add_argument("run_dir")
    cmp_ = sub.add_parser("compare", help="compare runs: table, plots, Pareto frontier, paired tests")
    cmp_.add_argument("run_dirs", nargs="+")
    cmp_.add_argument("--output-dir", default="comparison")
    cmp_.add_argument("--verdicts", default="strict", choices=["strict", "indicative"],
                      help="indicative: also give a verdict on pairs that are not comparable, marked indicative")
    df = sub.add_parser("diff", help="compare two runs of the same items sample by sample (identical outputs, divergences, flips)")
    df.add_argument("run_a")
    df.add_argument("run_b")
    df.add_argument("--output-dir", help="where diff.json and diff.html go (default: beside RUN_A, diff_<A>__<B>)")
    df.add_argument("--reference-model", help="a Hugging Face folder that re-scores divergence points (default: a run's model when it is one)")
    df.add_argument("--reference-dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="dtype of the re-scoring model")
    df.add_argument("--near-tie", type=float, default=0.5, help="nats: a divergence whose two tokens are this close is a near-tie")
    df.add_argument("--no-rescore", action="store_true", help="do not load a model to re-score divergences (margins unknown)")
    cl = sub.add_parser("claims", help="check comparative and cost claims across runs, and training-cost claims")
    cl.add_argument("run_dirs", nargs="*")
    cl.add_argument("--output-dir", default=None, help="where claims.json and claims.md go (default claims/)")
    cl.add_argument("--training", action="store_true", help="check the cards' training-cost claims (GPU-hours, dollars, implied MFU)")
    cl.add_argument("--price-per-hour", type=float, default=None, help="with --training: your USD per GPU-hour")
    cl.add_argument("--verdicts", default="strict", choices=["strict", "indicative"],
                    help="indicative: also give a verdict on claims the runs cannot support, marked indicative")
    from harness.load.cli import add_parser as add_load_parser  # argparse only: start-up stays light

    add_load_parser(sub)
    ex = sub.add_parser("export", help="export a run (lm-eval results) or our tasks (lm-eval task YAML + data) in lm-eval's format")
    ex.add_argument("targets", nargs="+", metavar="RUN_DIR|TASK", help="a run folder (--format lm-eval) or task names (--format lm-eval-task)")
    ex.add_argument("--format", default="lm-eval", choices=["lm-eval", "lm-eval-task"])
    ex.add_argument("--output", help="lm-eval: the results JSON (default RUN_DIR/results_<date>.json, as lm-eval names it); "
                                     "lm-eval-task: the folder for YAML and data (default lm_eval_tasks)")
    ex.add_argument("--data-file", action="append", default=[], metavar="TASK=PATH", help="lm-eval-task: read a task's rows from a local JSONL file")
    ex.add_argument("--protocol", help="lm-eval-task: the prompt protocol to write into the tasks (default plain)")
    ex.add_argument("--limit", type=int, help="lm-eval-task: only the first N problems")
    ex.add_argument("--max-new-tokens", type=int, help="lm-eval-task: the token budget written as max_gen_toks")
    return p


def _split_pairs(values: list[str], flag: str, sep: str = "=") -> dict[str, str]:
    from harness.errors import ConfigError

    out = {}
    for v in values:
        key, eq, val = v.partition(sep)
        if not eq or not key or not val:
            raise ConfigError(f"{flag} expects KEY{sep}VALUE, got {v!r}", f"e.g. {flag} {PAIR_EXAMPLES.get(flag, 'KEY=VALUE')}")
        out[key.strip()] = val.strip()
    return out


def run_values(args: argparse.Namespace) -> dict:
    """The settings the user gave explicitly (flags and --config), as config keys."""
    from harness.errors import ConfigError

    values = {}
    if args.config:
        from harness.config import load_config_file

        values = load_config_file(args.config)
    force = values.pop("force", None)  # `force` is a flag for this invocation, never stored with the run
    from_file = set(values)
    for _flag, (key, _, _) in RUN_FLAGS.items():
        v = getattr(args, key)
        if v is not None:
            values[key] = v
            from_file.discard(key)
    if from_file:
        values["from_config"] = tuple(sorted(from_file))
    for _flag, key in SWITCHES.items():
        if getattr(args, key):
            values[key] = True
    if force or values.get("force"):
        values["force"] = True
    if isinstance(values.get("tasks"), str):
        values["tasks"] = [t.strip() for t in values["tasks"].split(",") if t.strip()]
    if isinstance(values.get("think_budgets"), str):
        try:
            values["think_budgets"] = [int(x) for x in values["think_budgets"].split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--think-budgets must be comma-separated integers, got {values['think_budgets']!r}", "e.g. --think-budgets 512,1024") from None
    if isinstance(values.get("batch_size"), str) and values["batch_size"] != "auto":
        try:
            values["batch_size"] = int(values["batch_size"])
        except ValueError:
            raise ConfigError(f"--batch-size must be a positive integer or auto, got {values['batch_size']!r}", "e.g. --batch-size 8") from None
    if args.data_file:
        values["data_files"] = {**values.get("data_files", {}), **_split_pairs(args.data_file, "--data-file")}
        if "tasks" not in values:
            values["tasks"] = list(values["data_files"])
    if args.stop:
        values["stop"] = list(args.stop)
    if args.max_memory:
        values["max_memory"] = _split_pairs(args.max_memory, "--max-memory")
    if args.backend_option:
        given = {k: _scalar(v) for k, v in _split_pairs(args.backend_option, "--backend-option").items()}
        values["backend_options"] = {**values.get("backend_options", {}), **given}
    for opt in args.task_option:
        key, val = next(iter(_split_pairs([opt], "--task-option").items()))
        task, dot, name = key.partition(".")
        if not dot:
            raise ConfigError(f"--task-option expects TASK.KEY=VALUE, got {opt!r}", "e.g. --task-option synthetic.steps=4")
        values.setdefault("task_options", {}).setdefault(task, {})[name] = _scalar(val)
    return values


def _finished(values: dict) -> bool:
    """`--resume` of a run that is already complete: say so and touch nothing (True), once its settings and
    data are checked unchanged (a changed data file is refused as on any resume); `--output-dir` with
    `--resume` is refused (results/rundir.finished_run)."""
    from harness.results.rundir import finished_run

    message = finished_run(str(values["resume"]), values.get("output_dir"))
    if message:
        from harness.config import RETIRED_KEYS, make_config
        from harness.orchestration.pipeline import card_of
        from harness.planning.plan import make_plan
        from harness.results.rundir import check_resume
        from harness.results.store import read_config

        stored = {k: v for k, v in read_config(values["resume"]).items() if not k.startswith("_") and k not in RETIRED_KEYS and k != "force"}
        cfg = make_config(**{**stored, **values})
        if not cfg.think_budgets:
            check_resume(cfg, make_plan(cfg, card_of(cfg)))  # reads only: changed settings or data rows are refused
        print(message)
    return message is not None


def _scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def cmd_run(args, argv) -> int:
    from harness.planning.card_run import card_model
    from harness.planning.preflight import check_inputs

    values = run_values(args)
    planning = args.command == "plan" or getattr(args, "dry_run", False)
    check_inputs(values, loading=not planning)  # mistakes that need no torch, reported in well under a second
    values = card_model(values)
    from harness.config import make_config

    if planning:
        from harness.planning.preflight import print_plan

        return print_plan(make_config(**values), as_json=getattr(args, "json", False), target=getattr(args, "target", None),
                          calibrate=getattr(args, "calibrate", False))
    if values.get("resume") and not set(values) - {"resume", "quiet", "force", "output_dir"}:  # settings given: check_resume compares them
        if _finished(values):
            return 0
    if values.get("resume") and values.get("output_dir"):
        _finished({"resume": values["resume"], "output_dir": values["output_dir"]})  # refuses the pair
    if values.get("num_processes", 1) > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from harness.runtime.launch import relaunch

        return relaunch(argv, values["num_processes"])
    if values.get("resume"):
        from harness.config import RETIRED_KEYS
        from harness.results.store import read_config

        stored = {k: v for k, v in read_config(values["resume"]).items()
                  if not k.startswith("_") and k not in RETIRED_KEYS and k != "force"}  # --force is per invocation
        values = {**stored, **values}
    cfg = make_config(**values)
    if cfg.think_budgets:
        from harness.orchestration.budgets import run_budgets
        from harness.planning.preflight import plan_for
        from harness.planning.preview import render
        from harness.reports.console import summarize

        if not cfg.quiet:
            print(render(plan_for(cfg)[1]))  # the same plan a single run prints, its warnings included
        folder, *runs = run_budgets(cfg)
        for d in runs:
            summarize(d)  # status, accuracy, warnings and report paths of each budget's run
        print(f"budgets folder: {folder}\n         {folder / 'budgets.md'}\n         {folder / 'budget_curve.png'}")
        return 0
    from harness.orchestration.progress import run_with_progress

    return run_with_progress(cfg)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from harness.errors import HarnessError, Interrupted, one_line
    from harness.sanitize import clean
    from harness.secrets import RedactingStream

    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)  # a known secret is never printed
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            _unknown_flags(parser, args.command, unknown)
        if not args.command:
            parser.print_help()
            return 0
        return _dispatch(args, argv)
    except HarnessError as e:
        print(f"error: {clean(one_line(str(e)))}", file=sys.stderr)  # server text may carry escape sequences
        return e.exit_code
    except Interrupted as e:
        return 128 + e.signum
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `harness ... | head`: the reader left; nothing more to say, and no traceback at exit
        _quiet_stdout(streams[0])
        return 141
    except OSError as e:  # a read-only folder, a full disk, a path too long, met outside the run's own checks
        from harness.safeio import os_problem

        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {clean(one_line(where + os_problem(e), 300))} — check the path and free space, then retry", file=sys.stderr)
        return 2
    except Exception as e:  # an unexpected failure still ends in one line; HARNESS_DEBUG=1 shows the traceback
        if os.environ.get("HARNESS_DEBUG"):
            raise
        msg = str(e).strip().split("\n")
        print(f"error: unexpected {type(e).__name__}: {clean(one_line(msg[0], 300)) if msg else ''} (set HARNESS_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        sys.stdout, sys.stderr = streams
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            _quiet_stdout(streams[0])


def _quiet_stdout(stream) -> None:
    """Point stdout at /dev/null, so the interpreter's last flush into a closed pipe says nothing."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(args, argv) -> int:
    if args.command in ("run", "plan"):
        return cmd_run(args, argv)
    if args.command == "precision":
        from harness.precision.command import cmd_precision

        return cmd_precision(args, run_values(args))
    from harness import commands

    return getattr(commands, f"cmd_{args.command}")(args)


def _unknown_flags(parser: argparse.ArgumentParser, command: str | None, unknown: list[str]) -> None:
    """An unknown flag names the subcommand whose help lists the right ones, and the closest of them."""
    import difflib

    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    target = sub.choices.get(command, parser) if sub and command else parser
    known = [o for a in target._actions for o in a.option_strings]
    close = difflib.get_close_matches(unknown[0].split("=", 1)[0], known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    target.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")


if __name__ == "__main__":
    raise SystemExit(main())
