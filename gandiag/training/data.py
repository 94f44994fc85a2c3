"""Training data: the same real-data sources as ``gandiag evaluate``, served in batches.

A 2D mixture (``ring8``, ``grid25``) is sampled afresh at every step from
its definition (:data:`gandiag.data.mixtures.MIXTURES`), seeded by (run seed, step,
critic iteration), so a resumed run sees exactly the points an uninterrupted
one would. Any other source (``digits``, an image folder, a ``.npz``) is
loaded once through :func:`gandiag.data.sources.load_real`, converted to floats
(images to [-1, 1]; points and sequences (N, T, C) as they are) and indexed
with the run's torch generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..data.mixtures import MIXTURES
from ..data.sources import load_real
from ..data.splits import source_split
from ..errors import DataError

IMAGE_SIZES = (8, 16, 32, 64)

LOAD_BATCH = 4096  # rows per read when the whole training set is loaded into memory once


class TrainingData:
    def __init__(self, spec: str, seed: int = 0, exclude_classes=(), device: str = "cpu"):
        self.spec, self.seed, self.device = spec, seed, torch.device(device)
        self.exclude_classes = sorted(int(c) for c in exclude_classes)
        self.mixture = MIXTURES.get(spec)
        if self.mixture is not None:
            self.kind, self.sample_shape = "points", (2,)
            self.num_classes = self.mixture.num_modes
            self.classes = [c for c in range(self.num_classes) if c not in self.exclude_classes]
            self.n, self.split = None, None
            self._means = torch.as_tensor(self.mixture.means, dtype=torch.float32)
            return
        samples = load_real(spec, recursive=True)  # an image folder with its subfolders (class folders, say)
        if getattr(samples, "statistics_only", False):
            raise DataError(f"{spec}: holds FID statistics (mu, sigma), not samples; training needs samples")
        x = getattr(samples, "data", None)
        if not isinstance(x, torch.Tensor):  # a folder, read lazily: bring it into memory once
            x = torch.cat(list(samples.batches(LOAD_BATCH)))
        labels = None if samples.labels is None else np.asarray(samples.labels).astype(np.int64)
        self.split = source_split(spec, samples)  # a bundled finite dataset: train on its training rows only
        if self.split is not None:
            x = x[torch.from_numpy(self.split.train)]
            labels = None if labels is None else labels[self.split.train]
        if self.exclude_classes:
            if labels is None:
                raise DataError(f"--exclude-classes needs labelled data; {spec!r} has no labels")
            keep = ~np.isin(labels, self.exclude_classes)
            if not keep.any():
                raise DataError(f"--exclude-classes {self.exclude_classes} removes every sample of {spec!r}")
            x, labels = x[torch.from_numpy(keep)], labels[keep]
        self.kind = samples.kind
        if self.kind == "images":
            c, h, w = x.shape[1:]
            if h != w or h not in IMAGE_SIZES:
                raise DataError(
                    f"{spec}: images are {h}x{w}; the reference trainer takes square images of "
                    f"{', '.join(map(str, IMAGE_SIZES))} pixels: resize them first")
            self.real_uint8 = x  # for FID during training
            x = x.float() / 127.5 - 1.0
        else:
            self.real_uint8 = None
            x = x.float()
        if self.kind == "sequences":  # (N, T, C); the range picks the generator's output activation
            self.value_range = (float(x.min()), float(x.max()))
            flat = x.reshape(-1, x.shape[2]).double()  # per-channel statistics over every step of every sequence
            self.channel_mean = [float(v) for v in flat.mean(0)]
            self.channel_std = [max(float(v), 1e-6) for v in flat.std(0)]  # a constant channel stays finite
        self.x = x.to(self.device)
        self.n, self.sample_shape = int(x.shape[0]), tuple(x.shape[1:])
        if labels is not None:
            classes = sorted(set(labels.tolist()))
            if classes[0] < 0:
                raise DataError(f"{spec}: class labels must be 0, 1, 2...; found {classes[0]}")
            self.num_classes = max(classes + self.exclude_classes) + 1
            self.classes = classes
            self.labels = torch.from_numpy(labels).to(self.device)
        else:
            self.num_classes, self.classes, self.labels = 0, [], None

    def batch(self, n: int, step: int, k: int, gen: torch.Generator):
        """n training samples (float) and their labels (LongTensor or None)."""
        if self.mixture is not None:
            pts, labels = self.mixture.sample(n, [self.seed, step, k])
            labels = torch.from_numpy(labels)
            if self.exclude_classes:
                labels = self.random_labels(n, gen)
                pts = (self._means[labels] + self.mixture.std * torch.randn(n, 2, generator=gen)).numpy()
            return torch.from_numpy(pts).to(self.device), labels.to(self.device)
        idx = torch.randint(0, self.n, (n,), generator=gen)
        return self.x[idx.to(self.device)], None if self.labels is None else self.labels[idx.to(self.device)]

    def random_labels(self, n: int, gen: torch.Generator) -> Optional[torch.Tensor]:
        """Class labels drawn from the training data's class frequencies (for G's conditioning)."""
        if self.mixture is not None:
            classes = torch.tensor(self.classes)
            return classes[torch.randint(0, len(classes), (n,), generator=gen)].to(self.device)
        if self.labels is None:
            return None
        return self.labels[torch.randint(0, self.n, (n,), generator=gen).to(self.device)]

    def checkpoint_data(self) -> dict:
        """What the checkpoint says it was trained on; ``source`` is what ``gandiag evaluate`` reads."""
        source = self.spec
        if self.mixture is None and self.spec != "digits" and Path(self.spec).exists():
            source = str(Path(self.spec).resolve())
        d = {"source": source, "kind": self.kind, "sample_shape": list(self.sample_shape),
             "num_classes": self.num_classes, "classes": list(self.classes)}
        if self.n is not None:
            d["n"] = self.n
        if self.exclude_classes:
            d["excluded_classes"] = self.exclude_classes
        if self.split is not None:  # which rows it saw: the memorization verdict's held-out rows are the others
            d["split"] = self.split.to_json()
        return d
