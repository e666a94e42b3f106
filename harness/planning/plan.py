"""What a run will do, decided before any model loads: tasks and their items, the prompt
protocol, decoding settings (flags over card over defaults), samples per problem, and the list
of requests with their per-sample seeds. Pure: no torch, no clock."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from harness import protocols, registry
from harness.config import RunConfig
from harness.core.generation import DEFAULT_MAX_NEW_TOKENS, RANDOM_MAX_NEW_TOKENS
from harness.core.spec import parse as parse_spec
from harness.core.types import Request, Sampling
from harness.errors import ConfigError
from harness.tasks.base import Item, Task
from harness.tasks.official import DataRecord, data_identity

SAMPLING_DEFAULTS = {"temperature": 0.6, "top_p": 0.95}  # DeepSeek-R1's settings, used when k > 1 and none given


@dataclass
class TaskPlan:
    name: str
    task: Task
    items: list[Item]
    k: int
    sampling: Sampling
    data_file: str | None
    settings: dict  # what was used, for protocol differences and run.json
    differences: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where its value came from
    data: DataRecord | None = None  # which problems ran, against the official set (harness/tasks/official.py)


@dataclass
class Plan:
    protocol: protocols.Protocol
    tasks: dict[str, TaskPlan]
    card: object | None = None
    protocol_source: str = "model name"  # where the protocol came from: --protocol, the card, served metadata, the name

    def work(self) -> list[tuple[Request, TaskPlan, Item, int]]:
        out = []
        for tp in self.tasks.values():
            for item in tp.items:
                for s in range(tp.k):
                    out.append((request_for(self.protocol, tp, item, s), tp, item, s))
        return out


def sample_seed(seed: int, task: str, item_id: str, sample: int) -> int:
    """A per-sample seed: the same sample gets the same seed whatever batch or process runs it."""
    digest = hashlib.sha256(f"{seed}/{task}/{item_id}/{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def request_for(protocol: protocols.Protocol, tp: TaskPlan, item: Item, sample: int) -> Request:
    messages, prefill = protocols.build(protocol, tp.task, item)
    return Request(key=f"{tp.name}/{item.id}/{sample}", messages=messages, sampling=tp.sampling,
                   seed=sample_seed(tp.settings["seed"], tp.name, item.id, sample), prefill=prefill, chat=protocol.chat,
                   template_kwargs=tuple(sorted(protocol.template_kwargs.items())))


def load_task(name: str, options: dict) -> Task:
    if name.startswith("lm_eval:"):
        from harness.tasks.lmeval import LMEvalTask

        return LMEvalTask(name.split(":", 1)[1], **options)
    cls = registry.get("tasks", name).load()
    return cls(**options)


def choose_protocol(cfg: RunConfig, card_protocol: str | None, served=None) -> tuple[protocols.Protocol, str]:
    """(protocol, where it came from): --protocol, else the card, else a local model's own files
    (harness/model_family.py: metadata and chat template, never the file name), else a hub id's name; for an
    OpenAI-compatible endpoint, whose model name is whatever the server calls it, the served
    model's metadata (`served()`: its path or hub id) instead of the name, else --protocol is
    required. A plain-text (few-shot) protocol is never guessed for a chat endpoint."""
    if cfg.protocol not in (None, "", "auto"):
        return protocols.resolve(cfg.protocol, cfg.model), "--protocol"
    if card_protocol:
        return protocols.resolve(card_protocol, cfg.model), "card"
    if parse_spec(cfg.model).kind != "openai":
        from harness.model_family import model_protocol  # reads a local model's own files, never its file name

        found = model_protocol(cfg.model)
        if found:
            return protocols.get(found[0]), f"the model's files ({found[1]})"
        return protocols.resolve(None, cfg.model), "model name"
    where = served() if served is not None else None
    if where:
        from harness.model_family import model_protocol

        local = model_protocol(where)  # a server on this machine names the path it loaded: read its files
        guess = protocols.get(local[0] if local else protocols.default_protocol(where))
        if guess.chat and guess.name != "plain":
            return guess, f"served model metadata ({where})"
    raise ConfigError(f"cannot tell the prompt protocol of {cfg.model}: a chat endpoint's model name"
                      + (f" and its metadata ({where})" if where else "") + " do not say which model family it is",
                      f"pass --protocol ({', '.join(p for p, v in protocols.PROTOCOLS.items() if v.chat)}) or --card")


def make_plan(cfg: RunConfig, card=None, served=None) -> Plan:
    first_defaults = _card_defaults(card, cfg.tasks[0]) if card else {}
    protocol, protocol_source = choose_protocol(cfg, first_defaults.get("protocol"), served)
    plans = {}
    for name in cfg.tasks:
        task = load_task(name, cfg.task_options.get(name, {}))
        data_file = cfg.data_files.get(name)
        items = task.load(data_file, cfg.limit)
        items, data = choose_items(cfg, name, task, items, data_file)
        d, why = card_settings(card, name) if card else ({}, {})
        pick = _Picker(why, cfg.from_config)
        k = pick("num_samples", (cfg.num_samples, "flag"), (d.get("num_samples"), "card"), (1, "default"))
        temperature = pick("temperature", (cfg.temperature, "flag"), (d.get("temperature"), "card"),
                           (SAMPLING_DEFAULTS["temperature"] if k > 1 else 0.0, "default" + (" for k > 1 (DeepSeek-R1's)" if k > 1 else ": greedy")))
        top_p = pick("top_p", (cfg.top_p, "flag"), (d.get("top_p"), "card"),
                     (SAMPLING_DEFAULTS["top_p"] if temperature > 0 else 1.0, "default"))
        top_k = pick("top_k", (cfg.top_k, "flag"), (d.get("top_k"), "card"), (0, "default: off")) or 0
        max_new = pick("max_new_tokens", (cfg.max_new_tokens, "flag"), (d.get("max_new_tokens"), "card"),
                       (task.max_new_tokens, f"task {name} default"), *_model_cap(cfg.model))
        pick.sources["protocol"] = {"--protocol": "flag --protocol", "card": f"card {card.name}" if card else "card"}.get(
            protocol_source, f"default for {cfg.model} (by {protocol_source})")
        sampling = Sampling(max_new_tokens=max_new, temperature=temperature, top_p=top_p, top_k=top_k,
                            stop=tuple(cfg.stop) + tuple(protocol.stop) + tuple(task.stop))
        settings = {"protocol": protocol.name, "temperature": temperature, "top_p": top_p, "top_k": top_k, "max_new_tokens": max_new,
                    "min_p": sampling.min_p, "presence_penalty": sampling.presence_penalty, "repetition_penalty": sampling.repetition_penalty,
                    "num_samples": k, "seed": cfg.seed, "force_think": protocol.force_think, "system_prompt": protocol.system_prompt,
                    "limit": cfg.limit, "n": len(items), "n_total": data.get("n_official") or task.size}
        if cfg.sample is not None:
            settings["sample"], settings["sample_seed"] = cfg.sample, cfg.seed
        if d.get("mean_output_tokens"):
            settings["mean_output_tokens"] = d["mean_output_tokens"]
            pick.sources["mean_output_tokens"] = f"card {card.name}"
        plans[name] = TaskPlan(name, task, items, k, sampling, data_file, settings, sources=pick.sources, data=data)
    return Plan(protocol, plans, card, protocol_source)


def choose_items(cfg: RunConfig, name: str, task: Task, items: list[Item], data_file: str | None) -> tuple[list[Item], DataRecord]:
    """The problems to run (all, the first --limit rows, or a seeded uniform --sample) and what they
    are against the task's official set. A sample keeps the data's order; its seed is `cfg.seed`."""
    population = [(it.question, it.target) for it in items]
    sampled = cfg.sample is not None and cfg.sample < len(items)
    if sampled:
        assert cfg.sample is not None  # `sampled` implies a --sample
        chosen = sorted(random.Random(cfg.seed).sample(range(len(items)), cfg.sample))
        items = [items[i] for i in chosen]
        how = f"--sample {cfg.sample} (seed {cfg.seed}) of {len(population)}"
    elif task.unchecked or (cfg.limit is not None and cfg.limit <= len(items)):
        how = f"--limit {cfg.limit}: the first {len(items)} rows"
    else:
        how = f"all of {data_file}" if data_file else "all of " + task.describe()
    options = cfg.task_options.get(name, {})
    narrowing = [f"{k}={options[k]}" for k in task.narrowing_options if k in options]
    narrowed = f"task option {', '.join(narrowing)} narrows or changes the set" if narrowing else None
    data = data_identity(name, [(it.question, it.target) for it in items], how=how, seed=cfg.seed if sampled else None,
                         sampled=sampled, narrowed=narrowed, population=population if sampled else None)
    return items, data




def _model_cap(model: str) -> tuple[tuple[int, str], ...]:
    if parse_spec(model).is_random:
        return ((RANDOM_MAX_NEW_TOKENS, "default for random: models (random weights never stop; --max-new-tokens to change)"),)
    return ((DEFAULT_MAX_NEW_TOKENS, "default"),)


class _Picker:
    """The first stated value of a setting, remembering where it came from."""

    def __init__(self, card_reasons: dict, from_config: tuple[str, ...] = ()):
        self.card_reasons = card_reasons
        self.from_config = from_config
        self.sources: dict[str, str] = {}

    def __call__(self, key: str, *candidates):
        for value, source in candidates:
            if value is not None:
                if source == "flag":
                    self.sources[key] = "--config" if key in self.from_config else f"flag --{key.replace('_', '-')}"
                else:
                    self.sources[key] = self.card_reasons.get(key, source) if source == "card" else source
                return value
        raise ConfigError(f"no value for the decoding setting {key}", "this is a bug: please report it")


def card_settings(card, task: str) -> tuple[dict, dict]:
    """The card's settings for a task and where each came from. The card's samples per problem
    apply only where a claim on this task with a published value needs them; a task the card makes
    no checkable claim on runs one sample, and the plan says so."""
    from harness.cards.settings import stated_settings

    d = _card_defaults(card, task)
    stated = stated_settings(card, task)
    override = card.protocol.per_task.get(task)

    def where(key: str) -> str:
        if stated.get(key) is None:
            return "harness fallback: the card leaves it unstated"
        return f"per-task setting for {task}" if getattr(override, key, None) is not None else "protocol default"

    why = {k: f"card {card.name} ({where(k)})" for k in d}
    needing = [c for c in card.claims if c.task == task and c.value is not None and c.unit == "percent"]
    if d.get("num_samples", 1) > 1 and not needing:
        why["num_samples"] = f"1, not the card's {d['num_samples']}: card {card.name} has no claim with a value on {task}"
        d = {**d, "num_samples": 1}
    elif needing and d.get("num_samples", 1) > 1:
        why["num_samples"] = f"card {card.name}: its {needing[0].metric} claim on {task} used {d['num_samples']} samples per problem"
    mean = getattr(card.protocol.per_task.get(task), "mean_output_tokens", None)
    if mean:
        d = {**d, "mean_output_tokens": mean}
    return d, why


def _card_defaults(card, task: str) -> dict:
    from harness.cards.settings import card_generation_defaults

    return card_generation_defaults(card, task)
