"""Image folders as sample sets: listed in a documented order, sizes read from headers, decoded in batches.

A folder is never held in memory: :func:`open_folder` scans the files' headers
(one size, grey or colour, lossy compression), and :class:`FolderSampleSet`
decodes a batch at a time. 16-bit images are scaled to 8 bits by round(v / 257),
never clipped; lossy formats give a warning; subfolders are read only with
``recursive`` (torch-fidelity's default is the folder alone).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from ..errors import DataError
from ..safety import budgets

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
GREY_MODES = {"L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"}  # read as 1 channel
SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # scaled to 8 bits by round(v / 257)


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
        """Decoded batches, in listing order, made ahead of the consumer (gandiag.data.prefetch); pinned in
        memory where a CUDA device is there to copy them to."""
        from concurrent.futures import ThreadPoolExecutor

        from .prefetch import decode_threads, prefetched

        pin = torch.cuda.is_available()
        channels = self._shape[0]

        def decode():
            with ThreadPoolExecutor(decode_threads(), thread_name_prefix="gandiag-decode") as pool:
                for i in range(0, self.n, batch_size):
                    arrays = list(pool.map(lambda p: _read_image(p, channels), self.paths[i : i + batch_size]))
                    batch = torch.from_numpy(np.stack(arrays))
                    yield batch.pin_memory() if pin else batch

        return prefetched(decode)

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
