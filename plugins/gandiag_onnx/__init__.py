"""ONNX generator loader for gandiag, an ordinary entry-point plugin.

Runs ``.onnx`` generators with onnxruntime: the CPU provider always, CUDA
first when onnxruntime has it and ``--device cuda`` is asked for. Inputs and
outputs are read from the graph: the float input is the latent (its static
shape after the batch, (100,) or (100, 1, 1), the latent shape), an integer
input or a one-hot float input the class labels, and the
output's static shape tells points (N, D), sequences (N, T, C) / (N, C, T)
and images apart and, where unambiguous, the layout (sequences: only when
exactly one of the two axes has a single channel; otherwise detected from a
probe batch the same way, else ``--layout NTC|NCT`` is asked for: ONNX has no
convention to fall back on). A contract stored by ``gandiag export`` (metadata key
``gandiag.contract``) gives everything else; flags override both. A graph
exported with a fixed batch size is run in chunks of that size.

Before onnxruntime opens the model, :mod:`gandiag.safety.onnx_model` checks
that external data stays inside the model's folder (always) and that no
node uses a custom operator domain (unless ``--trust-checkpoint``).

onnxruntime is imported only when an ``.onnx`` file is loaded, so gandiag
works without it and says what to install when one is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gandiag import CheckpointError, LoadedGenerator, LoadOptions, hookimpl
from gandiag.generator.contract import STORED_IN_ONNX, read_stored
from gandiag.generator.signature import TensorInfo, numpy_forward, read_signature
from gandiag.safety.files import require_input
from gandiag.safety.onnx_model import check_onnx_model
from gandiag.safety.untrusted import shown

__version__ = "0.1.0"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return shown(text[0] if text else type(exc).__name__, 240)


def _ort_reason(exc: BaseException) -> str:
    """onnxruntime's message without its error code, file path and C++ source location."""
    msg = _first_line(exc) if len(str(exc)) < 240 else str(exc).strip().splitlines()[0]
    msg = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", msg)
    msg = re.sub(r"^Load model from .*? failed:", "", msg)
    msg = re.sub(r"^\S+\.(cc|h):\d+ [^(]*\([^)]*\) ", "", msg)
    return shown(msg.strip(), 240)  # the message can quote names from the file


def _kind(onnx_type: str) -> str:
    if onnx_type in ("tensor(float)", "tensor(double)", "tensor(float16)", "tensor(bfloat16)"):
        return "float"
    if onnx_type.startswith("tensor(int") or onnx_type.startswith("tensor(uint"):
        return "int"
    return "other"


_NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
          "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
          "tensor(uint8)": np.uint8}


def _info(arg) -> TensorInfo:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape) if arg.shape is not None else None
    return TensorInfo(arg.name, shape, _kind(arg.type))


class OnnxLoader:
    name = "onnx"
    description = "ONNX graphs (.onnx) through onnxruntime"

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() == ".onnx" and path.is_file()  # never a folder, a FIFO or a device

    def load(self, path: Path, options: LoadOptions) -> LoadedGenerator:
        require_input(path, "an ONNX model", error=CheckpointError)
        try:
            import onnxruntime as ort
        except ImportError:
            raise CheckpointError(f"{path}: reading ONNX models needs onnxruntime: pip install 'gandiag[onnx]'") from None
        check_onnx_model(path, options.trust_checkpoint)
        providers = ["CPUExecutionProvider"]
        if options.device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(options.device.partition(":")[2] or 0)}))
        so = ort.SessionOptions()
        so.log_severity_level = 3  # errors only: warnings would interleave with gandiag's output
        try:
            sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:
            reason = _ort_reason(exc)
            if "INVALID_PROTOBUF" in str(exc) or "Protobuf parsing failed" in str(exc):
                raise CheckpointError(f"{path}: not a readable ONNX model: truncated or corrupt ({reason})") from None
            raise CheckpointError(f"{path}: onnxruntime {ort.__version__} cannot load this model: {reason}") from None
        sig = read_signature(str(path), [_info(a) for a in sess.get_inputs()], [_info(a) for a in sess.get_outputs()],
                             default_layout=None)
        stored = sess.get_modelmeta().custom_metadata_map.get(STORED_IN_ONNX)
        contract = read_stored(stored, path) or sig.contract
        types = {a.name: a.type for a in sess.get_inputs()}
        z_type = _NUMPY.get(types[sig.latent.name], np.float32)
        lab_type = _NUMPY.get(types[sig.labels.name], np.int64) if sig.labels else None
        lab_2d = bool(sig.labels and sig.labels.shape and len(sig.labels.shape) == 2)
        out_name, device = sig.output.name, options.device

        def run(z: np.ndarray, labels):
            feed = {sig.latent.name: z}
            if sig.labels is not None:
                feed[sig.labels.name] = labels
            return sess.run([out_name], feed)[0]

        forward = numpy_forward(path, sig, run, device, lab_2d, _ort_reason, z_dtype=z_type, label_dtype=lab_type)

        return LoadedGenerator(forward, contract, "onnx", str(path), takes_labels=sig.labels is not None,
                               known=sig.known if contract is None else {},
                               meta={"providers": sess.get_providers(), "inputs": [a.name for a in sess.get_inputs()],
                                     "output": out_name, "contract_stored": bool(stored)})


@hookimpl(trylast=True)
def register_loaders(register):
    register(OnnxLoader())
