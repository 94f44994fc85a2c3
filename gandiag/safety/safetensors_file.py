"""safetensors files read without running code: an 8-byte little-endian header length, a JSON header, raw tensors.

A ``.safetensors`` file holds tensors and nothing else, so it is safe to read
whatever its origin. It is parsed here rather than by the ``safetensors``
package (not a dependency of gandiag): the header is checked before any
tensor is allocated (its length, its JSON nesting, every entry's dtype,
shape and byte range, which must tile the data section exactly, as the
format requires) and sizes are checked against the budgets of
:mod:`gandiag.safety.budgets`. What comes back is a state dict, name → tensor.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from . import budgets
from .jsonfile import parse_json
from .untrusted import shown

SUFFIX = ".safetensors"
HEADER_LIMIT = 100 << 20  # the safetensors package's own limit on the header
INT64_MAX = (1 << 63) - 1  # torch's sizes and strides are int64
DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def looks_like_safetensors(path: Path, head: bytes) -> bool:
    """By suffix, or by the first bytes: a plausible header length followed by ``{"``."""
    if path.suffix.lower() == SUFFIX:
        return True
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= HEADER_LIMIT and head[8:10] in (b'{"', b"{}")


def read_safetensors(path) -> dict:
    """The tensors of a safetensors file, by name; any malformation is one CheckpointError."""
    path = Path(path)
    where = shown(str(path), 300)
    from .files import open_regular

    with open_regular(path, "a safetensors file", error=CheckpointError) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{where}: truncated safetensors file ({size} bytes)")
        n = int.from_bytes(head, "little")
        if n < 2 or n > HEADER_LIMIT or 8 + n > size:
            raise CheckpointError(f"{where}: not a safetensors file: header length {n:,} does not fit a file of "
                                  f"{size:,} bytes")
        try:
            text = f.read(n).decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(f"{where}: safetensors header is not UTF-8") from None
        header = parse_json(text.rstrip(" "), f"{where} (safetensors header)", CheckpointError)
        if not isinstance(header, dict):
            raise CheckpointError(f"{where}: safetensors header is not a JSON object")
        header.pop("__metadata__", None)
        entries = _entries(header, size - 8 - n, where)
        out = {}
        for name, dtype, shape, begin, end in entries:
            f.seek(8 + n + begin)
            data = f.read(end - begin)
            if len(data) != end - begin:
                raise CheckpointError(f"{where}: truncated while reading tensor {shown(name)}")
            if end == begin:
                out[name] = torch.empty(shape, dtype=dtype)
            else:
                out[name] = torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape)
    return out


def _entries(header: dict, data_len: int, where: str) -> list:
    """(name, dtype, shape, begin, end) of every tensor, checked; the byte ranges tile the data section."""
    budgets.ARCHIVE_BYTES.check(data_len, f"{where}: tensor data")
    if len(header) > budgets.ARCHIVE_MEMBERS.value:
        raise CheckpointError(f"{where}: {len(header):,} tensors exceed the limit of "
                              f"{budgets.ARCHIVE_MEMBERS.value:,} ({budgets.ARCHIVE_MEMBERS.how_to_raise()})")
    out = []
    for name, info in header.items():
        what = f"{where}: tensor {shown(name)}"
        if not isinstance(info, dict):
            raise CheckpointError(f"{what}: its header entry is not an object")
        dtype = DTYPES.get(info.get("dtype")) if isinstance(info.get("dtype"), str) else None
        if dtype is None:
            raise CheckpointError(f"{what}: unknown dtype {shown(repr(info.get('dtype')), 40)}")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and len(shape) <= 64
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise CheckpointError(f"{what}: shape {shown(repr(shape), 80)} is not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise CheckpointError(f"{what}: data_offsets {shown(repr(offsets), 80)} lie outside the "
                                  f"{data_len:,} bytes of tensor data")
        itemsize = torch.empty((), dtype=dtype).element_size()
        # The extent (non-zero dimensions times the item size) and not only the data: a shape [0, 2**70] holds
        # 0 bytes, but torch cannot unpack a dimension past int64 (exit 3 from torch.empty) and strides past it
        # overflow; a zero-size tensor with such dimensions is no tensor a generator holds.
        extent = math.prod(d for d in shape if d) * itemsize
        if extent > INT64_MAX:
            raise CheckpointError(f"{what}: shape {shown(repr(shape), 80)} spans 2**63 bytes or more, beyond what "
                                  "any tensor can hold; the file is corrupt")
        budgets.ARRAY_BYTES.check(extent, f"{what} of shape {shown(repr(shape), 80)}")
        nbytes = math.prod(shape) * itemsize
        if nbytes != offsets[1] - offsets[0]:
            raise CheckpointError(f"{what}: shape {tuple(shape)} of {info['dtype']} needs {nbytes:,} bytes but its "
                                  f"data_offsets span {offsets[1] - offsets[0]:,}")
        out.append((name, dtype, tuple(shape), offsets[0], offsets[1]))
    out.sort(key=lambda e: (e[3], e[4]))
    pos = 0
    for name, _, _, begin, end in out:
        if begin != pos:
            raise CheckpointError(f"{where}: tensor {shown(name)} starts at byte {begin:,} of the data, not "
                                  f"{pos:,}: the tensors overlap or leave a gap")
        pos = end
    if pos != data_len:
        raise CheckpointError(f"{where}: the tensors cover {pos:,} of the {data_len:,} bytes of data")
    return out
