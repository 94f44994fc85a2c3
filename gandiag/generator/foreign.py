"""Files of other frameworks that gandiag does not run, recognised so that the message says what to do.

The one home of that recognition: :func:`gandiag.generator.loading.load_generator`
consults it when no loader plugin claims a path, the PyTorch loader before it
reads a file it claims by suffix (a ``.bin`` or ``.ckpt`` can be anything),
the image-folder reader when a folder holds no images, and ``gandiag export``
before it reads a checkpoint. Each refusal is one line naming the format and
the way to a file gandiag evaluates:

- Keras ``.keras`` archives and HDF5 ``.h5``/``.hdf5`` files: export a
  TensorFlow SavedModel (:mod:`gandiag.safety.keras_files`);
- JAX/Flax: ``flax.serialization`` msgpack files and Orbax checkpoint folders:
  gandiag cannot run JAX; export through jax2tf as a SavedModel, or to ONNX;
- TensorFlow training checkpoints (``.index`` + ``.data-*``): variables
  without a graph; save a SavedModel;
- diffusers pipelines and models (``model_index.json``, or ``config.json``
  beside ``diffusion_pytorch_model.*``): a diffusion model is not a GAN
  generator; generate images into a folder and evaluate the folder.

Only a few bytes of a file, and a bounded listing of a folder, are read.
Nothing here claims a file that a loader plugin reads: a third-party JAX
loader, say, is asked first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..errors import CheckpointError
from ..safety.keras_files import is_keras_file, keras_refusal
from ..safety.untrusted import shown

JAX_WAY_OUT = ("gandiag cannot run JAX: export the generator with jax2tf as a TensorFlow SavedModel "
               "(tf.saved_model.save) or to ONNX, and evaluate that")
DIFFUSION_WAY_OUT = ("gandiag evaluates a GAN generator or pre-generated samples: generate images with the pipeline "
                     "into a folder and pass the folder (gandiag evaluate FOLDER --real ...)")
ORBAX_MARKERS = ("_METADATA", "_CHECKPOINT_METADATA", "manifest.ocdbt", "_sharding", "commit_success.txt")
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                     "diffusion_flax_model.msgpack")
MAX_LISTED = 256  # folder entries looked at, per folder


def describe(path, zip_names=()) -> Optional[str]:
    """One line saying what foreign format ``path`` is and what to do, or None when it is none of them."""
    path = Path(path)
    try:
        if path.is_dir():
            return _describe_folder(path)
        if not path.is_file():  # never open a FIFO or a device
            return None
    except OSError:
        return None
    where = shown(str(path), 300)
    if path.name in DIFFUSERS_WEIGHTS:
        return f"{where} holds the weights of a diffusers model (a diffusion model, not a GAN generator); " \
               + DIFFUSION_WAY_OUT
    if is_keras_file(path, zip_names):
        return str(keras_refusal(path))
    head = _head(path, 64)
    if _msgpack_map(head):
        return f"{where} looks like a JAX/Flax checkpoint (msgpack, flax.serialization); {JAX_WAY_OUT}"
    if path.suffix == ".index" or ".data-" in path.name and "-of-" in path.name:
        return (f"{where} is part of a TensorFlow training checkpoint (variables, no graph): save the model with "
                "tf.saved_model.save(model, DIR) (or Keras' model.export(DIR)) and evaluate that folder")
    return None


def refuse(path, zip_names=(), error=CheckpointError) -> None:
    """Raise ``error`` with :func:`describe`'s line when ``path`` is another framework's file."""
    msg = describe(path, zip_names)
    if msg:
        raise error(msg)


def _describe_folder(path: Path) -> Optional[str]:
    where = shown(str(path), 300)
    names = _listing(path)
    if "model_index.json" in names:
        return f"{where} is a diffusion pipeline (diffusers: model_index.json), not a GAN generator; " + DIFFUSION_WAY_OUT
    if "config.json" in names and names & set(DIFFUSERS_WEIGHTS):
        return f"{where} is a diffusers model (config.json and diffusion_pytorch_model weights), not a GAN " \
               "generator; " + DIFFUSION_WAY_OUT
    if _orbax(path, names, depth=2):
        return f"{where} is an Orbax (JAX) checkpoint folder; {JAX_WAY_OUT}"
    if "saved_model.pb" not in names and any(n.endswith(".index") for n in names) and "checkpoint" in names:
        return (f"{where} holds a TensorFlow training checkpoint (variables, no graph): save the model with "
                "tf.saved_model.save(model, DIR) (or Keras' model.export(DIR)) and evaluate that folder")
    return None


def _orbax(path: Path, names: set, depth: int) -> bool:
    """Orbax's marker files here, or (``depth`` levels down) in a step or item folder of a CheckpointManager."""
    if names & set(ORBAX_MARKERS):
        return True
    if "checkpoint" in names and _msgpack_map(_head(path / "checkpoint", 64)):
        return True
    if depth <= 0:
        return False
    for n in sorted(names)[:16]:
        sub = path / n
        if not sub.is_symlink() and sub.is_dir() and _orbax(sub, _listing(sub), depth - 1):
            return True
    return False


def _listing(path: Path) -> set:
    out = set()
    try:
        with os.scandir(path) as it:
            for entry in it:
                out.add(entry.name)
                if len(out) >= MAX_LISTED:
                    break
    except OSError:
        pass
    return out


def _head(path: Path, n: int) -> bytes:
    from ..safety.files import is_regular_file

    if not is_regular_file(path):
        return b""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, n)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _msgpack_map(head: bytes) -> bool:
    """A msgpack map whose first key is a short printable string: how ``flax.serialization.to_bytes`` (a dict
    of ``params``, ``step``, ``opt_state``...) begins. A pickle begins with 0x80 (an empty map): never taken."""
    if len(head) < 3:
        return False
    b = head[0]
    if 0x81 <= b <= 0x8F:
        i = 1
    elif b == 0xDE:
        i = 3
    elif b == 0xDF:
        i = 5
    else:
        return False
    if len(head) <= i + 1:
        return False
    k = head[i]
    if 0xA1 <= k <= 0xBF:
        size, start = k - 0xA0, i + 1
    elif k == 0xD9:
        size, start = head[i + 1], i + 2
    else:
        return False
    key = head[start:start + size]
    if len(key) < min(size, len(head) - start) or not key:
        return False
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable()
