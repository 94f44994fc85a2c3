"""The 2D Gaussian mixtures of the mode-collapse literature (PacGAN, VEEGAN), and their protocol.

``ring8``: 8 modes evenly spaced on a circle of radius 1 (8 *distinct* angles
2πk/8), std 0.01. ``grid25``: means {−4,−2,0,2,4}², std 0.05. The specs and
the PacGAN/VEEGAN protocol live together so the trainer, the real-data
source, the benchmarks and the diagnostics share one definition
(REFERENCES.md, "Mode collapse"):

1. each point goes to its nearest mode (Euclidean distance to the means);
2. it is *high quality* (HQ) if it lies within 3σ of that mode's mean
   (σ = the mixture's per-coordinate std, so the threshold is a distance of 3σ);
3. a mode is *captured* when it has at least one HQ point;
4. %HQ = HQ points / all points (N = 2,500 in the papers);
5. reverse KL = KL(p ‖ u) where p is the histogram of HQ points over the
   modes, normalised to sum 1, and u is uniform over the K modes:
   Σ_{p_k>0} p_k log(K p_k), natural log, empty modes contributing 0.
   It is 0 for a perfectly balanced generator and log K when every HQ
   point sits in one mode. Low-quality points are left out of the
   histogram (our reading of PacGAN, whose KL is taken over the modes the
   samples were assigned to); with no HQ point at all it is undefined and
   reported as ``None``.
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


# --- the PacGAN/VEEGAN protocol on these mixtures ----------------------------------------------

HQ_SIGMAS = 3.0


def mixture_mode_stats(points: np.ndarray, mixture: Mixture, hq_sigmas: float = HQ_SIGMAS) -> dict:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != mixture.means.shape[1]:
        raise ValueError(f"expected points of shape (N, {mixture.means.shape[1]}), got {pts.shape}")
    k = mixture.num_modes
    n = len(pts)
    finite = np.isfinite(pts).all(1)
    d2 = ((pts[:, None, :] - mixture.means[None, :, :]) ** 2).sum(-1)  # (N, K)
    d2[~finite] = np.inf
    nearest = d2.argmin(1)
    dist = np.sqrt(d2[np.arange(n), nearest]) if n else np.zeros(0)
    hq = finite & (dist <= hq_sigmas * mixture.std)
    counts = np.bincount(nearest[hq], minlength=k)
    n_hq = int(hq.sum())
    if n_hq:
        p = counts / n_hq
        nz = p > 0
        rkl = float(np.sum(p[nz] * np.log(k * p[nz])))
    else:
        rkl = None
    return {
        "modes_captured": int((counts > 0).sum()),
        "modes_total": k,
        "high_quality_fraction": n_hq / n if n else 0.0,
        "reverse_kl": rkl,
        "counts": [int(c) for c in counts],
        "nearest_counts": [int(c) for c in np.bincount(nearest[finite], minlength=k)],  # every finite point, HQ or not
        "missing_modes": [int(i) for i in np.flatnonzero(counts == 0)],
        "n": n,
        "non_finite": int((~finite).sum()),
        "hq_sigmas": hq_sigmas,
    }
