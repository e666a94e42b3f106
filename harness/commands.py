"""The commands other than `run`: each parses nothing (cli.py did) and calls one module."""

from __future__ import annotations

import sys
from pathlib import Path


def cmd_list(args) -> int:
    from harness import registry

    what = args.what
    if what in ("all", "tasks"):
        print("tasks:")
        for name, entry in registry.entries("tasks").items():
            try:
                task = entry.load()()
                desc = f"{task.describe()} [{task.answer_type}]"
            except Exception as e:  # a broken plugin must not hide the others
                desc = f"(failed to load: {e})"
            print(f"  {name:<15} {desc}{_provided(entry)}")
        print("  lm_eval:<task>  any lm-evaluation-harness generate-until task")
    if what in ("all", "models"):
        from harness.backends.models import random_config, random_names

        print("random models (real architecture configs, random weights, local tokenizer):")
        for name in random_names():
            cfg = random_config(name)
            print(f"  random:{name:<28} {cfg.get('_hf_id') or 'tiny smoke-test Qwen2'}  [{cfg.get('_status', '')}]")
        print("also: a Hub id (org/name), a local folder, a .gguf file, openai:<model> with --base-url")
    if what in ("all", "backends"):
        print("backends (options: --backend-option KEY=VALUE):")
        for name, entry in registry.entries("backends").items():
            try:
                cls = entry.load()
            except Exception as e:  # a broken plugin must not hide the others
                print(f"  {name:<13} (failed to load: {e}){_provided(entry)}")
                continue
            print(f"  {name:<13} {cls.install}{_provided(entry)}")
            for key, field in cls.Options.model_fields.items():
                print(f"      {key:<22} {field.description or ''}")
    if what in ("all", "protocols"):
        from harness.protocols import PROTOCOLS

        print("prompt protocols:")
        for p in PROTOCOLS.values():
            print(f"  {p.name:<14} system={'yes' if p.system_prompt else 'no'} force_think={p.force_think} fewshot={p.fewshot} chat={p.chat}")
    if what in ("all", "devices"):
        from harness.runtime.device import inventory

        print("devices:")
        for row in inventory():
            print(f"  {row['device']:<8} {'available' if row['available'] else 'absent':<10} {row['name']}")
    if what == "cards":
        return cmd_cards(args)
    if what == "prices":
        from harness.measure.cost import price_lines

        print("\n".join(price_lines()))
    return 0


def _provided(entry) -> str:
    return "" if entry.provider == "builtin" else f"  (from {entry.provider} {entry.version or ''})".rstrip()


def cmd_env(args) -> int:
    import platform

    import torch

    from harness import __version__
    from harness.measure.bandwidth import bandwidth_record, measure_bandwidth, published_peak
    from harness.measure.energy import EnergyMeter
    from harness.runtime.device import inventory, resolve

    print(f"harness {__version__}, python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}")
    for row in inventory():
        if row["available"]:
            print(f"device {row['device']}: {row['name']}")
    dev = resolve("auto", "auto")
    print(f"auto picks: {dev.torch_device} ({dev.device_reason}); dtype {dev.dtype} ({dev.dtype_reason})")
    bw = bandwidth_record(f"{dev.type}:{dev.name}", lambda: measure_bandwidth(dev.torch_device),
                          remeasure=True if getattr(args, "remeasure_bandwidth", False) else None)
    peak = published_peak(dev.name)
    print(f"memory bandwidth ({dev.torch_device}): {bw['gbps']:.1f} GB/s, bytes read + written ({bw['source']})")
    shown = "unknown" if peak["gbps"] is None else f"{peak['gbps']:g} GB/s"
    print(f"published peak bandwidth: {shown} ({peak['source']})")
    meter = EnergyMeter(dev.type, [dev.index] if dev.index is not None else None).start()
    print(f"energy counter: {meter.stop()['energy_source']}")
    return 0


def cmd_cards(args) -> int:
    import os

    from harness.cards.loader import validate_all

    if getattr(args, "dir", None):
        os.environ["HARNESS_CARDS_DIR"] = args.dir
    if getattr(args, "markdown", False):
        from harness.cards.loader import list_cards
        from harness.planning.preview import claims_table

        sys.stdout.write(claims_table(list_cards()))
        return 0
    if getattr(args, "name", None):
        from harness.cards.loader import find_card
        from harness.planning.preflight import card_cost
        from harness.planning.preview import render_card

        card = find_card(args.name)
        print(render_card(card, card_cost(card)))
        return 0
    bad = 0
    for path, err in validate_all():
        if err is None and path.stem.startswith("_"):  # the template validates too, but it is not a card
            print(f"ok    ({path.name}: the template, every field explained; not a card)")
            continue
        if err is None:
            from harness.cards.loader import load_card

            c = load_card(path)
            claims = len(getattr(c, "claims", []) or [])
            print(f"ok    {path.stem:<28} {getattr(c, 'hub_id', None) or (c.api.model if c.api else '')}  ({claims} claims)")
        else:
            bad += 1
            print(f"FAIL  {err}")
    if bad:
        print(f"error: {bad} card(s) failed validation", file=sys.stderr)
        return 2
    return 0


def cmd_bench(args) -> int:
    if args.train:
        from harness.training.bench import run_train_bench

        return run_train_bench(args)
    train_only = ("layers", "seq_len", "micro_batch", "output_dir", "price_per_hour", "max_seconds")
    given = [f"--{k.replace('_', '-')}" for k in train_only if getattr(args, k) is not None]
    if given:
        from harness.errors import ConfigError

        raise ConfigError(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --train", "add --train, or drop them")
    from harness.orchestration.bench import run_bench

    return run_bench(args)


def cmd_report(args) -> int:
    run_dir = Path(args.run_dir)
    if (run_dir / "train.json").exists():  # a `harness bench --train` folder
        from harness.training.bench import load_result
        from harness.training.report import write_reports as write_train_reports

        for p in write_train_reports(run_dir, load_result(run_dir), with_result=False):
            print(p)
        return 0
    if (run_dir / "budgets.json").exists():  # a --think-budgets folder: the curve, then each run's report
        from harness.orchestration.budgets import write_curve

        runs = sorted(p.parent for p in run_dir.glob("*/run.json"))
        print(write_curve(run_dir, runs))
    else:
        runs = [run_dir]
    from harness.reports.markdown import write_reports

    for d in runs:
        for p in write_reports(d):
            print(p)
    return 0


def cmd_compare(args) -> int:
    from harness.load.folder import is_load_folder

    if any(is_load_folder(d) for d in args.run_dirs):  # load folders (harness load) have their own comparison
        from harness.load.compare import cmd_compare_loads

        return cmd_compare_loads(args.run_dirs, args.output_dir)
    from harness.reports.compare import compare

    out = compare([Path(d) for d in args.run_dirs], Path(args.output_dir), verdicts=getattr(args, "verdicts", "strict"))
    print(f"wrote {args.output_dir}: {', '.join(sorted(out.get('files', [])))}" if isinstance(out, dict) else out)
    return 0


def cmd_load(args) -> int:
    from harness.load.cli import cmd_load

    return cmd_load(args)


def cmd_diff(args) -> int:
    from harness.diff import cmd_diff as run_diff

    return run_diff(args)


def cmd_claims(args) -> int:
    from harness.errors import ConfigError

    if args.training:
        from harness.training.check import run_training_claims

        rc = run_training_claims(args.price_per_hour, args.output_dir)
        if not args.run_dirs:
            return rc
    elif args.price_per_hour is not None:
        raise ConfigError("--price-per-hour goes with --training", "e.g. harness claims --training --price-per-hour 2.5")
    if not args.run_dirs:
        raise ConfigError("claims needs run folders, or --training", "pass folders written by `harness run`, or `harness claims --training`")
    from harness.reports.claims import check_claims

    return check_claims([Path(d) for d in args.run_dirs], output_dir=Path(args.output_dir or "claims"),
                        verdicts=getattr(args, "verdicts", "strict"))


def cmd_export(args) -> int:
    from harness.errors import ConfigError

    if args.format == "lm-eval-task":
        from harness.lmeval.taskexport import export_tasks, parse_data_files

        for path in export_tasks(list(args.targets), Path(args.output or "lm_eval_tasks"), data_files=parse_data_files(args.data_file),
                                 protocol=args.protocol, limit=args.limit, max_new_tokens=args.max_new_tokens):
            print(path)
        return 0
    from harness.lmeval.export import export_results

    used = [flag for flag, value in (("--data-file", args.data_file), ("--protocol", args.protocol), ("--limit", args.limit),
                                     ("--max-new-tokens", args.max_new_tokens)) if value]
    if len(args.targets) != 1 or used:
        raise ConfigError("--format lm-eval exports one run folder" + (f" and takes no {', '.join(used)}" if used else ""),
                          "harness export --format lm-eval RUN_DIR [--output FILE]; task options belong to --format lm-eval-task")
    print(export_results(Path(args.targets[0]), Path(args.output) if args.output else None))
    return 0
