"""Keras model files are refused with a way out.

A ``.keras`` archive or a legacy ``.h5`` file can hold Python code (a
``Lambda`` layer's marshalled bytecode, custom objects that Keras imports),
and loading one is Keras' business, not gandiag's: gandiag reads the
SavedModel that ``model.export(dir)`` writes, a graph it can check.
Without this, a ``.keras`` file (a zip) met the PyTorch loader and got
"corrupt or truncated PyTorch file".
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_KERAS_MEMBERS = ({"config.json", "model.weights.h5"}, {"config.json", "metadata.json"})


def is_keras_file(path: Path, zip_names=()) -> bool:
    """By suffix, by the HDF5 signature, or by the members of a Keras v3 zip."""
    if path.suffix.lower() in KERAS_SUFFIXES:
        return True
    names = set(zip_names)
    if any(m <= names for m in _KERAS_MEMBERS):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(len(HDF5_MAGIC)) == HDF5_MAGIC
    except OSError:
        return False


def keras_refusal(path) -> CheckpointError:
    return CheckpointError(
        f"{path} is a Keras model file; gandiag does not read Keras files (they can hold Python code): "
        "export a TensorFlow SavedModel with model.export('generator_savedmodel') (or "
        "tf.saved_model.save(model, 'generator_savedmodel')) and evaluate that folder")
