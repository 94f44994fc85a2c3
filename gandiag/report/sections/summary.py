"""Summary sections: metrics, verdicts and gates of one run, and several runs side by side.

The summary is what a CI reader opens first, so it shows the very numbers
the verdicts and the gates read: each metric's value and interval, each
diagnostic's verdict with its reasons (level, signal, message), and each
gate's result with the value it compared.
"""

from __future__ import annotations

import numpy as np

from ..severity import verdict_tone
from .common import Section, badge, fmt, verdict_block

GATE_DIGITS = 6  # a gate compares the full value: 40.0004 must not read as 40 beside "max 40: FAIL"


def direction_title(direction) -> str:
    """A translator's direction as people read it: 'b2a' -> 'B→A' (anything else as it is)."""
    a, sep, b = str(direction).partition("2")
    return f"{a.upper()}→{b.upper()}" if sep and a and b else str(direction)


def split_direction(key) -> tuple:
    """(key without its direction, direction or None): ``"fid:b2a"`` -> ``("fid", "b2a")``."""
    rest, _, direction = str(key).partition(":")
    return rest, direction or None


def with_direction(label, key) -> str:
    """A metric's or diagnostic's label, followed by its direction when the key carries one (``FID (B→A)``)."""
    direction = split_direction(key)[1]
    return f"{label} ({direction_title(direction)})" if direction else str(label)


def metric_order(names) -> list:
    """Metric keys in the results' documented order (gandiag.results.metric_order)."""
    from ...results import metric_order as order

    return order(names)


def uncertainty(m: dict) -> str:
    """A metric's 95% bootstrap interval, else its std (KID, IS), else why it has no value, else a dash."""
    if m.get("not_applicable"):
        return f"not applicable: {m['not_applicable']}"
    if m.get("error"):
        return f"could not be computed: {m['error']}"
    ci = m.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return f"95% CI {fmt(ci[0])} – {fmt(ci[1])}" + (f" ({m['bootstrap']} resamples)" if m.get("bootstrap") else "")
    if m.get("std") is not None:
        return f"± {fmt(m['std'], 3)} (std)"
    return "—"


def metric_rows(results) -> list:
    rows = []
    for name in metric_order(results.metrics):
        m = results.metrics[name] if isinstance(results.metrics[name], dict) else {}
        hib = m.get("higher_is_better")
        rows.append((with_direction(m.get("label", name), name), fmt(m.get("value")), uncertainty(m),
                     "↑" if hib else "↓" if hib is False else ""))
    return rows


def gate_rows(results) -> list:
    """One row per gate: name, pass/FAIL, the value it read, its message."""
    return [(g.get("name"), badge("pass", "good") if g.get("passed") else badge("FAIL", "bad"),
             fmt(g.get("value"), GATE_DIGITS), g.get("message"))
            for g in (results.gates or []) if isinstance(g, dict)]


def facts(results) -> list:
    g = results.generator or {}
    prov = results.provenance or {}
    pairs = [("generator", g.get("path")), ("format", g.get("format")),
             ("real data", (results.real or {}).get("description") or (results.real or {}).get("source")),
             ("samples", prov.get("num_samples")), ("features", (prov.get("extractor") or {}).get("name"))]
    return [(k, fmt(v)) for k, v in pairs if v is not None]


class Summary(Section):
    name, title, order = "summary", "Summary", 10

    def render(self, view):
        r = view.results
        verdicts = [verdict_block(view, with_direction(split_direction(n)[0], n), split_direction(n)[0], d)
                    for n, d in (r.diagnostics or {}).items() if isinstance(d, dict) and "verdict" in d]
        return view.render("""
{{ kv_table(facts) }}
{% if rows %}{{ table(["metric", "value", "uncertainty", "better"], rows) }}{% else %}{{ note("No metrics in these results.") }}{% endif %}
{% for v in verdicts %}{{ v }}{% endfor %}
{% if not verdicts %}{{ note("No diagnostics verdicts in these results.") }}{% endif %}
{% if gates %}<h4>Quality gates</h4>{{ table(["gate", "result", "value read", "detail"], gates) }}{% endif %}
{% if warnings %}<h4>Warnings</h4><ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>{% endif %}
""", facts=facts(r), rows=metric_rows(r), verdicts=verdicts, warnings=r.warnings or [], gates=gate_rows(r))


def comparison_metric_rows(runs) -> tuple[list, dict]:
    """(table rows, {label: (values, ci lows, ci highs)}) of every metric across the runs."""
    names = metric_order({k for v in runs for k in v.results.metrics})
    rows, series = [], {}
    for k in names:
        vals, lo, hi, cells, label = [], [], [], [], k
        for v in runs:
            m = v.results.metrics.get(k) if isinstance(v.results.metrics.get(k), dict) else {}
            label = with_direction(m["label"], k) if m.get("label") else label
            val = m.get("value")
            vals.append(val if isinstance(val, (int, float)) else np.nan)
            ci = m.get("ci95") if isinstance(m.get("ci95"), (list, tuple)) and len(m.get("ci95")) == 2 else None
            lo.append(ci[0] if ci and ci[0] is not None else np.nan)
            hi.append(ci[1] if ci and ci[1] is not None else np.nan)
            text = fmt(val) if m else "—"
            if ci:
                text += f" [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]"
            elif m.get("std") is not None:
                text += f" ± {fmt(m['std'], 3)}"
            cells.append(text)
        rows.append([label] + cells)
        series[label] = (vals, lo, hi)
    return rows, series


def comparison_verdict_rows(runs) -> list:
    """One row per diagnostic: its verdict badge in each run ("—" where it did not run)."""
    names = []
    for v in runs:
        for n, d in (v.results.diagnostics or {}).items():
            if isinstance(d, dict) and "verdict" in d and n not in names:
                names.append(n)
    rows = []
    for n in names:
        cells = []
        for v in runs:
            d = v.diagnostic(n)
            cells.append(badge(d.get("verdict"), verdict_tone(split_direction(n)[0], d))
                         if d is not None and "verdict" in d else "—")
        rows.append([with_direction(split_direction(n)[0], n)] + cells)
    return rows


class Comparison(Section):
    name, title, order, scope = "comparison", "Runs side by side", 5, "comparison"

    def render(self, cview):
        from .. import figures

        runs = cview.runs
        rows, series = comparison_metric_rows(runs)
        rows += comparison_verdict_rows(runs)
        header = ["metric"] + [v.label for v in runs]
        trend = figures.trends(series, [str(v.index + 1) for v in runs]) if series and len(runs) > 1 else None
        return cview.render("""{{ table(header, rows) }}
{% if trend %}{{ figure(trend, "Metric trends across runs, in the order given (shaded: 95% bootstrap interval where computed).", "metric trends") }}{% endif %}""",
                            header=header, rows=rows, trend=trend)
