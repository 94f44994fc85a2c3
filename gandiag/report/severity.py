"""How bad a verdict or a reason is, from the levels its diagnostic defines: the badge colours of the report.

A report that guessed severity from words ("collapse", "nan", "fail" in a
message) would colour a plugin's ``failsafe`` red and a ``no_collapse_found``
green by accident. Tones come instead from the scale the diagnostic declares:

- ``levels``: its verdict words, best first, worst last. Built-ins declare
  theirs as an attribute (``ModeCollapse.levels`` = ``MODE_LEVELS``,
  ``GradientHealth.levels`` = ``HEALTH_LEVELS``); a plugin diagnostic does
  the same. For results read where that plugin is not installed, a
  ``levels`` list in the diagnostic's own output is used instead.
- the first level is ``good``, the last ``bad``, anything between ``warn``;
- ``error`` (a part crashed: nothing was shown healthy) is ``bad`` and
  ``not_applicable`` (nothing was judged; gates fail on it) is ``warn``, for
  every diagnostic;
- an ``info`` reason is ``info`` (evidence that never moves the verdict);
- a word no scale places is ``unknown`` (grey), never a guess. gandiag's
  own words (``none``, ``partial``, ``severe``, ``healthy``, ...) keep their
  meaning for a plugin that uses them without declaring levels.
"""

from __future__ import annotations

from typing import Optional

from ..diagnostics import ERROR, HEALTH_LEVELS, INFO, MODE_LEVELS, NOT_APPLICABLE

TONES = ("good", "warn", "bad", "info", "unknown")
BUILTIN_SCALES = (MODE_LEVELS, HEALTH_LEVELS)


def _valid(levels) -> Optional[tuple]:
    if isinstance(levels, (list, tuple)) and levels and all(isinstance(x, str) for x in levels):
        return tuple(levels)
    return None


def declared_levels(name: Optional[str], result: Optional[dict] = None) -> Optional[tuple]:
    """The verdict scale of diagnostic ``name``: its registered object's ``levels``, else its output's ``levels``."""
    if name:
        try:
            from ..plugins import registry

            reg = registry("diagnostic")
            found = _valid(getattr(reg[name], "levels", None)) if name in reg else None
        except Exception:  # a broken plugin must not take the report down: fall back to the output
            found = None
        if found:
            return found
    return _valid(result.get("levels")) if isinstance(result, dict) else None


def _place(word: str, levels: tuple) -> str:
    i = levels.index(word)
    if i == 0:
        return "good"
    return "bad" if i == len(levels) - 1 else "warn"


def tone(word, levels: Optional[tuple] = None) -> str:
    """The tone of a verdict or reason level ``word`` on the scale ``levels`` (best first, worst last)."""
    if not isinstance(word, str):
        return "unknown"
    if word == ERROR:
        return "bad"
    if word == NOT_APPLICABLE:
        return "warn"
    if word == INFO:
        return "info"
    if levels and word in levels:
        return _place(word, levels)
    for scale in BUILTIN_SCALES:
        if word in scale:
            return _place(word, scale)
    return "unknown"


def verdict_tone(name: Optional[str], result: Optional[dict]) -> str:
    """The tone of ``result["verdict"]`` for the diagnostic called ``name``."""
    if not isinstance(result, dict):
        return "unknown"
    return tone(result.get("verdict"), declared_levels(name, result))
