"""Points are their own features: the extractor for 2D mixtures and other low-dimensional samples."""

from __future__ import annotations

import torch

from .extractor import ExtractorSpec


class PointsExtractor:
    """2D (or any low-dimensional) points are their own features."""

    name = "points"
    roles = {"pool": None}
    kinds = ("points",)
    preprocessing = "identity (raw coordinates)"
    weights_sha256 = None

    def __init__(self, weights_path=None, device: str = "cpu"):
        self.device = device

    def __call__(self, batch: torch.Tensor) -> dict:
        return {"pool": batch.to(self.device, torch.float32)}


POINTS = ExtractorSpec(
    "points", "raw coordinates of low-dimensional samples (2D mixtures)", ("points",),
    lambda weights_path=None, device="cpu": PointsExtractor(weights_path, device), takes_weights=False,
)
