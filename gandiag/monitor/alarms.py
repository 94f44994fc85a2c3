"""Alarms: a verdict bad enough to tell the person training, and maybe to stop the run.

A verdict's alarm level comes from the scale its diagnostic declares (the
report's tones, :mod:`gandiag.report.severity`), so a plugin diagnostic raises
alarms without gandiag knowing its words: the worst level of the scale
(``severe`` collapse, ``unhealthy`` gradients) is a ``severe`` alarm, a level
between best and worst (``partial``, ``warning``) a ``warning``. A check that
crashed (``error``) is an ``error`` alarm: it is printed and passed to the
callback, and the ``gandiag watch --fail-on`` exit treats it as failing (fail
closed), but it never stops a training run by itself, since a bug in a check
should not cost the user their run. ``not_applicable`` raises nothing.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Callable, Optional

STOP_LEVELS = ("warning", "severe")  # stop_on / --fail-on choices, mildest first


@dataclass
class Alarm:
    step: Optional[int]
    source: str  # the diagnostic (or "log" for the live log check, "diverged" for a non-finite loss)
    verdict: str
    level: str  # "warning" | "severe" | "error"
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        where = f"step {self.step}: " if self.step is not None else ""
        return f"gandiag: {where}{self.level.upper()} {self.source} {self.verdict}: {self.message}"


def level_of(name: str, result: dict) -> Optional[str]:
    """The alarm level of one diagnostic's result, or None for a verdict that raises none."""
    from ..diagnostics import ERROR, NOT_APPLICABLE
    from ..report.severity import verdict_tone

    if result.get("verdict") == ERROR:
        return "error"
    if result.get("verdict") == NOT_APPLICABLE:  # toned "warn" in the report, but nothing was judged
        return None
    return {"warn": "warning", "bad": "severe"}.get(verdict_tone(name, result))


def _first_reason(result: dict) -> str:
    reasons = result.get("reasons") or []
    msgs = [r.get("message", "") for r in reasons if isinstance(r, dict) and r.get("level") != "info"]
    return msgs[0] if msgs else ", ".join(str(e) for e in (result.get("errors") or {}).values())[:200]


def from_results(diagnostics: dict, step: Optional[int]) -> list:
    out = []
    for name, result in (diagnostics or {}).items():
        if isinstance(result, dict):
            level = level_of(name, result)
            if level:
                out.append(Alarm(step, name, str(result.get("verdict")), level, _first_reason(result)))
    return out


def reaches(alarm: Alarm, threshold: Optional[str]) -> bool:
    """Whether ``alarm`` is at or above ``threshold`` ("warning" or "severe"; None: never)."""
    if threshold is None or alarm.level not in STOP_LEVELS:
        return False
    return STOP_LEVELS.index(alarm.level) >= STOP_LEVELS.index(threshold)


class Announcer:
    """Prints each alarm once while it lasts (again when its verdict changes) and calls the user's callback on every one."""

    def __init__(self, callback: Optional[Callable] = None, stream=None):
        self.callback, self.stream = callback, stream
        self._said: dict = {}

    def __call__(self, alarms: list, checked) -> None:
        """``alarms`` raised by the sources in ``checked``; a checked source without one has recovered."""
        for source in checked:
            self._said.pop(source, None)
        for a in alarms:
            if self._said.get(a.source) != a.verdict:
                print(a.line(), file=self.stream or sys.stderr, flush=True)
            self._said[a.source] = a.verdict
            if self.callback is not None:
                self.callback(a)
