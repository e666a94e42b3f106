"""What a run will do, decided before any model loads: tasks and their items, the prompt
protocol, decoding settings (flags over card over defaults), samples per problem, and the list
of requests with their per-sample seeds. Pure: no torch, no clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from harness import protocols, registry
from harness.backends.base import Request, Sampling
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.tasks.base import Item, Task

DEFAULT_MAX_NEW_TOKENS = 1024
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
        from harness.lmeval.task import LMEvalTask

        return LMEvalTask(name.split(":", 1)[1], **options)
    cls = registry.get("tasks", name).load()
    return cls(**options)


def choose_protocol(cfg: RunConfig, card_protocol: str | None, served=None) -> tuple[protocols.Protocol, str]:
    """(protocol, where it came from): --protocol, else the card, else the model's name; for an
    OpenAI-compatible endpoint, whose model name is whatever the server calls it, the served
    model's metadata (`served()`: its path or hub id) instead of the name, else --protocol is
    required. A plain-text (few-shot) protocol is never guessed for a chat endpoint."""
    if cfg.protocol not in (None, "", "auto"):
        return protocols.resolve(cfg.protocol, cfg.model), "--protocol"
    if card_protocol:
        return protocols.resolve(card_protocol, cfg.model), "card"
    if not cfg.model.startswith("openai:"):
        return protocols.resolve(None, cfg.model), "model name"
    where = served() if served is not None else None
    if where:
        guess = protocols.get(protocols.default_protocol(where))
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
        d = _card_defaults(card, name) if card else {}
        k = cfg.num_samples or d.get("num_samples") or 1
        temperature = _first(cfg.temperature, d.get("temperature"), SAMPLING_DEFAULTS["temperature"] if k > 1 else 0.0)
        top_p = _first(cfg.top_p, d.get("top_p"), SAMPLING_DEFAULTS["top_p"] if temperature > 0 else 1.0)
        top_k = _first(cfg.top_k, d.get("top_k"), 0) or 0
        max_new = _first(cfg.max_new_tokens, d.get("max_new_tokens"), task.max_new_tokens, DEFAULT_MAX_NEW_TOKENS)
        sampling = Sampling(max_new_tokens=max_new, temperature=temperature, top_p=top_p, top_k=top_k,
                            stop=tuple(cfg.stop) + tuple(protocol.stop) + tuple(task.stop))
        settings = {"protocol": protocol.name, "temperature": temperature, "top_p": top_p, "top_k": top_k, "max_new_tokens": max_new,
                    "num_samples": k, "seed": cfg.seed, "force_think": protocol.force_think, "system_prompt": protocol.system_prompt,
                    "limit": cfg.limit, "n": len(items)}
        plans[name] = TaskPlan(name, task, items, k, sampling, data_file, settings)
    return Plan(protocol, plans, card, protocol_source)


def _card_defaults(card, task: str) -> dict:
    from harness.claims.differences import card_generation_defaults

    return card_generation_defaults(card, task)


def _first(*values):
    for v in values:
        if v is not None:
            return v
    raise ConfigError("no value for a decoding setting", "this is a bug: please report it")
