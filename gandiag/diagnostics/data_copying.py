"""The arithmetic of memorisation: distances to the training set, copies, authenticity and Meehan's C_T.

Plain functions of feature arrays (torch or numpy, rows are samples), so a
notebook can call them on any features. Three sets: ``train`` (what the
generator was fitted on), ``held_out`` (real samples it never saw, from the
same distribution) and ``fake`` (its samples). Every test compares how close
the generated samples sit to the training set with how close the held-out
ones do: a model that generalises is no closer to its training samples than
new real data is; a model that copies is much closer.

- :func:`nearest` gives each row's nearest training sample and the distance,
  :func:`distances` those of all three sets, once for every test below;
- copies (:func:`analyse`): a generated sample closer to a training sample
  than all but ``copy_quantile`` of the held-out samples are (the threshold
  τ is that quantile of the held-out distances, so ≈ 5% of held-out samples
  count as copies by construction: the baseline a generated share is read
  against);
- authenticity (Alaa et al. 2022, "How Faithful is your Synthetic Data?"): a
  sample is *not* authentic when it is closer to its nearest training sample
  t than t is to t's own nearest training neighbour. This is the paper's
  definition per generated sample; the authors' and synthcity's code index
  the real-to-real distances by the nearest *synthetic* sample's index,
  which coincides with it only when both sets have the same rows, so we do
  not follow it there. Held-out samples are judged the same way, as the
  baseline (new real data is often "inauthentic" by this rule too);
- :func:`c_t` (Meehan, Chaudhuri & Dasgupta 2020, "A Non-Parametric Test to
  Detect Data-Copying in Generative Models"): the training set is cut into
  k-means cells; in each cell, the distances of generated and of held-out
  samples to the cell's nearest training sample are compared by a
  Mann-Whitney U test, z-scored under the null (mean nm/2 − 0.5, the
  authors' continuity term; variance nm(n+m+1)/12); C_T is the average of
  the cell z-scores weighted by the held-out share of each cell, over cells
  holding more than ``min_cell`` generated samples. C_T ≪ 0: generated
  samples are closer to the training set than held-out ones, i.e. copying
  (in those cells); C_T > 0: farther (under-fitting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

CHUNK = 2048


def _rows(x) -> torch.Tensor:
    return (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).double()


def nearest(x, train, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each row of ``x``'s nearest row of ``train``; ``exclude_self``: x is train, skip i = i."""
    x, train = _rows(x), _rows(train)
    dist = np.empty(len(x))
    index = np.empty(len(x), dtype=np.int64)
    for s in range(0, len(x), CHUNK):
        d = torch.cdist(x[s:s + CHUNK], train)
        if exclude_self:
            r = torch.arange(d.shape[0])
            d[r, r + s] = float("inf")
        v, i = d.min(1)
        dist[s:s + CHUNK], index[s:s + CHUNK] = v.numpy(), i.numpy()
    return dist, index


def copy_threshold(held_out_dist: np.ndarray, quantile: float) -> float:
    """τ: the ``quantile`` quantile of the held-out samples' distances to the training set."""
    return float(np.quantile(held_out_dist, quantile))


def inauthentic(dist: np.ndarray, index: np.ndarray, train_nn: np.ndarray) -> np.ndarray:
    """Per sample: closer to its nearest training sample than that sample's own nearest training neighbour."""
    return dist < train_nn[index]


def mann_whitney_z(generated: np.ndarray, held_out: np.ndarray) -> float:
    """Meehan et al.'s z-scored U: U counts (generated, held-out) pairs with the generated distance larger."""
    from scipy.stats import rankdata

    m, n = len(generated), len(held_out)
    ranks = rankdata(np.concatenate([generated, held_out]))  # ties share their mean rank: they count ½
    u = ranks[:m].sum() - m * (m + 1) / 2
    mean = n * m / 2 - 0.5
    std = math.sqrt(n * m * (n + m + 1) / 12)
    return float((u - mean) / std)


def training_cells(train, k: int, seed: int = 0):
    """A k-means partition of the training features (sklearn, seeded): the fitted model."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=2, random_state=seed).fit(_rows(train).numpy())


def c_t(train, held_out, fake, k: int, min_cell: int, seed: int = 0) -> dict:
    """Meehan et al.'s C_T with ``k`` cells; cells with ≤ ``min_cell`` generated samples are left out."""
    model = training_cells(train, k, seed)
    t, h, f = (_rows(a) for a in (train, held_out, fake))
    tc, hc, fc = model.labels_, model.predict(h.numpy()), model.predict(f.numpy())
    cells = []
    for c in range(k):
        ts, hs, fs = t[tc == c], h[hc == c], f[fc == c]
        if len(hs) == 0 or len(ts) == 0:  # no held-out sample to compare with: the cell has no weight
            continue
        entry = {"cell": c, "n_train": int(len(ts)), "n_held_out": int(len(hs)), "n_fake": int(len(fs)),
                 "held_out_share": len(hs) / len(h), "z": None}
        if len(fs) > min_cell:
            entry["z"] = mann_whitney_z(nearest(fs, ts)[0], nearest(hs, ts)[0])
        cells.append(entry)
    judged = [e for e in cells if e["z"] is not None]
    weight = sum(e["held_out_share"] for e in judged)
    value = sum(e["held_out_share"] * e["z"] for e in judged) / weight if judged else None
    return {"c_t": value, "cells": k, "cells_judged": len(judged), "held_out_share_judged": weight,
            "min_cell": min_cell, "worst_cells": sorted(judged, key=lambda e: e["z"])[:5]}


@dataclass
class Distances:
    """Each set's nearest training sample, (distance, index) per row: the passes every test of copying reads,
    made once (:func:`distances`)."""

    fake: tuple
    held_out: tuple
    train_nn: np.ndarray  # each training sample's distance to its nearest other training sample


def distances(train, held_out, fake) -> Distances:
    return Distances(nearest(fake, train), nearest(held_out, train), nearest(train, train, exclude_self=True)[0])


def analyse(d: Distances, copy_quantile: float, keep_pairs: int) -> dict:
    """Distances, copies and authenticity of the generated samples against the training set, with the held-out
    samples as the baseline (``analyse(distances(train, held_out, fake), ...)`` from a notebook)."""
    (fd, fi), (hd, hi), train_nn = d.fake, d.held_out, d.train_nn
    tau = copy_threshold(hd, copy_quantile)
    copies = fd < tau
    order = np.argsort(fd, kind="stable")[:keep_pairs]
    med_f, med_h = float(np.median(fd)), float(np.median(hd))
    return {
        "n_train": int(len(train_nn)), "n_held_out": int(len(hd)), "n_fake": int(len(fd)),
        "median_distance": med_f, "held_out_median_distance": med_h,
        "distance_ratio": med_f / med_h if med_h > 0 else None,
        "copy_threshold": tau, "copy_quantile": copy_quantile,
        "copy_share": float(copies.mean()), "held_out_copy_share": float((hd < tau).mean()),
        "copied_training_samples": int(len(np.unique(fi[copies]))),
        "inauthentic_share": float(inauthentic(fd, fi, train_nn).mean()),
        "held_out_inauthentic_share": float(inauthentic(hd, hi, train_nn).mean()),
        "closest_pairs": [{"fake": int(i), "train": int(fi[i]), "distance": round(float(fd[i]), 6)} for i in order],
    }
