"""JSON and TOML from files: parse errors and pathological nesting are bad input, not crashes.

Python's ``json`` and ``tomllib`` recurse once per nesting level, so a file
of 100,000 ``[`` raises RecursionError (exit 3 before). Documents nested
deeper than :data:`~gandiag.safety.budgets.NESTING` levels are refused before
parsing, by a scan that does not recurse.
"""

from __future__ import annotations

import json

from ..errors import DataError
from .budgets import NESTING
from .untrusted import shown


def nesting_depth(text: str, opens: str = "[{", closes: str = "]}") -> int:
    """Deepest bracket nesting outside strings (an upper bound is enough: strings are skipped roughly)."""
    return _brackets(text, opens, closes)[0]


def _brackets(text: str, opens: str = "[{", closes: str = "]}") -> tuple:
    """(deepest nesting, containers opened) outside strings, in one pass that does not recurse."""
    depth = deepest = count = 0
    in_str = escape = False
    for ch in text:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in opens:
            depth += 1
            count += 1
            deepest = max(deepest, depth)
        elif ch in closes:
            depth -= 1
    return deepest, count


def check_nesting(text: str, where: str, error=DataError, opens: str = "[{", closes: str = "]}") -> None:
    """Refuse documents nested deeper than NESTING, or holding more than CONTAINERS lists and objects: each
    costs Python ~70 bytes parsed, so 20 MB of ``[{},{},...]`` would take ~0.5 GB (results JSON hold thousands)."""
    deepest, count = _brackets(text, opens, closes)
    if deepest > NESTING:
        raise error(f"{where}: nested more than {NESTING} levels deep; not a file gandiag wrote")
    if count > CONTAINERS:
        raise error(f"{where}: {count:,} lists and objects, more than the {CONTAINERS:,} any file gandiag writes "
                    "holds; refused before parsing")


CONTAINERS = 1_000_000  # lists and objects in one JSON/TOML document; gandiag's own results hold thousands


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_json(text: str, where: str, error=DataError, unique_keys: bool = False):
    """The JSON document in ``text``; anything unreadable is ``error``. ``unique_keys``: an object that gives
    a key twice is refused too (``json`` keeps the last, so ``"value": null, "value": 0.001`` reads 0.001 while
    another reader may take null: a file that means two things is not one a gate can trust)."""
    check_nesting(text, where, error)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys if unique_keys else None)
    except _DuplicateKey as exc:
        raise error(f"{where}: the key {shown(repr(exc.args[0]), 80)} appears twice in one object; refused "
                    "(readers disagree on which one counts)") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{where}: not valid JSON ({exc})") from None
    except ValueError as exc:  # e.g. an integer too long to convert
        raise error(f"{where}: not valid JSON ({exc})") from None
