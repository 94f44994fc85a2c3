"""Fuzzed exported generators: torch.export (.pt2), TorchScript, ONNX and SavedModel files written by
`gandiag export`, mutated member by member or byte by byte.

Contract and settings: tests/fuzz_support.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from conftest import require_extra

require_extra("hypothesis")  # the test extra installs it; missing, this module fails in CI and is skipped elsewhere

from fuzz_support import (JSON_VALUES, RING_CKPT, Blob, _one_thread, _quiet, apply_mutations,  # noqa: E402,F401
                          dumps, fuzz, json_paths, load_and_evaluate, make_zip, mutations, nothing_left_behind,
                          ring_ckpt_bytes, scratch, set_path, zip_members)
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """torch.export (.pt2) and TorchScript files of the ring8 generator, written by gandiag export."""
    from gandiag.export import export_checkpoint

    d = tmp_path_factory.mktemp("exports")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {"export": export_checkpoint(RING_CKPT, "export", d / "g.pt2"),
               "torchscript": export_checkpoint(RING_CKPT, "torchscript", d / "g.pt")}
    return {k: Blob(Path(v).read_bytes()) for k, v in out.items()}


def test_harness_round_trips_genuine_files(tmp_path, ring_ckpt_bytes, exports):
    """The unmutated files, and zips rebuilt member by member, load and evaluate: failures below are the readers'."""
    for name, data in [("c.pt", ring_ckpt_bytes), ("g.pt2", exports["export"]), ("g.pt", exports["torchscript"])]:
        p = tmp_path / f"rebuilt-{name}"
        p.write_bytes(make_zip(zip_members(data)))
        res = load_and_evaluate(p)
        assert res is not None, f"{name}, its zip rebuilt member by member, should load and evaluate"


def _mutate_member(name: str, content: bytes, data) -> bytes:
    """JSON members get a structural edit, Python code a line edit, anything else byte edits."""
    if name.endswith(".json"):
        with contextlib.suppress(ValueError):
            doc = json.loads(content)
            paths = json_paths(doc)
            path = data.draw(st.sampled_from(paths), label="json path")
            if path and data.draw(st.booleans(), label="delete"):
                set_path(doc, path, None, delete=True)
            else:
                doc = set_path(doc, path, data.draw(JSON_VALUES, label="json value"))
            return dumps(doc).encode()
    if name.endswith(".py"):
        lines = content.decode("utf-8", "replace").splitlines()
        if lines:
            i = data.draw(st.integers(0, len(lines) - 1), label="line")
            how = data.draw(st.sampled_from(["drop", "dup", "tokens"]), label="line edit")
            if how == "drop":
                del lines[i]
            elif how == "dup":
                lines.insert(i, lines[i])
            else:
                swaps = [("torch.relu", "torch.sigmoid"), ("64", "63"), ("2", "3"), ("8", "9"), ("weight", "bias"),
                         ("(", "(("), ("return", "return 1 +"), ("torch.linear", "torch.matmul")]
                a, b = data.draw(st.sampled_from(swaps), label="swap")
                lines[i] = lines[i].replace(a, b)
            return "\n".join(lines).encode()
    return apply_mutations(content, data.draw(mutations(), label="ops"))


@fuzz(25)
@given(data=st.data(), which=st.sampled_from(["export", "torchscript"]), level=st.sampled_from(["member", "bytes"]))
def test_export_and_torchscript_mutated(tmp_path, exports, data, which, level):
    """Mutations of a genuine torch.export (.pt2) program and a TorchScript archive written by gandiag export:
    a member edited (JSON structurally, code by lines, the rest by bytes) or the file's bytes."""
    blob = exports[which]
    if level == "member":
        members = zip_members(blob)
        name = data.draw(st.sampled_from(sorted(members)), label="member")
        members[name] = _mutate_member(name, members[name], data)
        blob = make_zip(members)
    else:
        blob = apply_mutations(blob, data.draw(mutations(), label="ops"))
    with scratch(tmp_path) as d:
        p = d / ("g.pt2" if which == "export" else "g.pt")
        p.write_bytes(blob)
        with nothing_left_behind(d):
            load_and_evaluate(p)


@pytest.mark.slow
def test_torchscript_with_an_empty_tensor_record_does_not_crash(tmp_path, exports):
    """A TorchScript archive whose last tensor record is empty: `gandiag evaluate` must refuse it (exit 2), not
    die with SIGSEGV when it first calls the network. In a subprocess, since the bug kills the process."""
    import subprocess
    import sys

    members = zip_members(exports["torchscript"])
    last = max((n for n in members if "/data/" in n and n.rsplit("/", 1)[-1].isdigit()),
               key=lambda n: int(n.rsplit("/", 1)[-1]))
    members[last] = b""
    (tmp_path / "g.pt").write_bytes(make_zip(members))
    env_ = dict(os.environ, GANDIAG_OFFLINE="1")
    env_.pop("GANDIAG_DEBUG", None)
    res = subprocess.run([sys.executable, "-m", "gandiag.cli", "evaluate", "g.pt", "--real", "ring8", "-n", "20",
                          "--no-diagnostics", "--no-cache", "--device", "cpu"], cwd=tmp_path, env=env_,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode >= 0, f"gandiag was killed by signal {-res.returncode} on a TorchScript file with an " \
                                f"empty tensor record ({last})"
    assert res.returncode == 2, f"exit {res.returncode}: {res.stderr[-1500:]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pt"]


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    require_extra("onnxruntime")
    require_extra("onnxscript")
    from gandiag.export import export_checkpoint

    d = tmp_path_factory.mktemp("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Blob(Path(export_checkpoint(RING_CKPT, "onnx", d / "g.onnx")).read_bytes())


def _mutate_onnx_model(blob: bytes, data) -> bytes:
    """A structural edit of the ONNX protobuf: input/output shapes and types, nodes, the stored contract."""
    onnx = require_extra("onnx")
    m = onnx.load_from_string(blob)
    what = data.draw(st.sampled_from(["input_dim", "input_type", "output_dim", "drop_node", "contract", "initializer",
                                      "opset", "add_input"]), label="onnx edit")
    if what == "input_dim":
        dims = m.graph.input[0].type.tensor_type.shape.dim
        i = data.draw(st.integers(0, len(dims) - 1), label="dim")
        dims[i].dim_value = data.draw(st.sampled_from([0, 1, 3, 7, 1 << 40]), label="value")
    elif what == "input_type":
        m.graph.input[0].type.tensor_type.elem_type = data.draw(st.sampled_from([2, 6, 7, 8, 9, 10, 11, 16]), label="type")
    elif what == "output_dim":
        out = m.graph.output[0].type.tensor_type.shape
        if data.draw(st.booleans(), label="add dims"):
            for _ in range(data.draw(st.integers(1, 3), label="n dims")):
                out.dim.add().dim_value = data.draw(st.sampled_from([1, 2, 3, 5]), label="new dim")
        elif out.dim:
            out.dim[-1].dim_value = data.draw(st.sampled_from([0, 1, 3, 4]), label="dim value")
    elif what == "drop_node" and m.graph.node:
        del m.graph.node[data.draw(st.integers(0, len(m.graph.node) - 1), label="node")]
    elif what == "contract":
        for p in m.metadata_props:
            if p.key == "gandiag.contract":
                doc = json.loads(p.value)
                path = data.draw(st.sampled_from(json_paths(doc)), label="path")
                p.value = dumps(set_path(doc, path, data.draw(JSON_VALUES, label="value")))
    elif what == "initializer" and m.graph.initializer:
        init = m.graph.initializer[data.draw(st.integers(0, len(m.graph.initializer) - 1), label="init")]
        init.dims[:] = data.draw(st.lists(st.integers(0, 70), max_size=3), label="init dims")
    elif what == "opset":
        m.opset_import[0].version = data.draw(st.sampled_from([1, 7, 99]), label="opset")
    elif what == "add_input":
        vi = m.graph.input.add()
        vi.CopyFrom(m.graph.input[0])
        vi.name = data.draw(st.sampled_from(["labels", "y", "z2", "noise"]), label="name")
        vi.type.tensor_type.elem_type = data.draw(st.sampled_from([1, 7, 8]), label="type")
    return m.SerializeToString()


@fuzz(20)
@given(data=st.data(), level=st.sampled_from(["model", "bytes"]))
def test_onnx_mutated(tmp_path, onnx_file, data, level):
    """A genuine .onnx export with its graph edited (shapes, types, nodes, contract) or its bytes mutated."""
    if level == "model":
        blob = _mutate_onnx_model(onnx_file, data)
    else:
        blob = apply_mutations(onnx_file, data.draw(mutations(), label="ops"))
    with scratch(tmp_path) as d:
        p = d / "g.onnx"
        p.write_bytes(blob)
        with nothing_left_behind(d):
            load_and_evaluate(p)


@pytest.fixture(scope="module")
def savedmodel_dir(tmp_path_factory):
    require_extra("tensorflow")  # ~10 s to import: once per module
    from gandiag.export import export_checkpoint

    d = tmp_path_factory.mktemp("savedmodel")
    return Path(export_checkpoint(RING_CKPT, "savedmodel", d / "sm"))


@pytest.mark.slow
@fuzz(8)
@given(data=st.data(), target=st.sampled_from(["saved_model.pb", "assets.extra/gandiag_contract.json"]))
def test_savedmodel_mutated(tmp_path, savedmodel_dir, data, target):
    """A genuine SavedModel with saved_model.pb's bytes (or its stored contract) mutated."""
    with scratch(tmp_path) as d:
        sm = d / "sm"
        shutil.copytree(savedmodel_dir, sm)
        f = sm / target
        f.write_bytes(_mutate_member(target, f.read_bytes(), data))
        with nothing_left_behind(d):
            load_and_evaluate(sm, cap=False)  # TensorFlow maps large arenas of its own
