"""Training sections: the gradient-health verdict with its parts' numbers, per-layer norms, and log.jsonl curves.

The gradient-health verdict is read by its documented keys
(docs/diagnostics.md): the parts ``output``, ``adversarial`` and ``log``,
each a dict of numbers, with per-layer maps at ``adversarial.grad_norm.{G,D}``
and ``adversarial.sigma_max.{G,D}``. Each part's numbers are shown next to
the reasons they raised, so a reader checks the value a threshold was
compared with. Without the diagnostic, the last record of ``log.jsonl``
gives the per-layer norms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .. import figures
from .common import Section, verdict_block

PARTS = (("output", "output: a fresh batch through the generator"),
         ("adversarial", "adversarial: G and D on a fresh training batch"),
         ("log", "log: trends over log.jsonl"))
LAYER_MAPS = ("grad_norm", "sigma_max")  # per-layer maps, drawn rather than listed


def layer_map(v) -> Optional[dict]:
    """{layer: float (NaN for None)} when ``v`` maps layer names to numbers, else None."""
    if not isinstance(v, dict) or not v:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) or x is None for x in v.values()):
        return None
    return {str(k): _float(x) for k, x in v.items()}


def _float(x) -> float:
    """A number as a float: NaN for None, ±inf for an integer too large for a float (a hostile log)."""
    if x is None:
        return np.nan
    try:
        return float(x)
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")


def per_net(v) -> dict:
    """{"G": {layer: value}, "D": ...} from ``{net: layer map}``, keeping only well-formed maps."""
    if not isinstance(v, dict):
        return {}
    return {str(net): m for net, m in ((net, layer_map(x)) for net, x in v.items()) if m}


def part_rows(part: dict) -> list:
    """(key, value) for a part's numbers, one level of nesting flattened (``grad_norm_total.G``)."""
    from .provenance import flatten

    shown = {k: v for k, v in part.items() if k not in LAYER_MAPS and k != "reasons"}
    return flatten(shown, limit=80)


def log_norms(view) -> tuple[dict, dict, str]:
    """(gradient norms, spectral norms, where from) of the last log.jsonl record that has them."""
    log = read_training_log(view)
    last = next((r for r in reversed(log or []) if isinstance(r.get("grad_norm"), dict)), None)
    if not last:
        return {}, {}, ""
    return per_net(last["grad_norm"]), per_net(last.get("sigma_max")), f"log.jsonl, step {last.get('step')}"


class GradientNorms(Section):
    name, title, order = "gradients", "Gradient norms per layer", 80

    def render(self, view):
        d = view.diagnostic("gradient_health")
        parts, grads, spec = [], {}, {}
        source = "the gradient-health diagnostic (adversarial part)"
        if d:
            parts.append(verdict_block(view, "gradient health", "gradient_health", d))
            parts += [self.part_table(view, d[key], label) for key, label in PARTS if isinstance(d.get(key), dict)]
            adv = d.get("adversarial") if isinstance(d.get("adversarial"), dict) else {}
            grads, spec = per_net(adv.get("grad_norm")), per_net(adv.get("sigma_max"))
        if not grads and not spec:
            grads, spec, source = log_norms(view)
        for title, group, xl in (("Gradient L2 norm", grads, "‖∇‖ (log scale)"), ("Top singular value", spec, "σ_max")):
            if group:
                parts.append(view.render("{{ figure(uri, cap, 'per-layer norms') }}", uri=figures.hbars(group, title, xl),
                                         cap=f"{title} per layer, from {source}."))
        if not parts:
            return view.empty("No gradient information: no gradient-health diagnostic and no log.jsonl with gradient norms.")
        return "".join(parts)

    @staticmethod
    def part_table(view, part: dict, label: str) -> str:
        return view.render("<h4>{{ label }}</h4>{{ kv_table(rows) }}", label=label, rows=part_rows(part))


# --------------------------------------------------------------------------- training curves


def training_log_path(view) -> Optional[Path]:
    """log.jsonl beside the evaluated gandiag checkpoint (relative paths also against the results JSON).

    Results read from a file (``gandiag report x.json``) are data: their ``generator.path`` never names an
    absolute path or one climbing out with ``..``, so a results file cannot choose which log the report
    embeds; a report made by the evaluation itself reads the log of the checkpoint it evaluated."""
    from ...training.trainlog import find_log

    g = view.results.generator or {}
    p = g.get("path")
    if not p or not isinstance(p, str) or g.get("format") == "samples":
        return None
    if view.json_path is not None and (Path(p).is_absolute() or ".." in Path(p).parts):
        return None
    return find_log(p, view.json_path.parent if view.json_path is not None else None)


def read_training_log(view) -> Optional[list]:
    path = training_log_path(view)
    if path is None:
        return None
    from ...errors import GandiagError
    from ...training.trainlog import read_log

    try:
        return read_log(path)
    except GandiagError:
        return None  # unreadable: the section says there is no log to show


SKIP_CURVES = {"step", "time", "eval_seconds", "lr_g", "lr_d"}


def curve_series(records: list, limit: int = 15) -> dict:
    """{name: (steps, values)} of every numeric field of the step records (nested grad_norm_total / eval flattened)."""
    series: dict = {}

    def add(name, step, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        series.setdefault(name, ([], []))
        series[name][0].append(step)
        series[name][1].append(float(v))

    for rec in records:
        step = rec.get("step")
        if not isinstance(step, (int, float)) or rec.get("event"):
            continue
        for k, v in rec.items():
            if k in SKIP_CURVES:
                continue
            if isinstance(v, dict) and k in ("grad_norm_total", "eval"):
                for k2, v2 in v.items():
                    add(f"{k}.{k2}", step, v2)
            else:
                add(k, step, v)
    return dict(list(series.items())[:limit])


class TrainingCurves(Section):
    name, title, order = "training", "Training curves", 90

    def render(self, view):
        records = read_training_log(view)
        if records is None:
            return view.empty("No training log: log.jsonl sits beside a gandiag checkpoint, and these results are not of one.")
        events = [r for r in records if r.get("event")]
        series = curve_series(records)
        if not series:
            return view.empty("log.jsonl holds no numeric records.")
        uri = figures.curves(series)
        return view.render("""{{ figure(uri, cap, 'training curves') }}
{% for e in events %}<p class="error">step {{ e.step }}: {{ e.event }}</p>{% endfor %}""",
                           uri=uri, cap=f"{len(records)} records from {training_log_path(view)}.", events=events)
