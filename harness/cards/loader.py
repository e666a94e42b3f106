"""Model cards on disk: loading (`yaml.safe_load` only, so YAML tags cannot build Python objects;
duplicate keys are rejected; every problem one line naming the file and field), listing and
lookup by name. The schema is harness/cards/schema.py (its names are re-exported here).
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

import harness
from harness.cards.schema import Card, Claim, Source, Status
from harness.errors import ConfigError, validation_message

__all__ = ["Card", "Claim", "Source", "Status", "cards_dir", "find_card", "list_cards", "load_card", "validate_all"]


# ---- loading ----------------------------------------------------------------------------------

_NODE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: composing is then fast


def _check_duplicate_keys(node: yaml.Node | None) -> None:
    """safe_load silently keeps the last of two equal keys; in a card that is always a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
            _check_duplicate_keys(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item)


def load_card(path: str | Path) -> Card:
    """Read and validate one card. Every problem is a ConfigError "<file>: <field path>: <reason>"."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read model card ({exc.strerror or exc})", "check the path") from None
    # Cards are frozen and small but pure-Python YAML is slow (~0.1 s each); listing and lookup
    # reread them often, so parse a file once per (path, mtime, size).
    return _load_card(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _load_card(path: Path, _mtime_ns: int, _size: int) -> Card:
    fix = "see model_cards/_template.yaml for every field and its meaning"
    from harness.safeio import read_regular

    text = read_regular(path, "model card", "remove or fix that file in the cards folder")  # no FIFO, device, non-UTF-8
    try:
        from harness.config import safe_yaml

        data = safe_yaml(text, path)  # never yaml.load: a card must not build Python objects, nor expand aliases
        _check_duplicate_keys(yaml.compose(text, Loader=_NODE_LOADER))  # nodes only, nothing constructed
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}: invalid YAML: {problem}", fix) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): a card must be a YAML mapping, got {type(data).__name__}", fix)
    try:
        card = Card.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_message(exc, Card)}", fix) from None
    if not path.stem.startswith("_") and card.name != path.stem:
        raise ConfigError(f"{path}: name: {card.name!r} must equal the file name {path.stem!r}", "rename the file or the card")
    return card


def cards_dir() -> Path:
    """The cards folder: $HARNESS_CARDS_DIR, else the repository's model_cards/ beside the package
    (a checkout or an editable install: the cards' source), else the copy an installed wheel ships
    as harness/model_cards (setup.py puts it there)."""
    env = os.environ.get("HARNESS_CARDS_DIR")
    if env:
        return Path(env)
    package = Path(harness.__file__).resolve().parent
    source = package.parent / "model_cards"
    return source if source.is_dir() else package / "model_cards"


def _card_files(directory: Path | None = None) -> list[Path]:
    directory = directory or cards_dir()
    if not directory.is_dir():
        raise ConfigError(f"model cards folder {directory} not found", "set HARNESS_CARDS_DIR to the model_cards/ folder")
    return sorted(directory.glob("*.yaml"))


def list_cards() -> list[Card]:
    """Every card (templates, whose file names start with "_", excluded), sorted by name."""
    cards = (_loadable(p) for p in _card_files() if not p.name.startswith("_"))
    return [c for c in cards if c is not None]


def _loadable(path: Path) -> Card | None:
    """A card, or None with a one-line warning: one broken file (a FIFO, bad UTF-8, bad YAML) must not
    break commands about other cards; `harness cards validate` names its problem in full."""
    try:
        return load_card(path)
    except ConfigError as exc:
        from harness.sanitize import clean

        print(f"warning: skipping model card {clean(exc.problem)[:300]}", file=sys.stderr)
        return None


def validate_all() -> list[tuple[Path, ConfigError | None]]:
    """Validate every YAML file in the cards folder, template included; never raises per file."""
    out: list[tuple[Path, ConfigError | None]] = []
    for path in _card_files():
        try:
            load_card(path)
            out.append((path, None))
        except ConfigError as exc:
            out.append((path, exc))
    return out


def find_card(name: str) -> Card:
    """A card by file stem, Hub id, API model name or display name (case-insensitive)."""
    want = name.strip().lower()
    files = [p for p in _card_files() if not p.name.startswith("_")]
    for path in files:
        if path.stem.lower() == want:
            return load_card(path)
    keys: list[str] = [p.stem for p in files]
    for card in (c for c in (_loadable(p) for p in files) if c is not None):
        aliases = [card.hub_id, card.display_name, card.api.model if card.api else None]
        if any(a and a.lower() == want for a in aliases):
            return card
        keys += [a for a in aliases if a]
    close = difflib.get_close_matches(name, keys, n=4, cutoff=0.5)
    close += [k for k in keys if want and want in k.lower() and k not in close][: 4 - len(close)]
    hint = f"did you mean: {', '.join(close)}?" if close else f"known cards: {', '.join(p.stem for p in files)}"
    raise ConfigError(f"no model card named {name!r} in {cards_dir()}", f"{hint} (`harness cards` lists them all)")
