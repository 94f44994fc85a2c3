"""Input paths: regular files and folders only, checked without opening.

``open()`` on a FIFO blocks until a writer appears, ``/dev/zero`` never ends,
and ``/dev/stdin`` reads the terminal. Every path gandiag reads (checkpoints,
real data, samples, results, gates, logs, weights) is first ``stat``-ed
(following symlinks, never opening) and refused with one line unless it is a
regular file (or, where a folder is expected, a directory).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import GandiagError

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def kind_of(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def stat_or_none(path) -> "os.stat_result | None":
    """``stat`` that never raises: None for a missing path, a name too long, a NUL, a loop, no permission.

    For asking "is there a file here?" about paths that come from data (a
    results file's generator path, a real-data spec), where the answer "no" is
    enough and an exception would be a crash.
    """
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def is_regular_file(path) -> bool:
    st = stat_or_none(path)
    return st is not None and stat.S_ISREG(st.st_mode)


def is_folder(path) -> bool:
    st = stat_or_none(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def require_input(path, what: str = "the input", *, folder_ok: bool = False, error=GandiagError) -> os.stat_result:
    """stat ``path`` (following links) and refuse anything but a regular file (or a folder if ``folder_ok``)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"{p}: no such file or folder") from None
    except PermissionError:
        raise error(f"{p}: permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise error(f"{p!r}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISREG(st.st_mode) or (folder_ok and stat.S_ISDIR(st.st_mode)):
        return st
    expected = "a regular file or a folder" if folder_ok else "a regular file"
    raise error(f"{p} is {kind_of(st.st_mode)}; {what} must be {expected}")


def open_regular(path, what: str = "the input", error=GandiagError):
    """A binary file object on a regular file, opened without blocking and checked after opening.

    The check after opening (fstat) closes the gap between a ``stat`` and the
    ``open`` in which a file could be swapped for a FIFO.
    """
    require_input(path, what, error=error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    f = os.fdopen(fd, "rb")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        f.close()
        raise error(f"{path} is {kind_of(mode)}; {what} must be a regular file")
    if hasattr(os, "O_NONBLOCK"):  # regular files never block; clear the flag for ordinary reads
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return f


def read_bytes_limited(path, what: str, budget=None, error=GandiagError) -> bytes:
    """The bytes of a regular file, refused beyond ``budget`` (default: the text-input budget)."""
    from .budgets import TEXT_FILE_BYTES

    budget = budget or TEXT_FILE_BYTES
    st = require_input(path, what, error=error)
    budget.check(st.st_size, f"{path}")
    with open_regular(path, what, error) as f:
        data = f.read(min(st.st_size, budget.value) + 1)  # never reserve the whole budget up front
    budget.check(len(data), f"{path}")  # grew since the stat
    return data


def read_text_limited(path, what: str, error=GandiagError) -> str:
    data = read_bytes_limited(path, what, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
