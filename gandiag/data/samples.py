"""Sets of samples that stream in batches: real data and pre-generated samples.

A :class:`SampleSet` holds a kind's canonical batch in memory (bundled data,
``.npz``/``.npy`` arrays): images as uint8 NCHW (4x smaller than float, the
quantisation every reference implementation applies), points as float32
(N, D), sequences as float32 (N, T, C). Image folders stream from disk
(:mod:`.image_folders`); :func:`open_samples` opens any of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from ..errors import DataError
from ..safety import budgets
from .image_folders import open_folder



@dataclass
class SampleSet:
    """Samples held in memory (small sets: bundled data, .npz files)."""

    kind: str  # images | points | sequences (or a plugin's kind)
    data: torch.Tensor  # uint8 NCHW, float32 (N, D) or float32 (N, T, C)
    labels: Optional[np.ndarray] = None
    description: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.data.shape[1:])

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, self.n, batch_size):
            yield self.data[i : i + batch_size]

    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.kind}:{tuple(self.data.shape)}:{self.data.dtype}".encode())
        h.update(self.data.contiguous().numpy().tobytes())
        return h.hexdigest()


def from_array(arr: np.ndarray, description: str, labels=None, *, key: Optional[str] = None,
               kind: Optional[str] = None, layout: Optional[str] = None, hint: Optional[str] = None) -> SampleSet:
    """An array from a file or a user, as samples of its kind (:func:`gandiag.data.kinds.for_array`:
    ``kind``, else the ``.npz`` ``key``, else ``hint``, else the shape; a 3-d array is read as grey images only
    when it is uint8 of at least 8x8, otherwise it needs a kind)."""
    from . import kinds

    arr = np.asarray(arr)
    if arr.dtype.kind not in "uif":
        what = {"c": "complex numbers", "b": "booleans"}.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise DataError(f"{description}: holds {what}; samples must be real numbers (uint8 images, float images or points)")
    if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
        raise DataError(f"{description}: array of shape {arr.shape} holds no samples")
    labels = _check_labels(labels, arr.shape[0], description)
    k = kinds.for_array(arr, key, kind, description, hint)
    if layout is not None and layout not in k.layouts:
        raise DataError(f"{description}: --layout {layout} is not a layout of {k.name} ({', '.join(k.layouts)})")
    return SampleSet(k.name, k.from_array(arr, description, layout), labels, description)


def _check_labels(labels, n: int, description: str) -> Optional[np.ndarray]:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "ui" or labels.ndim != 1 or labels.shape[0] != n:
        raise DataError(f"{description}: 'labels' must be {n} integers (one per sample), "
                        f"got {labels.dtype} of shape {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= budgets.CLASSES.value):
        raise DataError(f"{description}: labels must lie in 0..{budgets.CLASSES.value - 1}")
    return labels.astype(np.int64)


def open_npz(path: Path, kind: Optional[str] = None, layout: Optional[str] = None,
             hint: Optional[str] = None) -> SampleSet:
    """A .npz of samples: the array named after a sample kind (``images``, ``points``...), else ``samples``/``x``,
    else its only array; ``kind`` and ``layout`` say what it holds when its name and shape do not.

    Every array's header is read and checked against the budgets before any
    data is decompressed (:mod:`gandiag.safety.npz`), its sample count (first
    dimension) against ``GANDIAG_MAX_SAMPLES``.
    """
    from ..safety.npz import read_npz

    path = Path(path)
    arrays = read_npz(path, pick=_pick_samples_key, extra=("labels",), rows=budgets.NUM_SAMPLES)
    key = next(k for k in arrays if k != "labels" or len(arrays) == 1)
    s = from_array(arrays[key], f"{path.name}", arrays.get("labels") if key != "labels" else None, key=key,
                   kind=kind, layout=layout, hint=hint)
    s.meta["path"] = str(path)
    return s


def open_npy(path: Path, kind: Optional[str] = None, layout: Optional[str] = None,
             hint: Optional[str] = None) -> SampleSet:
    """A bare ``.npy`` array of samples (no key, no labels): its kind from ``kind``, ``hint`` or its shape, as for
    an ``.npz`` array without a kind's name; header checked within the budgets (its sample count within
    ``GANDIAG_MAX_SAMPLES``) before the data is read."""
    from ..safety.npz import read_npy

    path = Path(path)
    s = from_array(read_npy(path, rows=budgets.NUM_SAMPLES), f"{path.name}", kind=kind, layout=layout, hint=hint)
    s.meta["path"] = str(path)
    return s


def _pick_samples_key(path: Path, keys: list) -> str:
    from .kinds import registered
    from .reference_stats import is_statistics_keys

    if is_statistics_keys(keys):
        raise DataError(f"{path}: holds FID statistics (mu, sigma), not samples; statistics can only be real data "
                        "(--real)")
    preferred = list(registered()) + ["samples", "x", "arr_0"]
    key = next((k for k in preferred if k in keys), None)
    if key is None:
        others = [k for k in keys if k != "labels"]
        key = others[0] if len(others) == 1 else None
    if key is None:
        raise DataError(f"{path}: cannot tell which array holds the samples (keys: {', '.join(keys) or 'none'}); "
                        "name it 'images'")
    return key


def open_samples(spec: str, kind: Optional[str] = None, layout: Optional[str] = None, recursive: bool = False,
                 hint: Optional[str] = None):
    """A user-given path of pre-generated samples: an image folder (its subfolders too when ``recursive``), a .npz
    or a .npy (``kind``/``layout``/``hint``: see open_npz)."""
    import stat as stat_

    from ..safety.files import require_input

    p = Path(spec)
    st = require_input(p, "samples", folder_ok=True, error=DataError)
    if stat_.S_ISDIR(st.st_mode):
        if kind not in (None, "images"):
            raise DataError(f"{spec}: a folder holds images, not {kind}")
        return open_folder(p, recursive)
    if p.suffix.lower() == ".npz":
        return open_npz(p, kind, layout, hint)
    if p.suffix.lower() == ".npy":
        return open_npy(p, kind, layout, hint)
    raise DataError(f"{spec}: samples must be an image folder, a .npz or a .npy file")
