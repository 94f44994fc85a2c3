"""What every built-in section shares: the Section base, number formatting, and reading diagnostics.

Sections read diagnostics by their documented keys (docs/diagnostics.md) and
show the verdict's own numbers and calls; none re-derives a verdict with a
threshold of its own, since a report that disagrees with the verdict printed
beside it is worse than no report. Everything is read defensively: results
come from JSON files of any origin, so a missing or odd key means "nothing to
show", never a crash.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
from markupsafe import Markup

from .. import render_fragment
from ..severity import declared_levels, tone, verdict_tone


class Section:
    """A report section: ``name``, ``title``, ``order``, ``scope`` and ``render(view)`` (the plugin contract)."""

    name = "section"
    title = "Section"
    order = 500
    scope = "run"

    def render(self, view):  # pragma: no cover - interface
        raise NotImplementedError


def fmt(v: Any, digits: int = 4) -> str:
    """A value as the report prints it: 4 significant digits, "—" for missing (gandiag.results.format_number)."""
    from ...results import format_number

    return format_number(v, digits, missing="—")


def first(d: Optional[dict], *keys):
    """The first of ``keys`` that ``d`` holds (not None); None otherwise."""
    if not isinstance(d, dict):
        return None
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def scalars(d: dict, skip: Iterable = ()) -> list:
    """(key, formatted value) for the numbers, strings and short lists of numbers of a dict."""
    skip = set(skip) | {"verdict", "reasons", "levels"}
    out = []
    for k, v in d.items():
        if k in skip:
            continue
        if isinstance(v, (int, float, str, np.number)) or v is None:
            out.append((k, fmt(v)))
        elif isinstance(v, (list, tuple)) and len(v) <= 25 and all(
                isinstance(x, (int, float, str)) or x is None for x in v):
            out.append((k, ", ".join(fmt(x) for x in v) or "none"))
    return out


def number_list(v) -> Optional[np.ndarray]:
    """A 1-D float array from a list (or dict) of numbers, None as NaN; None when it is not one."""
    if isinstance(v, dict):
        v = list(v.values())
    if not isinstance(v, (list, tuple, np.ndarray)) or not len(v):
        return None
    try:
        a = np.asarray([np.nan if x is None else x for x in v], dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == 1 else None


def word_list(v, n: int) -> Optional[list]:
    """``v`` when it is a list of ``n`` strings (a per-class or per-mode status list), else None."""
    if isinstance(v, list) and len(v) == n and all(isinstance(x, str) for x in v):
        return v
    return None


def int_list(v) -> list:
    """The integers of a list (class or mode indices), ignoring anything else."""
    return [int(x) for x in v if isinstance(x, (int, np.integer)) and not isinstance(x, bool)] \
        if isinstance(v, (list, tuple)) else []


def find_signal(view, name: str) -> tuple[Optional[str], Optional[dict]]:
    """(owner, dict): ``diagnostics[name]``, else ``diagnostics[owner][name]`` or ``diagnostics[owner]["signals"][name]``.

    NDB, duplicates, classes and mixture are signals inside ``mode_collapse``;
    the owner's verdict scale tones their reasons.
    """
    d = view.diagnostic(name)
    if d is not None:
        return name, d
    for owner, other in (view.results.diagnostics or {}).items():
        if not isinstance(other, dict):
            continue
        for holder in (other, other.get("signals")):
            if isinstance(holder, dict) and isinstance(holder.get(name), dict):
                return owner, holder[name]
    return None, None


def find_diag(view, name: str) -> Optional[dict]:
    """Like :func:`find_signal`, without the owner."""
    return find_signal(view, name)[1]


def reasons(d: dict) -> list:
    """The reasons' messages as plain strings."""
    return [r["message"] for r in reason_items(d)]


def reason_items(d: dict, levels: Optional[tuple] = None) -> list:
    """Each reason as {level, tone, signal, message}; the tone comes from the level on the scale ``levels``."""
    out = []
    for r in (d.get("reasons") if isinstance(d, dict) else None) or []:
        if isinstance(r, dict):
            level = r.get("level")
            out.append({"level": fmt(level) if level is not None else None,
                        "tone": tone(level, levels), "signal": r.get("signal"),
                        "message": str(r.get("message", r))})
        else:
            out.append({"level": None, "tone": None, "signal": None, "message": str(r)})
    return out


def verdict_block(view, label: str, name: Optional[str], d: dict) -> Markup:
    """The verdict badge of ``d`` (diagnostic ``name``) and its reasons, toned on that diagnostic's scale."""
    levels = declared_levels(name, d)
    dd = {"verdict": d.get("verdict"), "reasons": reason_items(d, levels)}
    return view.render("{{ verdict(label, dd, t) }}", label=label, dd=dd, t=verdict_tone(name, d))


def reasons_block(view, name: Optional[str], d: dict) -> Markup:
    """A signal's own reasons (a signal has no verdict), toned on its owner's scale."""
    items = reason_items(d, declared_levels(name, view.diagnostic(name) if name else None))
    if not items:
        return Markup("")
    return view.render('<ul class="reasons">{% for r in rs %}<li>{{ reason_item(r) }}</li>{% endfor %}</ul>',
                       rs=items)


def badge(word, tone_: str) -> Markup:
    """A badge as a table cell or inline value."""
    return render_fragment("{{ badge(w, t) }}", w=fmt(word), t=tone_)


GOOD_CALLS = ("covered", "captured", "ok")  # the per-class / per-mode calls the diagnostics write
UNJUDGED_CALLS = ("not_in_real",)


def call_badge(call: Optional[str], verdict_t: str) -> Markup:
    """A per-class or per-mode call (covered / missing / starved ...) as a badge.

    A call that is not "covered" is what moved the verdict, so it wears the
    verdict's own tone: orange beside a ``partial``, red beside a ``severe``.
    """
    if call in GOOD_CALLS:
        t = "good"
    elif call in UNJUDGED_CALLS or not isinstance(call, str):
        t = "unknown"
    else:
        t = verdict_t if verdict_t in ("warn", "bad") else "warn"
    return badge(call, t)
