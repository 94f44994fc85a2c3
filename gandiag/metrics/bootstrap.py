"""Bootstrap confidence intervals for FID, precision, recall, density and coverage.

Each of ``n`` resamples draws the generated *and* the real feature rows with
replacement (one ``numpy`` generator seeded by ``--seed``), recomputes the
metric, and the 95% interval is read from the 2.5th and 97.5th percentiles.

Two details keep the interval honest and affordable:

- **Recentring.** Resampling with replacement shrinks the number of distinct
  points, which biases FID upward (FID grows as N falls) and changes the
  k-NN radii behind precision/recall/density/coverage. The bootstrap
  distribution's *spread* is what we want, not its shifted centre, so the
  interval stored is ``estimate + (percentile − bootstrap mean)``: the
  percentile interval recentred on the full-sample estimate. The raw
  bootstrap mean is stored too (``bootstrap_mean``) so the shift is visible.
  Bounded metrics are clipped to their range ([0, 1] for precision, recall,
  coverage; ≥ 0 for FID and density).
- **Cost.** FID of a resample uses :class:`~gandiag.features.stats.FeatureStats` of the
  resampled rows (one d×d product per set), the same Fréchet distance code as
  the metric itself. The k-NN metrics are recomputed on resamples of at most
  ``PRDC_CAP`` rows per set (5,000), so a resample costs O(cap²·d) and not
  O(N²·d); with more rows than the cap, the interval describes a 5,000-row
  evaluation and is therefore wider (conservative) than the full one's.
  In a resample, copies of one original point are never each other's
  neighbours (a duplicate at distance 0 would shrink every k-NN radius).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch

from ..features.stats import FeatureStats
from .fid import frechet_distance
from .prdc import ball_metrics, self_radii

PRDC_CAP = 5000
BOOTSTRAPPED = ("fid", "precision", "recall", "density", "coverage")
BOUNDS = {"fid": (0.0, math.inf), "density": (0.0, math.inf), "precision": (0.0, 1.0),
          "recall": (0.0, 1.0), "coverage": (0.0, 1.0)}
CI_METHOD = "bootstrap percentile interval recentred on the estimate"


def radii_excluding_copies(x: torch.Tensor, src: torch.Tensor, k: int) -> torch.Tensor:
    """k-th nearest-neighbour distance of each row, ignoring rows drawn from the same original point."""
    return self_radii(x, (k,), src)[k]


def _prdc_once(real: torch.Tensor, fake: torch.Tensor, ri: np.ndarray, fi: np.ndarray, prc_k: int, dc_k: int,
               wanted: set) -> dict:
    """The wanted ball metrics of one resample, in one set of distance passes (copies are not neighbours)."""
    return ball_metrics(real[ri], fake[fi], prc_k, dc_k, tuple(sorted(wanted)),
                        x_src=torch.from_numpy(ri).to(real.device), y_src=torch.from_numpy(fi).to(fake.device))


def add_confidence_intervals(out_metrics: dict, chosen, mctx, n: int, progress: Optional[Callable] = None) -> None:
    """Add ``ci95: [lo, hi]``, ``bootstrap: n`` and ``bootstrap_mean`` to each bootstrapped metric in ``out_metrics``.

    ``chosen`` are the metric objects that ran (their ``role`` says which features
    to resample); metrics other than FID/precision/recall/density/coverage keep
    their own uncertainty (KID and IS report a std over subsets/splits).
    """
    if n <= 0 or mctx.real is None:
        return
    if n < 20:
        mctx.warnings.append(f"bootstrap: {n} resamples give a rough 95% interval; use at least 100")
    roles = {m.name: m.role for m in chosen}
    names = [k for k in BOOTSTRAPPED if k in out_metrics and k in roles and _finite(out_metrics[k].get("value"))]
    if not names:
        return
    rng = np.random.default_rng(mctx.options.seed)
    opts = mctx.options
    draws: dict = {k: [] for k in names}
    by_role: dict = {}
    for k in names:
        by_role.setdefault(roles[k], []).append(k)
    feats = {r: (mctx.real.features(r), mctx.fake.features(r)) for r in by_role}
    device = opts.device
    dev_feats = {r: (a.to(device, torch.float64), b.to(device, torch.float64)) for r, (a, b) in feats.items()}
    capped = False
    for _ in range(n):
        for role, ks in by_role.items():
            real, fake = feats[role]
            nr, nf = real.shape[0], fake.shape[0]
            if "fid" in ks:
                ri, fi = rng.integers(0, nr, nr), rng.integers(0, nf, nf)
                xr, xf = real[ri], fake[fi]
                try:
                    fid = frechet_distance(FeatureStats.of(xr), FeatureStats.of(xf), xr, xf, device)["value"]
                except (FloatingPointError, ValueError, RuntimeError):
                    fid = math.nan
                draws["fid"].append(fid)
            prdc = set(ks) - {"fid"}
            if prdc:
                mr, mf = min(nr, PRDC_CAP), min(nf, PRDC_CAP)
                capped |= mr < nr or mf < nf
                ri, fi = rng.integers(0, nr, mr), rng.integers(0, nf, mf)
                dr, df = dev_feats[role]
                vals = _prdc_once(dr, df, ri, fi, opts.prc_k, opts.dc_k, prdc)
                for k in prdc:
                    draws[k].append(vals[k])
        if progress:
            progress()
    if capped:
        mctx.warnings.append(f"bootstrap: precision/recall/density/coverage resampled {PRDC_CAP:,} rows per set "
                             "(fewer than evaluated), so their intervals are conservative")
    for k in names:
        d = np.asarray(draws[k], dtype=np.float64)
        d = d[np.isfinite(d)]
        if len(d) < max(2, n // 2):
            mctx.warnings.append(f"bootstrap: {k} failed in {n - len(d)} of {n} resamples; no interval reported")
            continue
        est = float(out_metrics[k]["value"])
        shift = est - float(d.mean())
        lo_b, hi_b = BOUNDS[k]
        lo = min(max(float(np.percentile(d, 2.5)) + shift, lo_b), hi_b)
        hi = min(max(float(np.percentile(d, 97.5)) + shift, lo_b), hi_b)
        out_metrics[k].update({"ci95": [min(lo, est), max(hi, est)], "bootstrap": n,
                               "bootstrap_mean": float(d.mean()), "ci_method": CI_METHOD})


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
