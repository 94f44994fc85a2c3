"""The translation measures: how far a translator's outputs lie from its inputs, their truth and their way back.

Measured in the one sampling pass, batch by batch (:class:`Measures`, running
float64 sums), on canonical samples:

- ``cycle_l1``: ``|F(G(x)) - x|``, the cycle-consistency error, with the inverse.
- ``identity_l1``: ``|G(y) - y|`` on target-domain samples (the CycleGAN
  identity loss's quantity: a translator should leave the target domain alone).
- ``change_l1``: ``|G(x) - x|``, how much the translator changes its input
  (read by the ``identity_mapping`` diagnostic).
- ``paired_l1``, ``psnr``, ``ssim``: against the true translation, with paired
  data (``--paired``) or a bundled pair's known truth. PSNR and SSIM are
  scikit-image's (``peak_signal_noise_ratio``, ``structural_similarity``,
  ``data_range=255``), per image then averaged, as pix2pix-style evaluations
  report them; images only.

Images are compared in [0, 1] units (the mean absolute difference of grey
levels / 255, per image); points by Euclidean distance. Each measure is the
mean over samples, with the standard deviation over samples.

``label_preservation`` is measured after the pass, on the feature pass's
features: a classifier trained on the target domain's real samples (linear
discriminant analysis on pool features) labels the outputs, and the share labelled as
their inputs were is the value; ``ceiling`` is the classifier's own
cross-validated accuracy on real target data, the most a perfect translator
can score.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import DataError

PSNR_CAP = 100.0  # dB: an image equal to its truth (infinite PSNR) counts as this, so means stay finite
LABELS = {
    "cycle_l1": ("Cycle L1", False),
    "identity_l1": ("Identity L1", False),
    "change_l1": ("Change L1", False),
    "paired_l1": ("Paired L1", False),
    "psnr": ("PSNR (dB)", True),
    "ssim": ("SSIM", True),
}
MIN_PER_CLASS = 2  # real samples of a class needed to fit and cross-validate the classifier


class _Running:
    """Mean and standard deviation of per-sample values, in float64, batch by batch."""

    def __init__(self):
        self.n, self.total, self.squares = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        self.n += v.size
        self.total += float(v.sum())
        self.squares += float((v * v).sum())

    def entry(self, name: str, features: str) -> dict:
        mean = self.total / self.n
        std = float(np.sqrt(max(self.squares / self.n - mean * mean, 0.0)))
        label, higher = LABELS[name]
        return {"value": float(mean), "label": label, "features": features, "higher_is_better": higher,
                "n": self.n, "std": std}


class Measures:
    """The running translation measures of one direction; ``result()`` gives the results.metrics entries."""

    def __init__(self, kind: str):
        if kind not in ("images", "points"):
            raise DataError(f"translation measures are defined for images and points, not {kind!r}")
        self.kind = kind
        self.running = {name: _Running() for name in LABELS}

    def update(self, x: torch.Tensor, y_hat: torch.Tensor, x_rec: Optional[torch.Tensor] = None,
               y_true: Optional[torch.Tensor] = None) -> None:
        """One batch: inputs, their translations, optionally their reconstructions and true translations."""
        if x.shape == y_hat.shape:
            self.running["change_l1"].add(self.distance(y_hat, x))
        if x_rec is not None:
            self.running["cycle_l1"].add(self.distance(x_rec, x))
        if y_true is not None:
            self.running["paired_l1"].add(self.distance(y_hat, y_true))
            if self.kind == "images":
                self.running["psnr"].add(psnr(y_hat, y_true))
                self.running["ssim"].add(ssim(y_hat, y_true))

    def update_identity(self, y: torch.Tensor, g_y: torch.Tensor) -> None:
        """Target-domain samples and their translations."""
        self.running["identity_l1"].add(self.distance(g_y, y))

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        """Per-sample distance: mean |difference| in [0, 1] units for images, Euclidean for points."""
        if a.shape != b.shape:
            raise DataError(f"cannot compare samples of shape {tuple(a.shape[1:])} with {tuple(b.shape[1:])}")
        d = a.detach().cpu().double() - b.detach().cpu().double()
        if self.kind == "images":
            return (d.abs() / 255.0).flatten(1).mean(1).numpy()
        return d.flatten(1).norm(dim=1).numpy()

    def result(self) -> dict:
        features = "pixels" if self.kind == "images" else "points"
        return {name: r.entry(name, features) for name, r in self.running.items() if r.n}


def _images(x: torch.Tensor) -> np.ndarray:
    """uint8 NCHW -> float64 NHWC in grey levels."""
    return x.detach().cpu().double().permute(0, 2, 3, 1).numpy()


def psnr(y_hat: torch.Tensor, y_true: torch.Tensor) -> np.ndarray:
    """Per-image PSNR (dB, data range 255), capped at PSNR_CAP for identical images."""
    from skimage.metrics import peak_signal_noise_ratio

    out = []
    for a, b in zip(_images(y_true), _images(y_hat)):
        if np.array_equal(a, b):
            out.append(PSNR_CAP)
        else:
            out.append(min(float(peak_signal_noise_ratio(a, b, data_range=255)), PSNR_CAP))
    return np.asarray(out)


def ssim(y_hat: torch.Tensor, y_true: torch.Tensor) -> np.ndarray:
    """Per-image SSIM (data range 255; colour images over channels; the window shrinks for tiny images)."""
    from skimage.metrics import structural_similarity

    a, b = _images(y_true), _images(y_hat)
    side = min(a.shape[1], a.shape[2])
    if side < 3:
        raise DataError(f"SSIM needs images of at least 3x3 pixels, not {a.shape[1]}x{a.shape[2]}")
    win = min(7, side if side % 2 else side - 1)
    channels = a.shape[3]
    out = []
    for u, v in zip(a, b):
        if channels == 1:
            out.append(structural_similarity(u[..., 0], v[..., 0], data_range=255, win_size=win))
        else:
            out.append(structural_similarity(u, v, data_range=255, win_size=win, channel_axis=-1))
    return np.asarray(out, dtype=np.float64)


def label_preservation(fake_features: np.ndarray, real_features: np.ndarray, real_labels, input_labels) -> dict:
    """Share of outputs a target-domain classifier labels as their inputs were (results.metrics entry)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import cross_val_predict

    real_labels = np.asarray(real_labels)
    input_labels = np.asarray(input_labels)[:len(fake_features)]
    classes, counts = np.unique(real_labels, return_counts=True)
    if len(classes) < 2 or counts.min() < MIN_PER_CLASS:
        return {"value": None, "label": "Label preservation",
                "not_applicable": "the target domain needs at least two classes with two samples each"}
    # a linear classifier fitted in closed form (shrunk covariance: features may be constant or collinear, as
    # the digits' border pixels are): a hundred times faster than an iterative logistic regression, as accurate
    model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    folds = int(min(5, counts.min()))
    # the ceiling: how well the same classifier labels held-out real samples of the target domain, overall and
    # per class (a class the features hardly separate is no evidence of a translator changing it)
    held_out = cross_val_predict(model, real_features, real_labels, cv=folds) == real_labels
    ceiling = float(held_out.mean())
    model.fit(real_features, real_labels)
    predicted = model.predict(fake_features[:len(input_labels)])
    hits = predicted == input_labels
    per_class = {}
    for c in np.unique(input_labels):
        mask, real_mask = input_labels == c, real_labels == c
        per_class[str(c)] = {"accuracy": float(hits[mask].mean()), "n": int(mask.sum()),
                             "ceiling": float(held_out[real_mask].mean()) if real_mask.any() else None}
    return {"value": float(hits.mean()), "label": "Label preservation", "features": "pool",
            "higher_is_better": True, "n": int(len(hits)), "std": None, "ceiling": ceiling,
            "classifier": "linear discriminant analysis on the target domain's real features",
            "per_class": per_class}


__all__ = ["Measures", "label_preservation", "psnr", "ssim", "PSNR_CAP"]
