"""TensorFlow SavedModel generator loader for gandiag, an ordinary entry-point plugin.

A SavedModel is a directory holding ``saved_model.pb``. The generator is
called through a serving signature (``serving_default``, or the only one
there is): its float input is the latent (any static shape after the batch),
an integer input or a one-hot float input the class labels,
and its output's static shape tells points, sequences and images apart.
Images are taken to be NHWC and sequences NTC, (batch, timesteps, features)
as Keras' recurrent and Conv1D layers write them, unless the shape says
otherwise (``--layout`` overrides); the range is detected from a probe batch. A contract stored by ``gandiag export``
(``assets.extra/gandiag_contract.json``) gives everything; flags override.
A signature with a fixed batch size is run in chunks of that size.

A SavedModel is a program, so unless ``--trust-checkpoint`` is given its
``saved_model.pb`` is parsed and every op of every graph and function checked
against an allow-list before TensorFlow loads it
(:mod:`gandiag.safety.tf_graph`). Keras files (``.keras``, ``.h5``), which can
hold Python code, are not read; the refusal says how to export a SavedModel.

TensorFlow is imported only when a SavedModel is loaded, so gandiag works
without it and says what to install when one is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gandiag import CheckpointError, LoadedGenerator, LoadOptions, hookimpl
from gandiag.export.tensorflow import import_tensorflow
from gandiag.generator.contract import STORED_IN_SAVEDMODEL, read_stored
from gandiag.generator.signature import TensorInfo, numpy_forward, read_signature
from gandiag.safety.files import read_text_limited, require_input
from gandiag.safety.keras_files import KERAS_SUFFIXES, keras_refusal
from gandiag.safety.tf_graph import check_folder, check_savedmodel
from gandiag.safety.untrusted import shown

__version__ = "0.1.0"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return shown(text[0] if text else type(exc).__name__, 240)


def _import_tf(path):
    try:
        tf = import_tensorflow()  # keeps TensorFlow quiet, and safe beside PyTorch's triton
    except ImportError:
        raise CheckpointError(f"{path}: reading TensorFlow SavedModels needs tensorflow: "
                              "pip install 'gandiag[tensorflow]'") from None
    return tf


def _info(tf, name: str, spec) -> TensorInfo:
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else None
    dtype = spec.dtype
    kind = "float" if dtype.is_floating else "int" if dtype.is_integer else "other"
    return TensorInfo(name, shape, kind)


class SavedModelLoader:
    name = "tensorflow"
    description = "TensorFlow SavedModel directories (saved_model.pb) through a serving signature"

    def sniff(self, path: Path) -> bool:
        if path.is_file() and path.suffix.lower() in KERAS_SUFFIXES:
            return True  # only to say that Keras files are not read, and what to do instead
        return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file())

    def load(self, path: Path, options: LoadOptions) -> LoadedGenerator:
        if path.suffix.lower() in KERAS_SUFFIXES and not path.is_dir():
            raise keras_refusal(path)
        require_input(path, "a SavedModel", folder_ok=True, error=CheckpointError)
        check_folder(path)  # always: a FIFO under variables/ would block TensorFlow's reads for ever
        tf = _import_tf(path)
        if not options.trust_checkpoint:
            check_savedmodel(path)
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable SavedModel ({_first_line(exc)})") from None
        sigs = dict(getattr(loaded, "signatures", {}) or {})
        if not sigs:
            raise CheckpointError(f"{path}: the SavedModel has no serving signature; save it with "
                                  "tf.saved_model.save(module, dir, signatures=...) or use gandiag export")
        if "serving_default" in sigs:
            sig_name = "serving_default"
        elif len(sigs) == 1:
            sig_name = next(iter(sigs))
        else:
            raise CheckpointError(f"{path}: {len(sigs)} signatures ({', '.join(sorted(sigs))}) and no serving_default")
        fn = sigs[sig_name]
        in_specs = fn.structured_input_signature[1]  # signatures take keyword arguments only
        outputs = fn.structured_outputs
        if not isinstance(outputs, dict):
            raise CheckpointError(f"{path}: signature {sig_name!r} returns no named outputs")
        sig = read_signature(f"{path} (signature {sig_name})",
                             [_info(tf, k, v) for k, v in in_specs.items()],
                             [_info(tf, k, v) for k, v in outputs.items()], default_layout="NHWC",
                             default_sequence_layout="NTC")
        contract = self._stored_contract(path) or sig.contract
        z_dtype = in_specs[sig.latent.name].dtype
        lab_dtype = in_specs[sig.labels.name].dtype if sig.labels else None
        lab_2d = bool(sig.labels and sig.labels.shape and len(sig.labels.shape) == 2)
        out_name, device = sig.output.name, options.device
        tf_device = "/CPU:0" if device == "cpu" else "/GPU:" + (device.partition(":")[2] or "0")

        def run(z: np.ndarray, labels):
            feed = {sig.latent.name: tf.constant(z, dtype=z_dtype)}
            if sig.labels is not None:
                feed[sig.labels.name] = tf.constant(labels, dtype=lab_dtype)
            with tf.device(tf_device):
                return fn(**feed)[out_name].numpy()

        forward = numpy_forward(path, sig, run, device, lab_2d, _first_line)

        return LoadedGenerator(forward, contract, "savedmodel", str(path), takes_labels=sig.labels is not None,
                               known=sig.known if contract is None else {},
                               meta={"signature": sig_name, "inputs": list(in_specs), "output": out_name,
                                     "contract_stored": (path / STORED_IN_SAVEDMODEL).is_file(),
                                     "tensorflow_version": tf.__version__})

    def _stored_contract(self, path: Path):
        f = path / STORED_IN_SAVEDMODEL
        if not f.is_file():
            return None
        return read_stored(read_text_limited(f, "a stored contract", error=CheckpointError), f)


@hookimpl(trylast=True)
def register_loaders(register):
    register(SavedModelLoader())
