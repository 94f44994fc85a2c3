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

import math
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
    known: dict = None  # without a contract (latent size not static): {field: (value, how)} for kind and layout


def _by_name(candidates: Sequence[TensorInfo], names: Sequence[str]) -> Optional[TensorInfo]:
    for n in names:
        for t in candidates:
            if t.name.lower().split(":")[0] == n:
                return t
    return None


def _pick_inputs(where: str, inputs: Sequence[TensorInfo]) -> tuple[TensorInfo, Optional[TensorInfo]]:
    """(latent, labels): the latent is a float input; labels an integer input, or a second float input (one-hot)."""
    floats = [t for t in inputs if t.kind == "float"]
    ints = [t for t in inputs if t.kind == "int"]
    others = [t for t in inputs if t.kind == "other"]
    listed = ", ".join(f"{t.name} {_fmt(t.shape) if t.shape is not None else '(?)'}" for t in inputs) or "none"
    if others:
        raise CheckpointError(f"{where}: input {others[0].name!r} is neither float nor integer; "
                              "a generator takes a float latent and, optionally, class labels")
    if not floats:
        raise CheckpointError(f"{where}: no float input to take the latent (inputs: {listed})")
    if len(floats) + len(ints) > 2:
        raise CheckpointError(f"{where}: {len(inputs)} inputs ({listed}); a generator takes a latent and, "
                              "optionally, class labels")
    if ints:
        return floats[0], ints[0]
    if len(floats) == 1:
        return floats[0], None
    latent = _by_name(floats, LATENT_NAMES)
    labels = _by_name(floats, LABEL_NAMES)
    if latent is None and labels is not None:
        latent = next(t for t in floats if t is not labels)
    if latent is None:
        raise CheckpointError(f"{where}: two float inputs and neither is named like a latent (z, latent, noise) "
                              f"or like labels (labels, y, c) (inputs: {listed})")
    return latent, next(t for t in floats if t is not latent)


def read_signature(where: str, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo],
                   default_layout: Optional[str], default_sequence_layout: Optional[str] = None) -> Signature:
    """Pick latent, label and output tensors; raise a one-line error when they make no generator.

    The latent may have any shape (N, *shape): (N, 100), the DCGAN tutorial's
    (N, 100, 1, 1), a noise map. Labels are integer indices, (N,) or (N, 1),
    or one-hot float rows (N, classes), whose width says the number of classes.
    The output is points (N, D), sequences (N, T, C) / (N, C, T) or images;
    ``default_layout`` (images) and ``default_sequence_layout`` are the
    framework's convention where the static shape leaves the layout open
    (None: detected from a probe batch, else asked for).
    """
    latent, labels = _pick_inputs(where, inputs)
    if latent.shape is not None and not 2 <= len(latent.shape) <= 5:
        raise CheckpointError(f"{where}: latent input {latent.name!r} has shape {_fmt(latent.shape)}; expected "
                              "(batch, latent size) or (batch, *latent shape)")
    if labels is not None and labels.shape is not None:
        ok = len(labels.shape) in (1, 2) if labels.kind == "int" else len(labels.shape) == 2
        if not ok:
            want = "(batch,) or (batch, 1)" if labels.kind == "int" else "(batch, classes), one-hot"
            raise CheckpointError(f"{where}: label input {labels.name!r} has shape {_fmt(labels.shape)}; expected {want}")
    if not outputs:
        raise CheckpointError(f"{where}: the graph has no outputs")
    output = outputs[0] if len(outputs) == 1 else (_by_name(outputs, ("images", "points", "sequences", "output",
                                                                      "output_0")) or outputs[0])
    layout = _check_output(where, output, default_layout, default_sequence_layout)
    # the shape itself says the layout ("file"), or only the framework's convention does ("default")
    layout_how = "file" if _check_output(where, output, None) == layout else "default"
    fixed = latent.shape[0] if latent.shape and isinstance(latent.shape[0], int) else None
    contract = _contract(latent, labels, output, layout, layout_how)
    known = {} if contract is not None else {k: (v, how) for k, v, how in (("kind", _kind(output), "file"),
                                                                           ("layout", layout, layout_how))
                                             if v is not None}
    return Signature(latent, labels, output, fixed, contract, known)


def _contract(latent: TensorInfo, labels: Optional[TensorInfo], output: TensorInfo, layout,
              layout_how: str = "file") -> Optional[GeneratorContract]:
    """What the signature alone says; None when the latent's size is not static (then a flag must say it)."""
    if latent.shape is None or any(d is None for d in latent.shape[1:]):
        return None
    shape = tuple(int(d) for d in latent.shape[1:])
    decided = {"latent_dim": "file", "latent_shape": "file"}
    num_classes, label_format = 0, "index"
    if labels is not None and labels.kind == "float":
        label_format = decided["label_format"] = "onehot"
        if labels.shape is not None and isinstance(labels.shape[1], int):
            num_classes, decided["num_classes"] = labels.shape[1], "file"
    if _kind(output) is not None:
        decided["kind"] = "file"
    if layout is not None:
        decided["layout"] = layout_how
    return GeneratorContract(latent_dim=math.prod(shape), latent_shape=shape if len(shape) > 1 else None,
                             num_classes=num_classes, label_format=label_format, layout=layout, kind=_kind(output),
                             detected=["latent_dim"], decided=decided).validate()


def _kind(output: TensorInfo) -> Optional[str]:
    if output.shape is None:
        return None
    return {2: "points", 3: "sequences", 4: "images"}.get(len(output.shape))


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _check_output(where: str, out: TensorInfo, default_layout: Optional[str],
                  default_sequence_layout: Optional[str] = None) -> Optional[str]:
    """The layout the static output shape implies; GeneratorOutputError when no generator returns it."""
    if out.kind == "other":
        raise GeneratorOutputError(f"{where}: output {out.name!r} is not numeric")
    if out.shape is None:
        return None
    shape = out.shape
    if len(shape) not in (2, 3, 4):
        raise GeneratorOutputError(f"{where}: output {out.name!r} has shape {_fmt(shape)}; a generator returns "
                                   "images (N,C,H,W) or (N,H,W,C), sequences (N,T,C) or (N,C,T), or points (N,D)")
    if len(shape) == 2:
        return None
    if len(shape) == 3:  # sequences: the sequences kind's rule, exactly one axis of a single channel
        if shape[2] == 1 and shape[1] not in (None, 1):
            return "NTC"
        if shape[1] == 1 and shape[2] not in (None, 1):
            return "NCT"
        return default_sequence_layout  # open: the framework's convention (None: probe, else --layout)
    chw, hwc = shape[1] in (1, 3), shape[3] in (1, 3)
    if (shape[1] is not None and shape[3] is not None) and not chw and not hwc:
        raise GeneratorOutputError(f"{where}: output {out.name!r} has shape {_fmt(shape)}: no axis of 1 or 3 channels; "
                                   "gandiag evaluates grey or RGB images")
    if chw and not hwc:
        return "NCHW"
    if hwc and not chw:
        return "NHWC"
    return default_layout  # ambiguous: the framework's convention (None: detect from a probe batch)


def call_batched(run: Callable, z, labels, fixed_batch: Optional[int]):
    """``run`` on the whole batch, or in chunks of ``fixed_batch`` rows (last chunk padded with copies of its
    last row) when the graph needs that. Arrays or tensors alike (a ``.pt2`` traced at one batch size)."""
    if not fixed_batch or z.shape[0] == fixed_batch:
        return run(z, labels)
    cat = _concatenate(z)
    outs = []
    for s in range(0, z.shape[0], fixed_batch):
        zc = z[s : s + fixed_batch]
        lc = labels[s : s + fixed_batch] if labels is not None else None
        n = zc.shape[0]
        if n < fixed_batch:
            zc = cat([zc] + [zc[-1:]] * (fixed_batch - n))
            lc = cat([lc] + [lc[-1:]] * (fixed_batch - n)) if lc is not None else None
        outs.append(run(zc, lc)[:n])
    return cat(outs)


def _concatenate(x) -> Callable:
    import torch

    return torch.cat if isinstance(x, torch.Tensor) else np.concatenate


def numpy_forward(path, sig: Signature, run: Callable, device, labels_2d: bool, explain: Callable[[BaseException], str],
                  z_dtype=None, label_dtype=None) -> Callable:
    """gandiag's ``forward(z, labels)`` over a framework's numpy-in/numpy-out ``run``.

    Shared by the ONNX and SavedModel loaders: it checks the latent against the
    signature's static shape (a flat latent of the right size is reshaped to
    it), gives labels as the graph takes them (indices, a column, or one-hot
    rows), batches for graphs of fixed batch size, and turns a framework
    failure into one line naming the file.
    """
    import torch

    from ..errors import GandiagError

    def forward(z, labels=None):
        if sig.labels is not None and labels is None:
            raise GandiagError(f"{path} takes class labels (input {sig.labels.name!r}): pass --num-classes")
        zn = _latent_as_graph_takes(path, sig.latent, z.detach().cpu().numpy())
        if z_dtype is not None:
            zn = zn.astype(z_dtype, copy=False)
        ln = _labels_as_graph_takes(path, sig.labels, labels, labels_2d, label_dtype) if sig.labels is not None else None
        try:
            out = call_batched(run, zn, ln, sig.fixed_batch)
        except GandiagError:
            raise
        except Exception as exc:
            raise GeneratorOutputError(f"{path}: the generator failed on a batch of {zn.shape[0]}: {explain(exc)}") from None
        return torch.from_numpy(np.ascontiguousarray(out)).to(device)

    return forward


def _latent_as_graph_takes(path, latent: TensorInfo, zn: np.ndarray) -> np.ndarray:
    from ..errors import GandiagError

    want = latent.shape[1:] if latent.shape is not None else None
    if want is None or all(w is None or w == h for w, h in zip(want, zn.shape[1:])) and len(want) == zn.ndim - 1:
        return zn
    if zn.ndim == 2 and all(isinstance(w, int) for w in want) and math.prod(want) == zn.shape[1]:
        return zn.reshape(zn.shape[0], *want)  # flat latents (--latent-dim) in the graph's shape: the same values
    raise GandiagError(f"{path} takes latents shaped {_fmt(want)}, not {_fmt(zn.shape[1:])}: pass "
                       f"--latent-shape {','.join('?' if w is None else str(w) for w in want)} (or --latent-dim)")


def _labels_as_graph_takes(path, info: TensorInfo, labels, labels_2d: bool, label_dtype) -> np.ndarray:
    from ..errors import GandiagError

    ln = labels.detach().cpu().numpy()
    if info.kind == "float" and ln.ndim == 1:  # class indices for a graph that takes one-hot rows
        width = info.shape[1] if info.shape is not None and isinstance(info.shape[1], int) else None
        if width is None:
            raise GandiagError(f"{path} takes one-hot class rows (input {info.name!r}) of unknown width: pass "
                               "--num-classes and --label-format onehot")
        if ln.size and int(ln.max()) >= width:
            raise GandiagError(f"{path} takes {width} classes (input {info.name!r}), not {int(ln.max()) + 1} "
                               "(--num-classes)")
        ln = np.eye(width, dtype=np.float32)[ln]
    elif ln.ndim == 1 and labels_2d:
        ln = ln[:, None]
    return ln.astype(label_dtype) if label_dtype is not None else ln
