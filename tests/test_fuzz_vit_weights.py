"""Fuzzed weights files for the DINOv2 and CLIP extractors (--feature-weights): a genuine small state dict
saved as a PyTorch zip, a legacy pickle and safetensors, its bytes mutated; reading it and building the
extractor from it either works or raises a GandiagError (exit 2), never another exception.

Contract and settings: tests/fuzz_support.py.
"""

from __future__ import annotations

import io

import pytest
from conftest import require_extra

require_extra("hypothesis")
require_extra("timm")

from fuzz_support import _one_thread, _quiet, apply_mutations, call_reader, fuzz, mutations, scratch  # noqa: E402,F401
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FORMATS = ("zip", "legacy", "safetensors")


@pytest.fixture(scope="module")
def genuine():
    import torch
    from safetensors.torch import save as save_safetensors
    from test_modern_extractors import TINY_DINO, dinov2_hub_state

    state = dinov2_hub_state(TINY_DINO)
    out = {}
    buf = io.BytesIO()
    torch.save(state, buf)
    out["zip"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=False)
    out["legacy"] = buf.getvalue()
    out["safetensors"] = save_safetensors({k: v.contiguous() for k, v in state.items()})
    return out


@fuzz(40, shrink=False)
@given(ops=mutations(), fmt=st.sampled_from(FORMATS), region=st.sampled_from(["all", "head", "tail"]))
def test_mutated_dinov2_weights(tmp_path, genuine, ops, fmt, region):
    from gandiag.features import dinov2
    from gandiag.features.vit_weights import read_state_dict
    from test_modern_extractors import TINY_DINO

    data = genuine[fmt]
    window = {"all": None, "head": (0, 512), "tail": (max(0, len(data) - 512), len(data))}[region]
    with scratch(tmp_path) as d:
        path = d / f"w.{'safetensors' if fmt == 'safetensors' else 'pth'}"
        path.write_bytes(apply_mutations(data, ops, window))
        state = call_reader("read_state_dict", read_state_dict, path, "dinov2-small-test")
        if state is not None:  # what read cleanly must still load strictly or be refused in one line
            call_reader("build", dinov2.dinov2_spec("dinov2-small-test", TINY_DINO).build, str(path), "cpu")
