"""What a feature extractor is: the protocol, the spec a plugin registers, and shared helpers.

An extractor maps a batch of samples (uint8 NCHW images, float points or
(N, T, C) sequences) to named *roles*: ``pool`` (the embedding FID, KID,
precision/recall and the diagnostics read), when the network classifies,
``logits`` (IS and class modes), and for sequences ``series``, the sequences
themselves, which the sequence metrics read (:mod:`.sequence_stats`). One
pass of the extractor over a sample set fills a
:class:`~gandiag.features.featureset.FeatureSet`, which every metric then
reads: nothing is extracted twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

import torch


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
    # Optional: metric labels people should read on these features, e.g. {"FID": "FD"} for sequence features
    # (a Fréchet distance that is not Inception's); results label them "FD [sequence-stats]".
    metric_labels: dict = field(default_factory=dict)
    # False for model-free extractors (points, sequence-stats): --feature-weights for one is refused, not ignored.
    takes_weights: bool = True


def sha256_file(path) -> str:
    from ..errors import FeatureExtractorError
    from ..safety.files import open_regular

    h = hashlib.sha256()
    with open_regular(path, "a weights file", error=FeatureExtractorError) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_rgb(batch: torch.Tensor) -> torch.Tensor:
    return batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
