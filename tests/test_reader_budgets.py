"""Readers against what a header can declare: sizes numpy or torch cannot allocate, counts no budget allowed.

Each case builds its hostile file inside the test (a few hundred bytes) and runs it through the CLI in-process:
one line on stderr, exit 2, never exit 3 (``gandiag_in_process`` fails the test on an internal error).
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from conftest import gandiag_in_process

RING_CKPT = Path(__file__).parent / "fixtures" / "models" / "ring8_gan_pack4" / "checkpoint.pt"
QUICK = ["-n", "32", "--no-progress", "--device", "cpu", "--no-cache"]


def assert_one_line(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gandiag: error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def npy_header(shape, descr="<f4") -> bytes:
    """A .npy file of a header alone (a zero-size array holds no data): the shape written as a Python literal."""
    h = ("{'descr': '%s', 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))).ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode()


def write_both(folder: Path, name: str, data: bytes) -> tuple:
    """``name.npy`` holding ``data`` and ``name.npz`` holding it as its 'points' member."""
    npy, npz = folder / f"{name}.npy", folder / f"{name}.npz"
    npy.write_bytes(data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("points.npy", data)
    npz.write_bytes(buf.getvalue())
    return npy, npz


# ----------------------------------------------------------------------------- .npy/.npz: sizes numpy cannot allocate

IMPOSSIBLE_SHAPES = {
    "zero beside 2**70": ((0, 2 ** 70), "beyond what any array can hold"),
    "zero beside 2**63": ((0, 2 ** 63), "beyond what any array can hold"),
    "zero beside 2**62 float32 (2**64 bytes)": ((0, 2 ** 62), "beyond what any array can hold"),
    "zero beside a product past int64": ((0, 2 ** 40, 2 ** 40), "beyond what any array can hold"),
    "2**70 beside zero": ((2 ** 70, 0), "beyond what any array can hold"),
    "zero beside 2**60 (within int64, past the array budget)": ((0, 2 ** 60), "GANDIAG_MAX_ARRAY_BYTES"),
    "negative dimension": ((0, -1), "not a size"),
    "boolean dimension": ((True, 0), "not a size"),
}


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE_SHAPES))
def test_npy_and_npz_headers_with_impossible_shapes_are_refused(tmp_path, case):
    """A zero-size array whose other dimensions exceed int64 used to reach numpy's allocation: OverflowError, exit 3."""
    shape, message = IMPOSSIBLE_SHAPES[case]
    npy, npz = write_both(tmp_path, "z", npy_header(shape))
    for args in (["evaluate", npy, "--real", "ring8"], ["evaluate", npz, "--real", "ring8"],
                 ["evaluate", RING_CKPT, "--real", npz], ["evaluate", RING_CKPT, "--real", npy],
                 ["diagnose", npz, "--real", "ring8"]):
        assert_one_line(gandiag_in_process(*args, *QUICK), message)
