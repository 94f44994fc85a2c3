"""A generator contract read from a graph's signature (ONNX inputs, SavedModel signatures).

Graph formats carry no Python class to ask, but their signature names typed,
shaped inputs and outputs. Loaders for such formats describe each tensor as a
:class:`TensorInfo` and let :func:`read_signature` decide which input is the
latent and which the class labels, what the latent size is, and what the
output layout is when the static shape says so. A contract stored in the file
by ``gandiag export`` wins over anything read here; flags win over both.

:func:`call_batched` runs a graph whose batch dimension is fixed (exported
with batch 1, say) on any batch, in chunks, padding the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import CheckpointError, GeneratorOutputError
from .contract import GeneratorContract

LATENT_NAMES = ("z", "latent", "latents", "noise", "input", "x")
LABEL_NAMES = ("labels", "label", "y", "class", "classes", "class_labels", "c")


@dataclass
class TensorInfo:
    name: str
    shape: Optional[tuple]  # ints for static dims, None for dynamic ones; None when the rank is unknown
    kind: str  # "float" | "int" | "other"


@dataclass
class Signature:
    latent: TensorInfo
    labels: Optional[TensorInfo]
    output: TensorInfo
    fixed_batch: Optional[int]  # the graph takes exactly this many rows, or None when dynamic
    contract: Optional[GeneratorContract]  # what the signature alone tells (latent size, layout)


def _by_name(candidates: Sequence[TensorInfo], names: Sequence[str]) -> Optional[TensorInfo]:
    for n in names:
        for t in candidates:
            if t.name.lower().split(":")[0] == n:
                return t
    return None


def read_signature(where: str, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   default_layout: Optional[str]) -> Signature:
    """Pick latent, label and output tensors; raise a one-line error when they make no generator."""
    floats = [t for t in inputs if t.kind == "float"]
    ints = [t for t in inputs if t.kind == "int"]
    others = [t for t in inputs if t.kind == "other"]
    if others:
        raise CheckpointError(f"{where}: input {others[0].name!r} is neither float nor integer; "
                              "a generator takes a float latent and, optionally, integer class labels")
    if len(floats) != 1:
        listed = ", ".join(f"{t.name} {t.shape}" for t in inputs) or "none"
        if not floats:
            raise CheckpointError(f"{where}: no float input to take the latent (inputs: {listed})")
        latent = _by_name(floats, LATENT_NAMES)
        if latent is None:
            raise CheckpointError(f"{where}: {len(floats)} float inputs and none named z or latent (inputs: {listed})")
    else:
        latent = floats[0]
    if len(ints) > 1:
        labels = _by_name(ints, LABEL_NAMES)
        if labels is None:
            raise CheckpointError(f"{where}: {len(ints)} integer inputs and none named labels")
    else:
        labels = ints[0] if ints else None
    if latent.shape is not None and len(latent.shape) != 2:
        raise CheckpointError(f"{where}: latent input {latent.name!r} has shape {_fmt(latent.shape)}; expected (batch, latent size)")
    if labels is not None and labels.shape is not None and len(labels.shape) not in (1, 2):
        raise CheckpointError(f"{where}: label input {labels.name!r} has shape {_fmt(labels.shape)}; expected (batch,)")
    if not outputs:
        raise CheckpointError(f"{where}: the graph has no outputs")
    output = outputs[0] if len(outputs) == 1 else (_by_name(outputs, ("images", "points", "output", "output_0")) or outputs[0])
    layout = _check_output(where, output, default_layout)

    fixed = latent.shape[0] if latent.shape and isinstance(latent.shape[0], int) else None
    contract = None
    if latent.shape is not None and isinstance(latent.shape[1], int):
        contract = GeneratorContract(latent_dim=int(latent.shape[1]), num_classes=0,
                                     layout=layout, kind=_kind(output), detected=["latent_dim"])
    return Signature(latent, labels, output, fixed, contract)


def _kind(output: TensorInfo) -> Optional[str]:
    if output.shape is None:
        return None
    return {2: "points", 4: "images"}.get(len(output.shape))


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _check_output(where: str, out: TensorInfo, default_layout: Optional[str]) -> Optional[str]:
    """The layout the static output shape implies; GeneratorOutputError when no generator returns it."""
    if out.kind == "other":
        raise GeneratorOutputError(f"{where}: output {out.name!r} is not numeric")
    if out.shape is None:
        return None
    shape = out.shape
    if len(shape) not in (2, 4):
        raise GeneratorOutputError(f"{where}: output {out.name!r} has shape {_fmt(shape)}; a generator returns "
                                   "images (N,C,H,W) or (N,H,W,C), or points (N,D)")
    if len(shape) == 2:
        return None
    chw, hwc = shape[1] in (1, 3), shape[3] in (1, 3)
    if (shape[1] is not None and shape[3] is not None) and not chw and not hwc:
        raise GeneratorOutputError(f"{where}: output {out.name!r} has shape {_fmt(shape)}: no axis of 1 or 3 channels; "
                                   "gandiag evaluates grey or RGB images")
    if chw and not hwc:
        return "NCHW"
    if hwc and not chw:
        return "NHWC"
    return default_layout  # ambiguous: the framework's convention (None: detect from a probe batch)


def call_batched(run: Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray], z: np.ndarray,
                 labels: Optional[np.ndarray], fixed_batch: Optional[int]) -> np.ndarray:
    """``run`` on the whole batch, or in chunks of ``fixed_batch`` rows (last chunk padded) when the graph needs that."""
    if not fixed_batch or z.shape[0] == fixed_batch:
        return run(z, labels)
    outs = []
    for s in range(0, z.shape[0], fixed_batch):
        zc = z[s : s + fixed_batch]
        lc = labels[s : s + fixed_batch] if labels is not None else None
        n = zc.shape[0]
        if n < fixed_batch:
            zc = np.concatenate([zc, np.repeat(zc[-1:], fixed_batch - n, 0)])
            lc = np.concatenate([lc, np.repeat(lc[-1:], fixed_batch - n, 0)]) if lc is not None else None
        outs.append(run(zc, lc)[:n])
    return np.concatenate(outs)


def numpy_forward(path, sig: Signature, run: Callable, device, labels_2d: bool, explain: Callable[[BaseException], str],
                  z_dtype=None, label_dtype=None) -> Callable:
    """gandiag's ``forward(z, labels)`` over a framework's numpy-in/numpy-out ``run``.

    Shared by the ONNX and SavedModel loaders: it checks the latent size and the
    class input against the signature, batches for graphs of fixed batch size,
    and turns a framework failure into one line naming the file.
    """
    import torch

    from ..errors import GandiagError

    def forward(z, labels=None):
        if sig.labels is not None and labels is None:
            raise GandiagError(f"{path} takes class labels (input {sig.labels.name!r}): pass --num-classes")
        zn = z.detach().cpu().numpy()
        if z_dtype is not None:
            zn = zn.astype(z_dtype, copy=False)
        ln = None
        if sig.labels is not None:
            ln = labels.detach().cpu().numpy()
            ln = ln.astype(label_dtype) if label_dtype is not None else ln
            ln = ln[:, None] if labels_2d else ln
        want = sig.latent.shape[1] if sig.latent.shape else None
        if want is not None and zn.shape[1] != want:
            raise GandiagError(f"{path} takes latents of size {want}, not {zn.shape[1]} (--latent-dim)")
        try:
            out = call_batched(run, zn, ln, sig.fixed_batch)
        except GandiagError:
            raise
        except Exception as exc:
            raise GeneratorOutputError(f"{path}: the generator failed on a batch of {zn.shape[0]}: {explain(exc)}") from None
        return torch.from_numpy(np.ascontiguousarray(out)).to(device)

    return forward
