"""Provenance: where the numbers come from (generator, real data, contract, versions, seed, timings).

Two reports only compare when they were computed the same way; this section
lists everything the results record about how, flattened to one key per row.
"""

from __future__ import annotations

from typing import Optional

from .common import Section, fmt


def flatten(obj, prefix: str = "", out: Optional[list] = None, limit: int = 200) -> list:
    """[(dotted.key, formatted value)] of nested dicts and lists, at most ``limit`` rows."""
    out = [] if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out, limit)
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(x, (dict, list)) for x in obj):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}[{i}]", out, limit)
    elif len(out) < limit:
        out.append((prefix, fmt(obj) if not isinstance(obj, (list, tuple)) else ", ".join(fmt(x) for x in obj) or "none"))
    return out


class Provenance(Section):
    name, title, order = "provenance", "Provenance", 100

    def render(self, view):
        r = view.results
        rows = flatten({"generator": r.generator, "real": r.real, "contract": r.contract, "provenance": r.provenance})
        return view.render("{{ kv_table(rows) }}", rows=rows)
