"""Metrics computed from features that were extracted once.

A metric names the feature *role* it reads (``pool``: the embedding used by
FID/KID/precision-recall; ``logits``: class logits, for IS) and gets a
:class:`MetricContext` holding both feature sets. Metrics are plugins: the
built-ins are registered by :mod:`gandiag.default_plugins.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Protocol

import torch

from ..features.featureset import FeatureSet


@dataclass
class MetricOptions:
    seed: int = 2020
    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prc_k: int = 3
    dc_k: int = 5
    bootstrap: int = 0
    device: str = "cpu"

    def comparable(self) -> dict:
        """The options that change a metric's value; two runs compare only when these are equal."""
        return {"seed": self.seed, "is_splits": self.is_splits, "kid_subsets": self.kid_subsets,
                "kid_subset_size": self.kid_subset_size, "prc_k": self.prc_k, "dc_k": self.dc_k}


@dataclass
class MetricContext:
    fake: FeatureSet
    real: Optional[FeatureSet]
    options: MetricOptions
    warnings: list = field(default_factory=list)
    shared: dict = field(default_factory=dict)  # work metrics share, e.g. PRDC distances


class Metric(Protocol):
    name: str  # key in results.metrics
    label: str  # for people: "FID"
    role: str  # feature role read: "pool" | "logits"
    needs_real: bool
    higher_is_better: bool

    def compute(self, ctx: MetricContext) -> dict:
        """Return {"value": float, ...} plus "std", "ci95" or extra numbers where defined."""


def finite_or_raise(name: str, value: float) -> float:
    """No metric may report NaN silently: a NaN is a bug or broken input, say which."""
    if not math.isfinite(value):
        raise FloatingPointError(f"{name} came out {value}; the features contain NaN/Inf or are degenerate")
    return float(value)


def as_float64(x) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)
