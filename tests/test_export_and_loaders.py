"""ONNX and SavedModel loaders, and ``gandiag export``: one trained generator
evaluated as itself and through every export gives the same metrics; foreign
graphs are read from their signatures; bad files get one clear line."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import gandiag_in_process

import gandiag
from gandiag.errors import CheckpointError, GandiagError, GeneratorOutputError
from gandiag.export.exporters import SUFFIX, TARGETS, export_checkpoint
from gandiag.export.tensorflow import import_tensorflow
from gandiag.generator.loading import load_generator
from gandiag.training import train

FRAMEWORK = {"onnx": "onnxruntime", "savedmodel": "tensorflow"}
EVAL = dict(num_samples=300, seed=7, batch_size=64, device="cpu", diagnostics=False)


def run_cli(*args):
    return gandiag_in_process(*args)  # in-process: nothing here needs the console entry's own process


def _tf():
    try:
        return import_tensorflow()  # not importorskip: the import order with triton matters
    except ImportError:
        pytest.skip("tensorflow is not installed")


def _needs(target):
    if target == "savedmodel":
        _tf()
    elif target in FRAMEWORK:
        pytest.importorskip(FRAMEWORK[target])
    if target == "onnx":
        pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two generators from the bundled trainer: conditional DCGAN on digits, MLP GAN on ring8."""
    root = tmp_path_factory.mktemp("trained")
    fast = dict(progress=False, eval_every=10_000, ckpt_every=10_000)
    return {
        "digits": train("cgan", "digits", root / "cgan", steps=20, seed=1, width=8, latent_dim=8, batch_size=8, **fast),
        "ring8": train("gan", "ring8", root / "gan", steps=60, seed=1, batch_size=32, **fast),
    }


@pytest.fixture(scope="module")
def baseline(trained):
    return {real: gandiag.evaluate(str(path), real, **EVAL) for real, path in trained.items()}


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("real", ["digits", "ring8"])
def test_every_export_gives_the_same_metrics(trained, baseline, tmp_path, real, target):
    _needs(target)
    out = export_checkpoint(trained[real], target, tmp_path / f"g{SUFFIX[target]}")
    r = gandiag.evaluate(str(out), real, **EVAL)  # no flags: the contract travels inside the file
    ref = baseline[real]
    assert r.generator["format"] != "gandiag"
    assert r.contract["detected"] == [] and r.contract["num_classes"] == ref.contract["num_classes"]
    assert r.contract["layout"] == ("NHWC" if target == "savedmodel" and real == "digits" else ref.contract["layout"])
    assert set(r.metrics) == set(ref.metrics)
    for name, m in ref.metrics.items():
        assert r.metrics[name]["value"] == pytest.approx(m["value"], rel=1e-3, abs=1e-6), name


def test_savedmodel_rebuild_matches_torch_on_odd_batches(trained, tmp_path):
    _needs("savedmodel")
    out = export_checkpoint(trained["digits"], "savedmodel", tmp_path / "sm")
    gen, ref = load_generator(out), load_generator(trained["digits"])
    for n in (1, 5, 130):
        z, labels = torch.randn(n, 8), torch.arange(n) % 10
        got = gen.forward(z, labels).permute(0, 3, 1, 2)
        with torch.no_grad():
            want = ref.forward(z, labels)
        assert torch.allclose(got, want, atol=1e-5)


def test_export_refuses_to_overwrite_and_cli_exports(trained, tmp_path):
    out = tmp_path / "g.pt2"
    res = run_cli("export", trained["ring8"], "--to", "export", "-o", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out)
    again = run_cli("export", trained["ring8"], "--to", "export", "-o", out)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0 and "--force" in again.stderr


def test_savedmodel_force_replaces_only_a_savedmodel_readable_by_others(trained, tmp_path, monkeypatch):
    """--force over a folder that is not a SavedModel (the working folder, -o .) is refused, its files kept; an
    earlier SavedModel is replaced whole; the folder gets the umask's permissions, not mkdtemp's 0700."""
    pytest.importorskip("tensorflow")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "notes.txt").write_text("keep")
    monkeypatch.chdir(work)
    res = run_cli("export", trained["ring8"], "--to", "savedmodel", "-o", ".", "--force")
    assert res.returncode == 2 and "not a SavedModel" in res.stderr
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "sub"]
    old_umask = os.umask(0o022)
    try:
        for _ in range(2):  # the second run replaces the first's SavedModel
            res = run_cli("export", trained["ring8"], "--to", "savedmodel", "-o", "sm", "--force")
            assert res.returncode == 0, res.stderr
            (work / "sm" / "marker").write_text("from the earlier export")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(work / "sm").st_mode) == 0o755
    res = run_cli("export", trained["ring8"], "--to", "savedmodel", "-o", "sm", "--force")
    assert res.returncode == 0 and not (work / "sm" / "marker").exists() and (work / "sm" / "saved_model.pb").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "sm", "sub"]  # nothing left aside


# -- foreign graphs: everything read from the signature ------------------------------------------

def _onnx_graph(path, out_shape, batch=None, reshape_to=None):
    """A hand-built ONNX generator: z (batch, 4) → tanh(z @ W), reshaped to ``reshape_to``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    width = int(np.prod(reshape_to[1:])) if reshape_to else 2
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, width)).astype(np.float32), "W")
    nodes = [helper.make_node("MatMul", ["z", "W"], ["h"]), helper.make_node("Tanh", ["h"], ["t"])]
    inits = [w]
    if reshape_to:
        inits.append(numpy_helper.from_array(np.array(reshape_to, np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["t", "shape"], ["out"]))
    else:
        nodes.append(helper.make_node("Identity", ["t"], ["out"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch or "N", 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what any onnxruntime of the last years reads
    onnx.save(model, str(path))
    return str(path)


def test_foreign_onnx_read_from_its_signature_with_a_fixed_batch(tmp_path):
    pytest.importorskip("onnxruntime")
    path = _onnx_graph(tmp_path / "pts.onnx", [3, 2], batch=3)
    gen = load_generator(path)
    assert gen.contract.latent_dim == 4 and gen.contract.kind == "points"
    out = gen.forward(torch.randn(7, 4), None)  # run as 3 + 3 + 1 (padded)
    assert out.shape == (7, 2)
    r = gandiag.evaluate(path, "ring8", **EVAL)
    assert r.contract["sample_shape"] == [2] and r.metrics["fid"]["value"] > 0
    with pytest.raises(GandiagError, match=r"takes latents shaped \(4\), not \(5\): pass --latent-shape 4"):
        gandiag.evaluate(path, "ring8", **EVAL, latent_dim=5)


def _foreign_savedmodel(path, out_shape, signatures=True):
    """A hand-written Keras-free SavedModel: z (None, 6) → sigmoid(z @ W) as (None, *out_shape)."""
    tf = _tf()
    m = tf.Module()
    m.w = tf.Variable(np.random.default_rng(0).normal(size=(6, int(np.prod(out_shape)))).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="noise")])
    def serve(noise):
        return {"out": tf.reshape(tf.sigmoid(noise @ m.w), [-1, *out_shape])}

    if signatures:
        m.serve = serve
        tf.saved_model.save(m, str(path), signatures={"serving_default": serve})
    else:  # weights only, no function: nothing to call
        tf.saved_model.save(m, str(path))
    return str(path)


def test_foreign_savedmodel_is_nhwc_and_range_is_detected(tmp_path):
    path = _foreign_savedmodel(tmp_path / "sm", (8, 8, 1))
    r = gandiag.evaluate(path, "digits", **EVAL, metrics=["fid"])
    assert r.generator["format"] == "savedmodel"
    assert r.contract["latent_dim"] == 6 and r.contract["layout"] == "NHWC" and r.contract["sample_shape"] == [1, 8, 8]
    assert r.contract["output_range"] == "0,1" and "output_range" in r.contract["detected"]
    forced = gandiag.evaluate(path, "digits", **EVAL, metrics=["fid"], output_range="-1,1")  # flags win
    assert forced.contract["output_range"] == "-1,1" and forced.metrics["fid"]["value"] != r.metrics["fid"]["value"]


# -- bad files: one line, exit 2 --------------------------------------------------------------

def _one_line_exit_2(res, match):
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("gandiag: error:") and res.stderr.strip().count("\n") == 0, res.stderr
    assert match in res.stderr, res.stderr


def test_truncated_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    good = Path(_onnx_graph(tmp_path / "g.onnx", ["N", 2]))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable ONNX model: truncated or corrupt"):
        load_generator(bad)
    _one_line_exit_2(run_cli("evaluate", bad, "--real", "ring8", "-n", "50"), "truncated or corrupt")


def test_onnx_with_wrong_output_shape(tmp_path):
    pytest.importorskip("onnxruntime")
    path = _onnx_graph(tmp_path / "img.onnx", ["N", 2, 2, 2], reshape_to=[-1, 2, 2, 2])
    with pytest.raises(GeneratorOutputError, match="no axis of 1 or 3 channels"):
        load_generator(path)
    _one_line_exit_2(run_cli("evaluate", path, "--real", "digits", "-n", "50"), "(?, 2, 2, 2)")


def test_savedmodel_without_signature(tmp_path):
    path = _foreign_savedmodel(tmp_path / "nosig", (2,), signatures=False)
    with pytest.raises(CheckpointError, match="no serving signature"):
        load_generator(path)


def test_savedmodel_with_wrong_output_shape(tmp_path):
    seq = load_generator(_foreign_savedmodel(tmp_path / "rank3", (24, 5)))  # rank 3: sequences, Keras' NTC
    assert (seq.contract.kind, seq.contract.layout, seq.contract.decided["layout"]) == ("sequences", "NTC", "default")
    path = _foreign_savedmodel(tmp_path / "rank5", (5, 7, 3, 2))
    with pytest.raises(GeneratorOutputError, match=r"shape \(\?, 5, 7, 3, 2\)"):
        load_generator(path)
    from click.testing import CliRunner

    from gandiag.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    res = CliRunner().invoke(cli, ["evaluate", path, "--real", "digits", "-n", "50"])
    assert res.exit_code == 2 and res.stderr.strip().count("\n") == 0 and "a generator returns" in res.stderr


# -- missing frameworks ----------------------------------------------------------------------

@pytest.mark.parametrize("module, suffix, extra", [("onnxruntime", ".onnx", "onnx"), ("tensorflow", "", "tensorflow")])
def test_missing_framework_names_the_package(tmp_path, monkeypatch, module, suffix, extra):
    path = tmp_path / f"model{suffix}"
    if suffix:
        path.write_bytes(b"\x08\x07")  # any non-empty file: the import fails first
    else:
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\x08\x01")
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(CheckpointError, match=rf"needs {module}: pip install 'gandiag\[{extra}\]'"):
        load_generator(path)


@pytest.mark.parametrize("target, module, extra", [("onnx", "onnxscript", "onnx"), ("savedmodel", "tensorflow", "tensorflow")])
def test_export_without_framework_names_the_package(trained, tmp_path, monkeypatch, target, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(GandiagError, match=rf"--to {target} needs {module}: pip install 'gandiag\[{extra}\]'"):
        export_checkpoint(trained["ring8"], target, tmp_path / "out")


def test_loader_plugins_are_entry_point_plugins():
    listing = {p["name"]: p for p in json.loads(run_cli("plugins").stdout)}
    for name in ("onnx", "tensorflow"):
        assert listing[name]["builtin"] is False and listing[name]["package"] == "gandiag"
        assert listing[name]["provides"] == {"loader": [name]}
    assert listing["export_command"]["builtin"] is True
