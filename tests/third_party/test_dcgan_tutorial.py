"""The generators people have, saved the ways people save them, evaluated with only the flags the README promises.

The PyTorch DCGAN tutorial's generator (latent (N, 100, 1, 1), sizes as script
globals) in every format it can be saved in: a whole pickle, a state dict with
its class, TorchScript (scripted and traced), ``torch.export``, ONNX through the
dynamo exporter with external data, and ``gandiag export`` of each. A
conditional version with integer labels and with one-hot rows. The Keras DCGAN
tutorial's generator through ``model.export``. Every PyTorch format must give
the same FID and KID as the whole pickle (relative 1e-6: ONNX runtime's
kernels differ from PyTorch's in the last bits of float32, which moves FID by
~1e-8 relative here), and every case without its flags must end in exit 2 with
one line naming the missing flag, never exit 3.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import dcgan_tutorial as tutorial
import pytest
import torch
from conftest import gandiag_in_process, require_extra

HERE = Path(__file__).parent
EVAL = ["--real", "digits", "--feature-extractor", "digits", "-n", "64", "--metrics", "fid,kid", "--no-diagnostics",
        "--no-progress", "--kid-subset-size", "32"]
REL = 1e-6
TRUST = ["--trust-checkpoint"]
CLASS = ["--generator-class", "dcgan_tutorial:Generator", "--generator-kwargs", '{"ngpu": 1}']


def _trained_like(net: torch.nn.Module) -> torch.nn.Module:
    """Deterministic weights and batch-norm statistics, so outputs depend on the latent as a trained net's do."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Embedding)):
            torch.nn.init.normal_(m.weight, 0.0, 0.15)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.05)
            m.running_var.uniform_(0.2, 0.4)
    return net.eval()


def _dynamic(n_inputs: int):
    batch = torch.export.Dim("batch", min=1, max=4096)
    return tuple({0: batch} for _ in range(n_inputs))


def _save_every_way(net, args, folder: Path, stem: str) -> dict:
    """{format: path} of ``net`` saved as its users save it."""
    out = {"pickle": folder / f"{stem}_whole.pt", "state_dict": folder / f"{stem}_state.pt",
           "scripted": folder / f"{stem}_scripted.pt", "traced": folder / f"{stem}_traced.pt",
           "pt2": folder / f"{stem}.pt2", "onnx": folder / f"{stem}.onnx"}
    torch.save(net, out["pickle"])
    torch.save(net.state_dict(), out["state_dict"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated in torch 2.14; existing files are still read
        torch.jit.save(torch.jit.script(net), str(out["scripted"]))
        torch.jit.save(torch.jit.trace(net, args), str(out["traced"]))
        torch.export.save(torch.export.export(net, args, dynamic_shapes=_dynamic(len(args))), str(out["pt2"]))
        torch.onnx.export(net, args, str(out["onnx"]), dynamo=True, dynamic_shapes=_dynamic(len(args)),
                          external_data=True, verbose=False, report=False)
    assert (folder / f"{stem}.onnx.data").is_file(), "the ONNX weights were meant to sit in an external file"
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    require_extra("onnxscript")
    folder = tmp_path_factory.mktemp("tutorial")
    plain = _trained_like(tutorial.Generator(1))
    cond = _trained_like(tutorial.ConditionalGenerator(10))
    onehot = tutorial.OneHotConditionalGenerator(10).eval()
    onehot.load_state_dict(cond.state_dict())
    labels = torch.tensor([1, 7])
    files = {"plain": _save_every_way(plain, (torch.randn(2, 100, 1, 1),), folder, "g"),
             "cond": _save_every_way(cond, (torch.randn(2, 100, 1, 1), labels), folder, "c"),
             "onehot": _save_every_way(onehot, (torch.randn(2, 100, 1, 1),
                                                torch.nn.functional.one_hot(labels, 10).float()), folder, "h")}
    return folder, files


def _evaluate(path, *flags, cwd=None) -> dict:
    out = Path(f"{path}.{next(_RUNS)}.json")
    r = gandiag_in_process("evaluate", path, *EVAL, *flags, "--json", out, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text())


_RUNS = itertools.count()


def _numbers(res: dict) -> dict:
    return {k: res["metrics"][k]["value"] for k in ("fid", "kid")}


def _same(a: dict, b: dict) -> bool:
    return all(abs(a[k] - b[k]) <= REL * max(abs(a[k]), 1e-12) for k in a)


def _exit_2(path, *flags, needs: str, cwd=None):
    r = gandiag_in_process("evaluate", path, *EVAL, *flags, cwd=cwd)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needs in lines[0], r.stderr


FLAGS = {"pickle": TRUST, "state_dict": TRUST + CLASS, "scripted": [], "traced": [], "pt2": [], "onnx": []}


def test_dcgan_tutorial_generator_in_every_format_gives_the_same_numbers(saved):
    folder, files = saved
    reference = _evaluate(files["plain"]["pickle"], *TRUST, cwd=HERE)
    assert reference["contract"]["latent_shape"] == [100, 1, 1]
    assert reference["contract"]["decided"]["latent_shape"] == "module"
    for fmt, flags in FLAGS.items():
        res = _evaluate(files["plain"][fmt], *flags, cwd=HERE)
        assert _same(_numbers(res), _numbers(reference)), (fmt, _numbers(res), _numbers(reference))
        contract = res["contract"]
        assert contract["latent_shape"] == [100, 1, 1] and contract["output_range"] == "-1,1", (fmt, contract)
        assert contract["decided"]["output_range"] == "probe", fmt


def test_each_format_without_its_flags_says_which_flag(saved):
    _, files = saved
    g = files["plain"]
    _exit_2(g["pickle"], needs="--trust-checkpoint")
    _exit_2(g["state_dict"], needs="--generator-class")
    _exit_2(g["state_dict"], "--generator-class", "dcgan_tutorial:Generator", needs="--trust-checkpoint")
    _exit_2(g["state_dict"], *TRUST, "--generator-class", "dcgan_tutorial:Generator", cwd=HERE,
            needs="--generator-kwargs")
    _exit_2(g["state_dict"], *TRUST, "--generator-class", "nowhere_module:Generator", needs="--generator-path")
    _exit_2(g["onnx"], "--latent-shape", "50,2", needs="--latent-shape 100,1,1")
    _exit_2(g["onnx"], "--num-classes", "3", needs="takes no class labels")
    _exit_2(g["pt2"], "--truncation-psi", "0.7", needs="--truncation-psi")


def test_state_dict_class_found_in_the_current_folder_by_the_console_script(saved, tmp_path):
    """The console script does not put the current folder on sys.path; gandiag adds it (after site-packages)."""
    _, files = saved
    shutil.copy(HERE / "dcgan_tutorial.py", tmp_path / "dcgan_tutorial.py")
    exe = Path(sys.executable).with_name("gandiag")
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([str(exe), "evaluate", str(files["plain"]["state_dict"]), *EVAL, *TRUST, *CLASS,
                        "--json", str(out)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    ref = _evaluate(files["plain"]["pickle"], *TRUST, cwd=HERE)
    assert _same(_numbers(json.loads(out.read_text())), _numbers(ref))


def test_a_script_pickled_as_main_is_read_with_generator_class(saved, tmp_path):
    """``torch.save(netG)`` in the tutorial's notebook pickles ``__main__.Generator``."""
    _, files = saved
    src = tmp_path / "save_from_main.py"
    src.write_text("import sys, torch\nsys.path.insert(0, sys.argv[2])\nfrom dcgan_tutorial import Generator\n"
                   "Generator.__module__ = '__main__'\n"
                   "g = Generator(1)\ng.load_state_dict(torch.load(sys.argv[1]))\ntorch.save(g.eval(), sys.argv[3])\n")
    pickled = tmp_path / "netG.pt"
    subprocess.run([sys.executable, str(src), str(files["plain"]["state_dict"]), str(HERE), str(pickled)],
                   check=True, timeout=300)
    _exit_2(pickled, *TRUST, needs="--generator-class")
    res = _evaluate(pickled, *TRUST, "--generator-class", "dcgan_tutorial:Generator", cwd=HERE)
    assert _same(_numbers(res), _numbers(_evaluate(files["plain"]["pickle"], *TRUST, cwd=HERE)))


def test_conditional_generators_index_and_one_hot(saved):
    _, files = saved
    c, h = files["cond"], files["onehot"]
    shape = ["--latent-shape", "100,1,1"]
    # A module: the embedding says 10 classes, given as indices; its first layer takes latent and embedding
    # together, so only the flag can say the latent's shape.
    _exit_2(c["pickle"], *TRUST, needs="--latent-shape")
    reference = _evaluate(c["pickle"], *TRUST, *shape, cwd=HERE)
    assert reference["contract"]["num_classes"] == 10 and reference["contract"]["decided"]["num_classes"] == "module"
    assert _same(_numbers(_evaluate(c["scripted"], *shape)), _numbers(reference))
    for path in (c["pt2"], c["onnx"]):  # traced inputs: the latent's shape, and an integer second input
        _exit_2(path, needs="--num-classes")
        assert _same(_numbers(_evaluate(path, "--num-classes", "10")), _numbers(reference)), path
    for path in (h["pt2"], h["onnx"]):  # one-hot rows: their width is the number of classes
        res = _evaluate(path)
        assert res["contract"]["label_format"] == "onehot" and res["contract"]["num_classes"] == 10, path
        assert _same(_numbers(res), _numbers(reference)), path
    res = _evaluate(h["pickle"], *TRUST, *shape, "--label-format", "onehot", cwd=HERE)
    assert _same(_numbers(res), _numbers(reference))


@pytest.mark.parametrize("to", ["onnx", "export"])
def test_gandiag_export_of_any_pytorch_generator_keeps_its_latent_shape(saved, to, tmp_path):
    _, files = saved
    reference = _evaluate(files["plain"]["pickle"], *TRUST, cwd=HERE)
    for src, flags in (("pickle", TRUST), ("pt2", [])):
        out = tmp_path / f"{src}.{'onnx' if to == 'onnx' else 'pt2'}"
        r = gandiag_in_process("export", files["plain"][src], "--to", to, "-o", out, *flags, cwd=HERE)
        assert r.returncode == 0, r.stderr
        res = _evaluate(out)  # no flags: the contract travels in the file
        assert res["contract"]["latent_shape"] == [100, 1, 1]
        assert res["contract"]["decided"]["latent_shape"] == "file"
        assert _same(_numbers(res), _numbers(reference)), (src, to)
    r = gandiag_in_process("export", files["plain"]["onnx"], "--to", "export", "-o", tmp_path / "x.pt2")
    assert r.returncode == 2 and "not a PyTorch generator" in r.stderr and not (tmp_path / "x.pt2").exists()


def test_keras_dcgan_tutorial_generator_through_model_export(tmp_path):
    """The TensorFlow DCGAN tutorial's generator (latent (N, 100), NHWC 28x28x1, tanh), saved with
    ``model.export``: read from its signature with no flags."""
    tf = require_extra("tensorflow")
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(100,)),
        layers.Dense(7 * 7 * 32, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Reshape((7, 7, 32)),
        layers.Conv2DTranspose(16, (5, 5), strides=(1, 1), padding="same", use_bias=False),
        layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Conv2DTranspose(8, (5, 5), strides=(2, 2), padding="same", use_bias=False),
        layers.BatchNormalization(), layers.LeakyReLU(),
        layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"),
    ])
    model.export(str(tmp_path / "keras_gen"), verbose=False)
    res = _evaluate(tmp_path / "keras_gen")
    contract = res["contract"]
    assert contract["latent_dim"] == 100 and contract["decided"]["latent_dim"] == "file"
    assert contract["layout"] == "NHWC" and contract["sample_shape"] == [1, 28, 28]
    assert res["metrics"]["fid"]["value"] > 0
