"""Opening files the harness does not fully control, safely: one place for the checks.

- `read_regular` reads a file a user points at (a config, a card, a data file) only when it is a
  regular file (a FIFO would block forever, a device never ends), opened non-blocking and checked
  with fstat on the open descriptor (no window between the check and the read), and bounded in size.
- `open_in_run` opens a file inside a run folder without following a symlink (O_NOFOLLOW): anyone
  who can write into a shared results folder, or hands over a tarball, could otherwise make the
  user truncate or append to any file the user can write (RUN/.lock -> ~/.bashrc).
- `check_no_link` refuses a run-folder path that is a symlink (lstat) before a rename-based write.
- `read_line_bounded` reads one line of at most `limit` bytes, so a 400 MB single line is refused
  after `limit` bytes, not after it was read whole.
- `os_problem` turns an OSError into the words of a one-line error (ENOSPC, EROFS, ENAMETOOLONG...).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from harness.errors import ConfigError, HarnessError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
MAX_TEXT_BYTES = 16 << 20  # a config or a card: far more than any real one


def os_problem(e: OSError) -> str:
    """A short reason for an OSError, with a hint for the common ones."""
    hint = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is full",
            errno.EROFS: "the file system is read-only", errno.ENAMETOOLONG: "the path is too long",
            errno.EACCES: "permission denied", errno.ELOOP: "it is a symbolic link (not followed)",
            errno.EPIPE: "the reader went away"}.get(e.errno or 0)
    text = e.strerror or str(e)
    return f"{text}: {hint}" if hint and hint.lower() != text.lower() else text


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: str | Path, what: str, fix: str, *, error: type[HarnessError] = ConfigError,
                 follow: bool = True) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file; otherwise `error` naming what it is."""
    flags = os.O_RDONLY | NONBLOCK | CLOEXEC | (0 if follow else NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}", fix) from None
    except OSError as e:
        if e.errno == errno.ELOOP and not follow:
            raise error(f"{what} {path} is a symbolic link; links are not followed here", fix) from None
        raise error(f"cannot read {what} {path} ({os_problem(e)})", fix) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"cannot read {what} {path}: it is {_kind(mode)}, not a regular file", fix)
    if NONBLOCK:
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: str | Path, what: str, fix: str, *, error: type[HarnessError] = ConfigError,
                 limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes; every problem one `error`."""
    with open_regular(path, what, fix, error=error) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} {path} is over {limit >> 20} MiB", fix)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} {path} is not UTF-8 (byte {e.start})", "re-encode it as UTF-8") from None


def read_line_bounded(f: BinaryIO, limit: int) -> bytes | None:
    """The next line (with its b"\\n"), b"" at the end, or None when the line is longer than `limit`
    bytes: at most `limit` + 1 bytes are read for it, whatever its length."""
    line = f.readline(limit + 1)
    if len(line) > limit and not line.endswith(b"\n"):
        return None
    return line


def open_in_run(path: str | Path, flags: int, mode: int = 0o666) -> int:
    """os.open inside a run folder, never through a symlink (O_NOFOLLOW) and never onto a
    special file. Raises ConfigError naming the file."""
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC | (NONBLOCK if not flags & (os.O_WRONLY | os.O_RDWR) else 0), mode)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):
            raise ConfigError(f"{path} is a symbolic link; the harness never follows a link inside a run folder",
                              "remove the link (someone else may have placed it there), then retry") from None
        raise ConfigError(f"cannot open {path} ({os_problem(e)})", "check the run folder's permissions and free space") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ConfigError(f"{path} is {_kind(st.st_mode)}, not a regular file", "remove it from the run folder, then retry")
    if NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def check_no_link(path: str | Path) -> None:
    """Refuse a run-folder path that exists as a symlink or a special file (lstat: the link itself)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ConfigError(f"cannot check {path} ({os_problem(e)})", "check the run folder's permissions") from None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{path} is a symbolic link; the harness never follows a link inside a run folder",
                          "remove the link (someone else may have placed it there), then retry")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} is {_kind(st.st_mode)}, not a regular file", "remove it from the run folder, then retry")
