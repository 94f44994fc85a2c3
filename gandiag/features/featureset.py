"""The features of one sample set, per role, kept once for every metric and diagnostic.

Every role's features are kept (the k-NN metrics and the diagnostics need
rows), and the streamed roles (``pool``: FID's) also accumulate float64
statistics batch by batch, so FID never re-reads the features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from .stats import FeatureStats


@dataclass
class FeatureSet:
    """All features of one sample set, per role, plus float64 streaming stats."""

    n: int = 0
    _chunks: dict = field(default_factory=dict)
    _stats: dict = field(default_factory=dict)
    labels: Optional[np.ndarray] = None  # class labels where known (real data, conditional samples)
    streamed: tuple = ("pool",)  # roles whose statistics accumulate batch by batch (FID's)

    def add(self, batch_features: dict) -> None:
        for role, x in batch_features.items():
            x = x.detach()
            self._chunks.setdefault(role, []).append(x.float().cpu())
            if role in self.streamed:
                self._stats.setdefault(role, FeatureStats.empty(x.shape[1])).update(x)
        self.n += int(next(iter(batch_features.values())).shape[0])

    @property
    def roles(self) -> list:
        return list(self._chunks)

    def dim(self, role: str) -> int:
        return int(self._chunks[role][0].shape[1])

    def features(self, role: str) -> torch.Tensor:
        chunks = self._chunks[role]
        if len(chunks) > 1:  # concatenate once, keep the result
            self._chunks[role] = chunks = [torch.cat(chunks)]
        return chunks[0]

    def stats(self, role: str) -> FeatureStats:
        if role not in self._stats:  # a role nobody streamed: computed once, on demand
            self._stats[role] = FeatureStats.of(self.features(role))
        return self._stats[role]

    def subset(self, index) -> "FeatureSet":
        """Rows ``index`` of every role, stats recomputed (bootstrap, per-class work)."""
        out = FeatureSet()
        out.add({r: self.features(r)[index] for r in self.roles})
        if self.labels is not None:
            out.labels = np.asarray(self.labels)[np.asarray(index)]
        return out
