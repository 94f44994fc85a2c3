"""Sets of samples that stream in batches: real data and pre-generated samples.

Two kinds exist. ``images``: uint8 tensors in NCHW layout (1 or 3 channels),
the form every image feature extractor takes. ``points``: float32 (N, D)
arrays, for the 2D mixtures of the mode-collapse literature. Keeping images as
uint8 until the extractor needs them makes a 50k-image set 4x smaller than
float and is the quantisation every reference implementation applies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class SampleSet:
    """Samples held in memory (small sets: bundled data, .npz files)."""

    kind: str  # images | points
    data: torch.Tensor  # uint8 NCHW or float32 (N, D)
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


class FolderSampleSet:
    """An image folder read lazily, so a large folder never sits in memory."""

    kind = "images"
    labels = None

    def __init__(self, root: Path, paths: list[Path], sample_shape: tuple):
        self.root, self.paths, self._shape = root, paths, sample_shape
        self.description = f"folder {root}"
        self.meta = {"path": str(root)}

    @property
    def n(self) -> int:
        return len(self.paths)

    @property
    def sample_shape(self) -> tuple:
        return self._shape

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        for i in range(0, self.n, batch_size):
            arrays = [_read_image(p, self._shape[0]) for p in self.paths[i : i + batch_size]]
            yield torch.from_numpy(np.stack(arrays))

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for p in self.paths:
            h.update(p.name.encode())
            h.update(p.read_bytes())
        return h.hexdigest()


def _read_image(path: Path, channels: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for broken files
        raise DataError(f"cannot read image {path}: {exc}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def open_folder(root: Path) -> FolderSampleSet:
    """Scan a folder (recursively) of same-sized images."""
    from PIL import Image

    root = Path(root)
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in folder {root}")
    sizes, modes = {}, set()
    for p in paths:
        try:
            with Image.open(p) as im:
                sizes.setdefault(im.size, p)
                modes.add(im.mode)
        except Exception as exc:
            raise DataError(f"cannot read image {p}: {exc}") from None
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise DataError(
                f"images in {root} differ in size: {pa.name} is {a[0]}x{a[1]}, {pb.name} is {b[0]}x{b[1]}; "
                "resize them to one size first"
            )
    (w, h), = sizes
    channels = 1 if modes <= {"L", "1", "I;16", "I", "F"} else 3
    return FolderSampleSet(root, paths, (channels, h, w))


def from_array(arr: np.ndarray, description: str, labels=None) -> SampleSet:
    """An array from a file or a user: images (any common layout) or points."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{description}: expected numbers, got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise DataError(f"{description}: contains NaN or Inf")
        return SampleSet("points", torch.from_numpy(arr.astype(np.float32)), labels, description)
    if arr.ndim == 3:  # N,H,W grey
        arr = arr[:, None]
    if arr.ndim != 4:
        raise DataError(f"{description}: array of shape {arr.shape} is neither images (N,C,H,W / N,H,W,C) nor points (N,D)")
    if arr.shape[1] not in (1, 3) and arr.shape[3] in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.shape[1] not in (1, 3):
        raise DataError(f"{description}: images of shape {arr.shape[1:]} have neither 1 nor 3 channels")
    if arr.dtype != np.uint8:
        if not np.isfinite(arr).all():
            raise DataError(f"{description}: contains NaN or Inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 255.0001:
            raise DataError(f"{description}: pixel values span {lo:g}..{hi:g}; expected uint8 or 0..255 (or 0..1 floats)")
        scale = 255.0 if hi <= 1.0 else 1.0
        arr = np.clip(np.rint(arr.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    return SampleSet("images", torch.from_numpy(np.ascontiguousarray(arr)), labels, description)


def open_npz(path: Path) -> SampleSet:
    """A .npz of images or points: key ``images``/``samples``/``x`` or its only array."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            key = next((k for k in ("images", "samples", "x", "arr_0") if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise DataError(f"{path}: cannot tell which array holds the samples (keys: {', '.join(keys)}); name it 'images'")
            arr = z[key]
            labels = z["labels"] if "labels" in keys else None
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read {path} as .npz: {exc}") from None
    s = from_array(arr, f"{path.name}", labels)
    s.meta["path"] = str(path)
    return s


def open_samples(spec: str):
    """A user-given path of pre-generated samples: an image folder or a .npz."""
    p = Path(spec)
    if p.is_dir():
        return open_folder(p)
    if p.suffix == ".npz" and p.is_file():
        return open_npz(p)
    if not p.exists():
        raise DataError(f"{spec}: no such file or folder")
    raise DataError(f"{spec}: samples must be an image folder or a .npz file")
