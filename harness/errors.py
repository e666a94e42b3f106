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


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; the pipeline stops after the batch in flight."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")
