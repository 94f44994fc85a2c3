"""The ``sequence-stats`` feature extractor: model-free statistics of any sequences, no weights.

A feature network is trained on one kind of sequence (``sines``, ``motion``)
and means nothing on another; these statistics mean the same on any
``(N, T, C)`` batch, so FD, KID, precision/recall and density/coverage run on
a user's own sequences, labelled ``FD [sequence-stats]``. Per sequence, per
channel (block by block, in this order; each block holds one value per channel):

====================  =====================================================================
block                 definition (x: one channel's T values, m its mean)
====================  =====================================================================
mean, std, min, max   of x (std: population, ddof 0)
acf 1..5              r_k = Σ_t (x_t − m)(x_{t+k} − m) / Σ_t (x_t − m)²; 0 when k ≥ T or x is constant
diff std              std of x_{t+1} − x_t (0 when T = 1)
band power 1..4       share of the power of rfft(x − m) (bins 1..T//2, DC excluded) in four equal-width
                      frequency bands from 0 to Nyquist; 0 when x is constant or T < 4
====================  =====================================================================

then, when C ≤ 16, the Pearson correlation of every channel pair (upper triangle, row-major;
0 for a constant channel). That is ``14·C + C(C−1)/2`` numbers (sines, C = 5: 80; BasicMotions,
C = 6: 99). The blocks in the data's units (mean, std, min, max, diff std) are compressed by
sign(v)·log(1 + |v|) (:func:`compress`), so that KID's cubic kernel stays in range on raw sensor
values; they still depend on the units, so compare runs on the same data only.

The extractor also gives the ``series`` role, which every sequence extractor gives: the
sequences themselves, one row per sequence, ``[T, C, x[0,0], x[0,1], ..., x[T−1,C−1]]``
(NTC, flattened). The sequence metrics (TimeGAN's discriminative and predictive scores,
autocorrelation and marginal distances, :mod:`gandiag.metrics.sequences`) read it;
:func:`series_to_sequences` undoes it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import FeatureExtractorError
from .extractor import ExtractorSpec

ACF_LAGS = 5
BANDS = 4
MAX_PAIR_CHANNELS = 16  # channel-pair correlations up to this many channels (120 pairs)
SCALE_BLOCKS = (0, 1, 2, 3, 4 + ACF_LAGS)  # mean, std, min, max, diff std: the blocks in the data's units
SEQUENCE_LABELS = {"FID": "FD"}  # a Fréchet distance on sequence features is not Inception's FID


def compress(v: torch.Tensor) -> torch.Tensor:
    """sign(v)·log(1 + |v|): identity-like near 0 (values in [0, 1] change little), logarithmic beyond.

    Raw, an accelerometer channel's mean and extremes (±30 on BasicMotions) make KID's cubic
    kernel (x·y/d + 1)³ reach 10⁶ and its unbiased estimate swing by hundreds (−203 ± 108
    between two halves of the same recordings); compressed, they stay within a few units."""
    return torch.sign(v) * torch.log1p(v.abs())


def feature_dim(channels: int) -> int:
    per_channel = 4 + ACF_LAGS + 1 + BANDS
    pairs = channels * (channels - 1) // 2 if channels <= MAX_PAIR_CHANNELS else 0
    return per_channel * channels + pairs


def check_sequences(batch: torch.Tensor, name: str) -> None:
    if batch.dim() != 3:
        raise FeatureExtractorError(f"the {name} extractor takes sequences shaped (N, steps, channels), "
                                    f"got {tuple(batch.shape)}")


def sequence_statistics(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C) → (B, feature_dim(C)) float32, computed in float64."""
    x = x.to(torch.float64)
    b, t, c = x.shape
    mean = x.mean(1)
    centred = x - mean[:, None, :]
    var = (centred * centred).mean(1)
    std = var.sqrt()
    blocks = [mean, std, x.amin(1), x.amax(1)]
    denom = (centred * centred).sum(1)
    constant = denom <= 1e-12 * (1.0 + (x * x).sum(1))
    safe = torch.where(constant, torch.ones_like(denom), denom)
    for k in range(1, ACF_LAGS + 1):
        if k >= t:
            blocks.append(torch.zeros_like(mean))
            continue
        r = (centred[:, :-k] * centred[:, k:]).sum(1) / safe
        blocks.append(torch.where(constant, torch.zeros_like(r), r))
    blocks.append(x.diff(dim=1).std(1, unbiased=False) if t > 1 else torch.zeros_like(mean))
    for i in SCALE_BLOCKS:  # values in the data's units: compressed so that no channel's scale dominates
        blocks[i] = compress(blocks[i])
    power = torch.fft.rfft(centred, dim=1).abs().square()[:, 1:, :]  # (B, T//2, C), DC dropped
    nbins = power.shape[1]
    if t >= 4 and nbins >= BANDS:
        total = power.sum(1)
        total_safe = torch.where(constant, torch.ones_like(total), total)
        edges = np.linspace(0, nbins, BANDS + 1).round().astype(int)
        for lo, hi in zip(edges[:-1], edges[1:]):
            share = power[:, lo:hi, :].sum(1) / total_safe
            blocks.append(torch.where(constant, torch.zeros_like(share), share))
    else:
        blocks.extend(torch.zeros_like(mean) for _ in range(BANDS))
    feats = torch.stack(blocks, dim=1).reshape(b, -1)  # (B, block, C) → channel-major within each block
    if 2 <= c <= MAX_PAIR_CHANNELS:
        z = centred / torch.where(constant, torch.ones_like(std), std)[:, None, :]
        corr = torch.einsum("btc,btd->bcd", z, z) / t
        corr = torch.where(constant[:, :, None] | constant[:, None, :], torch.zeros_like(corr), corr)
        i, j = torch.triu_indices(c, c, offset=1)
        feats = torch.cat([feats, corr[:, i, j]], dim=1)
    return feats.float()


def sequences_to_series(batch: torch.Tensor) -> torch.Tensor:
    """(B, T, C) → the ``series`` role: rows ``[T, C, flattened NTC values]`` (float32)."""
    b, t, c = batch.shape
    head = torch.tensor([float(t), float(c)], dtype=torch.float32, device=batch.device).expand(b, 2)
    return torch.cat([head, batch.reshape(b, t * c).float()], dim=1)


def series_to_sequences(rows) -> np.ndarray:
    """The ``series`` role's rows → float32 (N, T, C), the shape read from the rows' first two columns."""
    rows = np.asarray(rows.cpu() if isinstance(rows, torch.Tensor) else rows, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] < 3:
        raise ValueError(f"series rows shaped {rows.shape} do not hold sequences")
    t, c = int(rows[0, 0]), int(rows[0, 1])
    if t < 1 or c < 1 or t * c != rows.shape[1] - 2:
        raise ValueError(f"series rows say {t} steps x {c} channels but hold {rows.shape[1] - 2} values")
    return rows[:, 2:].reshape(len(rows), t, c)


class SequenceStatsExtractor:
    name = "sequence-stats"
    roles = {"pool": None, "series": None}  # pool: feature_dim(C); series: 2 + T*C
    kinds = ("sequences",)
    preprocessing = ("none: per-channel mean/std/min/max, ACF lags 1-5, first-difference std, 4 spectral band "
                     "shares, channel-pair correlations (C <= 16), in the data's units")
    weights_sha256 = None
    metric_labels = SEQUENCE_LABELS

    def __init__(self, weights_path=None, device: str = "cpu"):
        if weights_path is not None:
            raise FeatureExtractorError("the sequence-stats extractor has no weights; drop --feature-weights "
                                        "for it")
        self.device = torch.device(device)

    def __call__(self, batch: torch.Tensor) -> dict:
        check_sequences(batch, self.name)
        with torch.no_grad():
            x = batch.to(self.device)
            return {"pool": sequence_statistics(x), "series": sequences_to_series(x)}


SPEC = ExtractorSpec(
    "sequence-stats",
    "model-free statistics of any sequences (per-channel moments, autocorrelation, spectrum, correlations)",
    ("sequences",),
    lambda weights_path=None, device="cpu": SequenceStatsExtractor(weights_path, device),
    metric_labels=SEQUENCE_LABELS, takes_weights=False,
)
