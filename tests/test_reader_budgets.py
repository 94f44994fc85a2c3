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


# ----------------------------------------------------------------------------- .safetensors: sizes torch cannot allocate


def safetensors_bytes(shape, dtype="F32", offsets=(0, 0)) -> bytes:
    import json

    h = json.dumps({"l.weight": {"dtype": dtype, "shape": shape, "data_offsets": list(offsets)}}).encode()
    return struct.pack("<Q", len(h)) + h


BAD_SAFETENSORS_SHAPES = {
    "zero beside 2**70": ([0, 2 ** 70], "beyond what any tensor can hold"),
    "zero beside 2**64": ([0, 2 ** 64], "beyond what any tensor can hold"),
    "zero beside 2**62 float32 (2**64 bytes)": ([0, 2 ** 62], "beyond what any tensor can hold"),
    "zero between a product past int64": ([2 ** 40, 0, 2 ** 40], "beyond what any tensor can hold"),
    "zero beside 2**60 (within int64, past the array budget)": ([0, 2 ** 60], "GANDIAG_MAX_ARRAY_BYTES"),
    "negative dimension": ([0, -1], "is not a list of sizes"),
    "boolean dimension": ([0, True], "is not a list of sizes"),
    "float dimension": ([0, 2.0], "is not a list of sizes"),
    "string dimension": ([0, "3"], "is not a list of sizes"),
    "null dimension": ([0, None], "is not a list of sizes"),
}


@pytest.mark.parametrize("case", sorted(BAD_SAFETENSORS_SHAPES))
def test_safetensors_headers_with_impossible_shapes_are_refused(tmp_path, case):
    from gandiag.errors import GandiagError
    from gandiag.safety.safetensors_file import read_safetensors

    shape, message = BAD_SAFETENSORS_SHAPES[case]
    p = tmp_path / "w.safetensors"
    p.write_bytes(safetensors_bytes(shape))
    with pytest.raises(GandiagError, match=message):  # CheckpointError or BudgetError: exit 2
        read_safetensors(p)


def test_safetensors_zero_size_shape_past_int64_is_exit_2(tmp_path):
    """The tester's case end to end: torch.empty((0, 2**70)) raised a TypeError with a C++ stack (exit 3)."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "reader_budgets_gen.py").write_text(
        "import torch\nclass G(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.l = torch.nn.Linear(8, 2)\n    def forward(self, z):\n        return self.l(z)\n")
    p = tmp_path / "w.safetensors"
    p.write_bytes(safetensors_bytes([0, 2 ** 70]))
    res = gandiag_in_process("evaluate", p, "--trust-checkpoint", "--generator-class", "reader_budgets_gen:G",
                             "--generator-path", code, "--real", "ring8", *QUICK)
    assert_one_line(res, "beyond what any tensor can hold")


def test_safetensors_genuine_empty_and_small_tensors_still_read(tmp_path):
    import torch

    from gandiag.safety.safetensors_file import read_safetensors

    p = tmp_path / "ok.safetensors"
    p.write_bytes(safetensors_bytes([0, 8]))
    assert read_safetensors(p)["l.weight"].shape == (0, 8)
    h = b'{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
    p.write_bytes(struct.pack("<Q", len(h)) + h + torch.arange(4, dtype=torch.float32).numpy().tobytes())
    assert read_safetensors(p)["w"].tolist() == [[0.0, 1.0], [2.0, 3.0]]


# ----------------------------------------------------------------------------- sample counts from the header


@pytest.fixture(scope="module")
def deflated_67m_points(tmp_path_factory) -> Path:
    """67,108,864 2-d float32 points of zeros: 512 MiB of data in ~2 MB of deflate (level 1; ~520 KB at level 9)."""
    import numpy as np

    p = tmp_path_factory.mktemp("bomb") / "zeros.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("points.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                     "shape": (1 << 26, 2)})
            chunk = bytes(1 << 24)
            for _ in range(32):
                f.write(chunk)
    return p


def test_real_set_of_67m_points_is_refused_by_default_before_decompressing(deflated_67m_points, monkeypatch):
    """It passed every default budget (512 MiB < GANDIAG_MAX_ARRAY_BYTES) and evaluate ran for hours."""
    import gandiag.safety.npz as npz

    def never(*_a, **_k):
        raise AssertionError("the array was decompressed before its sample count was checked")

    monkeypatch.setattr(npz, "_load", never)
    monkeypatch.delenv("GANDIAG_MAX_SAMPLES", raising=False)
    for env in ({}, {"GANDIAG_MAX_SAMPLES": ""}):
        res = gandiag_in_process("evaluate", RING_CKPT, "--real", deflated_67m_points, *QUICK, env=env)
        assert_one_line(res, "67,108,864", "GANDIAG_MAX_SAMPLES")
    res = gandiag_in_process("evaluate", deflated_67m_points, "--real", "ring8", *QUICK)  # as the evaluated samples
    assert_one_line(res, "67,108,864", "GANDIAG_MAX_SAMPLES")


def test_sample_count_budget_covers_real_train_data_and_npy(tmp_path):
    import numpy as np

    from gandiag.data.mixtures import MIXTURES

    pts = MIXTURES["ring8"].sample(300, 0)[0].astype(np.float32)
    np.savez(tmp_path / "held_out.npz", points=pts[:150])
    np.savez(tmp_path / "train.npz", points=pts)
    np.save(tmp_path / "real.npy", pts)
    env = {"GANDIAG_MAX_SAMPLES": "200"}
    res = gandiag_in_process("evaluate", RING_CKPT, "--real", tmp_path / "real.npy", *QUICK, env=env)
    assert_one_line(res, "real.npy", "300 exceeds the limit of 200 samples", "GANDIAG_MAX_SAMPLES")
    res = gandiag_in_process("evaluate", RING_CKPT, "--real", tmp_path / "held_out.npz", "--train-data",
                             tmp_path / "train.npz", *QUICK, env=env)
    assert_one_line(res, "train.npz", "300 exceeds the limit of 200 samples", "GANDIAG_MAX_SAMPLES")
    # within the budget, the same files are read
    res = gandiag_in_process("evaluate", RING_CKPT, "--real", tmp_path / "real.npy", *QUICK, "--no-diagnostics",
                             "--metrics", "fid", env={"GANDIAG_MAX_SAMPLES": "300"})
    assert res.returncode == 0, res.stderr
