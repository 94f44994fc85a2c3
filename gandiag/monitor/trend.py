"""``trend.jsonl`` and ``trend.html``: one line and one report point per evaluated snapshot of a run.

Written by the training monitor at each periodic check and by ``gandiag
watch`` for each snapshot it evaluates; both redraw the one report after each
line, so a browser tab left open on ``trend.html`` shows the run as it goes.
A line holds the snapshot's step, file, every metric value (the results'
keys, so their features are in the name: ``fid``, ``fd[dinov2-vitl14]``...),
every diagnostic's verdict and the alarms it raised. Lines are appended and
flushed; the file is read back through :func:`read_trend`, which checks each
line, since a run folder may hold anything.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Optional

from ..atomic import write_bytes
from ..errors import DataError
from ..training.trainlog import is_step

TREND_NAME, TREND_REPORT = "trend.jsonl", "trend.html"


def entry(step: Optional[int], snapshot: str, results, alarms: list, seconds: float,
          verdicts: Optional[dict] = None) -> dict:
    """A trend line from an evaluation's :class:`~gandiag.results.Results`; without one (a check of the log
    alone, or one that failed: ``verdicts`` says so), no metrics."""
    metrics = {k: m for k, m in ((results.metrics if results else None) or {}).items() if isinstance(m, dict)}
    if verdicts is None:
        verdicts = {k: d.get("verdict") for k, d in ((results.diagnostics if results else None) or {}).items()
                    if isinstance(d, dict)}
    return {"step": step, "snapshot": snapshot, "metrics": {k: _finite(m.get("value")) for k, m in metrics.items()},
            "labels": {k: str(m.get("label") or k) for k, m in metrics.items()},  # "FID [digits]": which features
            "verdicts": verdicts, "alarms": [a.as_dict() for a in alarms], "seconds": round(seconds, 3)}


def _finite(v):
    """``v`` as a finite float, else None (NaN, Inf, a 400-digit integer, anything not a number)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None


def append(path: Path, line: dict) -> None:
    from ..atomic import resolve_output

    with open(resolve_output(path, "trend file"), "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_trend(path: Path) -> list:
    """The checked lines of a trend file; a last line cut short by a kill is dropped."""
    from ..safety.files import read_text_limited

    return parse_trend(read_text_limited(path, "a trend file", error=DataError), path)


def parse_trend(text: str, path) -> list:
    """The checked lines of a trend file's ``text`` (read from ``path``)."""
    from ..safety.jsonfile import parse_json

    lines = [ln for ln in text.splitlines() if ln.strip()]
    out = []
    for i, ln in enumerate(lines, 1):
        try:
            rec = parse_json(ln, f"{path}, line {i}")
        except DataError:
            if i == len(lines):
                break
            raise
        out.append(_checked(rec, f"{path}, line {i}"))
    return out


def _checked(rec, where: str) -> dict:
    def strings(v):
        return isinstance(v, dict) and all(isinstance(x, (str, type(None))) for x in v.values())

    ok = (isinstance(rec, dict) and "step" in rec and (rec["step"] is None or is_step(rec["step"]))
          and isinstance(rec.get("snapshot"), str) and isinstance(rec.get("metrics"), dict)
          and all(v is None or _finite(v) is not None for v in rec["metrics"].values())
          and strings(rec.get("verdicts")) and strings(rec.get("labels", {}))
          and isinstance(rec.get("alarms", []), list))
    if not ok:
        raise DataError(f"{where}: not a trend line (step, snapshot, metrics, verdicts)")
    return rec


def render(lines: list, title: str) -> str:
    """The trend report: a chart per metric over steps, and every snapshot's verdicts, toned by their levels."""
    from ..report.figures import curves
    from ..report.severity import tone

    xs = [ln["step"] if ln["step"] is not None else i for i, ln in enumerate(lines)]
    names = sorted({k for ln in lines for k in ln["metrics"]})
    labels = {k: v for ln in lines for k, v in (ln.get("labels") or {}).items() if isinstance(v, str)}
    series = {_title(labels.get(k, k)): (xs, [ln["metrics"].get(k) if ln["metrics"].get(k) is not None else math.nan
                                      for ln in lines]) for k in names}
    chart = f'<img alt="metric trends" src="{curves(series)}">' if series and lines else "<p>no metrics yet</p>"
    diags = sorted({k for ln in lines for k in ln["verdicts"]})
    head = "".join(f"<th>{html.escape(d)}</th>" for d in diags)
    rows = []
    for x, ln in zip(xs, lines):
        cells = "".join(f'<td class="{tone(ln["verdicts"].get(d))}">{html.escape(str(ln["verdicts"].get(d, "")))}</td>'
                        for d in diags)
        alarms = "; ".join(html.escape(a.get("message", "")) for a in ln.get("alarms", []) if isinstance(a, dict))
        rows.append(f"<tr><td>{x}</td><td>{html.escape(shown(ln['snapshot']))}</td>{cells}<td>{alarms}</td></tr>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
            "padding:2px 6px;font-size:13px}.good{background:#d7f0d7}.warn{background:#fbeccb}.bad{background:#f6c9c9}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{len(lines)} snapshot(s) evaluated.</p>{chart}"
            f"<table><tr><th>step</th><th>snapshot</th>{head}<th>alarms</th></tr>{''.join(rows)}</table></body></html>")


def _title(text: str) -> str:
    """A chart title from a trend file, which may come from anywhere: short and printable (the figures draw
    ``$`` as written: :func:`gandiag.report.figures.literal_text`)."""
    from ..safety.text import clean

    return clean(text)[:60]


def page_bytes(lines: list, title: str) -> bytes:
    """The trend report's bytes (a trend file or a file name may hold what UTF-8 cannot)."""
    from ..safety.text import utf8

    return utf8(render(lines, title))


def shown(name) -> str:
    """A file name as it can be printed or written into a report (:func:`gandiag.safety.text.clean`)."""
    from ..safety.text import clean

    return clean(name)


def redraw(folder: Path, title: str) -> Path:
    path = Path(folder) / TREND_NAME
    lines = read_trend(path) if path.exists() else []
    return write_bytes(Path(folder) / TREND_REPORT, page_bytes(lines, title), "trend report")
