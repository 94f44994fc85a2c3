"""``.npz`` files read within budgets: headers first, data only when they pass.

``np.load`` decompresses a member whole before anyone sees its shape, so a
4 MB file declaring a (1, 1, 65535, 65535) array costs 4 GB and half a
minute before any check could refuse it. Here the zip directory and each
``.npy`` header are read first (a few hundred bytes); an array is loaded
only when its dtype is plain numbers, its size fits
:data:`~gandiag.safety.budgets.ARRAY_BYTES` and the zip entry really holds
that many bytes. ``allow_pickle`` stays off, so an object array is refused,
not unpickled.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import DataError
from . import budgets
from .files import open_regular

ZIP_MAGIC = b"PK\x03\x04"


def _header(z: zipfile.ZipFile, info: zipfile.ZipInfo, where: str):
    """(shape, dtype, header length) of one .npy member, from its header alone."""
    fmt = np.lib.format
    try:
        with z.open(info) as f:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _fortran, dtype = read(f, max_header_size=10_000)
            return shape, dtype, f.tell()
    except Exception as exc:  # numpy parses the header with ast: hostile bytes raise many types
        raise DataError(f"{where}: array {info.filename!r} has no readable .npy header "
                        f"({type(exc).__name__}: {str(exc)[:200]})") from None


INT64_MAX = (1 << 63) - 1  # numpy's sizes and strides are C longs: beyond this it raises OverflowError


def _checked_nbytes(shape, dtype, what: str) -> int:
    """The bytes of data a header's shape declares, once each dimension is a size numpy can allocate.

    numpy accepts any tuple of Python ints as a header's shape and only fails
    when it allocates: a dimension of 2**70 beside a 0 is a zero-byte array
    whose allocation raises OverflowError. Every dimension must be a
    non-negative int, and the array's extent (its non-zero dimensions times
    the item size: what numpy checks, and the data it would hold but for a
    zero) must fit within int64 and within the array budget.
    """
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise DataError(f"{what}: a dimension is not a size (a non-negative integer); the file is corrupt")
    extent = math.prod(d for d in shape if d) * dtype.itemsize
    if extent > INT64_MAX:
        raise DataError(f"{what}: its dimensions span 2**63 bytes or more, beyond what any array can hold; "
                        "the file is corrupt")
    budgets.ARRAY_BYTES.check(extent, what)
    return math.prod(shape) * dtype.itemsize


def _check_rows(shape, rows: Optional[budgets.Budget], what: str) -> None:
    """A samples array's first dimension (its sample count) against ``rows``, from the header: a few hundred KB of
    deflated zeros can hold 67 million points, and every real sample is extracted and compared."""
    if rows is not None and len(shape) >= 1:
        rows.check(int(shape[0]), what)


def _check_member(z, info, where: str, rows: Optional[budgets.Budget] = None) -> None:
    shape, dtype, header_len = _header(z, info, where)
    name = info.filename.removesuffix(".npy")
    if dtype.hasobject or dtype.kind not in "biufcU" or dtype.fields is not None:
        raise DataError(f"{where}: array {name!r} has dtype {dtype}; gandiag reads arrays of plain numbers only")
    nbytes = _checked_nbytes(shape, dtype, f"{where}: array {name!r} of shape {str(tuple(shape))[:200]} ({dtype})")
    _check_rows(shape, rows, f"{where}: rows of array {name!r}")
    if len(shape) >= 3:
        hw = shape[1:3] if len(shape) == 3 or shape[1] not in (1, 3) else shape[2:4]
        budgets.IMAGE_PIXELS.check(int(hw[0]) * int(hw[1]), f"{where}: images of {hw[1]}x{hw[0]} in {name!r}")
    if info.file_size != header_len + nbytes:
        raise DataError(f"{where}: array {name!r} declares {nbytes:,} bytes of data but its zip entry holds "
                        f"{max(info.file_size - header_len, 0):,}; the file is corrupt")


def read_npz(path: Path, pick: Callable[[Path, list], str], extra: Sequence[str] = (),
             rows: Optional[budgets.Budget] = None) -> dict:
    """The arrays ``pick(path, keys)`` names, plus those of ``extra`` present, each checked before loading;
    ``rows``: a budget on each array's first dimension (a samples file's sample count)."""
    return _read(path, lambda keys: [pick(path, keys)] + [k for k in extra if k in keys], rows)


def read_npz_all(path: Path) -> dict:
    """Every array of a .npz, each checked before loading (the cache's entries)."""
    return _read(path, lambda keys: keys)


def _read(path: Path, choose: Callable[[list], list], rows: Optional[budgets.Budget] = None) -> dict:
    where = str(path)
    with open_regular(path, "a .npz file", error=DataError) as f:
        if f.read(4) != ZIP_MAGIC:
            raise DataError(f"{where}: not a .npz file (a .npz is a zip archive of .npy arrays, as numpy.savez writes)")
        f.seek(0)
        try:
            z = zipfile.ZipFile(f)
        except Exception as exc:  # BadZipFile, UnicodeDecodeError for non-UTF-8 names, ValueError...
            raise DataError(f"{where}: not a readable .npz (zip) file ({type(exc).__name__}: {str(exc)[:200]})") from None
        with z:
            infos = z.infolist()
            budgets.ARCHIVE_MEMBERS.check(len(infos), where)
            members = {i.filename.removesuffix(".npy"): i for i in infos if i.filename.endswith(".npy")}
            out = {}
            for key in dict.fromkeys(choose(list(members))):
                _check_member(z, members[key], where, rows)
                out[key] = _load(z, members[key], where)
            return out


def _load(z, info, where: str) -> np.ndarray:
    try:
        with z.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OverflowError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{where}: array {info.filename!r} cannot be read ({exc})") from None


def npz_keys(path: Path) -> list:
    """The array names of a .npz, from its zip directory alone (no array is read)."""
    keys: list = []
    _read(path, lambda names: keys.extend(names) or [])
    return keys


NPY_MAGIC = b"\x93NUMPY"


def read_npy(path: Path, rows: Optional[budgets.Budget] = None) -> np.ndarray:
    """A bare ``.npy`` array, checked as an ``.npz`` member is: header first (plain numbers, within the array
    budget and ``rows``, the file holding exactly the bytes it declares), data only then, never unpickled."""
    where = str(path)
    fmt = np.lib.format
    with open_regular(path, "a .npy file", error=DataError) as f:
        if f.read(6) != NPY_MAGIC:
            raise DataError(f"{where}: not a .npy file (numpy.save writes them; it starts with \\x93NUMPY)")
        f.seek(0)
        try:
            version = fmt.read_magic(f)
            read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _fortran, dtype = read(f, max_header_size=10_000)
        except Exception as exc:  # numpy parses the header with ast: hostile bytes raise many types
            raise DataError(f"{where}: no readable .npy header ({type(exc).__name__}: {str(exc)[:200]})") from None
        if dtype.hasobject or dtype.kind not in "biufcU" or dtype.fields is not None:
            raise DataError(f"{where}: dtype {dtype}; gandiag reads arrays of plain numbers only")
        nbytes = _checked_nbytes(shape, dtype, f"{where}: array of shape {str(tuple(shape))[:200]} ({dtype})")
        _check_rows(shape, rows, f"{where}: rows of the array")
        import os

        size = os.fstat(f.fileno()).st_size
        if size != f.tell() + nbytes:
            raise DataError(f"{where}: declares {nbytes:,} bytes of data but holds {max(size - f.tell(), 0):,}; "
                            "the file is corrupt")
        f.seek(0)
        try:
            return fmt.read_array(f, allow_pickle=False)
        except (ValueError, OverflowError, OSError, EOFError) as exc:
            raise DataError(f"{where}: cannot be read ({exc})") from None
