"""`harness export --format lm-eval-task TASK...`: our tasks, with our prompt protocol, as lm-eval tasks.

For each task it writes `<task>.jsonl` (one row per problem: the protocol's user turn as `prompt`,
the gold answer as `target`) and `<task>.yaml`, an lm-eval task over that file:

- `doc_to_text: prompt`: the user turn exactly as `harness run` builds it (question, the
  protocol's suffix such as "put your final answer within \\boxed{}"; for the plain-text few-shot
  protocol the whole prompt with its examples);
- `description`: the protocol's system prompt, which lm-eval sends as the system message under
  `--apply_chat_template`; `gen_prefix`: the forced "<think>\\n" answer start of protocols that
  force thinking (lm-eval continues the assistant turn from it);
- `generation_kwargs`: our stop strings, greedy or sampled decoding and token budget; `repeats`:
  samples per problem;
- `exact_match` after lm-eval regex filters: `strict-match` takes the last `\\boxed{...}`,
  `flexible-extract` the last number. These approximate our graders (harness/scoring): numbers
  compare the same way, but symbolic math answers (math500, aime) that math-verify finds equal
  in a different form are not exact matches under lm-eval.

Chat protocols are meant to run with `--apply_chat_template` (metadata.apply_chat_template says
which). `lm_eval_config` builds the YAML mapping; `harness export --format lm-eval` reuses it as a
run's `configs` entry, so an exported run names the lm-eval task that reproduces its prompts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.errors import ConfigError

STRICT_BOXED = r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}"
LAST_NUMBER = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"  # lm-eval gsm8k's flexible-extract pattern


def lm_eval_task_name(task: str) -> str:
    """Our task's name under lm-eval: prefixed, so it never shadows lm-eval's own gsm8k or aime."""
    return "harness_" + "".join(c if c.isalnum() else "_" for c in task)


def lm_eval_config(task: str, *, protocol: dict, settings: dict, version, answer_type: str, data_path: str | None,
                   chat: bool = True) -> dict:
    """The lm-eval task config (the YAML mapping) for one of our tasks under a protocol."""
    temperature = float(settings.get("temperature") or 0.0)
    gen = {"until": list(settings.get("stop") or []), "do_sample": temperature > 0, "temperature": temperature,
           "max_gen_toks": settings.get("max_new_tokens")}
    if temperature > 0:
        gen.update(top_p=settings.get("top_p", 1.0), top_k=settings.get("top_k", 0) or None)
    config = {
        "task": lm_eval_task_name(task), "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_path}}, "test_split": "test", "output_type": "generate_until",
        "doc_to_text": "prompt", "doc_to_target": "target", "num_fewshot": 0,
        "generation_kwargs": {k: v for k, v in gen.items() if v is not None}, "repeats": int(settings.get("num_samples") or 1),
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True, "ignore_case": True,
                         "ignore_punctuation": False, "regexes_to_ignore": [",", "\\$", " "]}],
        "filter_list": [{"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": STRICT_BOXED, "group_select": -1},
                                                            {"function": "take_first"}]},
                        {"name": "flexible-extract", "filter": [{"function": "regex", "regex_pattern": LAST_NUMBER, "group_select": -1},
                                                                {"function": "take_first"}]}],
        "metadata": {"version": version, "harness_task": task, "protocol": protocol.get("name"), "answer_type": answer_type,
                     "apply_chat_template": chat},
    }
    if chat and protocol.get("system_prompt"):
        config["description"] = protocol["system_prompt"]
    if chat and protocol.get("force_think"):
        config["gen_prefix"] = "<think>\n"
    return config


def parse_data_files(values: list[str]) -> dict[str, str]:
    """--data-file TASK=PATH values as {task: path}."""
    out = {}
    for v in values:
        task, eq, path = v.partition("=")
        if not eq or not task.strip() or not path.strip():
            raise ConfigError(f"--data-file expects TASK=PATH, got {v!r}", "e.g. --data-file gsm8k=data/gsm8k.jsonl")
        out[task.strip()] = path.strip()
    return out


def export_tasks(tasks: list[str], output_dir: Path, *, data_files: dict[str, str] | None = None, protocol: str | None = None,
                 model: str = "", limit: int | None = None, max_new_tokens: int | None = None) -> list[Path]:
    """Write <task>.jsonl and <task>.yaml for each task into output_dir; returns the YAML paths."""
    import yaml

    from harness import protocols
    from harness.config import make_config
    from harness.planning.plan import make_plan

    cfg = make_config(model=model or "fake:echo", tasks=tuple(tasks), data_files=dict(data_files or {}), protocol=protocol or "plain",
                      limit=limit, max_new_tokens=max_new_tokens)
    plan = make_plan(cfg)
    proto = plan.protocol
    out = Path(output_dir).expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {out} ({e.strerror or e})", "pass --output to a writable folder") from None
    written = []
    for name, tp in plan.tasks.items():
        rows = []
        for item in tp.items:
            messages, _prefill = protocols.build(proto, tp.task, item)
            system = [m for m in messages if m["role"] == "system"]
            turns = [m for m in messages if m["role"] != "system"]
            if len(turns) != 1:
                raise ConfigError(f"protocol {proto.name} puts {len(turns)} turns in a prompt (chat few-shot); an lm-eval task has one",
                                  "export with a zero-shot chat protocol or the plain-text fewshot protocol")
            if system and system[0]["content"] != (proto.system_prompt or ""):
                raise ConfigError(f"protocol {proto.name} builds a per-item system prompt", "export with another protocol")
            rows.append({"id": item.id, "prompt": turns[0]["content"], "target": item.target, "choices": list(item.choices)})
        stem = lm_eval_task_name(name)
        data = out / f"{stem}.jsonl"
        settings = {**tp.settings, "stop": list(tp.sampling.stop)}
        config = lm_eval_config(name, protocol=protocols.describe(proto), settings=settings, version=tp.task.version,
                                answer_type=tp.task.answer_type, data_path=str(data), chat=proto.chat)
        header = (f"# {name} with the harness's '{proto.name}' prompt protocol, written by `harness export --format lm-eval-task`.\n"
                  f"# Run: lm_eval --model hf --model_args pretrained=MODEL --tasks {stem} --include_path {out}"
                  f"{' --apply_chat_template' if proto.chat else ''}\n")
        _write(data, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        _write(out / f"{stem}.yaml", header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        written.append(out / f"{stem}.yaml")
    return written


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a failed export leaves no half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path} ({e.strerror or e})", "pass --output to a writable folder") from None
