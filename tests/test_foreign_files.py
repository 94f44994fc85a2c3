"""Other frameworks' files given to `gandiag evaluate` / `export`: one line each saying what the file is and what
to do (Keras, JAX/Flax, TensorFlow checkpoints, diffusers); safetensors read as state dicts; a foreign pickle's
refusal in our words; TensorFlow imported before torch in one process (a notebook) evaluates a .pt2."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from conftest import gandiag_in_process, require_extra

from gandiag.errors import CheckpointError
from gandiag.safety.safetensors_file import read_safetensors

RING = ("--real", "ring8", "-n", "40", "--no-diagnostics", "--metrics", "fid", "--no-cache")

GENERATOR_MODULE = textwrap.dedent("""
    import torch

    class PointG(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

        def forward(self, z):
            return self.net(z)
""")


def _one_line(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and "\x1b" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _keras_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        z.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    return path


HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(120)
FLAX = b"\x82\xa6params\x81\xa5dense\x80\xa4step\x00"  # flax.serialization.to_bytes({"params": ..., "step": 0})


@pytest.mark.parametrize("name,make", [
    ("gen.keras", _keras_zip),
    ("gen.h5", lambda p: p.write_bytes(HDF5)),
    ("gen.hdf5", lambda p: p.write_bytes(HDF5)),
    ("keras_model.bin", _keras_zip),  # a Keras zip under a torch suffix: was "corrupt or truncated PyTorch file"
    ("weights.pt", lambda p: p.write_bytes(HDF5)),
])
def test_keras_files(tmp_path, name, make):
    p = tmp_path / name
    make(p)
    for cmd in (("evaluate", p, *RING), ("export", p, "--to", "onnx", "-o", tmp_path / "out.onnx")):
        _one_line(gandiag_in_process(*cmd), "Keras", "model.export(", "tf.saved_model.save")
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("name", ["flax_params.msgpack", "checkpoint_1000", "state.ckpt", "params.bin"])
def test_flax_msgpack_files(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(FLAX)
    for cmd in (("evaluate", p, *RING), ("export", p, "--to", "onnx", "-o", tmp_path / "o.onnx")):
        _one_line(gandiag_in_process(*cmd), "JAX/Flax", "cannot run JAX", "jax2tf", "ONNX")


def test_orbax_checkpoint_folders(tmp_path):
    step = tmp_path / "ckpts" / "1000"
    (step / "default" / "d").mkdir(parents=True)
    (step / "default" / "_METADATA").write_text("{}")
    (step / "default" / "manifest.ocdbt").write_bytes(b"\x00")
    (step / "_CHECKPOINT_METADATA").write_text("{}")
    for folder in (tmp_path / "ckpts", step, step / "default"):
        _one_line(gandiag_in_process("evaluate", folder, *RING), "Orbax", "cannot run JAX", "jax2tf", "ONNX")
    legacy = tmp_path / "legacy"  # a PyTreeCheckpointer folder: one msgpack file named checkpoint
    legacy.mkdir()
    (legacy / "checkpoint").write_bytes(FLAX)
    _one_line(gandiag_in_process("evaluate", legacy, *RING), "Orbax")


def test_diffusers_folders_and_weights(tmp_path):
    pipe = tmp_path / "ddpm-cifar10"
    (pipe / "unet").mkdir(parents=True)
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    (pipe / "unet" / "config.json").write_text("{}")
    (pipe / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(_safetensors_bytes({"w": torch.zeros(2)}))
    for target in (pipe, pipe / "unet", pipe / "unet" / "diffusion_pytorch_model.safetensors"):
        line = _one_line(gandiag_in_process("evaluate", target, *RING), "diffus", "not a GAN generator")
        assert "generate images" in line and "folder" in line
    line = _one_line(gandiag_in_process("evaluate", tmp_path / "fakes", *RING), "no such file")  # still a path error


def test_tensorflow_training_checkpoint(tmp_path):
    (tmp_path / "ckpt-5.index").write_bytes(b"\x00" * 16)
    (tmp_path / "ckpt-5.data-00000-of-00001").write_bytes(b"\x00" * 16)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    _one_line(gandiag_in_process("evaluate", tmp_path / "ckpt-5.index", *RING), "TensorFlow training checkpoint",
              "tf.saved_model.save")
    _one_line(gandiag_in_process("evaluate", tmp_path, *RING), "TensorFlow training checkpoint")


def test_pickles_and_zips_stay_with_the_torch_loader(tmp_path):
    """Recognition never takes a PyTorch file: a pickle begins with 0x80 (an empty msgpack map, never taken)."""
    from gandiag.generator.foreign import describe

    p = tmp_path / "sd.pt"
    torch.save({"w": torch.zeros(3)}, p)
    assert describe(p) is None
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    assert describe(legacy) is None
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 8, 8), np.uint8))
    assert describe(tmp_path / "x.npz") is None
    assert describe(tmp_path) is None


# ----------------------------------------------------------------------------- safetensors

def _safetensors_bytes(tensors: dict, metadata=None) -> bytes:
    """The format by hand (for the malformed cases): u64 header length, JSON header, tensors back to back."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.uint8: "U8", torch.bool: "BOOL"}
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = v.contiguous().view(torch.uint8).numpy().tobytes() if v.numel() else b""
        header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def test_safetensors_reader_matches_the_reference_package(tmp_path):
    st = require_extra("safetensors.torch")
    tensors = {"a.weight": torch.randn(3, 4), "half": torch.randn(5).half(), "bf": torch.randn(2, 2).bfloat16(),
               "idx": torch.arange(7), "mask": torch.tensor([True, False, True]), "empty": torch.zeros(0, 3),
               "bytes": torch.arange(5, dtype=torch.uint8)}
    st.save_file(tensors, str(tmp_path / "ref.safetensors"), metadata={"format": "pt"})
    (tmp_path / "hand.safetensors").write_bytes(_safetensors_bytes(tensors, {"format": "pt"}))
    for name in ("ref.safetensors", "hand.safetensors"):
        got = read_safetensors(tmp_path / name)
        assert set(got) == set(tensors)
        for k, v in tensors.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape and torch.equal(got[k], v), k
    assert st.load_file(str(tmp_path / "hand.safetensors")).keys() == tensors.keys()


@pytest.mark.parametrize("mutate,match", [
    (lambda b: b[:5], "truncated"),
    (lambda b: struct.pack("<Q", 1 << 40) + b[8:], "header length"),
    (lambda b: b[:8] + b"[" + b[9:], "not valid JSON|not a JSON object"),
    (lambda b: b.replace(b'"F32"', b'"Q99"'), "unknown dtype"),
    (lambda b: b.replace(b"[0, 48]", b"[0, 44]"), "needs 48 bytes|outside"),
    (lambda b: b[:-4], "outside|cover"),
    (lambda b: b + b"\0" * 8, "cover"),
    (lambda b: b.replace(b'"shape": [3, 4]', b'"shape": [3,-4]'), "not a list of sizes"),
])
def test_malformed_safetensors_is_one_checkpoint_error(tmp_path, mutate, match):
    good = _safetensors_bytes({"w": torch.randn(3, 4), "b": torch.randn(4)})
    p = tmp_path / "bad.safetensors"
    p.write_bytes(mutate(good))
    with pytest.raises(CheckpointError, match=match):
        read_safetensors(p)


def test_mutated_safetensors_read_or_refused_never_crash(tmp_path):
    """Random byte flips, cuts and header edits: a state dict or one CheckpointError, nothing else."""
    rng = np.random.default_rng(0)
    good = _safetensors_bytes({"w": torch.randn(3, 4), "b": torch.randn(4).half(), "i": torch.arange(3)})
    p = tmp_path / "m.safetensors"
    for _ in range(300):
        b = bytearray(good)
        for _ in range(int(rng.integers(1, 4))):
            op = rng.integers(3)
            if len(b) < 41:
                break
            if op == 0:
                b[int(rng.integers(len(b)))] = int(rng.integers(256))
            elif op == 1:
                del b[int(rng.integers(len(b))):]
            else:
                b[int(rng.integers(8, 40))] = ord(rng.choice(list('{}[]",:09- ')))
        p.write_bytes(bytes(b))
        try:
            out = read_safetensors(p)
        except CheckpointError as exc:
            assert "\n" not in str(exc)
        else:
            assert all(torch.is_tensor(v) for v in out.values())


def test_safetensors_state_dict_evaluates_like_the_pt_state_dict(tmp_path):
    (tmp_path / "pointg.py").write_text(GENERATOR_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import pointg
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pointg", None)
    torch.manual_seed(0)
    state = pointg.PointG().state_dict()
    torch.save(state, tmp_path / "g.pt")
    (tmp_path / "g.safetensors").write_bytes(_safetensors_bytes(state))
    (tmp_path / "renamed.bin").write_bytes(_safetensors_bytes(state))  # found by its header, not its suffix
    _one_line(gandiag_in_process("evaluate", tmp_path / "g.safetensors", *RING), "safetensors", "--generator-class")
    _one_line(gandiag_in_process("evaluate", tmp_path / "g.safetensors", *RING, "--generator-class", "pointg:PointG"),
              "--trust-checkpoint")
    values = {}
    for name in ("g.pt", "g.safetensors", "renamed.bin"):
        res = gandiag_in_process("evaluate", tmp_path / name, *RING, "--generator-class", "pointg:PointG",
                                 "--trust-checkpoint", "--generator-path", tmp_path, "--json", tmp_path / f"{name}.json")
        assert res.returncode == 0, res.stderr
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        values[name] = doc["metrics"]["fid"]["value"]
        assert doc["generator"]["format"] == ("state_dict" if name == "g.pt" else "safetensors")
    assert values["g.pt"] == values["g.safetensors"] == values["renamed.bin"]


# ----------------------------------------------------------------------------- pickles refused in our words

def test_foreign_pickle_refusal_is_our_one_line(tmp_path):
    p = tmp_path / "whole_module.pt"
    torch.save(torch.nn.Linear(8, 2), p)
    for cmd in (("evaluate", p, *RING), ("export", p, "--to", "onnx", "-o", tmp_path / "o.onnx")):
        line = _one_line(gandiag_in_process(*cmd), "--trust-checkpoint", "pickled")
        assert "two options" not in line and "weights_only" not in line.replace("weights_only=True", "")


def test_resume_refusal_of_a_pickle_is_our_one_line(tmp_path):
    from gandiag.generator.checkpoint import read_checkpoint

    p = tmp_path / "m.pt"
    torch.save(torch.nn.Linear(2, 2), p)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(p)
    msg = str(info.value)
    assert "\n" not in msg and "two options" not in msg and "--trust-checkpoint" in msg
    assert "torch.nn.modules.linear.Linear" in msg


# ----------------------------------------------------------------------------- TensorFlow, then torch, one process

NOTEBOOK = textwrap.dedent("""
    import tensorflow
    import torch
    from gandiag import evaluate

    r = evaluate({pt2!r}, "ring8", num_samples=40, diagnostics=False, metrics=["fid"], use_cache=False, device="cpu")
    print("FID", r.metrics["fid"]["value"])
""")


def test_tensorflow_imported_before_torch_then_pt2(tmp_path):
    """`import tensorflow; import torch; evaluate("x.pt2")` crashed with SIGSEGV: loading the .pt2 imported
    triton, whose libtriton.so dies at start-up after TensorFlow's native libraries (gandiag/generator/native_libs.py).
    Run in a fresh process, as a notebook would, compared with the same evaluation without TensorFlow."""
    require_extra("tensorflow")
    from tiny_models import PointsGenerator

    torch.manual_seed(0)
    net = PointsGenerator().eval()
    latent = getattr(net, "latent_dim", 8)
    program = torch.export.export(net, (torch.randn(4, latent),), dynamic_shapes=({0: torch.export.Dim("n")},))
    pt2 = tmp_path / "g.pt2"
    torch.export.save(program, pt2)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    script = NOTEBOOK.format(pt2=str(pt2))
    with_tf = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert with_tf.returncode == 0, (with_tf.returncode, with_tf.stderr[-3000:])
    without = subprocess.run([sys.executable, "-c", script.replace("import tensorflow\n", "")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert without.returncode == 0, without.stderr[-3000:]
    assert with_tf.stdout.split()[-1] == without.stdout.split()[-1]
    assert "triton" not in with_tf.stderr
