"""Translators through `gandiag evaluate`: inputs, both directions, export, and the refusals at the boundary.

Planted translators whose truth is known (the exact inversion of grey levels,
its noisy version, a rotation of points) are saved as torch.export programs
with their contract stored, as `gandiag export` writes them, or as ONNX files
that say nothing, as other people's exports are.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gandiag
from gandiag.generator.contract import STORED_IN_ARCHIVE, GeneratorContract, stored_text
from conftest import gandiag_in_process, write_pngs

DIGITS = GeneratorContract(latent_dim=64, latent_shape=(1, 8, 8), takes="images", input_range="-1,1",
                           output_range="-1,1", kind="images", layout="NCHW")
N = 200  # inputs translated per run: a few seconds with the digits extractor


class Negate(torch.nn.Module):
    """digits <-> inverted digits in [-1, 1]: exactly the bundled pair's truth, both ways."""

    def forward(self, x):
        return -x


class NoisyNegate(torch.nn.Module):
    def forward(self, x):
        return (-x + 0.05 * torch.sin(40 * x)).clamp(-1, 1)


class ConvTranslator(torch.nn.Module):
    """A CycleGAN-like network someone pickled: its first layer (Conv2d(1, ...)) looks like a (1, 1, 1) latent map."""

    def __init__(self):
        super().__init__()
        self.pad = torch.nn.ReflectionPad2d(1)
        self.conv = torch.nn.Conv2d(1, 1, 3)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0, 1, 1] = -1.0  # the centre tap: -x
            self.conv.bias.zero_()

    def forward(self, x):
        return torch.tanh(self.conv(self.pad(x)) * 3)


class Rotate(torch.nn.Module):
    """ring8 -> ring8 rotated by pi/8 (the bundled pair's truth)."""

    def __init__(self, angle=np.pi / 8):
        super().__init__()
        c, s = float(np.cos(angle)), float(np.sin(angle))
        self.register_buffer("rot", torch.tensor([[c, s], [-s, c]]))

    def forward(self, x):
        return x @ self.rot


def save_translator(module, path, contract=DIGITS, example=(2, 1, 8, 8)):
    program = torch.export.export(module, (torch.zeros(*example),),
                                  dynamic_shapes=({0: torch.export.Dim("n", min=1, max=1 << 16)},))
    torch.export.save(program, str(path), extra_files={STORED_IN_ARCHIVE: stored_text(contract)})
    return str(path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("translators")
    points = GeneratorContract(latent_dim=2, takes="points", kind="points")
    return {"negate": save_translator(Negate(), d / "negate.pt2"),
            "noisy": save_translator(NoisyNegate(), d / "noisy.pt2"),
            "rotate": save_translator(Rotate(), d / "rotate.pt2", points, (2, 2)),
            "unrotate": save_translator(Rotate(-np.pi / 8), d / "unrotate.pt2", points, (2, 2)),
            "dir": d}


def test_both_directions_with_an_inverse(planted):
    r = gandiag.evaluate(planted["negate"], inputs="digits-inverted:a", real="digits-inverted:b",
                         inverse=planted["negate"], num_samples=N, progress=False)
    m = r.metrics
    for key in ("fid", "kid", "precision", "coverage", "cycle_l1", "paired_l1", "identity_l1", "ssim", "psnr"):
        assert m[key]["value"] is not None, key
        assert m[f"{key}:b2a"]["value"] is not None, key
    assert m["cycle_l1"]["value"] == 0 and m["cycle_l1:b2a"]["value"] == 0  # the exact inverse undoes it exactly
    assert m["paired_l1"]["value"] == 0 and m["ssim"]["value"] == pytest.approx(1.0)
    assert m["change_l1"]["value"] > 0.5  # inverting 8x8 digits changes most of each image
    inputs = r.generator["inputs"]
    assert inputs["source"] == "digits-inverted:a" and inputs["paired"] and inputs["n"] == N
    assert r.real["source"] == "digits-inverted:b"
    assert r.contract["takes"] == "images" and r.contract["decided"]["takes"] == "file"
    assert "B->A" in r.summary()


def test_the_same_inputs_give_the_same_outputs_whatever_the_batch(planted):
    a = gandiag.evaluate(planted["noisy"], inputs="digits-inverted:a", real="digits-inverted:b", num_samples=N,
                         batch_size=64, progress=False, diagnostics=False)
    b = gandiag.evaluate(planted["noisy"], inputs="digits-inverted:a", real="digits-inverted:b", num_samples=N,
                         batch_size=17, seed=5, progress=False, diagnostics=False)
    for key in ("fid", "paired_l1", "change_l1", "identity_l1"):
        assert a.metrics[key]["value"] == pytest.approx(b.metrics[key]["value"], rel=1e-6), key


def test_points_translator_both_ways(planted):
    r = gandiag.evaluate(planted["rotate"], inputs="ring8-rotated:a", real="ring8-rotated:b",
                         inverse=planted["unrotate"], num_samples=500, progress=False)
    assert r.metrics["paired_l1"]["value"] < 1e-5 and r.metrics["cycle_l1"]["value"] < 1e-5
    assert r.metrics["paired_l1:b2a"]["value"] < 1e-5
    assert "ssim" not in r.metrics  # images only


def test_sides_named_the_other_way_round_give_the_reverse_truth(planted):
    r = gandiag.evaluate(planted["unrotate"], inputs="ring8-rotated:b", real="ring8-rotated:a", num_samples=500,
                         progress=False, diagnostics=False)
    assert r.generator["inputs"]["paired"] and r.metrics["paired_l1"]["value"] < 1e-5


@pytest.mark.parametrize("to, suffix", [("onnx", ".onnx"), ("torchscript", ".ts.pt"), ("export", ".2.pt2")])
def test_exports_give_the_same_numbers(planted, to, suffix):
    if to == "onnx":
        pytest.importorskip("onnxruntime")
    from gandiag.export import export_checkpoint

    out = export_checkpoint(planted["noisy"], to, planted["dir"] / f"noisy{suffix}", overwrite=True)
    runs = [gandiag.evaluate(p, inputs="digits-inverted:a", real="digits-inverted:b", num_samples=N,
                             progress=False, diagnostics=False) for p in (planted["noisy"], out)]
    assert runs[1].contract["takes"] == "images" and runs[1].contract["input_range"] == "-1,1"
    for key, entry in runs[0].metrics.items():
        assert runs[1].metrics[key]["value"] == pytest.approx(entry["value"], rel=1e-5, abs=1e-7), key


def test_a_translator_is_not_rebuilt_as_a_savedmodel(planted, tmp_path):
    res = gandiag_in_process("export", planted["noisy"], "--to", "savedmodel", "-o", tmp_path / "sm")
    assert res.returncode == 2 and "--to onnx" in res.stderr and not (tmp_path / "sm").exists()


def test_a_keras_style_savedmodel_translator(tmp_path):
    """TensorFlow's NHWC translator with no gandiag contract: --inputs and --input-range make it evaluable."""
    tf = pytest.importorskip("tensorflow")

    class Negate(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32, name="x")])
        def __call__(self, x):
            return {"images": -x}

    m = Negate()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures={"serving_default": m.__call__})
    res = gandiag_in_process("evaluate", tmp_path / "sm", "--real", "digits", "--no-progress")
    assert res.returncode == 2 and "--inputs" in res.stderr
    r = gandiag.evaluate(tmp_path / "sm", inputs="digits-inverted:a", real="digits-inverted:b", input_range="[-1,1]",
                         num_samples=N, progress=False, diagnostics=False)
    assert r.contract["layout"] == "NHWC" and r.metrics["paired_l1"]["value"] == 0


@pytest.fixture(scope="module")
def foreign_onnx(tmp_path_factory):
    """A translator exported by someone else: an image-shaped input, no gandiag contract."""
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("foreign") / "g_ab.onnx"
    torch.onnx.export(Negate(), (torch.zeros(2, 1, 8, 8),), str(path), input_names=["x"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)
    return str(path)


def test_an_image_shaped_input_is_never_guessed(foreign_onnx):
    res = gandiag_in_process("evaluate", foreign_onnx, "--real", "digits", "--no-progress")
    assert res.returncode == 2 and "--inputs" in res.stderr and "--latent-shape 1,8,8" in res.stderr
    res = gandiag_in_process("evaluate", foreign_onnx, "--inputs", "digits-inverted:a", "--real",
                             "digits-inverted:b", "--no-progress")
    assert res.returncode == 2 and "--input-range" in res.stderr
    res = gandiag_in_process("evaluate", foreign_onnx, "--inputs", "digits-inverted:a", "--real",
                             "digits-inverted:b", "--input-range", "[-1,1]", "-n", N, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "Paired L1" in res.stdout


def test_a_trusted_pickle_of_a_conv_translator(tmp_path):
    from pathlib import Path

    torch.save(ConvTranslator(), tmp_path / "g_ab.pt")
    here = str(Path(__file__).parent)
    res = gandiag_in_process("evaluate", tmp_path / "g_ab.pt", "--trust-checkpoint", "--generator-path", here,
                             "--real", "digits", "--no-progress")
    assert res.returncode == 2  # a (1, 1, 1) map into a reflection pad: the call fails, one line
    r = gandiag.evaluate(tmp_path / "g_ab.pt", trust_checkpoint=True, generator_path=(here,),
                         inputs="digits-inverted:a", real="digits-inverted:b", input_range="[-1,1]",
                         num_samples=N, progress=False, diagnostics=False)
    assert r.contract["latent_shape"] == [1, 8, 8] and r.contract["decided"]["takes"] == "flag"
    assert r.metrics["change_l1"]["value"] > 0.5


def test_image_folders_paired_by_order(planted, tmp_path):
    from gandiag.data.domains import PAIRS

    a, b = PAIRS["digits-inverted"].side("a"), PAIRS["digits-inverted"].side("b")
    ins = write_pngs(tmp_path / "A", a.data[:60, 0].numpy())
    outs = write_pngs(tmp_path / "B", b.data[:60, 0].numpy())
    kw = dict(feature_extractor="digits", progress=False, diagnostics=False)  # folders name no extractor
    r = gandiag.evaluate(planted["negate"], inputs=ins, real=outs, paired=True, **kw)
    assert r.metrics["paired_l1"]["value"] == 0 and r.generator["inputs"]["n"] == 60
    r = gandiag.evaluate(planted["negate"], inputs=ins, real=outs, **kw)
    assert "paired_l1" not in r.metrics  # folders are paired only when the user says so


@pytest.mark.parametrize("args, words", [
    (["--inputs", "ring8-rotated:a", "--real", "digits-inverted:b"], "takes images"),
    (["--inputs", "digits-inverted:a", "--real", "digits-inverted:b", "-n", "5000"], "hold only 1797"),
    (["--real", "digits-inverted:b"], "--inputs"),
    (["--inputs", "no/such/folder", "--real", "digits-inverted:b"], "no/such/folder"),
])
def test_bad_inputs_get_one_line_and_exit_2(planted, args, words):
    res = gandiag_in_process("evaluate", planted["negate"], *args, "--no-progress")
    assert res.returncode == 2 and words in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_inputs_of_another_shape_are_refused(planted, tmp_path):
    big = np.zeros((20, 3, 16, 16), np.uint8)
    np.savez(tmp_path / "rgb.npz", images=big)
    res = gandiag_in_process("evaluate", planted["negate"], "--inputs", tmp_path / "rgb.npz", "--real",
                             "digits-inverted:b", "--no-progress")
    assert res.returncode == 2 and "(1, 8, 8)" in res.stderr and "(3, 16, 16)" in res.stderr


def test_gates_read_translation_measures_and_both_directions(planted, tmp_path):
    gates = tmp_path / "gates.toml"
    gates.write_text('[gates]\ncycle_l1 = { max = 0.01 }\n"cycle_l1:b2a" = { max = 0.01 }\n'
                     '"fid:b2a" = { max = 1000 }\n"gradient_health:b2a" = { allow = ["healthy"] }\n')
    res = gandiag_in_process("evaluate", planted["negate"], "--inputs", "digits-inverted:a", "--real",
                             "digits-inverted:b", "--inverse", planted["negate"], "-n", N, "--gate", gates,
                             "--json", tmp_path / "r.json", "--no-progress")
    assert res.returncode == 0, res.stderr + res.stdout
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["metrics"]["cycle_l1:b2a"]["value"] == 0
    gates.write_text('[gates]\nchange_l1 = { max = 0.1 }\n')  # inverting changes far more: the gate fails
    res = gandiag_in_process("evaluate", planted["negate"], "--inputs", "digits-inverted:a", "--real",
                             "digits-inverted:b", "-n", N, "--gate", gates, "--no-progress")
    assert res.returncode == 1
