"""Metrics computed from features that were extracted once.

A metric names the feature *role* it reads (``pool``: the embedding used by
FID/KID/precision-recall; ``logits``: class logits, for IS) and gets a
:class:`MetricContext` holding both feature sets. Metrics are plugins: the
built-ins are registered by :mod:`gandiag.default_plugins.metrics`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Protocol, Sequence

from ..features.featureset import FeatureSet

if TYPE_CHECKING:
    from ..options import EvalOptions


@dataclass
class MetricContext:
    """What a metric reads: both feature sets and the evaluation's options (seed, splits, subsets, k, device)."""

    fake: FeatureSet
    real: Optional[FeatureSet]
    options: "EvalOptions"
    warnings: list = field(default_factory=list)
    shared: dict = field(default_factory=dict)  # work metrics share, e.g. PRDC distances
    # Published FID statistics given as --real (a ReferenceStats): then ``real`` is None, and only metrics whose
    # ``real_statistics_suffice`` is true run (FID, on ``real_statistics.stats(role)``); the others are not applicable.
    real_statistics: Optional[object] = None
    chosen: tuple = ()  # names of the metrics that run, so metrics sharing work do only what is asked for


class Metric(Protocol):
    name: str  # key in results.metrics
    label: str  # for people: "FID"
    role: str  # feature role read: "pool" | "logits"
    needs_real: bool
    higher_is_better: bool
    # Optional, default False: the real data's mean and covariance are all it reads (FID), so it runs
    # against published statistics (--real stats.npz) where other metrics are recorded as not applicable.
    real_statistics_suffice: bool

    def compute(self, ctx: MetricContext) -> dict:
        """Return {"value": float, ...} plus "std", "ci95" or extra numbers where defined."""


def finite_or_raise(name: str, value: float) -> float:
    """No metric may report NaN silently: a NaN is a bug or broken input, say which."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{name} came out {value}; the features contain NaN/Inf or are degenerate")
    return float(value)


def choose_metrics(names: Optional[Sequence[str]], roles: list, have_real: bool) -> list:
    """The metrics named (``[]``: none, diagnostics only), else every registered one these features and data allow."""
    from ..errors import GandiagError
    from ..plugins import registry

    reg = registry("metric")
    if names is None:
        return [m for m in reg.values() if m.role in roles and (have_real or not m.needs_real)]
    chosen = [reg[n] for n in names]
    for m in chosen:
        if m.role not in roles:
            raise GandiagError(f"metric {m.name!r} needs {m.role!r} features, which this feature extractor does not give")
        if m.needs_real and not have_real:
            raise GandiagError(f"metric {m.name!r} needs real data: pass --real")
    return chosen


def not_applicable(metric, ctx: MetricContext) -> Optional[str]:
    """Why ``metric`` cannot run on these inputs (recorded with a null value, not an error), or None.

    Against published statistics only metrics that read nothing of the real data but its mean and
    covariance run; a gate on any other fails closed (its value is null).
    """
    if ctx.real is None and ctx.real_statistics is not None and metric.needs_real \
            and not getattr(metric, "real_statistics_suffice", False):
        from ..data.reference_stats import not_applicable_reason

        return not_applicable_reason(metric.label, ctx.real_statistics)
    return None


def extractor_metrics(chosen: list, extractor, primary: bool = False) -> list:
    """The chosen metrics an extractor can give (those whose feature role it has: CMMD only CLIP's), for a further
    extractor less those computed on the samples themselves (``reads_samples``: the sequence metrics), which the
    primary extractor's pass gave."""
    return [m for m in chosen if m.role in extractor.roles and (primary or not getattr(m, "reads_samples", False))]


def compute_metrics(chosen: list, ctx: MetricContext, features: str, key_features: Optional[str] = None) -> dict:
    """Every chosen metric on the shared features, labelled with them; bootstrap intervals when asked for.

    Keys follow the grammar of :func:`gandiag.results.metric_key`: plain for
    the run's primary extractor, ``name@features`` for the others
    (``key_features``). A metric that raises is recorded with its error and a
    null value (a gate on it fails), not a crash: the other metrics and the
    verdicts still stand.
    """
    from ..plugins import registry
    from ..results import metric_key, metric_label

    extractors = registry("feature extractor")
    spec = extractors[features] if features in extractors else None
    relabel = dict(getattr(spec, "metric_labels", None) or {})  # e.g. FID -> FD on sequence features
    out = {}
    ctx.chosen = tuple(m.name for m in chosen)
    for m in chosen:
        t0 = time.perf_counter()
        why = not_applicable(m, ctx)
        try:
            value = {"value": None, "not_applicable": why} if why else m.compute(ctx)
        except Exception as exc:
            ctx.warnings.append(f"{m.name} could not be computed: {type(exc).__name__}: {exc}")
            value = {"value": None, "error": f"{type(exc).__name__}: {exc}"}
        label = m.label if getattr(m, "reads_samples", False) else metric_label(relabel.get(m.label, m.label), features)
        value.update({"label": label, "features": features,
                      "higher_is_better": m.higher_is_better, "seconds": round(time.perf_counter() - t0, 4)})
        out[m.name] = value
    if ctx.options.bootstrap and ctx.real is None and ctx.real_statistics is not None:
        ctx.warnings.append("bootstrap: no intervals against FID statistics (--real): the real features are not "
                            "there to resample")
    if ctx.options.bootstrap:
        from .bootstrap import add_confidence_intervals

        add_confidence_intervals(out, chosen, ctx, ctx.options.bootstrap)
    return {metric_key(name, key_features): value for name, value in out.items()}
