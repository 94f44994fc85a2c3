"""Text from data is shown, never obeyed: no control sequences reach a terminal or XML.

A results file, a path or a checkpoint's metadata can hold ESC sequences
that clear a screen and print a fake "PASSED", or characters XML 1.0 cannot
hold. Everything gandiag prints or writes into JUnit XML from data goes
through :func:`clean` (one line: newlines escaped too) or
:func:`clean_lines` (keeps our own newlines).
"""

from __future__ import annotations

import re

# C0 controls except TAB, DEL, C1 controls, and the Unicode line/paragraph separators and bidi overrides
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_KEEP_NL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_XML_BAD = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(m: re.Match) -> str:
    c = m.group(0)
    return {"\n": "\\n", "\r": "\\r"}.get(c, f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def _unsurrogate(m: re.Match) -> str:
    c = ord(m.group(0))
    return f"\\x{c - 0xdc00:02x}" if 0xdc80 <= c <= 0xdcff else f"\\u{c:04x}"


def unsurrogated(text: str) -> str:
    """``text`` with each byte of a file name that is not UTF-8 (which ``os.fsdecode`` carries as a
    surrogate) as its ``\\xff`` escape and any other lone surrogate (a ``\\ud800`` in a JSON file) as
    ``\\udXXX``: text every stream and UTF-8 file can hold."""
    return _SURROGATE.sub(_unsurrogate, text)


def utf8(text: str) -> bytes:
    """``text`` as UTF-8 bytes, never an encoding error (:func:`unsurrogated`)."""
    return unsurrogated(text).encode("utf-8")


def clean(text) -> str:
    """One line with every control character shown as an escape (``\\x1b``, ``\\n``), and surrogates too."""
    return _CONTROL.sub(_escape, unsurrogated(str(text)))


def clean_lines(text) -> str:
    """Like :func:`clean`, but our own newlines stay."""
    return _CONTROL_KEEP_NL.sub(_escape, unsurrogated(str(text)))


def xml_safe(text) -> str:
    """Text XML 1.0 can hold: characters it forbids become escapes; control characters too."""
    return _XML_BAD.sub(_escape, clean_lines(text))


def clean_data(obj, depth: int = 0):
    """Every string (keys too) of a JSON-like value cleaned with :func:`clean`."""
    if isinstance(obj, str):
        return clean(obj)
    if isinstance(obj, dict):
        return {clean(k) if isinstance(k, str) else k: clean_data(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean_data(v, depth + 1) for v in obj]
    return obj
