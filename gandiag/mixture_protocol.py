"""The 2D-mixture mode-collapse protocol of PacGAN and VEEGAN.

Given generated points and the :class:`~gandiag.mixtures.Mixture` they should
come from (REFERENCES.md, "Mode collapse"):

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

The mode-collapse diagnostics reuse this function, so the trainer's periodic
evaluation, the benchmark table and ``gandiag diagnose`` share one definition.
"""

from __future__ import annotations

import math

import numpy as np

from .mixtures import Mixture

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


def max_reverse_kl(mixture: Mixture) -> float:
    """The reverse KL of a generator that puts every HQ point in one mode (log K)."""
    return math.log(mixture.num_modes)
