"""Fuzzed .npz sample files: open_npz / open_samples and every batch, and the same files through
`gandiag evaluate` (as the samples, or as --real).

Contract and settings: tests/fuzz_support.py; the .npz strategies (shared with test_fuzz_cache.py) live there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (MAX_BATCHES, RING_CKPT, _head, _npy, _one_thread, _quiet,  # noqa: E402,F401
                          call_reader, fuzz, genuine_npz, make_zip, memory_cap, nothing_left_behind, npy_bytes,
                          npz_files, ring_points, run_cli, scratch)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def read_samples(p):
    with memory_cap():
        _read_samples(p)


def _read_samples(p):
    from gandiag.data.samples import open_npz, open_samples

    for fn in (open_npz, open_samples):
        s = call_reader(f"{fn.__name__}({p.name})", fn, p if fn is open_npz else str(p))
        if s is None:
            continue
        assert s.kind in ("images", "points")
        assert all(int(x) > 0 for x in s.sample_shape), \
            f"{fn.__name__} accepted samples of shape {tuple(s.sample_shape)}: nothing to evaluate in a sample"
        for b in call_reader("batches", lambda: list(_head(s.batches(8), MAX_BATCHES))) or []:
            assert tuple(b.shape[1:]) == tuple(s.sample_shape)
            assert b.dtype == (torch.uint8 if s.kind == "images" else torch.float32)
        call_reader("content_hash", s.content_hash)


@fuzz(40)
@given(data=st.data())
def test_npz_samples(tmp_path, genuine_npz, data):
    """open_npz / open_samples and every batch, on generated, hand-made, random and mutated .npz files."""
    blob = data.draw(npz_files(genuine_npz), label="npz")
    with scratch(tmp_path) as d:
        p = d / "samples.npz"
        p.write_bytes(blob)
        with nothing_left_behind(d):
            read_samples(p)


NPZ_EDGES = {
    "huge declared shape": make_zip({"images.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                             "'shape': (1000000000000, 2), }")}),
    "huge count of empty samples": make_zip({"x.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                                "'shape': (2147483648, 0), }")}),
    "empty array with a dimension past int64": make_zip({"points.npy": npy_bytes(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1180591620717411303424), }")}),
    "empty array whose dimensions multiply past int64": make_zip({"images.npy": npy_bytes(
        "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 3, 4294967296, 4294967296), }")}),
    "string images": make_zip({"images.npy": _npy(np.array(list("abcd")).reshape(1, 1, 2, 2))}),
    "bytes images": make_zip({"images.npy": _npy(np.zeros((3, 1, 2, 2), "S2"))}),
    "structured images": make_zip({"images.npy": _npy(np.zeros((3, 1, 2, 2), [("a", "<f4")]))}),
    "datetime images": make_zip({"images.npy": _npy(np.zeros((3, 1, 2, 2), "M8[s]"))}),
    "zero float images": make_zip({"images.npy": _npy(np.zeros((0, 1, 2, 2), np.float32))}),
    "points of dimension 0": make_zip({"x.npy": _npy(np.zeros((30, 0), np.float32))}),
    "images of height 0": make_zip({"images.npy": _npy(np.zeros((30, 1, 0, 4), np.uint8))}),
    "object array": make_zip({"x.npy": npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                                                 b"\x80\x04N.")}),
    "header with an unclosed bracket": make_zip({"x.npy": npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                                                    "'shape': (")}),
    "not a zip": b"\x93NUMPY garbage",
    "empty file": b"",
}


@pytest.mark.parametrize("name", sorted(NPZ_EDGES))
def test_npz_edge_cases(tmp_path, name):
    """Hand-picked .npz files: the reader refuses (GandiagError) or gives a usable sample set."""
    p = tmp_path / "samples.npz"
    p.write_bytes(NPZ_EDGES[name])
    with nothing_left_behind(tmp_path):
        read_samples(p)


@fuzz(10, shrink=False)
@given(data=st.data(), role=st.sampled_from(["target", "real"]))
def test_npz_samples_cli(tmp_path, genuine_npz, data, role):
    """The same files through `gandiag evaluate` (as the samples, or as --real for a checkpoint): exit 0 or 2."""
    blob = data.draw(npz_files(genuine_npz), label="npz")
    with scratch(tmp_path) as d:
        (d / "s.npz").write_bytes(blob)
        with nothing_left_behind(d, allowed=[d / "out.json", d / "out.artifacts.npz"]):
            if role == "target":
                args = ["evaluate", "s.npz", "--real", "ring8"]
            else:
                args = ["evaluate", str(RING_CKPT), "--real", "s.npz"]
            run_cli(args + ["-n", "20", "--no-diagnostics", "--no-cache", "--device", "cpu", "--json", "out.json"],
                    d, outputs=["out.json", "out.artifacts.npz"], cap=1 << 30)
