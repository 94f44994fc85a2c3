"""Mode-collapse and gradient-health diagnostics: a verdict and the evidence behind it.

Layout (docs/diagnostics.md is the user's reference):

- one module per signal, each a pure function of arrays plus a thin
  ``compute(ctx)`` that reads the shared :class:`~gandiag.pipeline.EvalContext`
  (no signal samples or extracts features again, except latent sensitivity,
  which must move z):
  :mod:`.mixture_modes`, :mod:`.classifier_modes`, :mod:`.ndb`,
  :mod:`.duplicates`, :mod:`.latent_sensitivity`;
- :mod:`.mode_collapse`: the one registered diagnostic ``mode_collapse``; it runs
  every signal that applies, nests their numbers under ``signals`` and turns
  the reasons they raise into ``none`` / ``partial`` / ``severe``;
- :mod:`.gradient_health` (+ :mod:`.training_log` for ``log.jsonl`` trends):
  the registered diagnostic ``gradient_health``, ``healthy`` / ``warning`` /
  ``unhealthy``.

Every reason is a dict ``{"signal", "level", "message", "value", "threshold"}``
so a reader (or a gate) sees which signal fired, with what value, against
which documented threshold. Thresholds are module constants, named and
documented next to the calibration numbers in docs/diagnostics.md.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Optional

MODE_LEVELS = ("none", "partial", "severe")
HEALTH_LEVELS = ("healthy", "warning", "unhealthy")
INFO = "info"  # a reason that is reported but does not change the verdict
# Verdicts every diagnostic may give besides its own levels; a gate fails on either (fail closed).
ERROR = "error"  # a signal (or the whole diagnostic) raised: the verdict cannot be trusted
NOT_APPLICABLE = "not_applicable"  # the diagnostic cannot judge these samples (e.g. no training set given)
FAILING_VERDICTS = (ERROR, NOT_APPLICABLE)


def reason(signal: str, level: str, message: str, value=None, threshold=None) -> dict:
    return {"signal": signal, "level": level, "message": message,
            "value": _num(value), "threshold": _num(threshold)}


def verdict(reasons: list, levels: tuple) -> str:
    """The worst level among the reasons (``info`` reasons do not count); ``error`` when a signal failed."""
    if any(r["level"] == ERROR for r in reasons):
        return ERROR
    worst = 0
    for r in reasons:
        if r["level"] in levels:
            worst = max(worst, levels.index(r["level"]))
    return levels[worst]


def run_parts(jobs: Iterable[tuple[str, Callable[[], dict]]]) -> tuple[dict, dict, dict]:
    """Run each (name, job) and time it: (results, errors, seconds) by name.

    A part that fails is reported in ``errors`` and does not stop the others:
    one broken signal must not hide what the others found. It does make the
    verdict ``error`` (see :func:`error_reasons`): a check that crashed has
    not shown the model healthy, so a gate must not pass it (fail closed).
    """
    parts, errors, seconds = {}, {}, {}
    for name, job in jobs:
        t0 = time.perf_counter()
        try:
            parts[name] = job()
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
        seconds[name] = round(time.perf_counter() - t0, 3)
    return parts, errors, seconds


def error_reasons(errors: dict) -> list:
    """One ``error`` reason per failed part, so the verdict becomes ``error`` and says why."""
    return [reason(name, ERROR, f"{name} could not run: {err}") for name, err in errors.items()]


def judged(scale: tuple, parts: dict, errors: dict, seconds: dict, *, keep_part_reasons: bool = False,
           **head) -> dict:
    """A diagnostic's result from its parts (:func:`run_parts`), on its ``scale`` of levels (best first): the
    parts' reasons moved to the top (copied, with ``keep_part_reasons``, when each part's own list is part of
    the diagnostic's documented JSON: gradient_health's), worst first, after one ``error`` reason per failed
    part; the verdict they give; ``head`` (the diagnostic's own facts), then the parts' evidence; ``errors``
    when a part failed, and the parts' ``seconds``."""
    take = (lambda p: p.get("reasons", [])) if keep_part_reasons else (lambda p: p.pop("reasons", []))
    reasons = error_reasons(errors) + [r for p in parts.values() for r in take(p)]
    worst_first = {level: len(scale) - 1 - i for i, level in enumerate(scale) if i > 0}
    reasons.sort(key=lambda r: -1 if r["level"] == ERROR else worst_first.get(r["level"], len(scale)))
    out = {"verdict": verdict(reasons, scale), "reasons": reasons, **head, **parts}
    if errors:
        out["errors"] = errors
    out["seconds"] = seconds
    return out


def failed(name: str, exc: BaseException) -> dict:
    """The result of a diagnostic that raised as a whole: verdict ``error``, with the reason."""
    err = f"{type(exc).__name__}: {exc}"
    return {"verdict": ERROR, "reasons": [reason(name, ERROR, f"{name} could not run: {err}")], "errors": {name: err}}


def _num(x):
    if x is None or isinstance(x, (str, list, tuple)):
        return x
    x = float(x)
    return x if math.isfinite(x) else None


def fmt(x: Optional[float], digits: int = 3) -> str:
    """Numbers in reasons' messages: 3 significant digits (gandiag.results.format_number)."""
    from ..results import format_number

    return format_number(x, digits)
