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
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from ..errors import DataError
from ..safety import budgets

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
GREY_MODES = {"L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"}  # read as 1 channel
SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # scaled to 8 bits by round(v / 257)


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


class FolderSampleSet:
    """An image folder read lazily, so a large folder never sits in memory."""

    kind = "images"
    labels = None

    def __init__(self, root: Path, paths: list[Path], sample_shape: tuple, recursive: bool = False,
                 warnings: Optional[list] = None):
        self.root, self.paths, self._shape, self.recursive = root, paths, sample_shape, recursive
        self.description = f"folder {root}" + (" (with subfolders)" if recursive else "")
        self.meta = {"path": str(root), "recursive": recursive}
        self.warnings = list(warnings or [])  # for results.warnings (lossy-compressed images...)

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
        """Every file's path relative to the folder and its bytes, and whether subfolders were read: a recursive
        and a non-recursive read of one folder never share a feature-cache entry."""
        h = hashlib.sha256()
        from ..safety.files import open_regular

        h.update(f"folder|recursive={self.recursive}|".encode())
        for p in self.paths:
            h.update(os.fsencode(_relative(p, self.root)) + b"\0")
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
    with _open_image_file(path) as (im, _):
        yield im


@contextlib.contextmanager
def _open_image_file(path: Path):
    """(PIL image, its open file): :func:`_open_image` for readers that look at the bytes too."""
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
            yield im, f


def _read_image(path: Path, channels: int) -> np.ndarray:
    try:
        with _open_image_file(path) as (im, f):
            budgets.IMAGE_PIXELS.check(im.size[0] * im.size[1], f"image {path}")
            im = _eight_bit(im, f, path)
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


def _sixteen_bit_scaled(a: np.ndarray) -> np.ndarray:
    """16-bit values 0..65535 as 8-bit: round(v / 257), exact in integers (v / 257 never ends in .5)."""
    return ((a.astype(np.int64) + 128) // 257).astype(np.uint8)


def _eight_bit(im, f, path: Path):
    """A 16-bit image as an 8-bit one by the documented rule round(v / 257), never clipped at 255.

    Grey 16-bit images (modes I;16*, and I, taken as 16-bit values) are scaled
    from their decoded values. Pillow opens a 16-bit RGB(A) PNG as 8-bit RGB(A)
    by keeping each sample's high byte (v >> 8, a truncation), and a 16-bit
    grey+alpha PNG as RGBA the same way; for those the PNG is decoded a second
    time with the other byte of each sample, so the full 16-bit value is scaled.
    Every other image is returned as it is.
    """
    from PIL import Image

    if im.mode in SIXTEEN_BIT_GREY:
        a = np.asarray(im)
        if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
            raise DataError(f"cannot read image {path}: 32-bit integer pixels ({int(a.min())}..{int(a.max())}) "
                            "outside the 16-bit range 0..65535")
        return Image.fromarray(_sixteen_bit_scaled(a), "L")
    tile = im.tile[0] if im.format == "PNG" and len(im.tile) == 1 else None
    raw = getattr(tile, "args", None)
    if raw not in ("RGB;16B", "RGBA;16B", "LA;16B"):
        return im
    high = np.asarray(im)
    if raw == "LA;16B":  # the 4 bytes of each pixel as RGBA: L high, L low, A high, A low
        both = _decode_again(f, tile, "RGBA").astype(np.int64)
        return Image.fromarray(_sixteen_bit_scaled(both[..., 0] * 256 + both[..., 1]), "L")
    low = _decode_again(f, tile, raw.replace(";16B", ";16L"))  # each sample's low byte
    return Image.fromarray(_sixteen_bit_scaled(high.astype(np.int64) * 256 + low), im.mode)


def _decode_again(f, tile, rawmode: str) -> np.ndarray:
    """The PNG in ``f`` decoded with another raw mode of the same bits per pixel (the filters depend on them)."""
    from PIL import Image

    f.seek(0)
    with Image.open(f) as again:
        again.tile = [tile._replace(args=rawmode)]
        return np.asarray(again)


def _relative(p: Path, root: Path) -> str:
    return p.relative_to(root).as_posix()


def list_images(root: Path, recursive: bool = False) -> list:
    """The image files of a folder (and of its subfolders when ``recursive``), in the documented order.

    Files are those whose suffix is in :data:`IMAGE_SUFFIXES` (any case);
    links to folders are not followed. The order, which decides what ``-n``
    keeps and which samples KID's subsets draw, is by path relative to the
    folder with ``/`` between parts, compared as Unicode code points (the
    bytewise order of its UTF-8 form, ``LC_ALL=C sort``): torch-fidelity's
    order for the same folder.
    """
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if not recursive:
            dirnames.clear()
        d = Path(dirpath)
        found.extend(d / n for n in filenames if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES)
    found = [p for p in found if p.is_file()]
    return sorted(found, key=lambda p: _relative(p, root))


def _in_subfolders(root: Path) -> int:
    """How many images the subfolders of ``root`` hold (0 when none)."""
    return len(list_images(root, recursive=True))


def _lossy(im, f) -> Optional[str]:
    """The lossy compression an image file uses (JPEG, lossy WebP, JPEG-in-TIFF), None when lossless."""
    if im.format in ("JPEG", "MPO"):
        return "JPEG"
    if im.format == "TIFF" and str(im.info.get("compression", "")).lower() in ("jpeg", "tiff_jpeg"):
        return "JPEG"
    if im.format == "WEBP":
        return "lossy WebP" if _webp_lossy(f) else None
    return None


def _webp_lossy(f, max_chunks: int = 64) -> bool:
    """A WebP file's first image is VP8 (lossy) rather than VP8L (lossless); read from its RIFF chunks."""
    import struct

    pos, end = 12, None
    try:
        f.seek(4)
        end = 8 + struct.unpack("<I", f.read(4))[0]
        for _ in range(max_chunks):
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                return False
            fourcc, size = head[:4], struct.unpack("<I", head[4:])[0]
            if fourcc in (b"VP8 ", b"ALPH"):
                return True
            if fourcc == b"VP8L":
                return False
            if fourcc == b"ANMF":  # an animation frame: its image chunks follow a 16-byte frame header
                pos += 8 + 16
                continue
            pos += 8 + size + (size & 1)
            if pos >= end:
                return False
    except (OSError, struct.error):
        return False
    return False


def open_folder(root: Path, recursive: bool = False) -> FolderSampleSet:
    """Scan a folder of same-sized images (its subfolders too when ``recursive``); sizes are read from headers,
    nothing is decoded. The files' order is :func:`list_images`'."""
    root = Path(root)
    paths = list_images(root, recursive)
    if not paths:
        deeper = 0 if recursive else _in_subfolders(root)
        if deeper:
            raise DataError(f"no images at the top of folder {root}, but {deeper} in its subfolders: pass "
                            "--recursive (--samples-find-deep) to read subfolders too")
        from ..generator.foreign import refuse

        refuse(root, error=DataError)  # a diffusers pipeline, an Orbax checkpoint...: say what to do with it
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in folder {root}"
                        + ("" if recursive else " (subfolders are read with --recursive)"))
    sizes, modes, lossy = {}, set(), {}
    for p in paths:
        try:
            with _open_image_file(p) as (im, f):
                sizes.setdefault(im.size, p)
                modes.add(im.mode)
                kind = _lossy(im, f)
                if kind:
                    lossy[kind] = lossy.get(kind, 0) + 1
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
    channels = 1 if modes <= GREY_MODES else 3
    warnings = []
    if lossy:
        what = " and ".join(f"{k} {kind}" for kind, k in sorted(lossy.items()))
        warnings.append(f"{root}: {sum(lossy.values())} of {len(paths)} images are lossy-compressed ({what}); "
                        "JPEG artefacts raise FID, so save samples and real images losslessly (PNG) to compare")
    return FolderSampleSet(root, paths, (channels, h, w), recursive, warnings)


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
    data is decompressed (:mod:`gandiag.safety.npz`).
    """
    from ..safety.npz import read_npz

    path = Path(path)
    arrays = read_npz(path, pick=_pick_samples_key, extra=("labels",))
    key = next(k for k in arrays if k != "labels" or len(arrays) == 1)
    s = from_array(arrays[key], f"{path.name}", arrays.get("labels") if key != "labels" else None, key=key,
                   kind=kind, layout=layout, hint=hint)
    s.meta["path"] = str(path)
    return s


def open_npy(path: Path, kind: Optional[str] = None, layout: Optional[str] = None,
             hint: Optional[str] = None) -> SampleSet:
    """A bare ``.npy`` array of samples (no key, no labels): its kind from ``kind``, ``hint`` or its shape, as for
    an ``.npz`` array without a kind's name; header checked within the budgets before the data is read."""
    from ..safety.npz import read_npy

    path = Path(path)
    s = from_array(read_npy(path), f"{path.name}", kind=kind, layout=layout, hint=hint)
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
