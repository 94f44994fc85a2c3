"""Feature extractors and the features they produce, kept once for every metric.

An extractor maps a batch of samples (uint8 NCHW images, or float points) to
named *roles*: ``pool`` (the embedding FID, KID, precision/recall and the
diagnostics read) and, when the network classifies, ``logits`` (IS and class
modes). One pass of the extractor over a sample set fills a
:class:`FeatureSet`, which every metric then reads: nothing is extracted twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

import numpy as np
import torch

from .stats import FeatureStats


class FeatureExtractor(Protocol):
    name: str
    roles: dict  # role -> feature dimension, e.g. {"pool": 2048, "logits": 1008}
    kinds: tuple  # sample kinds it accepts: ("images",) or ("points",)
    weights_sha256: Optional[str]
    preprocessing: str  # how inputs are resized/normalised, for provenance

    def __call__(self, batch: torch.Tensor) -> dict:
        """Batch on the extractor's device → {role: float32 (B, d) tensor}."""


@dataclass
class ExtractorSpec:
    """What a plugin registers: a name and a way to build the extractor."""

    name: str
    description: str
    kinds: tuple
    build: Callable  # build(weights_path: Optional[str], device: str) -> FeatureExtractor
    default_for: tuple = ()  # real sources for which this is the default extractor


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


def sha256_file(path) -> str:
    from .errors import FeatureExtractorError
    from .safety.files import open_regular

    h = hashlib.sha256()
    with open_regular(path, "a weights file", error=FeatureExtractorError) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_rgb(batch: torch.Tensor) -> torch.Tensor:
    return batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
