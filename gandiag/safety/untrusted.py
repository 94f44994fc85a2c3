"""One wording for every loader's refusal of an untrusted file.

A refusal names what was found and says that ``--trust-checkpoint`` allows
it, in one line. Whatever comes from the file (an op name, a pickled
global, a path) is shown through :func:`shown`: control characters escaped
and cut short, so a hostile name cannot rewrite the terminal or flood it.
"""

from __future__ import annotations

from ..errors import CheckpointError
from .text import clean


def shown(text, limit: int = 120) -> str:
    """``text`` from a file, safe to print: one line, escaped, at most ``limit`` characters."""
    t = clean(text)
    return t if len(t) <= limit else t[: limit - 3] + "..."


def untrusted(path, found: str) -> CheckpointError:
    """The error for a file that holds something that can run code or touch files when loaded."""
    return CheckpointError(f"{shown(path, 300)}: {found}; --trust-checkpoint allows it, "
                           "if you trust where the file came from")
