"""The 2D Gaussian mixtures of the mode-collapse literature (PacGAN, VEEGAN).

``ring8``: 8 modes evenly spaced on a circle of radius 1 (8 *distinct* angles
2πk/8), std 0.01. ``grid25``: means {−4,−2,0,2,4}², std 0.05. The evaluation
protocol (nearest mode, high quality within 3σ) lives with the mode-collapse
diagnostics; the specs live here so the trainer, the real-data source and the
diagnostics share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mixture:
    name: str
    means: np.ndarray  # (K, 2)
    std: float

    @property
    def num_modes(self) -> int:
        return len(self.means)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """n points with equal-probability modes; returns (points float32, mode labels)."""
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, self.num_modes, size=n)
        pts = self.means[labels] + rng.normal(0.0, self.std, size=(n, 2))
        return pts.astype(np.float32), labels


def _ring8() -> Mixture:
    angles = 2 * np.pi * np.arange(8) / 8
    return Mixture("ring8", np.stack([np.cos(angles), np.sin(angles)], 1), 0.01)


def _grid25() -> Mixture:
    g = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return Mixture("grid25", np.array([(x, y) for x in g for y in g]), 0.05)


MIXTURES = {"ring8": _ring8(), "grid25": _grid25()}
