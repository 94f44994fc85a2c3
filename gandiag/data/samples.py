"""Sets of samples that stream in batches: real data and pre-generated samples.

Two kinds exist. ``images``: uint8 tensors in NCHW layout (1 or 3 channels),
the form every image feature extractor takes. ``points``: float32 (N, D)
arrays, for the 2D mixtures of the mode-collapse literature. Keeping images as
uint8 until the extractor needs them makes a 50k-image set 4x smaller than
float and is the quantisation every reference implementation applies.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from ..errors import DataError
from ..safety import budgets

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
        from ..safety.files import open_regular

        for p in self.paths:
            h.update(p.name.encode())
            with open_regular(p, "an image", error=DataError) as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()


@contextlib.contextmanager
def _open_image(path: Path):
    """PIL image of a regular file, opened without blocking (a FIFO never hangs a run).

    Pillow's warnings about damaged files (corrupt EXIF...) are kept off the
    terminal: a file either decodes or is refused in one line.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    from ..safety.files import open_regular

    with open_regular(path, "an image", error=DataError) as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            im = Image.open(f)
        except UnidentifiedImageError:
            raise DataError(f"cannot read image {path}: not an image file Pillow can decode") from None
        with im:
            yield im


def _read_image(path: Path, channels: int) -> np.ndarray:
    try:
        with _open_image(path) as im:
            budgets.IMAGE_PIXELS.check(im.size[0] * im.size[1], f"image {path}")
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        raise DataError(f"cannot read image {path}: {_first_line(exc)}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def open_folder(root: Path) -> FolderSampleSet:
    """Scan a folder (recursively) of same-sized images; sizes are read from headers, nothing is decoded."""
    root = Path(root)
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in folder {root}")
    sizes, modes = {}, set()
    for p in paths:
        try:
            with _open_image(p) as im:
                sizes.setdefault(im.size, p)
                modes.add(im.mode)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cannot read image {p}: {_first_line(exc)}") from None
        if len(sizes) > 1:
            (a, pa), (b, pb) = list(sizes.items())[:2]
            raise DataError(
                f"images in {root} differ in size: {pa.name} is {a[0]}x{a[1]}, {pb.name} is {b[0]}x{b[1]}; "
                "resize them to one size first"
            )
    (w, h), = sizes
    budgets.IMAGE_PIXELS.check(w * h, f"images in {root} ({w}x{h})")
    budgets.TOTAL_PIXELS.check(w * h * len(paths), f"{len(paths)} images of {w}x{h} in {root}")
    channels = 1 if modes <= {"L", "1", "I;16", "I", "F"} else 3
    return FolderSampleSet(root, paths, (channels, h, w))


def from_array(arr: np.ndarray, description: str, labels=None, *, key: Optional[str] = None,
               kind: Optional[str] = None, layout: Optional[str] = None) -> SampleSet:
    """An array from a file or a user, as samples of its kind (:func:`gandiag.data.kinds.for_array`:
    ``kind``, else the ``.npz`` ``key``, else the shape, 3-d read as grey images)."""
    from . import kinds

    arr = np.asarray(arr)
    if arr.dtype.kind not in "uif":
        what = {"c": "complex numbers", "b": "booleans"}.get(arr.dtype.kind, f"dtype {arr.dtype}")
        raise DataError(f"{description}: holds {what}; samples must be real numbers (uint8 images, float images or points)")
    if arr.ndim == 0 or arr.shape[0] == 0 or arr.size == 0:
        raise DataError(f"{description}: array of shape {arr.shape} holds no samples")
    labels = _check_labels(labels, arr.shape[0], description)
    k = kinds.for_array(arr, key, kind, description)
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


def open_npz(path: Path, kind: Optional[str] = None, layout: Optional[str] = None) -> SampleSet:
    """A .npz of samples: the array named after a sample kind (``images``, ``points``...), else ``samples``/``x``,
    else its only array; ``kind`` and ``layout`` say what it holds when its name and shape do not.

    Every array's header is read and checked against the budgets before any
    data is decompressed (:mod:`gandiag.safety.npz`).
    """
    from ..safety.npz import read_npz

    path = Path(path)
    arrays = read_npz(path, pick=_pick_samples_key, extra=("labels",))
    key = next(k for k in arrays if k != "labels" or len(arrays) == 1)
    s = from_array(arrays[key], f"{path.name}", arrays.get("labels") if key != "labels" else None, key=key,
                   kind=kind, layout=layout)
    s.meta["path"] = str(path)
    return s


def _pick_samples_key(path: Path, keys: list) -> str:
    from .kinds import registered

    preferred = list(registered()) + ["samples", "x", "arr_0"]
    key = next((k for k in preferred if k in keys), None)
    if key is None:
        others = [k for k in keys if k != "labels"]
        key = others[0] if len(others) == 1 else None
    if key is None:
        raise DataError(f"{path}: cannot tell which array holds the samples (keys: {', '.join(keys) or 'none'}); "
                        "name it 'images'")
    return key


def open_samples(spec: str, kind: Optional[str] = None, layout: Optional[str] = None):
    """A user-given path of pre-generated samples: an image folder or a .npz (``kind``/``layout``: see open_npz)."""
    import stat as stat_

    from ..safety.files import require_input

    p = Path(spec)
    st = require_input(p, "samples", folder_ok=True, error=DataError)
    if stat_.S_ISDIR(st.st_mode):
        if kind not in (None, "images"):
            raise DataError(f"{spec}: a folder holds images, not {kind}")
        return open_folder(p)
    if p.suffix.lower() == ".npz":
        return open_npz(p, kind, layout)
    raise DataError(f"{spec}: samples must be an image folder or a .npz file")
