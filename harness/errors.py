"""User-facing errors: every problem a user can cause ends as one `HarnessError` line naming the fix."""

from __future__ import annotations


class HarnessError(Exception):
    """A problem the user can fix. The CLI prints `error: <message>` and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}{' — ' + fix if fix else ''}")


class ConfigError(HarnessError):
    """Bad flags, bad config keys, bad values."""


class ModelLoadError(HarnessError):
    """A model or tokenizer could not be found, downloaded or trusted."""


class DeviceError(HarnessError):
    """A device that is unknown or not present on this machine."""


class DataError(HarnessError):
    """A task's data file is missing, malformed or empty."""


class OutOfMemory(HarnessError):
    """Generation ran out of device memory even at batch size 1."""

    exit_code = 3


class RunFailed(HarnessError):
    """Some or all requests failed (a server down, an engine error): the run ends `partial` or
    `failed`, its answered samples kept, and --resume retries the rest."""

    exit_code = 4


class Interrupted(BaseException):
    """SIGINT/SIGTERM arrived; the pipeline stops after the batch in flight (or at once, on a second
    signal). A BaseException, so no `except Exception` on the way can mistake it for a failure."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")


def shown(value, limit: int = 80) -> str:
    """A user-given value fit for one error line: quoted, control characters escaped (a raw '\r'
    or newline would rewrite or split the line), and capped, so a huge value cannot flood it. A
    nested value is walked only to a small depth (reprlib), never expanded in full."""
    if isinstance(value, str):
        text = repr(value[:limit])
        return text if len(value) <= limit else f"{text[:-1]}…{text[-1]} ({len(value):,} characters)"
    import reprlib

    r = reprlib.Repr()  # keyword arguments to Repr() are Python 3.12+; attributes work on 3.10 too
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 2, 4, 4, 4, 4
    r.maxstring = r.maxother = limit // 2
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


_LINE_BREAKERS = {"\u2028", "\u2029", "\u0085"}


def one_line(text: str, limit: int = 2000) -> str:
    """`text` as one printable line: control characters and line separators escaped (a raw '\\r'
    from a user's value would overwrite the line on a terminal), and capped at `limit` characters."""
    if len(text) > limit:
        text = text[:limit] + f"… ({len(text) - limit:,} more characters)"
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in text) if any(not c.isprintable() or c in _LINE_BREAKERS for c in text) else text


def validation_message(exc, model: type | None = None) -> str:
    """One line for a pydantic ValidationError: "<field path>: <reason>; ...". With the root
    `model`, an unknown key names the closest allowed one ("did you mean ...?"). Used for cards,
    config and run.json alike, so every schema problem reads the same way."""
    return "; ".join(": ".join(describe_error(e, model)) for e in exc.errors())


def describe_error(err: dict, model: type | None = None) -> tuple[str, str]:
    """(field path, reason) of one pydantic error, as validation_message writes them."""
    return _loc(err["loc"]), _reason(err, model)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _unwrap(annotation):
    """The model class inside Optional[...] / list[...] / dict[str, ...], if any."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    if origin in (list, dict, tuple):
        return _unwrap(typing.get_args(annotation)[-1])
    return annotation


def _model_at(root, loc: tuple):
    """Walk the schema along an error location to the model that owns the last key."""
    from pydantic import BaseModel

    model = root
    for part in loc:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        field = model.model_fields.get(part)
        if field is None:
            continue  # a dict key such as a task name
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _reason(err: dict, root) -> str:
    if err["type"] == "extra_forbidden":
        import difflib

        key = err["loc"][-1]
        owner = _model_at(root, err["loc"][:-1]) if root is not None else None
        hint = ""
        if owner is not None:
            close = difflib.get_close_matches(str(key), list(owner.model_fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(owner.model_fields)}"
        return f"unknown key{hint}"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")
