"""Real human-motion sequences from the UCR/UEA archive, read from sktime's wheel (the ``motion`` extra).

sktime ships a few archive datasets inside its wheel (``sktime/datasets/data``)
and reads them with no network and no numba; gandiag uses its public loaders
(``load_basic_motions``, ``load_gunpoint``, ``return_type="numpy3D"``: (N, C, T))
and turns them into the ``sequences`` kind, (N, T, C) float32, values as
recorded (not rescaled: a generator is compared with the data it was trained
on). ``pip install 'gandiag[motion]'`` installs sktime; without it these
sources say so in one line (exit 2).

- ``basicmotions``: BasicMotions (Clements et al., UEA archive), a smart
  watch's 3-axis accelerometer and 3-axis gyroscope at 10 Hz, 6 channels x 100
  steps, 4 activities (badminton, running, standing, walking, labels 0-3 in
  that order), 20 recordings each. All 80: the archive's train split (40)
  followed by its test split (40), because 40 sequences are too few for any
  distributional metric; the split of each sequence is kept in ``meta``.
- ``gunpoint``: GunPoint (Ratanamahatana and Keogh), the x coordinate of an
  actor's hand drawing a gun from a holster and pointing it, or pointing a
  finger, 1 channel x 150 steps, 2 classes (gun 0, point 1). All 200: train (50)
  then test (150).

JapaneseVowels, also in sktime's wheel, is left out on purpose: its 640
utterances are 7 to 29 frames long, and the length depends on the speaker
(median 12 frames for speaker 8, 20 for speaker 4). Zero- or edge-padding to
29 frames would write each speaker's identity into the length of a flat tail
(which a generator must then imitate, and which the temporal diagnostics read
as frozen steps); keeping only utterances of 15 frames or more would drop 83 %
of speaker 8 and 5 % of speaker 4; truncating to the shortest (7 frames) keeps
less than half of a typical utterance; resampling to one length changes each
speaker's speaking rate. None of these is the data any more, so no rule is
applied silently: a user who chooses one writes the result to a ``.npz`` with
``sequences`` and ``labels`` and passes it as ``--real``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import DataError
from .samples import SampleSet

INSTALL = "pip install 'gandiag[motion]'"


class MotionSource:
    """A UCR/UEA dataset shipped in sktime's wheel, as float32 (N, T, C) sequences with integer class labels."""

    split = "stratified"  # gandiag.data.splits: the trainer trains on the rest (not the archive's 50%/75% test split)

    def __init__(self, name: str, loader: str, title: str, description: str, classes: tuple, shape: tuple,
                 default_extractor: Optional[str] = None):
        self.name, self.loader, self.title, self.description = name, loader, title, description
        self.classes, self.shape, self.default_extractor = classes, shape, default_extractor

    def matches(self, spec: str) -> bool:
        return spec == self.name

    def load(self, spec: str, n: Optional[int] = None, seed: int = 0) -> SampleSet:
        """Every sequence (train split, then test split); ``n`` and ``seed`` are not used: the set is fixed."""
        parts, labels, splits = [], [], []
        for split in ("train", "test"):
            x, y = _load(self.name, self.loader, split)
            parts.append(x)
            labels.append(y)
            splits.append((split, int(x.shape[0])))
        x = np.concatenate(parts).transpose(0, 2, 1)  # sktime's numpy3D is (N, C, T)
        y = np.concatenate(labels)
        if tuple(x.shape[1:]) != self.shape:
            raise DataError(f"{self.name}: sktime gave sequences of {x.shape[1]} steps x {x.shape[2]} channels, "
                            f"expected {self.shape[0]} x {self.shape[1]}; check the installed sktime")
        names = sorted(set(y.tolist()))
        if tuple(names) != tuple(str(c) for c, _ in self.classes):
            raise DataError(f"{self.name}: sktime's class names {names} are not the expected "
                            f"{[c for c, _ in self.classes]}")
        index = {str(c): i for i, (c, _) in enumerate(self.classes)}
        data = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(data).all():
            raise DataError(f"{self.name}: sktime's data holds NaN or Inf")
        meta = {"source": self.name, "n": int(data.shape[0]), "splits": dict(splits), "package": _version(),
                "classes": [label for _, label in self.classes]}
        return SampleSet("sequences", torch.from_numpy(data), np.array([index[v] for v in y], dtype=np.int64),
                         f"{self.title} ({data.shape[0]} sequences of {data.shape[1]} steps x {data.shape[2]} "
                         "channels, sktime)", meta)


def _sktime():
    try:
        import sktime.datasets as datasets
    except ImportError:
        raise DataError(f"the motion datasets (basicmotions, gunpoint) are read from sktime's wheel, which is not "
                        f"installed: {INSTALL}") from None
    return datasets


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sktime {version('sktime')}"
    except PackageNotFoundError:
        return "sktime"


def _load(name: str, loader: str, split: str):
    import warnings

    datasets = _sktime()
    fn = getattr(datasets, loader, None)
    if fn is None:
        raise DataError(f"{name}: the installed sktime has no {loader}(); {INSTALL}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = fn(split=split, return_X_y=True, return_type="numpy3D")
    except Exception as exc:
        raise DataError(f"{name}: sktime could not read its bundled {split} split "
                        f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return np.asarray(x, dtype=np.float64), np.asarray(y).astype(str)


def sources() -> list:
    return [
        MotionSource("basicmotions", "load_basic_motions", "BasicMotions",
                     "BasicMotions (UEA): 80 smart-watch recordings, accelerometer + gyroscope, 100 steps x 6 "
                     "channels, 4 activities (train + test splits; needs gandiag[motion])",
                     (("badminton", "badminton"), ("running", "running"), ("standing", "standing"),
                      ("walking", "walking")), (100, 6), default_extractor="motion"),
        MotionSource("gunpoint", "load_gunpoint", "GunPoint",
                     "GunPoint (UCR): 200 hand trajectories (x coordinate), 150 steps x 1 channel, gun draw or point "
                     "(train + test splits; needs gandiag[motion])",
                     (("1", "gun"), ("2", "point")), (150, 1)),
    ]
